"""An image-folder dataset with an optional in-memory cache, and the notebook's transforms.

``ImageFolderDataset`` reads ``root/<class>/<image>`` (the layout :func:`split_dataset` writes)
and yields ``(float32 CHW array, int64 label of shape [1])``, the pair ``paddle.io.DataLoader``
and ``paddle.Model`` take (``CrossEntropyLoss`` and ``Accuracy`` accept labels of shape
``[N, 1]``; the notebook used the same).

The cache (``cache=True``) keeps each decoded, resized uint8 image, so later epochs skip JPEG
decoding and resizing; random transforms run after it, so augmentation differs every epoch.
Each process has its own cache: with ``DataLoader(num_workers>0)`` every worker fills its own
copy, so pass ``persistent_workers=True`` to keep it across epochs, or call
:meth:`ImageFolderDataset.fill_cache` before building the loader so forked workers share the
parent's images.
"""
import os
import sys
import threading
import traceback
import weakref
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
from paddle.vision import transforms as T
from PIL import Image

from .images import IMAGE_EXTENSIONS, is_hidden, is_image_name, load_image, to_rgb

__all__ = [
    "ImageFolderDataset",
    "ClearErrorDataLoader",
    "train_transforms",
    "cifar_train_transforms",
    "eval_transforms",
    "compute_mean_std",
    "check_num_classes",
    "per_class_subset",
    "NOTEBOOK_MEAN",
    "NOTEBOOK_STD",
    "DEFAULT_CACHE_BYTES",
]

NOTEBOOK_MEAN = (0.50950350, 0.54632660, 0.57409690)
"""Per-channel RGB mean of [0, 1] pixels the notebook normalises with (its Caltech101 subset)."""
NOTEBOOK_STD = (0.26059777, 0.26041326, 0.29220656)
"""Per-channel RGB standard deviation that goes with :data:`NOTEBOOK_MEAN`."""
DEFAULT_CACHE_BYTES = 2 * 1024**3
"""Default cache limit per process: about 10,900 images at 256x256 RGB (192 KiB each)."""

SizeLike = Union[int, Sequence[int]]

_FIX = ("remove or replace the file, or re-run split_dataset on the original data (it skips files that do not "
        "decode)")


