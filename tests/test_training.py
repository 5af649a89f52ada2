import math
import os
import re

import numpy as np
import paddle
import pytest

from simam_paddle.engine.checkpoints import load_checkpoint_state
from simam_paddle.engine.history import RunFileError, read_history
from simam_paddle.engine.device import seed_everything, select_device
from simam_paddle.config import TrainConfig
from simam_paddle.engine.training import (
    CosineDecayToZero,
    default_weight_decay,
    make_optimizer,
    resolve_config,
    train,
)

LR = 0.1


def cosine(lr, t, total):
    return lr * 0.5 * (1 + math.cos(math.pi * min(t, total) / total))


def tiny_data(n=24, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 3, 6, 6).astype("float32")
    y = (x[:, 0].mean(axis=(1, 2)) > 0.5).astype("int64")  # learnable
    return paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)])


class Augmented(paddle.io.Dataset):
    """Random noise per access, like a random rotation: resume must replay the same randomness."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        x, y = self.base[index]
        return x.numpy() + np.random.rand(*x.shape).astype("float32") * 0.5, y.numpy()


def tiny_net(seed=0):
    seed_everything(seed)
    return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.ReLU(), paddle.nn.Flatten(),
                                paddle.nn.Linear(4 * 16, 2))


class RecordLR(paddle.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_begin(self, step, logs=None):
        self.lrs.append(self.model._optimizer.get_lr())


class StopAfter(paddle.callbacks.Callback):
    """Simulates an interrupted run: stop after `n` epochs of this fit."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.n:
            self.model.stop_training = True


def run(tmp_path, name, epochs=3, augment=False, resume=False, callbacks=(), **settings):
    out = str(tmp_path / name)
    config = resolve_config(TrainConfig(epochs=epochs, batch_size=8, lr=LR, weight_decay=1e-4, **settings))
    train_data = Augmented(tiny_data()) if augment else tiny_data()
    model = train(tiny_net(), train_data, tiny_data(12, seed=1), config=config, output_dir=out, resume=resume,
                  verbose=0, callbacks=callbacks)
    return out, model


def test_scheduler_is_one_cosine_half_period_then_zero():
    sched = CosineDecayToZero(LR, epochs=2, steps_per_epoch=5)
    seen = []
    for _ in range(14):  # 4 steps past the end: the notebook's schedule would climb back up here
        seen.append(sched.get_lr())
        sched.step()
    np.testing.assert_allclose(seen, [cosine(LR, t, 10) for t in range(14)], atol=1e-12)
    assert seen[-1] == pytest.approx(0.0, abs=1e-12)


def test_scheduler_set_epoch_and_state_dict_round_trip():
    sched = CosineDecayToZero(LR, epochs=4, steps_per_epoch=3)
    sched.set_epoch(2)
    assert sched.get_lr() == pytest.approx(cosine(LR, 6, 12))
    other = CosineDecayToZero(LR, epochs=4, steps_per_epoch=3)
    other.set_state_dict(sched.state_dict())
    assert other.last_epoch == 6 and other.get_lr() == pytest.approx(sched.get_lr())


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(steps_per_epoch=0), dict(learning_rate=0.0)])
def test_scheduler_rejects_bad_settings(bad):
    kwargs = {**dict(learning_rate=LR, epochs=2, steps_per_epoch=2), **bad}
    with pytest.raises(ValueError):
        CosineDecayToZero(**kwargs)


def test_lr_per_step_during_training(tmp_path):
    rec = RecordLR()
    out, _ = run(tmp_path, "step", epochs=3, callbacks=[rec])
    steps = 3  # 24 samples / batch 8
    assert len(rec.lrs) == 9
    np.testing.assert_allclose(rec.lrs, [cosine(LR, t, 3 * steps) for t in range(9)], rtol=1e-6)
    np.testing.assert_allclose([r["lr"] for r in read_history(out)],
                               [cosine(LR, e * steps, 3 * steps) for e in range(3)], rtol=1e-6)


