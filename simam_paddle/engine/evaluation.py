"""Evaluation beyond accuracy: confusion matrix and per-class accuracy (NumPy), and their files.

Rows of the confusion matrix are true classes, columns predicted classes:
``cm[i, j]`` counts samples of class ``i`` predicted as ``j``; the accuracy of class ``i`` is
``cm[i, i] / cm[i].sum()`` (its recall).
"""
import csv
import os
from typing import Optional, Sequence

import numpy as np

__all__ = ["confusion_matrix", "per_class_accuracy", "save_confusion_matrix_csv"]


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
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\predicted", *classes])
        for name, row in zip(classes, cm):
            writer.writerow([name, *(int(v) for v in row)])