def _hw(image_size: SizeLike) -> Tuple[int, int]:
    """``256`` -> ``(256, 256)`` (a square, as the notebook's ``Resize((256, 256))``); ``(h, w)`` as is."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"image_size must be a positive int or a (height, width) pair of them, got {image_size!r}")
    return size


class ImageFolderDataset(paddle.io.Dataset):
    """Images in ``root/<class>/<image>``, labelled by the sorted class folder names.

    Images are read by :func:`~simam_paddle.data.images.load_image` (regular files only, turned upright
    by their EXIF Orientation tag) and converted to RGB (:func:`simam_paddle.data.to_rgb`: transparency
    composited on white, 16-bit scaled to 8-bit). A file that cannot be used raises
    :class:`~simam_paddle.data.images.ImageReadError` naming it; iterate with
    :class:`ClearErrorDataLoader` (``simam_paddle.engine.make_loader``) to get that error, not Paddle's
    "Blocking queue is killed", with or without workers. With ``image_size`` every image is resized to that size
    (bilinear, as ``paddle.vision.transforms.Resize``) right after decoding, so a transform that
    resizes to the same size does no further work. ``transform`` receives an RGB ``PIL.Image``
    and must return a CHW array or tensor (as :func:`train_transforms` does); without one, items
    are the pixels scaled to [0, 1].

    Hidden files and files whose suffix is not an image suffix are ignored.

    Args:
        root (str|PathLike): folder of class folders, e.g. ``split/train``.
        transform (callable, optional): applied to the RGB ``PIL.Image``. Default: None.
        cache (bool, optional): keep decoded, resized uint8 images in memory, per process, up to
            ``cache_bytes``; images beyond the limit are decoded every time. Needs
            ``image_size``. Default: False.
        image_size (int|tuple, optional): resize to ``(s, s)`` or ``(h, w)`` when loading.
            Default: None (original size).
        cache_bytes (int, optional): cache limit in bytes. Default: ``DEFAULT_CACHE_BYTES`` (2 GiB).

    Attributes:
        classes (list[str]): sorted class names; ``class_to_idx`` maps them to labels.
        samples (list[tuple[str, int]]): ``(path, label)`` per image, sorted by class then name.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: ``root`` has no class folder, or a class folder has no image.

    Examples:
        >>> ds = ImageFolderDataset("split/train", eval_transforms(64), image_size=64)  # doctest: +SKIP
        >>> image, label = ds[0]  # doctest: +SKIP
        >>> image.shape, image.dtype, label.shape, label.dtype  # doctest: +SKIP
        ((3, 64, 64), dtype('float32'), (1,), dtype('int64'))
    """

    def __init__(self, root: Union[str, os.PathLike], transform: Optional[Callable] = None, cache: bool = False,
                 image_size: Optional[SizeLike] = None, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__()
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root {self.root} is not a folder; expected a folder of class folders")
        if cache and image_size is None:
            raise ValueError("cache=True needs image_size: the cache holds resized images (pass e.g. image_size=256)")
        self.transform = transform
        self.image_size = None if image_size is None else _hw(image_size)
        self.cache = bool(cache)
        self.cache_bytes = int(cache_bytes)
        self._cache: Dict[int, np.ndarray] = {}
        self._cached_bytes = 0

        with os.scandir(self.root) as entries:
            self.classes: List[str] = sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))
        if not self.classes:
            raise ValueError(f"dataset root {self.root} has no class folders; expected {self.root}/<class>/<image>, "
                             "e.g. the train/ or eval/ folder written by split_dataset")
        self.class_to_idx: Dict[str, int] = {name: i for i, name in enumerate(self.classes)}
        self.samples: List[Tuple[str, int]] = []
        for name in self.classes:
            folder = self.root / name
            files = sorted(f.name for f in os.scandir(folder) if f.is_file() and is_image_name(f.name))
            if not files:
                raise ValueError(f"class folder {folder} has no images (looked for files ending in .jpg, .png, "
                                 f"... any of {len(IMAGE_EXTENSIONS)} suffixes Pillow reads); remove the folder "
                                 "or add images")
            self.samples.extend((str(folder / f), self.class_to_idx[name]) for f in files)
        self.targets: List[int] = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def cached_bytes(self) -> int:
        """Bytes of image data held in this process's cache."""
        return self._cached_bytes

    def load(self, index: int) -> np.ndarray:
        """The image at ``index`` as a read-only HWC uint8 RGB array, resized if ``image_size`` is set."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        image = to_rgb(load_image(self.samples[index][0], fix=_FIX))
        if self.image_size is not None:
            height, width = self.image_size
            image = image.resize((width, height), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        array.flags.writeable = False
        if self.cache and self._cached_bytes + array.nbytes <= self.cache_bytes:
            self._cache[index] = array
            self._cached_bytes += array.nbytes
        return array

    def fill_cache(self) -> int:
        """Decode images into the cache until it is full; returns how many are cached.

        Call it before building a ``DataLoader`` with workers: forked workers start with these
        images instead of each decoding its own copy.
        """
        if not self.cache:
            raise ValueError("fill_cache() needs a dataset built with cache=True")
        for index in range(len(self)):
            if index not in self._cache:
                self.load(index)
                if index not in self._cache:
                    break
        return len(self._cache)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        try:
            return self._item(index)
        except Exception:
            _end_paddle_reader_thread()
            raise

    def _item(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        array = self.load(index)
        if self.transform is None:
            image = array.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        else:
            # frombuffer shares the (read-only) cached pixels; Pillow copies before any in-place edit.
            height, width = array.shape[:2]
            out = self.transform(Image.frombuffer("RGB", (width, height), array, "raw", "RGB", 0, 1))
            if isinstance(out, Image.Image):
                raise TypeError("the transform returned a PIL image; end it with Transpose() and Normalize() so it "
                                "returns a CHW float array, as train_transforms() does")
            if isinstance(out, paddle.Tensor):
                out = out.numpy()
            image = np.asarray(out, dtype=np.float32)
        return image, np.array([self.samples[index][1]], dtype=np.int64)


def _end_paddle_reader_thread() -> None:
    """Inside ``DataLoader(num_workers=0)``'s reader thread, stop the loader instead of hanging.

    Paddle 3.x reads single-process batches in a thread whose loop (``_thread_loop``) lets an
    exception from the dataset end the thread without closing its queue, so the main thread
    waits forever. Found through the calling frames, the loader's own ``_exit_thread_unexpectedly``
    kills the queue: the main thread then raises Paddle's "Blocking queue is killed because the
    data reader raises an exception". Under :class:`ClearErrorDataLoader` the error is handed to it,
    to be raised in the main thread instead; under a plain ``paddle.io.DataLoader`` its traceback,
    which names the file, is printed first. Elsewhere (the main thread, worker processes, whose
    errors Paddle forwards) this does nothing.
    """
    if threading.current_thread() is threading.main_thread():
        return
    loader = _reader_iterator(sys._getframe(1))
    if loader is None:
        return
    if not _hand_over(loader, sys.exc_info()[1]):  # printed before the queue dies, so it is on screen first
        traceback.print_exc()
        sys.stderr.flush()
    loader._exit_thread_unexpectedly()
    raise SystemExit(1)  # ends the thread quietly: the error is printed or handed over


def _reader_iterator(frame):
    """The Paddle loader iterator whose reader thread (``_thread_loop``) runs ``frame`` or a frame below it."""
    while frame is not None:
        loader = frame.f_locals.get("self") if frame.f_code.co_name == "_thread_loop" else None
        if loader is not None and hasattr(loader, "_exit_thread_unexpectedly"):
            return loader
        frame = frame.f_back
    return None


# Batch samplers of every ClearErrorDataLoader (a Paddle iterator keeps its loader's, not the loader), and
# the exception that ended the reader thread of each of their iterators.
_CLEAR_SAMPLERS: "weakref.WeakSet" = weakref.WeakSet()
_FAILURES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_HOOK_LOCK = threading.Lock()
_previous_excepthook = None


def _hand_over(iterator, err: BaseException) -> bool:
    """Keep ``err`` for ``iterator``'s ClearErrorDataLoader to raise; False for a plain DataLoader's iterator."""
    if getattr(iterator, "_batch_sampler", None) not in _CLEAR_SAMPLERS:
        return False
    _FAILURES.setdefault(iterator, err)
    return True


def _keep_reader_failure(args) -> None:
    """``threading.excepthook``: the exception ending a ClearErrorDataLoader's reader thread is kept, not printed.

    With workers it is Paddle's re-raise of a worker's exception, in the reader thread's ``_thread_loop``,
    found in the traceback's frames.
    """
    tb = args.exc_traceback
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_name != "_thread_loop":
        tb = tb.tb_next
    iterator = _reader_iterator(tb.tb_frame) if tb is not None else None
    if iterator is None or issubclass(args.exc_type, SystemExit) or not _hand_over(iterator, args.exc_value):
        _previous_excepthook(args)


def _worker_error(err: BaseException) -> BaseException:
    """The dataset's own error out of Paddle's re-raise of a worker's one, whose message is the worker's whole
    traceback (``DataLoader worker(0) caught ImageReadError with message: Traceback ...``)."""
    text = str(err)
    if not text.startswith("DataLoader worker("):
        return err
    head, _, message = text.rstrip().splitlines()[-1].partition(": ")
    if head.rsplit(".", 1)[-1] != type(err).__name__ or not message:
        return err
    try:
        return type(err)(message)
    except Exception:  # an exception type that takes other arguments: keep Paddle's
        return err


class ClearErrorDataLoader(paddle.io.DataLoader):
    """``paddle.io.DataLoader`` whose data errors reach the loop that iterates it, with workers or without.

    Paddle reads batches in a thread, and with ``num_workers > 0`` in worker processes too; an
    exception from the dataset ends that thread, and the loop gets only Paddle's ``SystemError:
    Blocking queue is killed because the data reader raises an exception``, the error itself being
    printed by the thread, or cut short when the process exits. Here the loop raises the dataset's
    own exception (for a bad image, :class:`~simam_paddle.data.images.ImageReadError` naming the
    file and the fix), once, and the worker processes are shut down, so a command can print one line
    and exit. Takes the arguments of ``paddle.io.DataLoader``; ``simam_paddle.engine.make_loader``
    builds one.

    Examples:
        >>> data = paddle.io.TensorDataset([paddle.rand([10, 3]), paddle.arange(10)])
        >>> [tuple(batch[0].shape) for batch in ClearErrorDataLoader(data, batch_size=4)]
        [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(self, *args, **kwargs):
        global _previous_excepthook
        super().__init__(*args, **kwargs)
        _CLEAR_SAMPLERS.add(self.batch_sampler)
        with _HOOK_LOCK:
            if _previous_excepthook is None:
                _previous_excepthook, threading.excepthook = threading.excepthook, _keep_reader_failure

    def __iter__(self):
        iterator = super().__iter__()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except SystemError:
                failure = _reader_failure(iterator)
                if failure is None:
                    raise
                raise _worker_error(failure) from None
            yield batch


def _reader_failure(iterator) -> Optional[BaseException]:
    """The exception that ended ``iterator``'s reader thread (None if none is known); the loader is shut down."""
    thread = getattr(iterator, "_thread", None)
    if thread is not None and thread is not threading.current_thread():
        thread.join(10)  # Paddle kills the queue before its reader thread raises: let the thread finish
    failure = _FAILURES.pop(iterator, None)
    if hasattr(iterator, "_workers"):
        iterator._try_shutdown_all(1)  # worker processes: ended now, not left waiting for the process's exit
    return failure


class _Resize(T.Resize):
    """``paddle.vision.transforms.Resize`` that passes an image already at the size through untouched.

    The dataset resizes when loading (and caches the result), so redoing it would only copy.
    """

    def _apply_image(self, img):
        if isinstance(img, Image.Image) and img.size == (self.size[1], self.size[0]):
            return img
        return super()._apply_image(img)


class _ToNormalizedCHW(T.BaseTransform):
    """HWC uint8 image -> CHW float32 ``(x / 255 - mean) / std``.

    The notebook's ``Transpose()``, ``Normalize(0, 255)``, ``Normalize(mean, std)`` in one pass:
    same values to float32 rounding, about 3x faster, which is what lets a cached epoch beat
    decoding by the margin ``benchmarks/bench_data_cache.py`` checks.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1) * np.float32(255)
        self.inv_std = np.float32(1) / (np.asarray(std, dtype=np.float32).reshape(-1, 1, 1) * np.float32(255))

    def _apply_image(self, img):
        pixels = np.asarray(img)
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        out = np.empty((pixels.shape[2],) + pixels.shape[:2], dtype=np.float32)
        np.copyto(out, pixels.transpose(2, 0, 1), casting="unsafe")
        out -= self.mean
        out *= self.inv_std
        return out


def _pipeline(image_size: SizeLike, mean: Sequence[float], std: Sequence[float], augment: bool) -> T.Compose:
    steps = [_Resize(_hw(image_size))]
    if augment:
        steps.append(T.RandomRotation(10))
    steps.append(_ToNormalizedCHW(mean, std))
    return T.Compose(steps)


def train_transforms(image_size: SizeLike = 256, mean: Sequence[float] = NOTEBOOK_MEAN,
                     std: Sequence[float] = NOTEBOOK_STD) -> T.Compose:
    """The notebook's training pipeline: resize, random rotation (±10°), scale to [0, 1], normalise.

    Args:
        image_size (int|tuple, optional): output size, ``(s, s)`` for an int. Default: 256.
        mean (sequence, optional): per-channel mean of [0, 1] pixels. Default: ``NOTEBOOK_MEAN``.
        std (sequence, optional): per-channel std of [0, 1] pixels. Default: ``NOTEBOOK_STD``.

    Returns:
        paddle.vision.transforms.Compose: RGB ``PIL.Image`` in, float32 CHW array out.

    Examples:
        >>> from PIL import Image
        >>> train_transforms(32)(Image.new("RGB", (50, 40))).shape
        (3, 32, 32)
    """
    return _pipeline(image_size, mean, std, augment=True)


def eval_transforms(image_size: SizeLike = 256, mean: Sequence[float] = NOTEBOOK_MEAN,
                    std: Sequence[float] = NOTEBOOK_STD) -> T.Compose:
    """The notebook's evaluation pipeline: :func:`train_transforms` without the random rotation.

    Examples:
        >>> from PIL import Image
        >>> eval_transforms((32, 48))(Image.new("RGB", (50, 40))).shape
        (3, 32, 48)
    """
    return _pipeline(image_size, mean, std, augment=False)


def cifar_train_transforms(image_size: SizeLike = 32, mean: Sequence[float] = NOTEBOOK_MEAN,
                           std: Sequence[float] = NOTEBOOK_STD, padding: int = 4) -> T.Compose:
    """The official SimAM CIFAR training pipeline: pad with zeros, crop back at random, flip at random, normalise.

    ``RandomCrop(size, padding=4)`` and ``RandomHorizontalFlip()`` of the official ``main_cifar.py``, after the
    dataset's resize to ``image_size`` (nothing for images already that size); evaluation uses
    :func:`eval_transforms` with the same ``mean`` and ``std``.

    Examples:
        >>> from PIL import Image
        >>> import numpy as np
        >>> out = cifar_train_transforms(8, mean=(0, 0, 0), std=(1, 1, 1))(Image.new("RGB", (8, 8), (255, 0, 0)))
        >>> out.shape, float(out[0].max()), float(out[1].max())
        ((3, 8, 8), 1.0, 0.0)
    """
    size = _hw(image_size)
    return T.Compose([_Resize(size), T.RandomCrop(size, padding=padding), T.RandomHorizontalFlip(),
                      _ToNormalizedCHW(mean, std)])


def compute_mean_std(root: Union[str, os.PathLike], image_size: Optional[SizeLike] = 256
                     ) -> Tuple[List[float], List[float]]:
    """Per-channel mean and (population) standard deviation of the [0, 1] RGB pixels under ``root``.

    Exact and streaming: one image at a time, merged in float64 (Chan et al.'s pairwise update),
    so memory does not grow with the data set. Pixels are counted after the same RGB conversion
    and resize the dataset applies, so the result matches what ``eval_transforms`` normalises.

    Args:
        root (str|PathLike): folder of class folders (use the training split).
        image_size (int|tuple, optional): resize before counting; None counts original pixels.
            Default: 256.

    Returns:
        tuple[list[float], list[float]]: ``(mean, std)``, three values each, for
        ``train_transforms(mean=..., std=...)``.

    Examples:
        >>> mean, std = compute_mean_std("split/train")  # doctest: +SKIP
        >>> len(mean), len(std)  # doctest: +SKIP
        (3, 3)
    """
    dataset = ImageFolderDataset(root, image_size=image_size)
    count, mean, m2 = 0, np.zeros(3), np.zeros(3)
    for index in range(len(dataset)):
        pixels = dataset.load(index).reshape(-1, 3).astype(np.float64) / 255.0
        n = pixels.shape[0]
        image_mean = pixels.mean(axis=0)
        delta = image_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + ((pixels - image_mean) ** 2).sum(axis=0) + delta**2 * (count * n / total)
        count = total
    return mean.tolist(), np.sqrt(m2 / count).tolist()


def check_num_classes(dataset, num_classes: int) -> None:
    """Raise ``ValueError`` if ``dataset`` has a different number of classes than a model's ``num_classes``.

    Args:
        dataset (ImageFolderDataset): anything with a ``classes`` list.
        num_classes (int): the model's output size.

    Examples:
        >>> check_num_classes(ImageFolderDataset("split/train"), 16)  # doctest: +SKIP
    """
    classes = list(dataset.classes)
    if len(classes) != num_classes:
        shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
        where = f" at {dataset.root}" if hasattr(dataset, "root") else ""
        raise ValueError(f"the dataset{where} has {len(classes)} classes ({shown}) but the model has "
                         f"num_classes={num_classes}; build the model with num_classes={len(classes)}")


def per_class_subset(dataset, per_class: Optional[int]):
    """The first ``per_class`` images of each class of ``dataset`` (all of it when None).

    The same rule as the ``train_per_class`` / ``eval_per_class`` settings of a run, so a notebook's
    subset and :func:`simam_paddle.complete_run`'s agree.

    Args:
        dataset (ImageFolderDataset): a dataset with ``targets`` (one label per item).
        per_class (int, optional): images per class; None keeps every image.

    Returns:
        paddle.io.Dataset: ``dataset`` itself, or a ``paddle.io.Subset`` of it.

    Examples:
        >>> import paddle
        >>> from simam_paddle.data import per_class_subset
        >>> data = paddle.io.TensorDataset([paddle.rand([6, 2]), paddle.to_tensor([0, 0, 0, 1, 1, 1])])
        >>> data.targets = [0, 0, 0, 1, 1, 1]
        >>> len(per_class_subset(data, 2))
        4
    """
    if per_class is None:
        return dataset
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer or None, got {per_class!r}")
    seen: Dict[int, int] = {}
    keep = []
    for index, label in enumerate(dataset.targets):
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            keep.append(index)
    return paddle.io.Subset(dataset, keep)
