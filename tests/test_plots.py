import csv

import numpy as np
import paddle
import pytest
from PIL import Image

from simam_paddle.engine.history import HISTORY_COLUMNS
from simam_paddle.plots import (
    curve_color,
    attention_label,
    attention_maps,
    plot_attention_maps,
    plot_confusion_matrix,
    plot_curves,
    plot_sample_grid,
)
from simam_paddle.layers.simam import SimAM

from reference import simam_reference

from hostile_files import exif_turned_jpeg


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

# Training curves and attention maps


def write_history(folder, rows):
    folder.mkdir()
    with open(folder / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HISTORY_COLUMNS)
        writer.writerows(rows)
    return str(folder)


def test_plot_curves_draws_every_run_on_shared_axes(tmp_path):
    a = write_history(tmp_path / "simam", [[1, 2.0, 0.3, 1.8, 0.35, 0.01, 1], [2, 1.5, 0.5, 1.6, 0.45, 0.005, 1]])
    b = write_history(tmp_path / "none", [[1, 2.2, 0.2, "", "", 0.01, 1], [2, 1.9, 0.3, "", "", 0.005, 1]])
    fig = plot_curves([a, b], output=str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 0
    loss_ax, acc_ax = fig.axes
    labels = [line.get_label() for line in loss_ax.lines]
    assert labels == ["simam train", "simam eval", "none train"]  # no eval column -> no eval line
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [1.8, 1.6])
    np.testing.assert_allclose(acc_ax.lines[2].get_ydata(), [0.2, 0.3])
    np.testing.assert_allclose(acc_ax.lines[0].get_xdata(), [1, 2])
    # One legend beside the axes (never on them): a colour per run, then the line styles.
    assert loss_ax.get_legend() is None and acc_ax.get_legend() is None
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["simam", "none", "train", "eval"]
    assert loss_ax.get_yscale() == "linear" and acc_ax.get_ylim() == (0, 1.02)
    with pytest.raises(ValueError, match="2 labels for 1 runs"):
        plot_curves([a], labels=["x", "y"])
    with pytest.raises(FileNotFoundError):
        plot_curves([str(tmp_path / "missing")])


def test_attention_maps_are_the_channel_mean_simam_weights():
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, padding=1), SimAM(),
                               paddle.nn.Conv2D(4, 5, 3, stride=2, padding=1), SimAM(e_lambda=0.1))
    image = np.random.RandomState(0).rand(3, 10, 12).astype("float32")
    maps = attention_maps(net, image)
    assert list(maps) == ["1", "3"]
    x1 = net[0](paddle.to_tensor(image[None])).numpy()
    x3 = net[2](net[1](net[0](paddle.to_tensor(image[None])))).numpy()
    np.testing.assert_allclose(maps["1"], simam_reference(x1, weights=True)[0].mean(0), rtol=1e-5)
    np.testing.assert_allclose(maps["3"], simam_reference(x3, 0.1, weights=True)[0].mean(0), rtol=1e-5)
    assert maps["3"].shape == (5, 6)
    # hooks are removed afterwards
    assert all(not layer._forward_post_hooks for layer in net.sublayers())


def test_attention_maps_errors_and_plot(tmp_path):
    with pytest.raises(ValueError, match="no SimAM layer"):
        attention_maps(paddle.nn.Conv2D(3, 3, 1), np.zeros([3, 4, 4], "float32"))
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), SimAM())
    with pytest.raises(ValueError, match="one image"):
        attention_maps(net, np.zeros([2, 3, 8, 8], "float32"))
    image = np.random.RandomState(1).randn(3, 16, 16).astype("float32")
    maps = attention_maps(paddle.Model(net), image)
    fig = plot_attention_maps(image, maps, output=str(tmp_path / "att.png"))
    assert len(fig.axes) == 3 and (tmp_path / "att.png").stat().st_size > 0  # image, map, colour bar
    overlay = fig.axes[1].images[1].get_array()
    assert overlay.shape == (16, 16)  # upsampled to the image
    assert fig.axes[1].get_title() == "SimAM 1/1 (in 1)\n14x14"  # the map at its own resolution


def test_attention_maps_share_one_scale_and_mark_constant_maps():
    image = np.random.RandomState(2).rand(3, 8, 8).astype("float32")
    maps = {"b3.2": np.array([[0.7, 0.8], [0.9, 0.75]], "float32"), "b4.2": np.array([[0.65, 0.66]], "float32"),
            "b5.5": np.full((1, 1), 0.6225, "float32")}
    fig = plot_attention_maps(image, maps)
    image_axes, bar = fig.axes[:-1], fig.axes[-1]
    assert len(image_axes) == 4
    overlays = [ax.images[1] for ax in image_axes[1:3]]
    assert {im.get_clim() for im in overlays} == {(np.float32(0.6225), np.float32(0.9))}  # one scale for all maps
    assert "SimAM 1/3 (in b3)" in image_axes[1].get_title() and "2x2" in image_axes[1].get_title()
    constant = image_axes[3]
    assert "constant" in constant.get_title() and "1x1" in constant.get_title()
    assert len(constant.images) == 1  # the dimmed image only, no colour overlay
    assert bar.get_ylim() == pytest.approx((0.6225, 0.9))
    fixed = plot_attention_maps(image, maps, value_range=(0.6, 1.0))
    assert fixed.axes[1].images[1].get_clim() == (0.6, 1.0)


def test_attention_label():
    assert attention_label("b5.2", 2, 4) == "SimAM 3/4 (in b5)"
    assert attention_label("simam", 0, 1) == "SimAM 1/1 (in simam)"


