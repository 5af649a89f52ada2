import csv
import os
import sys

import numpy as np
import paddle
import pytest

from simam_paddle.engine import callbacks as cb_mod
from simam_paddle.engine.callbacks import CheckpointSaver, HistoryLogger, SaveBestModel, make_visualdl
from simam_paddle.engine.checkpoints import portable_optimizer_state, restore_optimizer_state
from simam_paddle.engine.history import HISTORY_COLUMNS, read_history
from simam_paddle.engine.training import make_optimizer


def prepared_model(lr=0.1):
    net = paddle.nn.Linear(3, 2)
    model = paddle.Model(net)
    model.prepare(make_optimizer(net.parameters(), lr, epochs=2, steps_per_epoch=1, weight_decay=1e-4))
    return model


def attach(callback, model):
    callback.set_model(model)
    callback.set_params({"epochs": 2, "steps": 1, "metrics": ["loss", "acc"], "verbose": 0})
    return callback


def set_weight(model, value):
    model.network.weight.set_value(np.full([3, 2], value, "float32"))


def saved_weight(path):
    return float(paddle.load(str(path))["weight"].numpy()[0, 0])


def test_save_best_keeps_the_best_and_unwraps_list_metrics(tmp_path):
    model = prepared_model()
    best = attach(SaveBestModel(str(tmp_path), verbose=0), model)
    path = tmp_path / "best_model.pdparams"
    for epoch, (acc, w) in enumerate([(0.5, 1.0), (0.4, 2.0), (0.7, 3.0), (0.7, 4.0)]):
        set_weight(model, w)
        best.on_epoch_begin(epoch)
        best.on_eval_end({"acc": [acc], "loss": [1.0]})  # hapi logs metrics as lists
        if epoch == 1:
            assert saved_weight(path) == 1.0  # worse: not overwritten
    assert saved_weight(path) == 3.0  # ties do not replace the earlier best
    assert (best.best, best.best_epoch) == (0.7, 3)
    assert sorted(os.listdir(tmp_path)) == ["best_model.pdparams"]  # no temporary files left


def test_save_best_min_mode(tmp_path):
    model = prepared_model()
    best = attach(SaveBestModel(str(tmp_path), monitor="loss", mode="min", verbose=0), model)
    for w, loss in [(1.0, 0.9), (2.0, 0.5), (3.0, 0.6)]:
        set_weight(model, w)
        best.on_eval_end({"loss": np.array([loss])})
    assert saved_weight(tmp_path / "best_model.pdparams") == 2.0
    with pytest.raises(ValueError, match="max"):
        SaveBestModel(str(tmp_path), mode="best")


def test_a_crash_while_saving_leaves_the_old_best_intact(tmp_path, monkeypatch):
    model = prepared_model()
    best = attach(SaveBestModel(str(tmp_path), verbose=0), model)
    set_weight(model, 1.0)
    best.on_eval_end({"acc": 0.5})
    path = tmp_path / "best_model.pdparams"
    good = path.read_bytes()

    def power_cut(fd):  # the new file is written, not yet on disk nor renamed into place
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "fsync", power_cut)
    set_weight(model, 2.0)
    with pytest.raises(KeyboardInterrupt):
        best.on_eval_end({"acc": 0.9})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert saved_weight(path) == 1.0
    assert sorted(os.listdir(tmp_path)) == ["best_model.pdparams"]


def test_missing_metric_warns_once(tmp_path):
    best = attach(SaveBestModel(str(tmp_path), monitor="top5", verbose=0), prepared_model())
    with pytest.warns(UserWarning, match="top5.*acc"):
        best.on_eval_end({"acc": [0.5]})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        best.on_eval_end({"acc": [0.6]})
    assert not os.listdir(tmp_path)


