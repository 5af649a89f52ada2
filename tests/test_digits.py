import csv
import os
import sys

import numpy as np
import pytest
from PIL import Image

from simam_paddle.data import digits as digits_module
from simam_paddle.cli import main
from simam_paddle.data.digits import make_cluttered_digits_dataset, make_digits_dataset

datasets = pytest.importorskip("sklearn.datasets")

# Small enough for a few seconds per build, large enough to hold digits, fragments and noise.
SMALL = dict(image_size=40, digit_size=(14, 22), fragments=4, fragment_size=6, noise=24)
# The first 20 digits of each class: 40 eval and 160 train sources, for the tests that build often.
QUICK = dict(SMALL, max_per_class=20)


@pytest.fixture(scope="module")
def source():
    digits = datasets.load_digits()
    return digits.images, digits.target


def eval_sources(target, eval_every=5):
    """Independent restatement of the split rule: per class in source order, i % eval_every == 0."""
    chosen = set()
    for label in range(10):
        members = [i for i, t in enumerate(target) if t == label]
        chosen.update(members[k] for k in range(len(members)) if k % eval_every == 0)
    return chosen


def to_uint8(image8x8):
    return np.rint(np.asarray(image8x8, dtype=np.float64) * 255 / 16).astype(np.uint8)


def tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_manifest(root):
    with open(root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- plain digits


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    dst = tmp_path_factory.mktemp("plain") / "digits"
    summary = make_digits_dataset(dst)
    return dst, summary


def test_digits_layout_and_counts(digits_dir, source):
    dst, summary = digits_dir
    _, target = source
    assert sorted(p.name for p in dst.iterdir()) == [str(c) for c in range(10)]
    files = sorted(dst.glob("*/*.png"))
    assert len(files) == 1797
    for path in files:
        assert target[int(path.stem)] == int(path.parent.name), path
    expected = np.bincount(target, minlength=10)
    for c in range(10):
        assert len(list((dst / str(c)).iterdir())) == expected[c]
        assert summary.counts["all"][str(c)] == expected[c]
    assert summary.created and summary.total() == 1797


@pytest.mark.parametrize("index", [0, 1, 17, 1000, 1796])
def test_digits_pixels_are_the_source_rescaled(digits_dir, source, index):
    dst, _ = digits_dir
    images, target = source
    with Image.open(dst / str(target[index]) / f"{index:04d}.png") as image:
        assert image.mode == "L" and image.size == (32, 32)
        pixels = np.asarray(image)
    expected = np.kron(to_uint8(images[index]), np.ones((4, 4), dtype=np.uint8))
    np.testing.assert_array_equal(pixels, expected)


def test_digits_rerun_writes_nothing(digits_dir):
    dst, _ = digits_dir
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*")}
    summary = make_digits_dataset(dst)
    assert not summary.created
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*")} == before


def test_digits_leave_no_temporary_folder(digits_dir):
    dst, _ = digits_dir
    assert [p.name for p in dst.parent.iterdir()] == ["digits"]


def test_digits_refuse_foreign_content(tmp_path):
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "notes.txt").write_text("my only copy")
    with pytest.raises(FileExistsError, match="notes.txt"):
        make_digits_dataset(dst)
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    assert [p.name for p in dst.iterdir()] == ["notes.txt"]
    assert (dst / "notes.txt").read_text() == "my only copy"


def test_digits_refuse_same_layout_with_other_pixels(digits_dir):
    dst, _ = digits_dir
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*")}
    with pytest.raises(FileExistsError, match="differs"):
        make_digits_dataset(dst, image_size=16)
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*")} == before


def test_digits_fill_an_empty_folder_and_refuse_a_file(tmp_path):
    (tmp_path / "empty").mkdir()
    assert make_digits_dataset(tmp_path / "empty", image_size=8).created
    assert len(list((tmp_path / "empty").rglob("*.png"))) == 1797
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_digits_dataset(tmp_path / "file")


@pytest.mark.parametrize("existing", [False, True])
def test_digits_files_and_folders_get_the_usual_permissions(tmp_path, existing):
    dst = tmp_path / "digits"
    if existing:
        dst.mkdir(mode=0o700)
    old = os.umask(0o027)
    try:
        make_digits_dataset(dst, image_size=8)
    finally:
        os.umask(old)
    modes = {p.stat().st_mode & 0o777 for p in dst.rglob("*") if p.is_file()}
    folders = {p.stat().st_mode & 0o777 for p in dst.rglob("*") if p.is_dir()}
    assert modes == {0o640} and folders == {0o750}
    assert dst.stat().st_mode & 0o777 == (0o700 if existing else 0o750)


def test_digits_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="nearest"):
        make_digits_dataset(tmp_path / "a", resample="lanczos3")
    with pytest.raises(ValueError, match="image_size"):
        make_digits_dataset(tmp_path / "a", image_size=4)
    assert not (tmp_path / "a").exists()


