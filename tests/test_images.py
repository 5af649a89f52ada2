"""Which names are images, and any Pillow mode to RGB (simam_paddle/data/images.py)."""
import numpy as np
import pytest
from PIL import Image

from simam_paddle.data.images import IMAGE_EXTENSIONS, is_hidden, is_image_name, to_rgb

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
