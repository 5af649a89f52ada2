import io
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import paddle
import pytest
from PIL import Image

import simam_paddle.data
from simam_paddle import ImageFolderDataset, eval_transforms, train_transforms
from simam_paddle.data import NOTEBOOK_MEAN, NOTEBOOK_STD, check_num_classes, compute_mean_std
from simam_paddle.data.images import ImageReadError

from hostile_files import bomb_png, exif_turned_jpeg
from subprocesses import ROOT, environment
from test_runs import FAST_ARGS, make_split

H, W = 5, 7
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (H, W), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (H, W), dtype=np.uint8)
CMYK = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
DEEP = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
INDEX = RNG.integers(0, 4, (H, W), dtype=np.uint8)
PALETTE = np.array([[255, 0, 0], [0, 128, 0], [10, 20, 30], [200, 200, 5]], dtype=np.uint8)
FLOATS = RNG.uniform(-0.2, 1.2, (H, W)).astype(np.float32)


def _white_composite(rgb, alpha):
    a = alpha.astype(np.float64)[..., None] / 255
    return rgb * a + 255 * (1 - a)


def _palette_image(transparent=None):
    image = Image.new("P", (W, H))
    image.putpalette(PALETTE.ravel().tolist())
    image.putdata(INDEX.ravel().tolist())
    if transparent is not None:
        image.info["transparency"] = transparent
    return image


# mode -> (image to save, file name, expected RGB as float64, tolerance in 0..255 levels)
def _mode_cases():
    gray3 = np.repeat(GRAY[..., None], 3, axis=2).astype(np.float64)
    cmyk = CMYK.astype(np.float64)
    cmyk_rgb = (255 - cmyk[..., :3]) * (255 - cmyk[..., 3:]) / 255
    deep = np.rint(DEEP.astype(np.float64) * 255 / 65535)
    floats = np.rint(np.clip(FLOATS.astype(np.float64), 0, 1) * 255)
    palette_rgb = PALETTE[INDEX].astype(np.float64)
    transparent_rgb = np.where((INDEX == 2)[..., None], 255.0, palette_rgb)
    bits = GRAY > 127
    return {
        "rgb": (Image.fromarray(RGB), "a.png", RGB.astype(np.float64), 0),
        "l": (Image.fromarray(GRAY), "a.png", gray3, 0),
        "la": (Image.merge("LA", [Image.fromarray(GRAY), Image.fromarray(ALPHA)]), "a.png",
               _white_composite(gray3, ALPHA), 1),
        "rgba": (Image.fromarray(np.dstack([RGB, ALPHA])), "a.png", _white_composite(RGB.astype(np.float64), ALPHA), 1),
        "cmyk": (Image.frombytes("CMYK", (W, H), CMYK.tobytes()), "a.tif", cmyk_rgb, 1),
        "p": (_palette_image(), "a.png", palette_rgb, 0),
        "p_transparent": (_palette_image(transparent=2), "a.png", transparent_rgb, 0),
        "i16": (Image.fromarray(DEEP), "a.png", np.repeat(deep[..., None], 3, 2), 0),
        "i32": (Image.fromarray(DEEP.astype(np.int32)), "a.tif", np.repeat(deep[..., None], 3, 2), 0),
        "f": (Image.fromarray(FLOATS), "a.tif", np.repeat(floats[..., None], 3, 2), 0),
        "bilevel": (Image.fromarray(bits), "a.png", np.repeat(np.where(bits, 255.0, 0.0)[..., None], 3, 2), 0),
    }


@pytest.fixture(scope="module")
def mode_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    cases = _mode_cases()
    for name, (image, filename, _, _) in cases.items():
        (root / name).mkdir()
        image.save(root / name / filename)
    return root, cases


def test_saved_test_images_keep_their_mode(mode_tree):
    root, cases = mode_tree
    expected = {"rgb": "RGB", "l": "L", "la": "LA", "rgba": "RGBA", "cmyk": "CMYK", "p": "P", "p_transparent": "P",
                "i16": "I;16", "i32": "I", "f": "F", "bilevel": "1"}
    for name, (_, filename, _, _) in cases.items():
        with Image.open(root / name / filename) as image:
            assert image.mode == expected[name], name