def test_missing_scikit_learn_is_explained(monkeypatch, tmp_path):
    digits_module._load_digits_uint8.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(ImportError, match="pip install scikit-learn"):
            make_digits_dataset(tmp_path / "d")
    finally:
        digits_module._load_digits_uint8.cache_clear()


# ---------------------------------------------------------------- cluttered digits


@pytest.fixture(scope="module")
def cluttered(tmp_path_factory):
    dst = tmp_path_factory.mktemp("cluttered") / "c"
    summary = make_cluttered_digits_dataset(dst, **SMALL)
    return dst, summary


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    dst = tmp_path_factory.mktemp("quick") / "q"
    summary = make_cluttered_digits_dataset(dst, **QUICK)
    return dst, summary


def test_cluttered_layout_counts_and_balance(cluttered, source):
    dst, summary = cluttered
    _, target = source
    held_out = eval_sources(target)
    assert sorted(p.name for p in dst.iterdir()) == ["eval", "manifest.csv", "train"]
    for split, per_source in (("train", 1), ("eval", 1)):
        assert sorted(p.name for p in (dst / split).iterdir()) == [str(c) for c in range(10)]
        for c in range(10):
            members = [i for i in range(len(target)) if target[i] == c and ((i in held_out) == (split == "eval"))]
            files = sorted((dst / split / str(c)).iterdir())
            assert len(files) == per_source * len(members) == summary.counts[split][str(c)]
            assert sorted({int(p.stem.split("_")[0]) for p in files}) == members
    assert summary.total("eval") == len(held_out) == 364
    assert summary.total("train") == 1797 - 364
    with Image.open(next((dst / "eval" / "3").iterdir())) as image:
        assert image.size == (40, 40) and image.mode == "L"


def test_cluttered_manifest_matches_disk(cluttered, source):
    dst, _ = cluttered
    _, target = source
    rows = read_manifest(dst)
    on_disk = sorted(p.relative_to(dst).as_posix() for p in dst.glob("*/*/*.png"))
    assert sorted(r["file"] for r in rows) == on_disk
    for r in rows:
        split, label, _ = r["file"].split("/")
        assert (split, label) == (r["split"], r["label"])
        assert target[int(r["source_index"])] == int(r["label"])
        assert len(r["fragment_sources"].split()) == SMALL["fragments"]


def test_no_eval_image_uses_a_train_digit(cluttered, source):
    dst, _ = cluttered
    _, target = source
    held_out = eval_sources(target)
    for r in read_manifest(dst):
        used = [int(r["source_index"])] + [int(i) for i in r["fragment_sources"].split()]
        assert int(r["source_index"]) not in used[1:], "a fragment of the image's own digit"
        side = {i in held_out for i in used}
        assert side == {r["split"] == "eval"}, r


def test_every_digit_is_inside_the_canvas(cluttered):
    dst, _ = cluttered
    low, high = SMALL["digit_size"]
    sizes, xs = set(), set()
    for r in read_manifest(dst):
        x, y, size = int(r["x"]), int(r["y"]), int(r["size"])
        assert low <= size <= high
        assert 0 <= x and 0 <= y and x + size <= SMALL["image_size"] and y + size <= SMALL["image_size"]
        sizes.add(size)
        xs.add(x)
    # Placement and scale really vary: every size and most positions occur.
    assert sizes == set(range(low, high + 1))
    assert len(xs) > SMALL["image_size"] - high


def test_clean_canvas_is_exactly_the_resized_digit(tmp_path, source):
    images, _ = source
    dst = tmp_path / "clean"
    make_cluttered_digits_dataset(dst, **{**QUICK, "fragments": 0, "noise": 0})
    rows = read_manifest(dst)
    for r in rows:
        x, y, size = int(r["x"]), int(r["y"]), int(r["size"])
        digit = Image.fromarray(to_uint8(images[int(r["source_index"])]))
        expected = np.zeros((40, 40), dtype=np.uint8)
        expected[y:y + size, x:x + size] = np.asarray(digit.resize((size, size), Image.BICUBIC))
        with Image.open(dst / r["file"]) as image:
            np.testing.assert_array_equal(np.asarray(image), expected)


def test_cluttered_digit_is_visible_among_fragments(cluttered, source):
    dst, _ = cluttered
    images, _ = source
    correlations = []
    for r in read_manifest(dst)[::13]:
        x, y, size = int(r["x"]), int(r["y"]), int(r["size"])
        digit = Image.fromarray(to_uint8(images[int(r["source_index"])]))
        digit = np.asarray(digit.resize((size, size), Image.BICUBIC), dtype=np.float64)
        with Image.open(dst / r["file"]) as image:
            region = np.asarray(image, dtype=np.float64)[y:y + size, x:x + size]
        correlations.append(np.corrcoef(region.ravel(), digit.ravel())[0, 1])
    assert np.median(correlations) > 0.85
    assert np.min(correlations) > 0.4


