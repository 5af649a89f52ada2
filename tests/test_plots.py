import numpy as np
import pytest
from PIL import Image

from simam_paddle.plots import plot_sample_grid


def make_tree(root, counts, mode="L", size=(10, 8)):
    """Class folders with distinct images: pixel value encodes (class, index)."""
    arrays = {}
    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            value = 20 * c + i
            array = np.full((size[1], size[0]) + ((3,) if mode == "RGB" else ()), value, dtype=np.uint8)
            Image.fromarray(array).save(root / name / f"img_{i}.png")
            arrays[(name, i)] = array
    (root / next(iter(counts)) / "notes.txt").write_text("not an image")
    return arrays


def test_grid_shape_titles_and_pixels(tmp_path):
    arrays = make_tree(tmp_path / "data", {"cat": 4, "dog": 5, "emu": 3})
    out = tmp_path / "figs" / "grid.png"
    fig = plot_sample_grid(tmp_path / "data", per_class=3, output=out)
    assert len(fig.axes) == 9
    for row, name in enumerate(["cat", "dog", "emu"]):
        for col in range(3):
            ax = fig.axes[row * 3 + col]
            assert ax.get_title() == name
            np.testing.assert_array_equal(ax.images[0].get_array(), arrays[(name, col)])
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert (width, height) == tuple(round(v * fig.dpi) for v in fig.get_size_inches())


def test_grid_leaves_missing_cells_blank_and_shows_rgb(tmp_path):
    make_tree(tmp_path / "data", {"a": 1, "b": 3}, mode="RGB")
    fig = plot_sample_grid(tmp_path / "data", per_class=2)
    assert len(fig.axes) == 4
    assert [len(ax.images) for ax in fig.axes] == [1, 0, 1, 1]
    assert fig.axes[0].images[0].get_array().shape == (8, 10, 3)


def test_grid_of_a_split_shows_train(tmp_path):
    make_tree(tmp_path / "split" / "train", {"x": 2, "y": 2})
    make_tree(tmp_path / "split" / "eval", {"x": 1, "z": 1})
    fig = plot_sample_grid(tmp_path / "split", per_class=2)
    assert [ax.get_title() for ax in fig.axes] == ["x", "x", "y", "y"]


def test_grid_class_selection_and_random_pick(tmp_path):
    make_tree(tmp_path / "data", {str(c): 6 for c in range(12)})
    assert len(plot_sample_grid(tmp_path / "data", per_class=1).axes) == 10
    fig = plot_sample_grid(tmp_path / "data", per_class=2, classes=["11", "3"])
    assert [ax.get_title() for ax in fig.axes] == ["11", "11", "3", "3"]
    picks = [
        [int(ax.images[0].get_array()[0, 0]) for ax in plot_sample_grid(tmp_path / "data", per_class=3, classes=["0"], seed=s).axes]
        for s in range(5)
    ]
    assert all(p == sorted(p) and len(set(p)) == 3 for p in picks)
    assert len({tuple(p) for p in picks}) > 1, "seed does not change the pick"


def test_grid_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        plot_sample_grid(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="class folders"):
        plot_sample_grid(tmp_path / "empty")
    make_tree(tmp_path / "data", {"a": 1})
    with pytest.raises(ValueError, match="'a'"):
        plot_sample_grid(tmp_path / "data", classes=["b"])
    with pytest.raises(ValueError, match="per_class"):
        plot_sample_grid(tmp_path / "data", per_class=0)
