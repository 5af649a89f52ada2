"""Offline demo data from scikit-learn's bundled handwritten digits (1797 8x8 images, 10 classes).

Two data sets, both written as PNG class folders (the Caltech ``Images/<class>/*.jpg`` layout, so
the split and dataset code serve all of them):

* ``make_digits_dataset``: the digits themselves, ``DST/<class>/<index>.png``.
* ``make_cluttered_digits_dataset``: one digit per canvas among fragments of other digits, after
  Cluttered MNIST (Mnih et al. 2014, "Recurrent Models of Visual Attention"; Jaderberg et al. 2015,
  "Spatial Transformer Networks"), a task where attention has something to do. It writes
  ``DST/train/<class>/`` and ``DST/eval/<class>/`` directly, plus ``DST/manifest.csv``.

Both are deterministic: the pixels depend only on the arguments (integer arithmetic, Pillow's
fixed-point resampling, ``numpy.random.default_rng`` integers), and the PNG bytes are identical
wherever Pillow ships the same zlib. A destination is written atomically (a temporary sibling
folder, its files fsynced, renamed into place); re-running on a finished data set only verifies it, and a destination
holding anything else is refused, never cleaned.
"""
import csv
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .trees import write_tree

__all__ = ["make_digits_dataset", "make_cluttered_digits_dataset", "DigitsSummary"]

_RESAMPLE = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
}
# Fixed encoder options: the same pixels always give the same bytes (Pillow writes no timestamp).
_PNG_OPTIONS = {"format": "PNG", "compress_level": 6, "optimize": False}
_NUM_CLASSES = 10
_MANIFEST_FIELDS = [
    "file", "split", "label", "source_index", "sample", "x", "y", "size", "fragment_sources",
]

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class DigitsSummary:
    """What a ``make_*_dataset`` call left on disk.

    Args:
        root (Path): the data set folder.
        created (bool): True if this call wrote it, False if it was already complete.
        counts (dict): images per split and class, ``{split: {class: count}}``; the plain digits
            data set has the single split ``"all"``.
    """

    root: Path
    created: bool
    counts: Dict[str, Dict[str, int]]

    def total(self, split: Optional[str] = None) -> int:
        """Number of images in ``split``, or in all splits if None."""
        splits = self.counts.values() if split is None else [self.counts[split]]
        return sum(sum(per_class.values()) for per_class in splits)

    def format(self) -> str:
        """A per-class table of counts, one column per split."""
        splits = list(self.counts)
        classes = sorted({c for per_class in self.counts.values() for c in per_class}, key=_class_key)
        state = "created" if self.created else "already complete, nothing written"
        lines = [f"{self.root} ({state})", "class  " + "  ".join(f"{s:>6}" for s in splits)]
        for c in classes:
            lines.append(f"{c:<5}  " + "  ".join(f"{self.counts[s].get(c, 0):>6}" for s in splits))
        lines.append("total  " + "  ".join(f"{self.total(s):>6}" for s in splits))
        return "\n".join(lines)

    __str__ = format


