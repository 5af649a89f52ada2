"""SaveBestModel called as the AI Studio notebook calls it: SaveBestModel(target=0.5, path="work/best_model")."""
import os

import numpy as np
import paddle
import pytest

from simam_paddle.engine.callbacks import SaveBestModel


def prepared_model():
    net = paddle.nn.Linear(3, 2)
    model = paddle.Model(net)
    model.prepare(paddle.optimizer.SGD(0.1, parameters=net.parameters()))
    return model


def run_epochs(callback, model, values):
    """Drive the callback as hapi does: per epoch set a distinct weight, then end its evaluation."""
    callback.set_model(model)
    for epoch, value in enumerate(values):
        model.network.weight.set_value(np.full([3, 2], float(epoch), "float32"))
        callback.on_epoch_begin(epoch)
        callback.on_eval_end({"acc": [value]})


def saved_epoch_index(path):
    return float(paddle.load(str(path))["weight"].numpy()[0, 0])


def test_notebook_arguments_save_only_above_target(tmp_path):
    prefix = tmp_path / "work" / "best_model"
    best = SaveBestModel(target=0.5, path=str(prefix), verbose=0)
    assert best.path == str(prefix) + ".pdparams"
    run_epochs(best, prepared_model(), [0.3, 0.5])
    assert not os.path.exists(best.path) and best.best is None  # 0.5 does not beat the target 0.5
    run_epochs(best, prepared_model(), [0.6, 0.55, 0.8])
    assert saved_epoch_index(best.path) == 2.0 and best.best == 0.8
    assert sorted(os.listdir(prefix.parent)) == ["best_model.pdparams"]


def test_target_in_min_mode_is_an_upper_bar(tmp_path):
    best = SaveBestModel(str(tmp_path), monitor="acc", mode="min", target=0.5, verbose=0)
    run_epochs(best, prepared_model(), [0.7, 0.4, 0.45])
    assert saved_epoch_index(tmp_path / "best_model.pdparams") == 1.0


def test_the_fit_of_the_notebook_runs(tmp_path):
    """The notebook's callback list with hapi's own fit; target 0 so any evaluation saves."""
    x = paddle.rand([8, 3])
    data = paddle.io.TensorDataset([x, paddle.randint(0, 2, [8, 1])])
    model = paddle.Model(paddle.nn.Linear(3, 2))
    model.prepare(paddle.optimizer.SGD(0.1, parameters=model.parameters()), paddle.nn.CrossEntropyLoss(),
                  paddle.metric.Accuracy())
    callback = SaveBestModel(target=-1.0, path=str(tmp_path / "best_model"), verbose=0)
    model.fit(data, data, epochs=1, batch_size=4, callbacks=[callback], verbose=0)
    assert os.path.isfile(tmp_path / "best_model.pdparams")


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, TypeError, "save_dir .* or path"),
    ({"save_dir": "runs/a", "path": "work/best_model"}, TypeError, "not both"),
    ({"save_dir": 0.5}, TypeError, "target="),
    ({"path": "work/best_model.pdparams"}, ValueError, "'work/best_model'"),
    ({"path": "work/best_model", "filename": "x.pdparams"}, TypeError, "filename goes with save_dir"),
    ({"path": "work/best_model", "target": "0.5"}, TypeError, "number"),
])
def test_each_argument_has_one_meaning(kwargs, error, match):
    with pytest.raises(error, match=match):
        SaveBestModel(**kwargs)