def test_cluttered_images_hold_fragments_and_noise(cluttered):
    dst, _ = cluttered
    r = read_manifest(dst)[0]
    x, y, size = int(r["x"]), int(r["y"]), int(r["size"])
    with Image.open(dst / r["file"]) as image:
        pixels = np.asarray(image).copy()
    pixels[y:y + size, x:x + size] = 0
    outside = pixels[pixels > 0]
    assert outside.size > 0.5 * (40 * 40 - size * size), "no noise outside the digit"
    assert (outside > SMALL["noise"]).any(), "no fragment outside the digit"


def test_cluttered_is_deterministic(quick, tmp_path):
    dst, _ = quick
    again = tmp_path / "again"
    make_cluttered_digits_dataset(again, **QUICK)
    assert tree_bytes(again) == tree_bytes(dst)


def test_cluttered_other_seed_differs(quick, tmp_path):
    reference = tree_bytes(quick[0])
    other = tree_bytes(make_cluttered_digits_dataset(tmp_path / "seed1", seed=1, **QUICK).root)
    assert other.keys() == reference.keys()
    images = [name for name in other if name.endswith(".png")]
    assert sum(other[name] != reference[name] for name in images) > 0.99 * len(images)


def test_max_per_class_takes_the_first_digits_of_each_class(quick, source):
    _, target = source
    rows = read_manifest(quick[0])
    first = {i for c in range(10) for i in [j for j, t in enumerate(target) if t == c][:20]}
    assert {int(r["source_index"]) for r in rows} == first
    held_out = eval_sources(target)
    for r in rows:
        used = [int(r["source_index"])] + [int(i) for i in r["fragment_sources"].split()]
        assert set(used) <= first
        assert {i in held_out for i in used} == {r["split"] == "eval"}
    assert quick[1].total("eval") == 40 and quick[1].total("train") == 160


def test_more_samples_per_digit_add_train_images_only(quick, tmp_path):
    reference = tree_bytes(quick[0])
    summary = make_cluttered_digits_dataset(tmp_path / "three", samples_per_digit=3, **QUICK)
    more = tree_bytes(summary.root)
    for c in range(10):
        assert summary.counts["train"][str(c)] == 3 * quick[1].counts["train"][str(c)]
    assert summary.counts["eval"] == quick[1].counts["eval"]
    # The first sample of every digit and the whole eval split are the images of the smaller set.
    for name, data in reference.items():
        if name != "manifest.csv":
            assert more[name] == data, name
    samples = {name.rsplit("_", 1)[1] for name in more if name.startswith("train/")}
    assert samples == {"0.png", "1.png", "2.png"}
    assert len(more) - 1 == 3 * 160 + 40


def test_cluttered_rerun_and_refusal(quick, tmp_path):
    dst, _ = quick
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*")}
    assert not make_cluttered_digits_dataset(dst, **QUICK).created
    with pytest.raises(FileExistsError, match="differs"):
        make_cluttered_digits_dataset(dst, **{**QUICK, "noise": 10})
    with pytest.raises(FileExistsError, match="missing"):
        make_cluttered_digits_dataset(dst, samples_per_digit=2, **QUICK)
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*")} == before


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"fragment_size": 20}, "fragment_size"),
        ({"digit_size": (14, 41)}, "digit_size"),
        ({"digit_size": (22, 14)}, "digit_size"),
        ({"eval_every": 1}, "eval_every"),
        ({"noise": 300}, "noise"),
        ({"samples_per_digit": 0}, "samples_per_digit"),
        ({"max_per_class": 1}, "max_per_class"),
    ],
)
def test_cluttered_bad_arguments(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        make_cluttered_digits_dataset(tmp_path / "c", **{**QUICK, **bad})
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------- command line


def test_cli_make_data_prints_counts(quick, tmp_path, capsys):
    # Re-running on the finished fixture exercises the whole command without writing files.
    dst, summary = quick
    argv = ["make-data", "cluttered-digits", str(dst), "--image-size", "40", "--digit-size", "14", "22",
            "--fragment-size", "6", "--fragments", "4", "--noise", "24", "--max-per-class", "20",
            "--grid", str(tmp_path / "grid.png")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "already complete" in lines[0]
    assert lines[1].split() == ["class", "train", "eval"]
    for c in range(10):
        assert lines[2 + c].split() == [str(c), str(summary.counts["train"][str(c)]), str(summary.counts["eval"][str(c)])]
    assert lines[12].split() == ["total", "160", "40"]
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.format == "PNG"


def test_cli_make_data_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("x")
    assert main(["make-data", "cluttered-digits", str(tmp_path)]) == 2
    assert "x.txt" in capsys.readouterr().err


def test_cli_make_data_rejects_misplaced_options(tmp_path, capsys):
    assert main(["make-data", "digits", str(tmp_path / "d"), "--seed", "3"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