def make_digits_dataset(
    dst: PathLike, image_size: int = 32, resample: str = "nearest"
) -> DigitsSummary:
    """Write scikit-learn's 1797 handwritten digits as grayscale PNGs in class folders.

    The layout is ``dst/<label>/<index>.png`` with class folders ``"0"`` .. ``"9"`` (sorted order is
    label order) and ``index`` the zero-padded position in ``sklearn.datasets.load_digits``, so
    the sorted files of a class are in source order and ``split_dataset(dst, ..., eval_every=5)``
    takes the same eval digits as ``make_cluttered_digits_dataset``. Source values 0..16 map to
    ``round(v * 255 / 16)`` (half up). The default nearest-neighbour upscaling keeps every source
    pixel exact as a 4x4 block; the training transforms resize further anyway.

    Args:
        dst (str|PathLike): folder to create. It must not exist, be empty, or hold exactly this
            data set (then nothing is written).
        image_size (int, optional): side of the square output images. Default: 32.
        resample (str, optional): Pillow resampling filter, one of "nearest", "bilinear",
            "bicubic". Default: "nearest".

    Returns:
        DigitsSummary: the root, whether it was written now, and counts per class.

    Raises:
        FileExistsError: ``dst`` holds other files, or this layout with different pixels.
        ImportError: scikit-learn is missing.

    Examples:
        >>> summary = make_digits_dataset("/tmp/digits")  # doctest: +SKIP
        >>> summary.total(), Image.open("/tmp/digits/0/0000.png").size  # doctest: +SKIP
        (1797, (32, 32))
    """
    _check_int("image_size", image_size, minimum=8)
    if resample not in _RESAMPLE:
        raise ValueError(f"resample={resample!r} is not supported; choose one of {sorted(_RESAMPLE)}")
    images, labels = _load_digits_uint8()
    names = [f"{label}/{index:04d}.png" for index, label in enumerate(labels)]

    def files() -> Iterable[Tuple[str, bytes]]:
        for name, image in zip(names, images):
            pil = Image.fromarray(image).resize((image_size, image_size), _RESAMPLE[resample])
            yield name, _png_bytes(pil)

    created = write_tree(Path(dst), names, files)
    counts = {"all": {str(c): int(np.sum(labels == c)) for c in range(_NUM_CLASSES)}}
    return DigitsSummary(Path(dst), created, counts)


def make_cluttered_digits_dataset(
    dst: PathLike,
    image_size: int = 128,
    digit_size: Tuple[int, int] = (32, 56),
    fragments: int = 8,
    fragment_size: int = 12,
    seed: int = 0,
    samples_per_digit: int = 1,
    eval_samples_per_digit: int = 1,
    noise: int = 32,
    eval_every: int = 5,
    max_per_class: Optional[int] = None,
) -> DigitsSummary:
    """Write a Cluttered-Digits benchmark: one digit per canvas among fragments of other digits.

    The 1797 source digits are split first, per class in source order: the i-th digit of a class
    is an eval source if ``i % eval_every == 0`` (the rule of ``split_dataset``), otherwise a train
    source. An image of either split draws its digit and all its fragments from that split's
    sources only, so no eval image shows a train digit. Each image is a black ``image_size``
    square holding: the digit, bicubically resized to a random side in ``digit_size``, at a
    random position fully inside the canvas; ``fragments`` random ``fragment_size`` crops of other
    source digits (each resized to a random side in ``digit_size`` like the digit, the crop chosen
    to cut through a stroke) at random positions, combined by pixel maximum; and uniform noise in
    ``[0, noise]`` added everywhere. A 12-pixel crop of a 32..56 pixel digit covers about the
    same share of it as Cluttered MNIST's 8-pixel crops of 28-pixel digits; the 8x8 sources make
    those crops blobby, so raise ``fragment_size`` (say to 20) for harder clutter. Files are
    ``dst/<split>/<label>/<source index>_<sample>.png``; ``dst/manifest.csv`` records, per image,
    its file, split, label, source index, sample number, the digit's placement (x, y, size) and
    the fragments' source indices (space separated).

    Each image has its own generator, ``default_rng([seed, source_index, sample])``, so changing
    ``samples_per_digit`` adds or removes train images without changing the others or the eval set.

    With the defaults there are 1433 train and 364 eval images at 128x128, about 70 s per training
    epoch for TowerNet on a 2-core CPU (about 20 images/s); raise ``samples_per_digit`` for more
    varied training data where time allows.

    Args:
        dst (str|PathLike): folder to create. It must not exist, be empty, or hold exactly this
            data set (then nothing is written).
        image_size (int, optional): side of the square canvas. Default: 128.
        digit_size (tuple[int, int], optional): smallest and largest side of the placed digit,
            inclusive. Default: (32, 56).
        fragments (int, optional): distracting fragments per image. Default: 8.
        fragment_size (int, optional): side of each square fragment. Default: 12.
        seed (int, optional): seed of every random choice. Default: 0.
        samples_per_digit (int, optional): train images per train source digit. Default: 1.
        eval_samples_per_digit (int, optional): eval images per eval source digit. Default: 1.
        noise (int, optional): largest value of the additive uniform noise, 0..255. Default: 32.
        eval_every (int, optional): every ``eval_every``-th digit of a class is an eval source.
            Default: 5.
        max_per_class (int, optional): use only the first ``max_per_class`` source digits of each
            class (before the split), for quick runs and tests. Default: None, all 1797.

    Returns:
        DigitsSummary: the root, whether it was written now, and counts per split and class.

    Raises:
        ValueError: sizes that do not fit (a digit larger than the canvas, a fragment larger than
            the smallest digit), or counts below their minimum.
        FileExistsError: ``dst`` holds other files, or this layout with different pixels.
        ImportError: scikit-learn is missing.

    Examples:
        >>> summary = make_cluttered_digits_dataset("/tmp/cluttered")  # doctest: +SKIP
        >>> summary.total("train"), summary.total("eval")  # doctest: +SKIP
        (1433, 364)
        >>> Image.open("/tmp/cluttered/eval/0/0000_0.png").size  # doctest: +SKIP
        (128, 128)
    """
    low, high = _check_clutter(image_size, digit_size, fragments, fragment_size, seed, samples_per_digit,
                               eval_samples_per_digit, noise, eval_every, max_per_class)
    images, labels = _load_digits_uint8()
    sides = _split_sources(labels, eval_every, max_per_class)
    plan = [
        (split, int(index), sample)
        for split, reps in (("train", samples_per_digit), ("eval", eval_samples_per_digit))
        for index in sides[split]
        for sample in range(reps)
    ]
    names = [f"{split}/{labels[index]}/{index:04d}_{sample}.png" for split, index, sample in plan]
    clutter = dict(seed=seed, image_size=image_size, digit_sides=(low, high), fragments=fragments,
                   fragment_size=fragment_size, noise=noise)

    def files() -> Iterable[Tuple[str, bytes]]:
        rows = []
        for name, (split, index, sample) in zip(names, plan):
            canvas, row = _render_cluttered(images, labels, sides[split], split, index, sample, **clutter)
            rows.append({"file": name, **row})
            yield name, _png_bytes(Image.fromarray(canvas))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=_MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        yield "manifest.csv", text.getvalue().encode("utf-8")

    created = write_tree(Path(dst), names + ["manifest.csv"], files)
    return DigitsSummary(Path(dst), created, _plan_counts(plan, labels))


