"""Reading image files: which names count as images, and turning any Pillow mode into RGB.

Shared by the split (``split.py``) and the dataset (``data.py``) so both agree on what an image
is and how it looks.
"""
import os
from typing import FrozenSet

import numpy as np
from PIL import Image

__all__ = ["IMAGE_EXTENSIONS", "to_rgb"]


def _readable_extensions() -> FrozenSet[str]:
    # Only formats Pillow can open: registered_extensions() also lists save-only ones (.pdf).
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


IMAGE_EXTENSIONS: FrozenSet[str] = _readable_extensions()
"""Lower-case file suffixes (``".jpg"``, ``".png"``, ...) of every format Pillow can read."""

# Folders that archivers and desktops leave next to real data.
_JUNK_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})


def is_hidden(name: str) -> bool:
    """True for names that are never data: dot files (``.DS_Store``, ``._a.jpg``), ``__MACOSX``, ``Thumbs.db``."""
    return name.startswith(".") or name.lower() in _JUNK_NAMES


def is_image_name(name: str) -> bool:
    """True if ``name`` is visible and ends in a suffix from :data:`IMAGE_EXTENSIONS` (any case)."""
    return not is_hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    # Pillow's own convert("L") clips 16-bit values at 255 (almost all white); scale instead.
    values = np.asarray(image).astype(np.int64)
    values = np.clip(values, 0, 65535)
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded Pillow image of any mode to 8-bit RGB.

    - ``RGB`` is returned as is; ``L``, ``1``, ``P`` without transparency, ``CMYK``, ``YCbCr``,
      ``RGBX`` go through Pillow's ``convert("RGB")``.
    - Images with transparency (``LA``, ``La``, ``RGBA``, ``PA``, ``RGBa``, ``P`` with a
      transparent colour) are composited on white: objects cut out of a photo keep a neutral background, the
      way Caltech101 photographs them, instead of whatever colour hid under alpha 0.
    - 16-bit grey (``I;16``, ``I;16B``, ...) and 32-bit integer ``I`` (how Pillow < 10 opened
      16-bit PNGs) are read as 0..65535 and scaled to 0..255 as ``round(v * 255 / 65535)``.
    - 32-bit float ``F`` is read as 0..1 and scaled to 0..255; values outside are clipped.

    Args:
        image (PIL.Image.Image): a loaded image.

    Returns:
        PIL.Image.Image: an ``RGB`` image of the same size.

    Raises:
        ValueError: for a mode Pillow cannot turn into RGB.

    Examples:
        >>> from PIL import Image
        >>> to_rgb(Image.new("LA", (4, 3))).mode
        'RGB'
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_to_l(image).convert("RGB")
    if mode == "F":
        values = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
        return Image.fromarray(np.rint(values * 255).astype(np.uint8)).convert("RGB")
    has_alpha = mode in ("LA", "RGBA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        # Pillow has no La -> RGBA conversion; La -> LA un-premultiplies first.
        rgba = (image.convert("LA") if mode == "La" else image).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise ValueError(f"cannot convert an image of mode {mode!r} to RGB: {err}") from err
