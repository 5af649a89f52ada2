"""Which names are images, reading them safely, and any Pillow mode to RGB (simam_paddle/data/images.py)."""
import errno
import io
import os

import numpy as np
import pytest
from PIL import Image

from simam_paddle.data.images import (IMAGE_EXTENSIONS, ImageReadError, is_hidden, is_image_name, load_image,
                                      read_regular_file, to_rgb)

from hostile_files import bomb_png, exif_turned_jpeg

RNG = np.random.default_rng(0)
H, W = 5, 7
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (H, W), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (H, W), dtype=np.uint8)


def white_composite(rgb, alpha):
    a = alpha.astype(np.float64)[..., None] / 255
    return rgb * a + 255 * (1 - a)


def as_float(image):
    assert image.mode == "RGB" and image.size == (W, H)
    return np.asarray(image, dtype=np.float64)


def test_extensions_are_the_formats_pillow_can_read():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif"} <= IMAGE_EXTENSIONS
    assert ".pdf" not in IMAGE_EXTENSIONS  # Pillow writes PDF but cannot read it
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)


@pytest.mark.parametrize("name, hidden, image", [
    ("cat.jpg", False, True), ("CAT.JPG", False, True), ("scan.png", False, True),
    ("notes.txt", False, False), ("archive.zip", False, False), ("noext", False, False),
    (".DS_Store", True, False), ("._cat.jpg", True, False), ("__MACOSX", True, False),
    ("Thumbs.db", True, False), ("desktop.ini", True, False),
])
def test_hidden_and_image_names(name, hidden, image):
    assert is_hidden(name) is hidden
    assert is_image_name(name) is image


def test_rgb_is_returned_untouched():
    image = Image.fromarray(RGB)
    assert to_rgb(image) is image


def test_grey_repeats_into_three_channels():
    np.testing.assert_array_equal(as_float(to_rgb(Image.fromarray(GRAY))), np.repeat(GRAY[..., None], 3, 2))


@pytest.mark.parametrize("mode", ["LA", "La"])
def test_transparency_is_composited_on_white(mode):
    la = Image.merge("LA", [Image.fromarray(GRAY), Image.fromarray(ALPHA)])
    expected = white_composite(np.repeat(GRAY[..., None], 3, axis=2).astype(np.float64), ALPHA)
    # Premultiplied La rounds grey to whole levels at low alpha, so allow a few levels there.
    np.testing.assert_allclose(as_float(to_rgb(la.convert(mode) if mode == "La" else la)), expected,
                               atol=3 if mode == "La" else 1)


def test_rgba_is_composited_on_white():
    rgba = Image.fromarray(np.dstack([RGB, ALPHA]))
    np.testing.assert_allclose(as_float(to_rgb(rgba)), white_composite(RGB.astype(np.float64), ALPHA), atol=1)


def test_a_palette_with_a_transparent_colour_shows_white_there():
    index = RNG.integers(0, 3, (H, W), dtype=np.uint8)
    palette = np.array([[255, 0, 0], [0, 128, 0], [10, 20, 30]], dtype=np.uint8)
    image = Image.new("P", (W, H))
    image.putpalette(palette.ravel().tolist())
    image.putdata(index.ravel().tolist())
    image.info["transparency"] = 2
    expected = np.where((index == 2)[..., None], 255.0, palette[index].astype(np.float64))
    np.testing.assert_array_equal(as_float(to_rgb(image)), expected)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_sixteen_bit_grey_is_scaled_not_clipped(dtype):
    deep = RNG.integers(0, 65536, (H, W)).astype(dtype)
    expected = np.rint(deep.astype(np.float64) * 255 / 65535)
    np.testing.assert_array_equal(as_float(to_rgb(Image.fromarray(deep))), np.repeat(expected[..., None], 3, 2))


def test_float_images_are_read_as_zero_to_one_and_clipped():
    floats = RNG.uniform(-0.2, 1.2, (H, W)).astype(np.float32)
    expected = np.rint(np.clip(floats.astype(np.float64), 0, 1) * 255)
    np.testing.assert_array_equal(as_float(to_rgb(Image.fromarray(floats))), np.repeat(expected[..., None], 3, 2))


def test_only_regular_files_are_read(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"abc")
    (tmp_path / "link.png").symlink_to(path)
    assert read_regular_file(tmp_path / "link.png") == b"abc"
    with pytest.raises(OSError):  # ELOOP: a link put in place after a scan is never followed
        read_regular_file(tmp_path / "link.png", follow_links=False)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        with pytest.raises(OSError, match="not a regular file") as err:
            read_regular_file(tmp_path / "pipe.png")  # no writer: a blocking open or read would never return
        assert err.value.errno == errno.EINVAL


@pytest.mark.parametrize("orientation, turn", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270),
                                               (3, Image.Transpose.ROTATE_180)])
def test_load_image_turns_a_photo_upright_by_its_exif_orientation(tmp_path, orientation, turn):
    upright = Image.fromarray(np.kron(RNG.integers(0, 256, (3, 2, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    upright.transpose(turn).save(tmp_path / "photo.jpg", quality=95, subsampling=0, exif=exif)
    loaded = load_image(tmp_path / "photo.jpg")
    assert loaded.size == upright.size and 0x0112 not in loaded.getexif()
    assert np.abs(np.asarray(loaded, dtype=int) - np.asarray(upright, dtype=int)).mean() < 3  # JPEG noise only
    (tmp_path / "phone.jpg").write_bytes(exif_turned_jpeg(upright))  # the tests' own phone photo agrees
    assert np.abs(np.asarray(load_image(tmp_path / "phone.jpg"), dtype=int) - np.asarray(upright, dtype=int)).mean() < 3


@pytest.mark.parametrize("content, reason", [
    ("bomb", r"too large to decode safely \(400000000 pixels, more than twice Pillow's limit"),
    ("truncated", r"does not decode \(OSError: image file is truncated"),
    ("text", r"not an image \(Pillow does not recognise the format\)"),
    ("missing", r"cannot be read \(No such file or directory\)"),
])
def test_load_image_names_the_file_and_why(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    buffer = io.BytesIO()
    Image.fromarray(RGB).resize((64, 64)).save(buffer, "PNG")
    data = {"bomb": bomb_png(), "truncated": buffer.getvalue()[:200], "text": b"hello"}.get(content)
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ImageReadError, match=f"^cannot read image {path}: {reason}.*; remove or replace the file$"):
        load_image(path)