def _plan_counts(plan: Sequence[Tuple[str, int, int]], labels: np.ndarray) -> Dict[str, Dict[str, int]]:
    """Images per split and class of a plan of ``(split, source index, sample)``."""
    counts: Dict[str, Dict[str, int]] = {"train": {}, "eval": {}}
    for split, index, _ in plan:
        label = str(labels[index])
        counts[split][label] = counts[split].get(label, 0) + 1
    return counts


def _check_clutter(image_size: int, digit_size: Tuple[int, int], fragments: int, fragment_size: int, seed: int,
                   samples_per_digit: int, eval_samples_per_digit: int, noise: int, eval_every: int,
                   max_per_class: Optional[int]) -> Tuple[int, int]:
    """Refuse the arguments of :func:`make_cluttered_digits_dataset` that do not fit; the digit's smallest and
    largest side."""
    _check_int("image_size", image_size, minimum=8)
    _check_int("fragments", fragments, minimum=0)
    _check_int("fragment_size", fragment_size, minimum=1)
    _check_int("seed", seed, minimum=0)
    _check_int("samples_per_digit", samples_per_digit, minimum=1)
    _check_int("eval_samples_per_digit", eval_samples_per_digit, minimum=1)
    _check_int("noise", noise, minimum=0)
    _check_int("eval_every", eval_every, minimum=2)
    if max_per_class is not None:
        _check_int("max_per_class", max_per_class, minimum=2)
    if noise > 255:
        raise ValueError(f"noise={noise} is on the 0..255 pixel scale; use at most 255")
    if len(digit_size) != 2:
        raise ValueError(f"digit_size={digit_size!r} must be (smallest, largest)")
    low, high = (int(s) for s in digit_size)
    if not 1 <= low <= high <= image_size:
        raise ValueError(
            f"digit_size={digit_size!r} must satisfy 1 <= smallest <= largest <= image_size={image_size}"
        )
    if fragment_size > low:
        raise ValueError(
            f"fragment_size={fragment_size} is larger than the smallest digit ({low}); "
            f"a fragment is a crop of a resized digit, so use fragment_size <= {low}"
        )
    return low, high


