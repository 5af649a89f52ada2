import csv

import numpy as np
import pytest

from simam_paddle.engine.evaluation import (
    confusion_matrix,
    per_class_accuracy,
    save_confusion_matrix_csv,
)
from simam_paddle.plots import plot_confusion_matrix


def test_hand_computed_example():
    labels = [0, 0, 0, 1, 1, 2]
    preds = [0, 1, 0, 1, 1, 0]
    # true 0: two right, one called 1; true 1: both right; true 2: called 0
    expected = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 0]])
    cm = confusion_matrix(labels, preds, num_classes=3)
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_allclose(per_class_accuracy(cm), [2 / 3, 1.0, 0.0])


def test_logits_are_argmaxed_and_unseen_classes_give_nan():
    logits = np.array([[0.1, 0.9, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    cm = confusion_matrix([1, 1], logits)
    assert cm.shape == (4, 4) and cm[1, 1] == 1 and cm[1, 0] == 1
    acc = per_class_accuracy(cm)
    assert acc[1] == 0.5 and np.isnan(acc[[0, 2, 3]]).all()


def test_matches_sklearn_on_random_data():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.RandomState(0)
    labels, preds = rng.randint(0, 7, 500), rng.randint(0, 7, 500)
    ours = confusion_matrix(labels, preds, num_classes=7)
    np.testing.assert_array_equal(ours, sklearn_metrics.confusion_matrix(labels, preds, labels=range(7)))
    np.testing.assert_allclose(per_class_accuracy(ours),
                               sklearn_metrics.recall_score(labels, preds, average=None, labels=range(7)))


@pytest.mark.parametrize("labels,preds,n,match", [
    ([0, 1], [0], None, "length"),
    ([0, 3], [0, 1], 3, r"\[0, 3\)"),
    ([0, -1], [0, 1], 2, "labels"),
])
def test_bad_input(labels, preds, n, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(labels, preds, num_classes=n)


def test_csv_and_png(tmp_path):
    cm = np.array([[3, 1], [0, 2]])
    save_confusion_matrix_csv(cm, str(tmp_path / "cm.csv"), ["cat", "dog"])
    with open(tmp_path / "cm.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["true\\predicted", "cat", "dog"], ["cat", "3", "1"], ["dog", "0", "2"]]
    with pytest.raises(ValueError, match="3 class names"):
        save_confusion_matrix_csv(cm, str(tmp_path / "x.csv"), ["a", "b", "c"])
    fig = plot_confusion_matrix(cm, ["cat", "dog"], output=str(tmp_path / "cm.png"))
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, [[0.75, 0.25], [0.0, 1.0]])  # rows normalised
