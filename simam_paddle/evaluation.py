"""Evaluation beyond accuracy: confusion matrix and per-class accuracy (NumPy), and their files.

Rows of the confusion matrix are true classes, columns predicted classes:
``cm[i, j]`` counts samples of class ``i`` predicted as ``j``; the accuracy of class ``i`` is
``cm[i, i] / cm[i].sum()`` (its recall).
"""
import csv
import os
from typing import Optional, Sequence

import numpy as np

__all__ = ["confusion_matrix", "per_class_accuracy", "save_confusion_matrix_csv", "plot_confusion_matrix"]


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


def plot_confusion_matrix(cm: np.ndarray, classes: Optional[Sequence[str]] = None, output: Optional[str] = None,
                          normalize: bool = True, title: str = "Confusion matrix"):
    """Draw the matrix as a heat map (rows true, columns predicted), optionally saving a PNG.

    The figure is made without pyplot (nothing registered globally), like those of ``plots``.

    Args:
        cm (numpy.ndarray): counts from :func:`confusion_matrix`.
        classes (list[str], optional): class names; None numbers them. Default: None.
        output (str, optional): where to save the PNG. Default: None.
        normalize (bool, optional): colour by the fraction of each true class; counts are
            written in the cells either way. Default: True.
        title (str, optional): figure title. Default: "Confusion matrix".

    Returns:
        matplotlib.figure.Figure: the figure.

    Examples:
        >>> fig = plot_confusion_matrix(np.eye(3, dtype=int))
        >>> len(fig.axes)
        2
    """
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    n = len(cm)
    classes = list(classes) if classes is not None else [str(i) for i in range(n)]
    totals = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, np.maximum(totals, 1)) if normalize else cm
    size = max(4.0, 0.45 * n + 2.5)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(classes, rotation=60, ha="right")
    ax.set_yticklabels(classes)
    if n <= 30:
        threshold = shown.max() / 2 if shown.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > threshold else "black")
    fig.tight_layout()
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        fig.savefig(output, format="png", dpi=120)
    return fig
