"""Classifying image files with a trained run: its network, its classes, its evaluation transforms.

:func:`predict_images` is what ``python -m simam_paddle predict RUN IMAGE_OR_FOLDER`` prints: per
image, the ``top_k`` most probable classes and their softmax probabilities. An image that cannot be
read gets a row with its error instead, and the others are still predicted.
"""
import csv
import io
import os
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from .._paddle import require_paddle

require_paddle()  # a clear message for a missing Paddle; a quiet import if this module loads it

import paddle  # noqa: E402

from .._io import atomic_write_text  # noqa: E402
from ..data.images import ImageReadError, is_hidden, is_image_name, load_image, to_rgb  # noqa: E402

__all__ = ["Prediction", "find_images", "predict_images", "write_predictions_csv", "check_predictions_output"]

PathLike = Union[str, os.PathLike]


@dataclass
class Prediction:
    """One image's result.

    Attributes:
        path (str): the image file.
        classes (list[str]): the ``top_k`` class names, most probable first (empty on error).
        probs (list[float]): their softmax probabilities (empty on error).
        error (str|None): why the image could not be predicted; None if it was.
    """

    path: str
    classes: List[str] = field(default_factory=list)
    probs: List[float] = field(default_factory=list)
    error: Optional[str] = None

    def format(self) -> str:
        """One line: ``path: class 0.9312, class 0.0401`` or ``path: error: ...``.

        Examples:
            >>> Prediction("a.png", ["cat", "dog"], [0.9, 0.1]).format()
            'a.png: cat 0.9000, dog 0.1000'
        """
        if self.error is not None:
            return f"{self.path}: error: {self.error}"
        return f"{self.path}: " + ", ".join(f"{name} {prob:.4f}" for name, prob in zip(self.classes, self.probs))


def find_images(paths: Union[PathLike, Iterable[PathLike]]) -> List[str]:
    """Image files named by ``paths``: a file as given, a folder's images recursively in sorted order (linked
    folders entered, as the dataset enters a linked class folder; each folder once).

    In folders, hidden files and folders (``.DS_Store``, ``__MACOSX``) and files without an image
    suffix are skipped; a file named directly is always taken (a bad one gets an error row later).

    Raises:
        FileNotFoundError: a path does not exist.

    Examples:
        >>> find_images("runs/demo/data/digits/0")[:2]  # written by `python -m simam_paddle demo`  # doctest: +SKIP
        ['runs/demo/data/digits/0/0000.png', 'runs/demo/data/digits/0/0010.png']
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found = []
    for path in map(os.fspath, paths):
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            seen = set()
            # Links to folders are entered, as the dataset enters a linked class folder; each folder once (loops).
            for folder, dirs, files in os.walk(path, followlinks=True):
                real = os.path.realpath(folder)
                if real in seen:
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs[:] = sorted(d for d in dirs if not is_hidden(d))
                found.extend(os.path.join(folder, f) for f in sorted(files) if is_image_name(f))
        else:
            raise FileNotFoundError(f"{path!r} does not exist; give image files or folders of images")
    return found


def _load(path: str, transform) -> np.ndarray:
    # load_image: regular files only (a FIFO named like an image would block the read forever), upright by EXIF.
    return np.asarray(transform(to_rgb(load_image(path))), dtype=np.float32)


def predict_images(run_dir: PathLike, paths: Union[PathLike, Sequence[PathLike]], top_k: int = 5,
                   weights: str = "best", batch_size: Optional[int] = None,
                   onednn: Optional[bool] = None, engine: str = "dygraph") -> List[Prediction]:
    """Classify image files with a run's network (loaded by :func:`simam_paddle.load_run`).

    Each image is read by :func:`~simam_paddle.data.images.load_image` (regular files only, turned upright by
    its EXIF Orientation tag, as the dataset reads them), converted to RGB and put through the run's evaluation transforms
    (:func:`~simam_paddle.experiments.runs.run_transforms`: its image size and normalisation), as its evaluation data was.

    Args:
        run_dir (str): run folder written by ``train``.
        paths (str|list): image files and folders (searched recursively, see :func:`find_images`).
        top_k (int, optional): classes per image; at most the run's class count. Default: 5.
        weights (str, optional): "best" or "last". Default: "best".
        batch_size (int, optional): images per forward pass; None uses the run's. Default: None.
        onednn (bool|None, optional): convolution kernels; None uses the run's, as
            :func:`simam_paddle.evaluate_run` does (:func:`simam_paddle.experiments.runs.run_kernels`); with
            ``engine="inference"``, None uses oneDNN where Paddle has it. Default: None.
        engine (str, optional): "dygraph", or "inference": Paddle Inference on the CPU, several times faster
            (see :func:`simam_paddle.evaluate_run`). Default: "dygraph".

    Returns:
        list[Prediction]: one per image, in the order of :func:`find_images`.

    Examples:
        >>> rows = predict_images("runs/demo/towernet_simam", "runs/demo/data/digits_split/eval/3", top_k=2)  # doctest: +SKIP
        >>> len(rows), len(rows[0].classes), rows[0].probs[0] >= rows[0].probs[1]  # doctest: +SKIP
        (37, 2, True)
    """
    from .config import check_settings
    from ..engine.inference import InferencePredictor, check_engine
    from .runs import load_run, run_kernels, run_transforms

    check_engine(engine)
    if not (isinstance(top_k, int) and top_k > 0):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if batch_size is not None:
        check_settings({"batch_size": batch_size})  # the rule a run's batch size follows
    files = find_images(paths)
    network, config = load_run(os.fspath(run_dir), weights)
    classes = list(config["classes"])
    k = min(top_k, len(classes))
    transform = run_transforms(config, train=False)
    size = batch_size or config["batch_size"]
    rows = [Prediction(path) for path in files]
    if engine == "inference":
        _predict_batches(InferencePredictor(network, config["image_size"], onednn=onednn), rows, transform, size,
                         classes, k)
    else:
        with run_kernels(network, config, onednn), paddle.no_grad():
            _predict_batches(lambda images: network(paddle.to_tensor(images)).numpy(), rows, transform, size,
                             classes, k)
    return rows


def _predict_batches(forward, rows: List[Prediction], transform, size: int, classes: List[str], k: int) -> None:
    """Fill in each row's top-k classes and probabilities (or its error), ``size`` images per ``forward`` call."""
    for start in range(0, len(rows), size):
        batch, inputs = [], []
        for row in rows[start:start + size]:
            try:
                inputs.append(_load(row.path, transform))
                batch.append(row)
            except ImageReadError as err:  # every decoding error of a bad file: a row of its own, the others go on
                row.error = f"cannot read image: {err.reason}"
            except ValueError as err:  # a mode that has no RGB
                row.error = f"cannot read image ({err})"
        if not inputs:
            continue
        logits = forward(np.stack(inputs)).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        for row, p in zip(batch, probs):
            order = np.argsort(-p, kind="stable")[:k]
            row.classes = [classes[i] for i in order]
            row.probs = [float(p[i]) for i in order]


