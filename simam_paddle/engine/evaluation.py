"""Evaluating a network: loss, accuracy and logits in one pass, predictions, confusion matrix and per-class accuracy.

:func:`evaluate` and :func:`predict` run a ``paddle.Model`` (dygraph) or an
:class:`~simam_paddle.engine.inference.InferencePredictor` (Paddle Inference) over a dataset; the confusion matrix,
per-class accuracy and their CSV file are plain NumPy on the labels and logits they return.

Rows of the confusion matrix are true classes, columns predicted classes:
``cm[i, j]`` counts samples of class ``i`` predicted as ``j``; the accuracy of class ``i`` is
``cm[i, i] / cm[i].sum()`` (its recall).
"""
import csv
import io
import os
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import paddle

from .._io import atomic_write_text
from .inference import InferencePredictor
from .training import make_loader

__all__ = ["evaluate", "predict", "confusion_matrix", "per_class_accuracy", "save_confusion_matrix_csv"]


def evaluate(model: Union[paddle.Model, InferencePredictor], data, batch_size: int = 32,
             num_workers: int = 0) -> Dict[str, Any]:
    """Mean loss, accuracy, logits and labels of a network on a dataset, in one pass.

    The loss is the mean cross-entropy over all samples (hapi's own ``Model.evaluate`` reports
    the last batch's); the accuracy is top-1, as ``paddle.metric.Accuracy`` computes it.

    Args:
        model (paddle.Model|InferencePredictor): wraps the network (in eval mode here), or runs it
            through Paddle Inference.
        data (paddle.io.Dataset): items ``(image, label)``.
        batch_size (int, optional): batch size. Default: 32.
        num_workers (int, optional): DataLoader workers. Default: 0.

    Returns:
        dict: ``loss`` (float), ``acc`` (float), ``logits`` (``[N, num_classes]`` array),
        ``labels`` (``[N]`` int64 array).

    Examples:
        >>> data = paddle.io.TensorDataset([paddle.rand([40, 4]), paddle.randint(0, 10, [40, 1])])
        >>> result = evaluate(paddle.Model(paddle.nn.Linear(4, 10)), data)
        >>> result["logits"].shape, result["labels"].shape
        ((40, 10), (40,))
    """
    if isinstance(model, InferencePredictor):
        network, forward = None, model
    else:
        network = model.network
        was_training = network.training
        network.eval()

        def forward(images):
            return network(images).numpy()

    logits, labels = [], []
    try:
        with paddle.no_grad():
            for images, label in make_loader(data, batch_size, num_workers=num_workers):
                logits.append(forward(images))
                labels.append(label.numpy().reshape(-1))
    finally:
        if network is not None and was_training:
            network.train()
    if not logits:
        raise ValueError("cannot evaluate on an empty dataset")
    logits_np = np.concatenate(logits).astype("float64")
    labels_np = np.concatenate(labels).astype("int64")
    shifted = logits_np - logits_np.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return {
        "loss": float(-log_probs[np.arange(len(labels_np)), labels_np].mean()),
        "acc": float((logits_np.argmax(axis=1) == labels_np).mean()),
        "logits": logits_np.astype("float32"),
        "labels": labels_np,
    }


def predict(model: Union[paddle.Model, InferencePredictor], data, batch_size: int = 32,
            num_workers: int = 0) -> np.ndarray:
    """Logits of a ``paddle.Model`` or an ``InferencePredictor`` for every item of ``data`` (labels are ignored).

    Returns:
        numpy.ndarray: shape ``[len(data), num_classes]``.

    Examples:
        >>> data = paddle.io.TensorDataset([paddle.rand([40, 4]), paddle.randint(0, 10, [40, 1])])
        >>> model = paddle.Model(paddle.nn.Linear(4, 10)); model.prepare()
        >>> predict(model, data).shape
        (40, 10)
    """
    loader = make_loader(_InputsOnly(data), batch_size, num_workers=num_workers)
    if isinstance(model, InferencePredictor):
        logits = [model(images[0] if isinstance(images, (list, tuple)) else images) for images in loader]
        if not logits:
            raise ValueError("cannot predict on an empty dataset")
        return np.concatenate(logits)
    outputs = model.predict(loader, stack_outputs=True, verbose=0)
    return np.asarray(outputs[0])


class _InputsOnly(paddle.io.Dataset):
    """Drop labels so hapi's predict feeds only the image to the network."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        item = self.data[index]
        return item[0] if isinstance(item, (tuple, list)) else item


def confusion_matrix(labels, predictions, num_classes: Optional[int] = None) -> np.ndarray:
    """Count (true, predicted) pairs.

    Args:
        labels (array-like): true class indices, shape ``[N]``.
        predictions (array-like): predicted class indices ``[N]``, or logits ``[N, C]`` (argmax taken).
        num_classes (int, optional): size of the matrix; None uses the largest index seen + 1
            (or C for logits). Default: None.

    Returns:
        numpy.ndarray: int64 array of shape ``[num_classes, num_classes]``.

    Examples:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1])
        array([[1, 0],
               [1, 1]])
    """
    labels = np.asarray(labels).reshape(-1).astype("int64")
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        if num_classes is None:
            num_classes = predictions.shape[1]
        predictions = predictions.argmax(axis=1)
    predictions = predictions.reshape(-1).astype("int64")
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions differ in length: {labels.shape[0]} vs {predictions.shape[0]}")
    if num_classes is None:
        num_classes = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), found {values.min()}..{values.max()}")
    cm = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(cm, (labels, predictions), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Accuracy (recall) of each true class; NaN for a class with no samples.

    Args:
        cm (numpy.ndarray): a confusion matrix from :func:`confusion_matrix`.

    Returns:
        numpy.ndarray: float64 array of shape ``[num_classes]``.

    Examples:
        >>> per_class_accuracy(np.array([[1, 0], [1, 1]]))
        array([1. , 0.5])
    """
    cm = np.asarray(cm)
    totals = cm.sum(axis=1).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / totals, np.nan)


def save_confusion_matrix_csv(cm: np.ndarray, path: str, classes: Optional[Sequence[str]] = None) -> None:
    """Write the matrix as CSV: a header ``true\\predicted, <classes...>`` and one row per true class.

    Examples:
        >>> save_confusion_matrix_csv(np.eye(2, dtype=int), "/tmp/cm.csv", ["cat", "dog"])
    """
    cm = np.asarray(cm)
    classes = list(classes) if classes is not None else [str(i) for i in range(len(cm))]
    if len(classes) != len(cm):
        raise ValueError(f"{len(classes)} class names for a {len(cm)}x{len(cm)} confusion matrix")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["true\\predicted", *classes])
    for name, row in zip(classes, cm):
        writer.writerow([name, *(int(v) for v in row)])
    atomic_write_text(text.getvalue(), path)  # a new file: never half-written, never through a link left there