def test_every_mode_becomes_rgb_as_numpy_expects(mode_tree):
    root, cases = mode_tree
    ds = ImageFolderDataset(root)
    assert ds.classes == sorted(cases)
    for index, (path, label) in enumerate(ds.samples):
        _, _, expected, tol = cases[ds.classes[label]]
        image, target = ds[index]
        assert image.dtype == np.float32 and image.shape == (3, H, W)
        assert target.dtype == np.int64 and target.shape == (1,) and target[0] == label
        np.testing.assert_allclose(image.transpose(1, 2, 0) * 255, expected, atol=tol + 1e-3, err_msg=path)


@pytest.fixture
def class_tree(tmp_path):
    rng = np.random.default_rng(1)
    for cls, n in (("b_dog", 3), ("a_cat", 2), ("c_owl", 4)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "a_cat" / "notes.txt").write_text("ignored")
    (tmp_path / "a_cat" / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "stray.png").write_bytes(b"")
    return tmp_path


def test_classes_samples_and_labels(class_tree):
    ds = ImageFolderDataset(class_tree)
    assert ds.classes == ["a_cat", "b_dog", "c_owl"]
    assert ds.class_to_idx == {"a_cat": 0, "b_dog": 1, "c_owl": 2}
    assert len(ds) == 9
    assert [label for _, label in ds.samples] == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    for path, label in ds.samples:
        assert path.endswith(".png") and f"/{ds.classes[label]}/" in path


def test_image_size_resizes_like_pil_bilinear(class_tree):
    ds = ImageFolderDataset(class_tree, image_size=(6, 8))
    path, _ = ds.samples[4]
    with Image.open(path) as image:
        expected = np.asarray(image.convert("RGB").resize((8, 6), Image.BILINEAR))
    np.testing.assert_array_equal(ds.load(4), expected)
    assert ds[4][0].shape == (3, 6, 8)


def test_errors_name_the_problem(tmp_path, class_tree):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        ImageFolderDataset(tmp_path / "empty")
    (class_tree / "d_empty").mkdir()
    (class_tree / "d_empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="d_empty has no images"):
        ImageFolderDataset(class_tree)
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataset(class_tree, cache=True)


def test_check_num_classes_names_both_numbers_and_the_classes(class_tree):
    ds = ImageFolderDataset(class_tree)
    check_num_classes(ds, 3)
    with pytest.raises(ValueError) as err:
        check_num_classes(ds, 16)
    message = str(err.value)
    assert "3 classes" in message and "num_classes=16" in message and "a_cat, b_dog, c_owl" in message


def _notebook_reference(rgb, mean, std):
    x = rgb.astype(np.float64).transpose(2, 0, 1) / 255
    return (x - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]


def test_eval_transforms_match_numpy_reference():
    out = eval_transforms((H, W))(Image.fromarray(RGB))
    assert out.dtype == np.float32 and out.shape == (3, H, W)
    np.testing.assert_allclose(out, _notebook_reference(RGB, NOTEBOOK_MEAN, NOTEBOOK_STD), atol=1e-5)
    plain = eval_transforms((H, W), mean=(0, 0, 0), std=(1, 1, 1))(Image.fromarray(RGB))
    np.testing.assert_allclose(plain, RGB.transpose(2, 0, 1) / 255, atol=1e-6)


def test_eval_transforms_resize_to_a_square():
    image = Image.fromarray(RGB)
    out = eval_transforms(4)(image)
    expected = np.asarray(image.resize((4, 4), Image.BILINEAR))
    np.testing.assert_allclose(out, _notebook_reference(expected, NOTEBOOK_MEAN, NOTEBOOK_STD), atol=1e-5)


def _fill_fraction(degrees, size):
    """Fraction of a size x size square left uncovered after rotating it by `degrees` about its centre."""
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size] - c
    t = np.deg2rad(degrees)
    u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    return float(np.mean((np.abs(u) > size / 2) | (np.abs(v) > size / 2)))