def write_predictions_csv(rows: Sequence[Prediction], path: PathLike) -> None:
    """Write predictions as CSV: ``path``, ``class_1``, ``prob_1``, ... ``class_k``, ``prob_k``, ``error``.

    Examples:
        >>> rows = predict_images("runs/demo/towernet_simam", "runs/demo/data/digits_split/eval/3", top_k=1)  # doctest: +SKIP
        >>> write_predictions_csv(rows, "pred.csv")  # doctest: +SKIP
        >>> open("pred.csv").readline().strip()  # doctest: +SKIP
        'path,class_1,prob_1,error'
    """
    check_predictions_output(path)
    k = max((len(row.classes) for row in rows), default=0)
    header = ["path"] + [f"{what}_{i}" for i in range(1, k + 1) for what in ("class", "prob")] + ["error"]
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        cells = [row.path]
        for i in range(k):
            cells += [row.classes[i], f"{row.probs[i]:.6f}"] if i < len(row.classes) else ["", ""]
        writer.writerow(cells + [row.error or ""])
    atomic_write_text(out.getvalue(), path)  # a crash leaves the old file; a link is replaced, never written through


def check_predictions_output(path: PathLike) -> None:
    """Refuse ``path`` as a predictions CSV unless it is new or an earlier predictions CSV (checked before predicting).

    Raises:
        FileExistsError: ``path`` holds something else (a run's config.json, a link, other data).

    Examples:
        >>> check_predictions_output("/tmp/new_predictions.csv")
    """
    if os.path.lexists(path) and not _holds_predictions(path):
        raise FileExistsError(f"{path} exists and is not a predictions CSV written by predict (a run's config.json, "
                              "a link, other data?); nothing was written: choose another --output")


def _holds_predictions(path: PathLike) -> bool:
    """Whether ``path`` is a regular file that starts as write_predictions_csv's do (so it may be replaced)."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        first = f.readline(4096)
    return first.startswith((b"path,class_1,prob_1,", b"path,error"))