def test_lr_per_epoch_stepping_gives_the_per_epoch_cosine(tmp_path):
    rec = RecordLR()
    per_epoch = paddle.callbacks.LRScheduler(by_step=False, by_epoch=True)
    run(tmp_path, "epoch", epochs=3, callbacks=[rec, per_epoch])  # replaces the per-step LRScheduler
    expected = [cosine(LR, e, 3) for e in range(3) for _ in range(3)]
    np.testing.assert_allclose(rec.lrs, expected, rtol=1e-6)


def test_weight_decay_is_l2_on_the_weights():
    paddle.seed(0)
    layer = paddle.nn.Linear(3, 2)
    before = layer.weight.numpy().copy()
    opt = make_optimizer(layer.parameters(), lr=0.5, epochs=1, steps_per_epoch=1, momentum=0.9, weight_decay=0.1)
    (layer.weight.sum() * 0).backward()  # zero loss gradient: only the decay moves the weight
    opt.step()
    np.testing.assert_allclose(layer.weight.numpy(), before - 0.5 * 0.1 * before, rtol=1e-5)
    assert default_weight_decay("towernet") == 2e-4 and default_weight_decay("vgg19") == 1e-4


def test_adam_is_numpy_adam_with_l2_beta1_momentum_and_the_cosine_lr():
    """Two steps of make_optimizer(optimizer="adam") against Adam written out in numpy (Kingma & Ba, with the
    L2 term added to the gradient and ``momentum`` as beta1)."""
    paddle.seed(0)
    layer = paddle.nn.Linear(3, 2)
    x = np.random.RandomState(0).rand(4, 3).astype("float32")
    lr, wd, beta1, beta2, eps = 0.01, 0.1, 0.8, 0.999, 1e-8
    opt = make_optimizer(layer.parameters(), lr, epochs=1, steps_per_epoch=4, momentum=beta1, weight_decay=wd,
                         optimizer="adam")
    assert type(opt) is paddle.optimizer.Adam
    w = layer.weight.numpy().astype("float64")
    m = v = np.zeros_like(w)
    for t in range(1, 3):
        opt.clear_grad()
        (layer(paddle.to_tensor(x)) ** 2).sum().backward()
        g = 2 * x.T.astype("float64") @ (x.astype("float64") @ w + layer.bias.numpy()) + wd * w
        opt.step()
        opt._learning_rate.step()
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        step = cosine(lr, t - 1, 4) * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        w = w - step * m / (np.sqrt(v) + eps * np.sqrt(1 - beta2 ** t))
        np.testing.assert_allclose(layer.weight.numpy(), w, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"optimizer 'sgd' not found; available optimizers = \['momentum', 'adam'\]"):
        make_optimizer(layer.parameters(), lr, 1, 1, weight_decay=0.0, optimizer="sgd")