def test_train_transforms_rotate_at_most_ten_degrees():
    size = 64
    white = Image.new("RGB", (size, size), (255, 255, 255))
    fill_value = -np.array(NOTEBOOK_MEAN) / np.array(NOTEBOOK_STD)  # black fill after normalising
    white_value = (1 - np.array(NOTEBOOK_MEAN)) / np.array(NOTEBOOK_STD)
    random.seed(0)
    fractions = []
    for _ in range(40):
        out = train_transforms(size)(white)
        assert out.shape == (3, size, size) and out.dtype == np.float32
        filled = np.all(np.abs(out - fill_value[:, None, None]) < 1e-4, axis=0)
        assert np.all(filled | np.all(np.abs(out - white_value[:, None, None]) < 1e-4, axis=0))
        assert not filled[size // 2 - 4:size // 2 + 4, size // 2 - 4:size // 2 + 4].any()
        fractions.append(filled.mean())
    # Nearest-neighbour edges blur the geometry by about a pixel: 2% slack.
    assert max(fractions) <= _fill_fraction(10, size) + 0.02
    assert max(fractions) > _fill_fraction(5, size)
    assert len(set(fractions)) > 5


def test_transform_returning_pil_is_rejected(class_tree):
    ds = ImageFolderDataset(class_tree, transform=lambda image: image)
    with pytest.raises(TypeError, match="PIL image"):
        ds[0]


def test_cache_gives_same_items_and_skips_decoding(class_tree):
    plain = ImageFolderDataset(class_tree, eval_transforms(8), image_size=8)
    cached = ImageFolderDataset(class_tree, eval_transforms(8), cache=True, image_size=8)
    for i in range(len(plain)):
        np.testing.assert_array_equal(cached[i][0], plain[i][0])
    assert cached.cached_bytes == len(cached) * 8 * 8 * 3
    for path, _ in cached.samples:  # a second epoch must not need the files
        Image.new("RGB", (3, 3)).save(path)
    for i in range(len(plain)):
        np.testing.assert_array_equal(cached[i][0], eval_transforms(8)(Image.fromarray(cached.load(i))))
        assert not np.array_equal(cached[i][0], ImageFolderDataset(class_tree, eval_transforms(8), image_size=8)[i][0])
    with pytest.raises(ValueError, match="read-only"):
        cached.load(0)[0, 0, 0] = 1


def test_cache_is_bounded(class_tree):
    one = 8 * 8 * 3
    ds = ImageFolderDataset(class_tree, cache=True, image_size=8, cache_bytes=int(2.5 * one))
    reference = ImageFolderDataset(class_tree, image_size=8)
    assert ds.fill_cache() == 2
    assert ds.cached_bytes == 2 * one
    for i in range(len(ds)):
        np.testing.assert_array_equal(ds[i][0], reference[i][0])
    assert ds.cached_bytes == 2 * one


def test_compute_mean_std_matches_numpy(class_tree):
    pixels = []
    for cls in ("a_cat", "b_dog", "c_owl"):
        for path in sorted((class_tree / cls).glob("*.png")):
            with Image.open(path) as image:
                pixels.append(np.asarray(image.convert("RGB").resize((6, 6), Image.BILINEAR)).reshape(-1, 3))
    pixels = np.concatenate(pixels).astype(np.float64) / 255
    mean, std = compute_mean_std(class_tree, image_size=6)
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=0, atol=1e-12)
    full_mean, _ = compute_mean_std(class_tree, image_size=None)
    raw = np.concatenate([np.asarray(Image.open(p)).reshape(-1, 3) for p, _ in ImageFolderDataset(class_tree).samples])
    np.testing.assert_allclose(full_mean, raw.mean(axis=0) / 255, atol=1e-12)


def _batches(loader):
    return [(x.numpy(), y.numpy()) for x, y in loader]


def test_dataloader_with_workers_gives_the_same_items(class_tree):
    ds = ImageFolderDataset(class_tree, eval_transforms(8), cache=True, image_size=8)
    single = _batches(paddle.io.DataLoader(ds, batch_size=4, shuffle=False, num_workers=0))
    workers = _batches(paddle.io.DataLoader(ds, batch_size=4, shuffle=False, num_workers=2))
    assert len(single) == len(workers) == 3
    for (x0, y0), (x1, y1) in zip(single, workers):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    assert single[0][1].shape == (4, 1) and single[0][1].dtype == np.int64