def _render_cluttered(images: np.ndarray, labels: np.ndarray, side: np.ndarray, split: str, index: int, sample: int,
                      *, seed: int, image_size: int, digit_sides: Tuple[int, int], fragments: int, fragment_size: int,
                      noise: int) -> Tuple[np.ndarray, dict]:
    """One image of the cluttered set: source digit ``index`` (sample ``sample``) among fragments of the other
    digits of ``side`` (its split's sources, sorted), and its manifest row."""
    low, high = digit_sides
    rng = np.random.default_rng([seed, index, sample])
    canvas = np.zeros((image_size, image_size), dtype=np.uint8)
    own = int(np.searchsorted(side, index))
    size = int(rng.integers(low, high + 1))
    x, y = (int(v) for v in rng.integers(0, image_size - size + 1, size=2))
    fragment_sources = []
    for _ in range(fragments):
        # Uniform over the side's sources other than this image's digit.
        pick = int(rng.integers(len(side) - 1))
        other = int(side[pick + (pick >= own)])
        fragment_sources.append(other)
        crop = _ink_crop(_resize(images[other], int(rng.integers(low, high + 1))), fragment_size, rng)
        fx, fy = (int(v) for v in rng.integers(0, image_size - fragment_size + 1, size=2))
        region = canvas[fy:fy + fragment_size, fx:fx + fragment_size]
        np.maximum(region, crop, out=region)
    region = canvas[y:y + size, x:x + size]
    np.maximum(region, _resize(images[index], size), out=region)
    if noise:
        noisy = canvas.astype(np.int16) + rng.integers(0, noise + 1, size=canvas.shape, dtype=np.int16)
        canvas = np.minimum(noisy, 255).astype(np.uint8)
    row = {
        "split": split, "label": int(labels[index]), "source_index": index, "sample": sample,
        "x": x, "y": y, "size": size, "fragment_sources": " ".join(map(str, fragment_sources)),
    }
    return canvas, row


@functools.lru_cache(maxsize=1)
def _load_digits_uint8() -> Tuple[np.ndarray, np.ndarray]:
    """The bundled digits as uint8 (N, 8, 8) images on 0..255, and int64 labels; read-only."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            "The digits data sets come from scikit-learn's bundled copy; install it with "
            "`pip install scikit-learn` (or `pip install simam-paddle[digits]`)."
        ) from err
    digits = load_digits()
    values = np.rint(digits.images).astype(np.int64)
    # v * 255 / 16 rounded half up in integers (only v = 8 lands on a half), the same on any machine.
    images = ((values * 255 + 8) // 16).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split_sources(
    labels: np.ndarray, eval_every: int, max_per_class: Optional[int] = None
) -> Dict[str, np.ndarray]:
    """Sorted source indices per split: per class in source order, position i % eval_every == 0 is eval."""
    is_eval = np.zeros(len(labels), dtype=bool)
    is_train = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)[:max_per_class]
        is_train[members] = True
        is_eval[members[::eval_every]] = True
    return {"train": np.flatnonzero(is_train & ~is_eval), "eval": np.flatnonzero(is_eval)}


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    # Pillow resamples 8-bit images in fixed point, so the result is the same on every machine.
    pil = Image.fromarray(image).resize((size, size), Image.BICUBIC)
    return np.asarray(pil)


def _ink_crop(image: np.ndarray, size: int, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
    """A random ``size`` square of ``image`` that cuts through a stroke.

    Up to ``tries`` windows are drawn; the first with 10%..60% of its pixels above mid-gray wins
    (else the last): blank corners and solid squares of ink would be too easy to tell from digits.
    """
    limit = image.shape[0] - size + 1
    for _ in range(tries):
        top, left = (int(v) for v in rng.integers(0, limit, size=2))
        crop = image[top:top + size, left:left + size]
        if 10 <= 100 * np.count_nonzero(crop > 127) / crop.size <= 60:
            break
    return crop


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **_PNG_OPTIONS)
    return buffer.getvalue()


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _class_key(name: str):
    return (0, int(name)) if name.isdigit() else (1, name)