def test_history_and_best_model_match_the_network(tmp_path):
    out, model = run(tmp_path, "hist", epochs=3)
    rows = read_history(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(r["time"] >= 0 and 0 <= r["acc"] <= 1 for r in rows)
    eval_ds = tiny_data(12, seed=1)
    x = np.stack([eval_ds[i][0].numpy() for i in range(12)])
    y = np.array([int(eval_ds[i][1]) for i in range(12)])

    def numpy_metrics(net):
        net.eval()
        logits = net(paddle.to_tensor(x)).numpy().astype("float64")
        logp = logits - logits.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        return -logp[np.arange(12), y].mean(), (logits.argmax(1) == y).mean()

    loss, acc = numpy_metrics(model.network)  # the last epoch's weights
    assert rows[-1]["eval_loss"] == pytest.approx(loss, rel=1e-5)
    assert rows[-1]["eval_acc"] == pytest.approx(acc)
    best = tiny_net(seed=123)
    best.set_state_dict(paddle.load(os.path.join(out, "best_model.pdparams")))
    assert numpy_metrics(best)[1] == pytest.approx(max(r["eval_acc"] for r in rows))
    state = load_checkpoint_state(out)
    assert state["epoch"] == 3 and state["best"] == pytest.approx(max(r["eval_acc"] for r in rows))


def test_resume_continues_epochs_lr_and_matches_an_uninterrupted_run(tmp_path):
    full, _ = run(tmp_path, "full", epochs=4, augment=True)
    part, _ = run(tmp_path, "part", epochs=4, augment=True, callbacks=[StopAfter(2)])
    assert load_checkpoint_state(part)["epoch"] == 2 and len(read_history(part)) == 2
    # A crash after the history row of epoch 3 but before its checkpoint: the row is dropped.
    with open(os.path.join(part, "history.csv"), "a") as f:
        f.write("3,9,9,9,9,9,9\n")
    rec = RecordLR()
    run(tmp_path, "part", epochs=4, augment=True, resume=True, callbacks=[rec])
    np.testing.assert_allclose(rec.lrs, [cosine(LR, t, 12) for t in range(6, 12)], rtol=1e-6)
    a, b = read_history(full), read_history(part)
    assert [r["epoch"] for r in b] == [1, 2, 3, 4]
    for key in ("loss", "acc", "eval_loss", "eval_acc", "lr"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=1e-5, err_msg=key)


def test_an_adam_run_resumes_with_its_moments_and_matches_an_uninterrupted_run(tmp_path):
    full, _ = run(tmp_path, "full", epochs=3, optimizer="adam")
    part, _ = run(tmp_path, "part", epochs=3, optimizer="adam", callbacks=[StopAfter(1)])
    _, model = run(tmp_path, "part", epochs=3, optimizer="adam", resume=True)
    assert type(model._optimizer) is paddle.optimizer.Adam
    a, b = read_history(full), read_history(part)
    for key in ("loss", "acc", "eval_loss", "eval_acc"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=1e-5, err_msg=key)
    # Adam differs from Momentum on this run: the setting reaches the optimizer.
    momentum, _ = run(tmp_path, "momentum", epochs=3)
    assert not np.allclose([r["loss"] for r in read_history(momentum)][1:], [r["loss"] for r in a][1:])


def test_same_seed_same_history(tmp_path):
    a, _ = run(tmp_path, "a", epochs=2)
    b, _ = run(tmp_path, "b", epochs=2)
    assert [r["loss"] for r in read_history(a)] == pytest.approx([r["loss"] for r in read_history(b)], rel=1e-6)


def test_existing_run_needs_resume_and_resume_needs_a_checkpoint(tmp_path):
    run(tmp_path, "x", epochs=1)
    with pytest.raises(FileExistsError, match="resume"):
        run(tmp_path, "x", epochs=1)
    with pytest.raises(FileNotFoundError, match="last.json"):
        run(tmp_path, "empty", epochs=1, resume=True)


def test_resume_refuses_weights_that_do_not_fit_and_names_broken_state(tmp_path):
    out, _ = run(tmp_path, "x", epochs=1)
    good = open(os.path.join(out, "last.json")).read()
    weights = paddle.load(os.path.join(out, "last.pdparams"))
    paddle.save(paddle.nn.Linear(3, 3).state_dict(), os.path.join(out, "last.pdparams"))
    with pytest.raises(ValueError, match=r"last.pdparams does not fit the network: .*e.g. 0.bias"):
        run(tmp_path, "x", epochs=2, resume=True)
    with open(os.path.join(out, "last.json"), "w") as f:
        f.write('{"epoch": 1.5}')
    with pytest.raises(RunFileError, match=r"last.json: epoch .*1.5"):
        run(tmp_path, "x", epochs=2, resume=True)
    with open(os.path.join(out, "last.json"), "w") as f:
        f.write(good)
    paddle.save(weights, os.path.join(out, "last.pdparams"))
    with open(os.path.join(out, "history.csv"), "a") as f:
        f.write("junk\n")
    with pytest.raises(RunFileError, match=r"history.csv, line 3: 'junk'"):
        run(tmp_path, "x", epochs=2, resume=True)


class Crash(RuntimeError):
    """Stands for a process killed (or a Ctrl-C) at one point of writing a checkpoint."""


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_crash_while_an_epoch_is_committed_leaves_the_previous_epoch_whole(tmp_path, monkeypatch, optimizer):
    """Killed after epoch 2's weights, optimizer state and best model are written but before last.json names
    epoch 2: the folder must still be epoch 1 throughout (last weights, best model), and the resumed run must
    train epoch 2 again from epoch 1 and end as a run never interrupted. Before, last.pdparams already held
    epoch 2's weights under a last.json of epoch 1, and the resume trained on from them."""
    import simam_paddle.engine.callbacks as callbacks

    one, _ = run(tmp_path, "one", epochs=3, optimizer=optimizer, callbacks=[StopAfter(1)])  # epoch 1 only
    full, _ = run(tmp_path, "full", epochs=3, optimizer=optimizer)
    write = callbacks.atomic_write_text

    def crash_at_epoch_2(text, path):
        if path.endswith("last.json") and '"epoch": 2' in text:
            raise Crash("killed while committing epoch 2")
        write(text, path)

    monkeypatch.setattr(callbacks, "atomic_write_text", crash_at_epoch_2)
    with pytest.raises(Crash):
        run(tmp_path, "crashed", epochs=3, optimizer=optimizer)
    monkeypatch.setattr(callbacks, "atomic_write_text", write)
    crashed = str(tmp_path / "crashed")
    assert load_checkpoint_state(crashed)["epoch"] == 1
    for name in ("last.pdparams", "best_model.pdparams"):
        kept, expected = paddle.load(os.path.join(crashed, name)), paddle.load(os.path.join(one, name))
        for key in expected:
            np.testing.assert_array_equal(kept[key].numpy(), expected[key].numpy(), err_msg=name)
    run(tmp_path, "crashed", epochs=3, optimizer=optimizer, resume=True)
    assert sorted(os.listdir(crashed)) == sorted(os.listdir(full))  # no staged file left
    a, b = read_history(full), read_history(crashed)
    assert [r["epoch"] for r in b] == [1, 2, 3]
    for key in ("loss", "acc", "eval_loss", "eval_acc", "lr"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=1e-5, err_msg=key)


def test_select_device():
    assert select_device("cpu") == "cpu"
    if not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
        with pytest.raises(ValueError, match="cpu"):
            select_device("gpu")
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    # Under paddle.distributed.launch every process runs train(); only rank 0 may write files.
    from simam_paddle.engine import callbacks as cb_mod
    from simam_paddle.engine import training as train_mod

    for module in (cb_mod, train_mod):
        monkeypatch.setattr(module, "is_main_process", lambda: False)
    out, model = run(tmp_path, "rank1", epochs=2)
    assert not os.path.exists(out)
    assert model.network is not None


def test_train_takes_a_resolved_config_only(tmp_path):
    with pytest.raises(ValueError, match="lr, weight_decay, onednn to be resolved; pass resolve_config"):
        train(tiny_net(), tiny_data(), config=TrainConfig(epochs=1, batch_size=8), output_dir=str(tmp_path / "x"))
    assert not os.path.exists(tmp_path / "x")


def test_train_called_the_old_way_says_how_to_call_it_now(tmp_path):
    """Before TrainConfig, train took its settings as keywords; such a call names the config it needs."""
    with pytest.raises(TypeError, match=re.escape("config=resolve_config(TrainConfig(epochs=2, lr=0.1))")):
        train(tiny_net(), tiny_data(), output_dir=str(tmp_path / "x"), epochs=2, lr=0.1)
    with pytest.raises(TypeError, match="got visualdl, which no setting is"):
        train(tiny_net(), tiny_data(), output_dir=str(tmp_path / "x"), epochs=2, visualdl=False)
    with pytest.raises(TypeError, match="needs config="):
        train(tiny_net(), tiny_data(), output_dir=str(tmp_path / "x"))
    with pytest.raises(TypeError, match="needs output_dir"):
        train(tiny_net(), tiny_data(), config=resolve_config(TrainConfig(epochs=1)))
    assert not os.path.exists(tmp_path / "x")


def test_resolve_config_fills_in_only_what_was_not_given():
    official = resolve_config(TrainConfig(model="cifar_resnet20", recipe="official-cifar", lr=0.05))
    assert (official.epochs, official.lr, official.batch_size, official.weight_decay) == (164, 0.05, 128, 5e-4)
    notebook = resolve_config(TrainConfig(model="resnet18", attention="SE", onednn=False))
    assert (notebook.epochs, notebook.lr, notebook.batch_size, notebook.weight_decay, notebook.attention,
            notebook.onednn) == (100, 0.01, 32, 1e-4, "se", False)
    assert resolve_config(notebook) == notebook  # nothing left to fill in