def test_forked_workers_share_a_filled_cache(class_tree):
    ds = ImageFolderDataset(class_tree, eval_transforms(8), cache=True, image_size=8)
    expected = _batches(paddle.io.DataLoader(ds, batch_size=4, shuffle=False, num_workers=0))
    assert ds.fill_cache() == len(ds)
    for path, _ in ds.samples:  # workers must serve every item from the inherited cache
        Image.new("RGB", (3, 3)).save(path)
    got = _batches(paddle.io.DataLoader(ds, batch_size=4, shuffle=False, num_workers=2))
    for (x0, _), (x1, _) in zip(expected, got):
        np.testing.assert_array_equal(x0, x1)


def test_items_train_with_paddle_model(class_tree):
    paddle.seed(0)
    ds = ImageFolderDataset(class_tree, eval_transforms(4), image_size=4)
    net = paddle.nn.Sequential(paddle.nn.Flatten(), paddle.nn.Linear(3 * 4 * 4, 3))
    model = paddle.Model(net)
    model.prepare(paddle.optimizer.SGD(learning_rate=0.01, parameters=net.parameters()),
                  paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    model.fit(ds, epochs=1, batch_size=4, verbose=0)
    result = model.evaluate(ds, batch_size=4, verbose=0)
    assert np.isfinite(result["loss"][0]) and 0 <= result["acc"] <= 1


def test_per_class_subset_keeps_the_first_images_of_each_class(class_tree):
    from simam_paddle.data import per_class_subset
    from simam_paddle.experiments import notebook

    ds = ImageFolderDataset(class_tree)  # a_cat 2, b_dog 3, c_owl 4 images
    assert per_class_subset(ds, None) is ds
    subset = per_class_subset(ds, 3)
    assert subset.indices == [0, 1, 2, 3, 4, 5, 6, 7]  # a_cat has only 2
    assert [ds.targets[i] for i in per_class_subset(ds, 1).indices] == [0, 1, 2]
    for wrong in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="per_class must be a positive integer or None"):
            per_class_subset(ds, wrong)
    assert notebook.per_class_subset is per_class_subset  # where the notebooks reach it


def test_exported_from_the_data_subpackage():
    for name in ("ImageFolderDataset", "train_transforms", "eval_transforms", "compute_mean_std",
                 "check_num_classes", "per_class_subset", "split_dataset", "to_rgb"):
        assert name in simam_paddle.data.__all__


def _truncated_tree(root, fmt):
    rng = np.random.default_rng(2)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / cls / f"{i}.{fmt}")
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG" if fmt == "jpg" else "PNG")
    bad = root / "a" / f"1.{fmt}"
    bad.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return bad


@pytest.mark.parametrize("image_size", [None, 8])
def test_damaged_image_error_names_the_file(tmp_path, image_size):
    bad = _truncated_tree(tmp_path, "jpg")
    ds = ImageFolderDataset(tmp_path, image_size=image_size)
    index = [p for p, _ in ds.samples].index(str(bad))
    with pytest.raises(ImageReadError, match="re-run split_dataset") as err:
        ds[index]
    assert f"cannot read image {bad}: does not decode" in str(err.value) and "mode" not in str(err.value)