def drive_epoch(callbacks, epoch, train_batches, eval_batches=None, train_acc=0.5, eval_acc=0.25):
    for c in callbacks:
        c.on_epoch_begin(epoch)
    for step, (loss, size) in enumerate(train_batches):
        for c in callbacks:
            c.on_train_batch_end(step, {"loss": [loss], "acc": train_acc, "batch_size": size})
    for c in callbacks:
        c.on_epoch_end(epoch, {"loss": [train_batches[-1][0]], "acc": train_acc})
    if eval_batches is not None:
        for step, (loss, size) in enumerate(eval_batches):
            for c in callbacks:
                c.on_eval_batch_end(step, {"loss": [loss], "acc": eval_acc, "batch_size": size})
        for c in callbacks:
            c.on_eval_end({"loss": [eval_batches[-1][0]], "acc": [eval_acc]})


def test_history_rows_hold_epoch_means_and_lr(tmp_path):
    model = prepared_model(lr=0.1)
    path = str(tmp_path / "history.csv")
    logger = attach(HistoryLogger(path), model)
    logger.initial_epoch = 2  # as after a resume
    drive_epoch([logger], 0, [(1.0, 4), (3.0, 2)], [(2.0, 1), (4.0, 3)])
    drive_epoch([logger], 1, [(1.0, 1)])  # no evaluation this epoch
    logger.on_train_end()
    with open(path) as f:
        raw = list(csv.reader(f))
    assert raw[0] == list(HISTORY_COLUMNS)
    rows = read_history(str(tmp_path))
    assert [r["epoch"] for r in rows] == [3, 4]
    assert rows[0]["loss"] == pytest.approx((1.0 * 4 + 3.0 * 2) / 6)
    assert rows[0]["eval_loss"] == pytest.approx((2.0 * 1 + 4.0 * 3) / 4)
    assert rows[0]["acc"] == 0.5 and rows[0]["eval_acc"] == 0.25
    assert rows[0]["lr"] == pytest.approx(0.1)
    assert rows[1]["eval_loss"] is None and rows[1]["eval_acc"] is None


def test_checkpoint_files_and_portable_optimizer_state(tmp_path):
    model = prepared_model()
    best = attach(SaveBestModel(str(tmp_path), verbose=0), model)
    saver = attach(CheckpointSaver(str(tmp_path), best_model=best), model)
    model.network(paddle.rand([2, 3])).mean().backward()
    model._optimizer.step()
    model._optimizer.clear_grad()
    drive_epoch([best, saver], 0, [(1.0, 2)], [(1.0, 2)], eval_acc=0.75)
    assert sorted(os.listdir(tmp_path)) == ["best_model.pdparams", "last.json", "last.pdopt", "last.pdparams"]
    import json

    assert json.load(open(tmp_path / "last.json")) == {"epoch": 1, "best": 0.75, "best_epoch": 1}
    assert "@weight_velocity_0" in portable_optimizer_state(model._optimizer, model.network)
    # Rebuilding after other layers exist changes Paddle's parameter names; the state still loads.
    paddle.nn.Linear(5, 5)
    again = prepared_model()
    assert again.network.weight.name != model.network.weight.name
    again.network.set_state_dict(model.network.state_dict())
    restore_optimizer_state(again._optimizer, again.network, paddle.load(str(tmp_path / "last.pdopt")))
    # One identical step on both: equal weights afterwards only if the momentum was restored.
    x = paddle.rand([2, 3])
    for m in (model, again):
        m.network(x).mean().backward()
        m._optimizer.step()
    np.testing.assert_allclose(again.network.weight.numpy(), model.network.weight.numpy(), rtol=1e-6)
    assert again._optimizer.get_lr() == model._optimizer.get_lr()


def test_nothing_is_written_off_rank_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    assert not cb_mod.is_main_process()
    model = prepared_model()
    best = attach(SaveBestModel(str(tmp_path), verbose=0), model)
    cbs = [best, attach(HistoryLogger(str(tmp_path / "history.csv")), model),
           attach(CheckpointSaver(str(tmp_path), best_model=best), model)]
    drive_epoch(cbs, 0, [(1.0, 2)], [(1.0, 2)])
    assert os.listdir(tmp_path) == []
    assert best.best == 0.25  # every rank still tracks the best, so resume state agrees


def test_visualdl_is_optional(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "visualdl", None)  # makes `import visualdl` fail
    with pytest.warns(UserWarning, match="visualdl"):
        assert make_visualdl(str(tmp_path)) is None
