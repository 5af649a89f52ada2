import csv

import numpy as np
import paddle
import pytest

from simam_paddle.engine.evaluation import (
    confusion_matrix,
    evaluate,
    per_class_accuracy,
    predict,
    save_confusion_matrix_csv,
)


def tiny_data(n=10, seed=2):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 3, 6, 6).astype("float32")
    y = (x[:, 0].mean(axis=(1, 2)) > 0.5).astype("int64")
    return paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)]), x, y


def tiny_model(seed=0):
    paddle.seed(seed)
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.ReLU(),
                               paddle.nn.Flatten(), paddle.nn.Linear(4 * 16, 2))
    return paddle.Model(net)


def test_evaluate_and_predict_agree_with_a_plain_forward_and_numpy_cross_entropy():
    model = tiny_model()
    data, x, labels = tiny_data()
    model.network.train()  # evaluate must switch to eval mode (BatchNorm's running statistics) and back
    result = evaluate(model, data, batch_size=4)
    assert model.network.training
    model.network.eval()
    logits = model.network(paddle.to_tensor(x)).numpy().astype("float64")
    np.testing.assert_allclose(result["logits"], logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result["labels"], labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert result["loss"] == pytest.approx(-np.log(probs[np.arange(len(labels)), labels]).mean(), rel=1e-5)
    assert result["acc"] == pytest.approx((logits.argmax(1) == labels).mean())
    model.prepare()
    np.testing.assert_allclose(predict(model, data, batch_size=3), logits, rtol=1e-5, atol=1e-6)


def test_evaluate_refuses_an_empty_dataset():
    empty = paddle.io.TensorDataset([paddle.zeros([0, 3, 6, 6]), paddle.zeros([0], "int64")])
    with pytest.raises(ValueError, match="empty dataset"):
        evaluate(tiny_model(), empty)


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


def test_csv(tmp_path):
    cm = np.array([[3, 1], [0, 2]])
    save_confusion_matrix_csv(cm, str(tmp_path / "cm.csv"), ["cat", "dog"])
    with open(tmp_path / "cm.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["true\\predicted", "cat", "dog"], ["cat", "3", "1"], ["dog", "0", "2"]]
    with pytest.raises(ValueError, match="3 class names"):
        save_confusion_matrix_csv(cm, str(tmp_path / "x.csv"), ["a", "b", "c"])