def test_a_decompression_bomb_is_named_as_too_large(tmp_path):
    _truncated_tree(tmp_path, "png")
    bomb = tmp_path / "b" / "bomb.png"
    bomb.write_bytes(bomb_png())
    ds = ImageFolderDataset(tmp_path)
    with pytest.raises(ImageReadError, match=r"too large to decode safely \(400000000 pixels") as err:
        ds[[p for p, _ in ds.samples].index(str(bomb))]
    assert str(bomb) in str(err.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_fifo_named_like_an_image_is_refused_at_once(tmp_path):
    _truncated_tree(tmp_path, "png")
    os.mkfifo(tmp_path / "b" / "pipe.png")
    ds = ImageFolderDataset(tmp_path)
    assert str(tmp_path / "b" / "pipe.png") not in [p for p, _ in ds.samples]  # not listed
    fifo = tmp_path / "b" / "2.png"  # a listed image swapped for a pipe after the listing
    fifo.unlink()
    os.mkfifo(fifo)
    index = [p for p, _ in ds.samples].index(str(fifo))
    with pytest.raises(ImageReadError, match=f"cannot read image {fifo}: not a regular file"):
        ds[index]  # no writer ever opens the pipe: a blocking read would never return


def test_a_phone_photo_is_loaded_upright_by_its_exif_orientation(tmp_path):
    (tmp_path / "a").mkdir()
    upright = Image.fromarray(np.kron(RNG.integers(0, 256, (3, 2, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8)))
    upright.save(tmp_path / "a" / "0_upright.jpg", quality=95, subsampling=0)
    (tmp_path / "a" / "1_tagged.jpg").write_bytes(exif_turned_jpeg(upright))
    ds = ImageFolderDataset(tmp_path)
    straight, tagged = ds.load(0).astype(int), ds.load(1).astype(int)
    assert straight.shape == tagged.shape == (24, 16, 3)
    assert np.abs(straight - tagged).mean() < 3  # JPEG noise only


_LOADER_SCRIPT = textwrap.dedent("""
    import sys
    from simam_paddle import ImageFolderDataset, eval_transforms  # before paddle: see simam_paddle._paddle
    from simam_paddle.data.dataset import ClearErrorDataLoader
    import paddle
    ds = ImageFolderDataset(sys.argv[1], eval_transforms(8), image_size=8)
    Loader = ClearErrorDataLoader if sys.argv[3] == "clear" else paddle.io.DataLoader
    try:
        for _ in Loader(ds, batch_size=2, num_workers=int(sys.argv[2])):
            pass
    except Exception as err:
        print("main thread raised", type(err).__name__, err, flush=True)
        sys.exit(3)
    print("finished without an error", flush=True)
""")


@pytest.mark.parametrize("fmt, num_workers, loader", [("jpg", 0, "plain"), ("png", 0, "plain"), ("jpg", 0, "clear"),
                                                      ("png", 2, "clear")])
def test_damaged_image_in_a_dataloader_fails_naming_the_file_instead_of_hanging(tmp_path, fmt, num_workers, loader):
    bad = _truncated_tree(tmp_path / "split", fmt)
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run([sys.executable, "-c", _LOADER_SCRIPT, str(tmp_path / "split"), str(num_workers), loader],
                              cwd=root, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("iterating a DataLoader over a damaged image hung")
    output = done.stdout + done.stderr
    assert done.returncode == 3 and "main thread raised" in done.stdout, output[-3000:]
    assert f"cannot read image {bad}" in output, output[-3000:]
    if loader == "clear":  # the dataset's own error, whole, in the main thread; nothing printed beside it
        assert f"main thread raised ImageReadError cannot read image {bad}: does not decode" in done.stdout, output
        assert "Traceback" not in done.stderr and "Blocking queue" not in output, output[-3000:]


@pytest.mark.parametrize("where, content, num_workers", [("eval", "truncated", 2), ("train", "bomb", 2),
                                                         ("eval", "bomb", 0)])
def test_train_on_a_bad_image_is_one_error_line_and_an_exit(tmp_path, where, content, num_workers):
    split = make_split(tmp_path / "split")
    bad = tmp_path / "split" / where / "b" / "1.png"
    if content == "bomb":
        bad.write_bytes(bomb_png())
    else:
        bad.write_bytes(bad.read_bytes()[:300])
    command = [sys.executable, "-m", "simam_paddle", "train", "--data", split, "--output", str(tmp_path / "run"),
               "--epochs", "1", "--num-workers", str(num_workers), *FAST_ARGS]
    try:
        done = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail(f"train with --num-workers {num_workers} over a bad image did not exit")
    errors = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line
              and "warnings.warn" not in line]
    reason = "does not decode" if content == "truncated" else "too large to decode safely"
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith(f"error: cannot read image {bad}: {reason}"), errors
    assert "re-run split_dataset" in errors[0]