def test_grid_ignores_hidden_files_and_folders(tmp_path):
    # macOS resource forks (._x.png) and Jupyter's checkpoint folder are not images or classes.
    make_tree(tmp_path / "data", {"a": 2, "b": 2})
    (tmp_path / "data" / "a" / "._img_0.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (tmp_path / "data" / ".ipynb_checkpoints").mkdir()
    fig = plot_sample_grid(tmp_path / "data", per_class=3)
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "a", "b", "b"]


def test_confusion_matrix_png_shows_rows_normalised(tmp_path):
    cm = np.array([[3, 1], [0, 2]])
    fig = plot_confusion_matrix(cm, ["cat", "dog"], output=str(tmp_path / "cm.png"))
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, [[0.75, 0.25], [0.0, 1.0]])


def test_plot_curves_logarithmic_loss_when_one_curve_explodes_and_chance_line(tmp_path):
    calm = write_history(tmp_path / "calm", [[1, 2.0, 0.3, 1.8, 0.35, 0.01, 1], [2, 0.3, 0.9, 0.2, 0.95, 0.005, 1]])
    wild = write_history(tmp_path / "wild", [[1, 2.3, 0.1, 57.6, 0.1, 0.01, 1], [2, 1.0, 0.6, 3.0, 0.5, 0.005, 1]])
    fig = plot_curves([calm, wild], chance=0.1)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and "log" in loss_ax.get_title()
    assert any(list(line.get_ydata()) == [0.1, 0.1] for line in acc_ax.lines)  # the chance line
    assert "chance (0.10)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert plot_curves([calm, wild], loss_scale="linear").axes[0].get_yscale() == "linear"
    assert plot_curves([calm], loss_scale="log").axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="loss_scale"):
        plot_curves([calm], loss_scale="sqrt")


def test_plot_curves_legend_lies_outside_the_axes(tmp_path):
    runs = [write_history(tmp_path / f"run_with_a_long_name_{i}", [[1, 2.0, 0.3, 1.8, 0.35, 0.01, 1],
                                                                   [2, 1.5, 0.5, 1.6, 0.45, 0.005, 1]]) for i in range(6)]
    fig = plot_curves(runs)
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        assert not legend_box.overlaps(ax.get_window_extent())
    assert legend_box.x1 <= fig.bbox.x1 + 1  # and inside the figure


def _run_with_config(folder, model, attention):
    import json

    run = write_history(folder, [[1, 2.0, 0.3, 1.8, 0.35, 0.01, 1], [2, 1.5, 0.5, 1.6, 0.45, 0.005, 1]])
    (folder / "config.json").write_text(json.dumps({"model": model, "attention": attention}))
    return run


def test_each_network_keeps_its_colour_across_figures(tmp_path):
    from matplotlib.colors import to_hex

    baselines = [_run_with_config(tmp_path / n, n, "none") for n in ("vgg19", "resnet50", "mobilenet_v2")]
    towernets = [_run_with_config(tmp_path / f"towernet_{a}", "towernet", a) for a in ("none", "se", "simam")]

    def run_colors(fig):
        return [to_hex(line.get_color()) for line in fig.axes[0].lines if line.get_label().endswith(" train")]

    # Notebook 02, notebook 03 and notebook 04's mix, in other orders: a network's colour never moves.
    first = dict(zip(baselines, run_colors(plot_curves(baselines))))
    second = dict(zip(towernets[::-1], run_colors(plot_curves(towernets[::-1]))))
    both = dict(zip(towernets + baselines, run_colors(plot_curves(towernets + baselines))))
    assert both == {**first, **second}
    assert len(set(both.values())) == 6
    assert second[towernets[2]] == to_hex("tab:green") == to_hex(curve_color("cifar_resnet20", "simam"))


def test_runs_that_would_share_a_colour_fall_back_to_one_colour_each(tmp_path):
    from matplotlib.colors import to_hex

    seeds = [_run_with_config(tmp_path / f"simam_seed{i}", "towernet", "simam") for i in range(2)]
    bare = write_history(tmp_path / "no_config", [[1, 2.0, 0.3, "", "", 0.01, 1]])
    for runs in (seeds, [seeds[0], bare]):
        colors = [to_hex(line.get_color()) for line in plot_curves(runs).axes[0].lines
                  if line.get_label().endswith(" train")]
        assert len(set(colors)) == len(runs)
    assert curve_color("towernet", "an_unknown_attention") is None and curve_color("unknown_net", "none") is None


def test_a_config_without_an_attention_name_is_coloured_as_the_model_published(tmp_path):
    # "attention": null in a config.json written before names were stored meant TowerNet with SimAM.
    from matplotlib.colors import to_hex

    runs = [_run_with_config(tmp_path / "old_towernet", "towernet", None),
            _run_with_config(tmp_path / "towernet_none", "towernet", "none")]
    colors = [to_hex(line.get_color()) for line in plot_curves(runs).axes[0].lines
              if line.get_label().endswith(" train")]
    assert colors == [to_hex("tab:green"), to_hex("tab:blue")]
    assert curve_color("towernet", None) == curve_color("towernet", "simam")
    assert curve_color("resnet50", None) == curve_color("resnet50", "none")


def test_grid_shows_a_phone_photo_upright(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    upright = Image.new("RGB", (48, 16), (0, 0, 250))
    (tmp_path / "data" / "a" / "phone.jpg").write_bytes(exif_turned_jpeg(upright))
    fig = plot_sample_grid(tmp_path / "data", per_class=1)
    assert fig.axes[0].images[0].get_array().shape == (16, 48, 3)  # stored 48 high, shown as taken
