"""Reading image files: which names count as images, reading them safely, and turning any Pillow mode into RGB.

Shared by the split (``split.py``), Caltech101 (``caltech.py``), the dataset (``dataset.py``), ``predict``
and the sample grid, so all agree on what an image is, how it is read and how it looks:

- only regular files are read (:func:`read_regular_file`): a FIFO, socket or device named like an image
  is refused at once instead of blocking the read;
- an image is decoded in full and turned upright by its EXIF Orientation tag (:func:`load_image`), as a
  phone photo's viewer shows it. Pillow, and so Paddle's ``paddle.vision.image_load`` with its default
  ``pil`` backend, ``paddle.vision.datasets.folder.default_loader`` and torchvision's ``pil_loader``
  (``Image.open(f).convert("RGB")``), ignore the tag, so a photo taken with the phone on its side arrives
  lying down; OpenCV's ``cv2.imread`` (Paddle's ``cv2`` backend) applies it, as we do;
- a file that cannot be used raises :class:`ImageReadError` naming the file, why and what to do.
"""
import errno
import io
import os
import stat
import warnings
from typing import FrozenSet, Optional, Union

import numpy as np
from PIL import Image, ImageOps

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "image_error_reason", "load_image", "read_regular_file", "to_rgb"]

PathLike = Union[str, "os.PathLike[str]"]
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


class ImageReadError(ValueError):
    """An image file that cannot be used (damaged, not an image, too large, not a regular file); the message
    names the file, the reason and the fix.

    Attributes:
        path (str|None): the file. reason (str|None): why, in words (:func:`image_error_reason`).
    """

    def __init__(self, message: str, path: Optional[str] = None, reason: Optional[str] = None):
        super().__init__(message)
        self.path, self.reason = path, reason


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


def read_regular_file(path: PathLike, *, follow_links: bool = True, max_bytes: Optional[int] = None) -> bytes:
    """The bytes of ``path`` if it is a regular file.

    The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a FIFO,
    socket or device is refused without waiting for a writer, and a file swapped after the check cannot
    slip through.

    Args:
        path (str|PathLike): the file.
        follow_links (bool, optional): False opens with ``O_NOFOLLOW``: a symbolic link (one put in place
            after a folder was scanned) is refused with ``OSError`` (``ELOOP``). Default: True.
        max_bytes (int, optional): read at most ``max_bytes + 1`` bytes, so a caller can tell a file that is
            too large. Default: None (the whole file).

    Raises:
        OSError: the file cannot be opened, or is not a regular file (``errno.EINVAL``).

    Examples:
        >>> import tempfile; path = os.path.join(tempfile.mkdtemp(), "a.bin")
        >>> _ = open(path, "wb").write(b"abc")
        >>> read_regular_file(path), read_regular_file(path, max_bytes=1)
        (b'abc', b'ab')
    """
    flags = os.O_RDONLY | _O_NONBLOCK | _O_BINARY | (0 if follow_links else _O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device); only regular files are read",
                          os.fspath(path))
        return f.read() if max_bytes is None else f.read(max_bytes + 1)


def image_error_reason(err: BaseException) -> str:
    """Why Pillow could not use a file, in words: ``"does not decode (...)"``, ``"not an image (...)"``,
    ``"too large to decode safely (...)"``.

    Examples:
        >>> image_error_reason(OSError("image file is truncated"))
        'does not decode (OSError: image file is truncated)'
    """
    if isinstance(err, Image.DecompressionBombError):
        pixels = next((word.strip("(") for word in str(err).split() if word.strip("(").isdigit()), None)
        size = f"{pixels} pixels" if pixels else "too many pixels"
        return (f"too large to decode safely ({size}, more than twice Pillow's limit PIL.Image.MAX_IMAGE_PIXELS = "
                f"{Image.MAX_IMAGE_PIXELS}); shrink it, or raise that limit if you trust the file")
    if isinstance(err, Image.UnidentifiedImageError):
        return "not an image (Pillow does not recognise the format)"
    if isinstance(err, OSError) and err.errno == errno.EINVAL:
        return err.strerror
    return f"does not decode ({type(err).__name__}: {err})"


def load_image(path: PathLike, fix: str = "remove or replace the file") -> Image.Image:
    """Decode the image file ``path`` in full, upright by its EXIF Orientation tag, in its own mode.

    The one image loader of the package (dataset, evaluation, ``predict``, sample grids): the file is read
    by :func:`read_regular_file` (FIFOs and devices refused), decoded by Pillow, and turned by
    ``PIL.ImageOps.exif_transpose`` so that a photo with Orientation 6 or 8 (a phone held on its side)
    looks as its viewer shows it; the tag is then dropped. Images above Pillow's decompression-bomb limit
    (twice ``PIL.Image.MAX_IMAGE_PIXELS``) are refused; those between the limit and twice it are decoded,
    as the split keeps them, without Pillow's warning. Use :func:`to_rgb` for RGB pixels.

    Args:
        path (str|PathLike): the image file.
        fix (str, optional): what to do about a bad file, ending the error message.
            Default: "remove or replace the file".

    Returns:
        PIL.Image.Image: the decoded image, detached from the file.

    Raises:
        ImageReadError: the file is missing, not a regular file, damaged, truncated, not an image or too
            large; the message names the file, says why, and ends with ``fix``.

    Examples:
        >>> import tempfile; path = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> Image.new("L", (4, 3)).save(path)
        >>> image = load_image(path); image.mode, image.size
        ('L', (4, 3))
    """
    try:
        data = read_regular_file(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
    except Exception as err:  # Pillow raises many types for damaged files; all mean "this file"
        if isinstance(err, OSError) and err.errno is not None:  # from the file system: missing, unreadable, a FIFO
            reason = err.strerror if err.errno == errno.EINVAL else f"cannot be read ({err.strerror})"
        else:
            reason = image_error_reason(err)
        raise ImageReadError(f"cannot read image {os.fspath(path)}: {reason}; {fix}", os.fspath(path), reason) from err
    return upright


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
