"""Checkpoints of a run folder (simam_paddle/engine/checkpoints.py)."""
import json

import numpy as np
import paddle
import pytest

from simam_paddle.engine.checkpoints import (
    atomic_save,
    check_state_fits,
    load_checkpoint_state,
    load_state,
    portable_optimizer_state,
    restore_optimizer_state,
)
from simam_paddle.engine.history import RunFileError


def test_atomic_save_writes_what_paddle_save_writes(tmp_path):
    state = paddle.nn.Linear(3, 2).state_dict()
    atomic_save(state, str(tmp_path / "sub" / "x.pdparams"))
    paddle.save(state, str(tmp_path / "plain.pdparams"))
    assert (tmp_path / "sub" / "x.pdparams").read_bytes() == (tmp_path / "plain.pdparams").read_bytes()
    loaded = load_state(str(tmp_path / "sub" / "x.pdparams"))
    np.testing.assert_array_equal(loaded["weight"].numpy(), state["weight"].numpy())


def test_load_state_names_an_empty_or_damaged_file(tmp_path):
    path = tmp_path / "w.pdparams"
    path.write_bytes(b"")
    with pytest.raises(RunFileError, match=r"w.pdparams is empty"):
        load_state(str(path))
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(RunFileError, match=r"w.pdparams is not a readable Paddle checkpoint"):
        load_state(str(path))
    with pytest.raises(FileNotFoundError, match="nope.pdparams"):
        load_state(str(tmp_path / "nope.pdparams"))


def test_check_state_fits_names_missing_unexpected_and_mis_shaped_weights():
    net = paddle.nn.Sequential(paddle.nn.Linear(2, 3))
    check_state_fits(net.state_dict(), net, "a.pdparams")
    other = paddle.nn.Sequential(paddle.nn.Linear(2, 4), paddle.nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"b.pdparams does not fit the model: 2 unexpected \(e.g. 1.bias\); "
                                         r"2 of other shape \(e.g. 0.bias: \[4\] vs \[3\]\)"):
        check_state_fits(other.state_dict(), net, "b.pdparams", what="the model")
    with pytest.raises(ValueError, match=r"1 weights missing \(e.g. 0.weight\)"):
        check_state_fits({"0.bias": net.state_dict()["0.bias"]}, net, "c.pdparams")


def test_optimizer_state_survives_rebuilding_the_network(tmp_path):
    def build():
        net = paddle.nn.Sequential(paddle.nn.Linear(3, 2))
        return net, paddle.optimizer.Momentum(0.1, parameters=net.parameters())

    net, opt = build()
    net(paddle.rand([4, 3])).sum().backward()
    opt.step()
    paddle.save(portable_optimizer_state(opt, net), str(tmp_path / "last.pdopt"))
    state = paddle.load(str(tmp_path / "last.pdopt"))  # what resuming reads: no tensor shared with `opt`
    assert "@0.weight_velocity_0" in state and not any(net[0].weight.name in k for k in state)
    paddle.nn.Linear(5, 5)  # shifts Paddle's generated parameter names
    again, again_opt = build()
    assert again[0].weight.name != net[0].weight.name
    restore_optimizer_state(again_opt, again, state)
    again.set_state_dict({k: paddle.to_tensor(v.numpy()) for k, v in net.state_dict().items()})
    # The next step of the rebuilt pair equals the original's: the restored velocity is used (a fresh one,
    # zero, would give another update). Paddle 2.6 creates the accumulators only at that step.
    x = paddle.rand([4, 3])
    for network, optimizer in ((net, opt), (again, again_opt)):
        optimizer.clear_grad()
        network(x).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(again[0].weight.numpy(), net[0].weight.numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(again[0].bias.numpy(), net[0].bias.numpy(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("content, error, match", [
    (None, FileNotFoundError, "nothing to resume"),
    ("{not json", RunFileError, "last.json is not valid JSON"),
    ('{"epoch": -1}', RunFileError, "epoch must be the number of finished epochs"),
    ('{"epoch": true}', RunFileError, "epoch must be"),
])
def test_load_checkpoint_state_names_what_is_wrong(tmp_path, content, error, match):
    if content is not None:
        (tmp_path / "last.json").write_text(content)
    with pytest.raises(error, match=match):
        load_checkpoint_state(str(tmp_path))


def test_load_checkpoint_state_reads_last_json(tmp_path):
    (tmp_path / "last.json").write_text(json.dumps({"epoch": 2, "best": 0.5, "best_epoch": 1}))
    assert load_checkpoint_state(str(tmp_path)) == {"epoch": 2, "best": 0.5, "best_epoch": 1}


class _RunsCode:
    """What a hostile weights file pickles: unpickling it calls os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_a_weights_file_that_would_run_code_is_refused_before_it_runs(tmp_path):
    import pickle

    from simam_paddle.engine.checkpoints import load_state
    from simam_paddle.engine.history import RunFileError

    marker = tmp_path / "ran"
    path = tmp_path / "best_model.pdparams"
    state = {"weight": np.zeros((2, 3), dtype="float32"), "evil": _RunsCode(f"touch {marker}")}
    path.write_bytes(pickle.dumps(state, protocol=4))
    with pytest.raises(RunFileError, match=r"asks for posix\.system.*not loaded"):
        load_state(str(path))
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"weight": np.zeros(3)}, protocol=4)[:-9])  # truncated: a clear error too
    with pytest.raises(RunFileError, match="not a readable Paddle checkpoint"):
        load_state(str(path))


def test_plain_checkpoints_still_load(tmp_path):
    import paddle

    from simam_paddle.engine.checkpoints import atomic_save, load_state

    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4))
    opt = paddle.optimizer.Momentum(learning_rate=paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10),
                                    parameters=net.parameters())
    net(paddle.rand([1, 3, 5, 5])).mean().backward()
    opt.step()
    atomic_save(net.state_dict(), str(tmp_path / "w.pdparams"))
    atomic_save(opt.state_dict(), str(tmp_path / "w.pdopt"))
    weights = load_state(str(tmp_path / "w.pdparams"))
    np.testing.assert_array_equal(weights["0.weight"].numpy(), net.state_dict()["0.weight"].numpy())
    assert "LR_Scheduler" in load_state(str(tmp_path / "w.pdopt"))


def _pickle_calling(module, name, *args):
    """A protocol-2 pickle whose loading calls module.name(*args) (strings only), built opcode by opcode."""
    import pickle

    body = b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    body += b"(" + b"".join(b"X" + len(a.encode()).to_bytes(4, "little") + a.encode() for a in args) + b"tR"
    return b"\x80\x02}X\x01\x00\x00\x00w" + body + b"s."


@pytest.mark.parametrize("payload, named", [
    (_pickle_calling("builtins", "eval", "__import__('os').getcwd()"), "builtins.eval"),
    (_pickle_calling("builtins", "getattr", "x", "y"), "builtins.getattr"),
    (_pickle_calling("subprocess", "call", "true"), "subprocess.call"),
])
def test_eval_getattr_and_other_callables_are_refused(tmp_path, payload, named):
    from simam_paddle.engine.checkpoints import load_state
    from simam_paddle.engine.history import RunFileError

    path = tmp_path / "last.pdopt"
    path.write_bytes(payload)
    with pytest.raises(RunFileError, match=named.replace(".", r"\.")):
        load_state(str(path))


def test_a_build_that_would_change_a_shared_dtype_is_refused(tmp_path):
    import pickle

    from simam_paddle.engine.checkpoints import load_state
    from simam_paddle.engine.history import RunFileError

    legit = pickle.dumps({"w": np.zeros(3, dtype="float32")}, protocol=4)
    hostile = legit.replace(b"\x8c\x01<", b"\x8c\x01>")  # the float32 dtype's byte order, big-endian
    assert hostile != legit
    path = tmp_path / "best_model.pdparams"
    path.write_bytes(hostile)
    with pytest.raises(RunFileError, match="shared numpy dtype float32"):
        load_state(str(path))
    assert np.dtype("float32").byteorder == "="  # the process's float32 is as it was
    assert np.array([1.0], dtype="float32").tobytes() == np.float32(1.0).tobytes()


@pytest.mark.parametrize("committed", [None, 2, 3])
def test_settle_checkpoint_finishes_the_epoch_last_json_names_and_drops_any_other(tmp_path, committed):
    """Staged files of the epoch last.json names were committed: they replace the files; staged files of any
    other epoch were not: they go, and the files stand. Nothing else in the folder is touched."""
    import json

    from simam_paddle.engine.checkpoints import settle_checkpoint, staged_path

    files = {"last.pdparams": b"w2", "last.pdopt": b"o2", "best_model.pdparams": b"b1", "history.csv": b"h",
             "notes.epoch3": b"n"}
    staged = {staged_path("last.pdparams", 3): b"w3", staged_path("last.pdopt", 3): b"o3",
              staged_path("best_model.pdparams", 3): b"b3"}
    for name, content in {**files, **staged}.items():
        (tmp_path / name).write_bytes(content)
    if committed is not None:
        (tmp_path / "last.json").write_text(json.dumps({"epoch": committed}))
    settle_checkpoint(str(tmp_path))
    left = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "last.json"}
    if committed == 3:
        assert left == {**files, "last.pdparams": b"w3", "last.pdopt": b"o3", "best_model.pdparams": b"b3"}
    else:
        assert left == files
    # Half-way through the renames (last.pdparams done, last.pdopt not): the next settle finishes it.
    (tmp_path / "last.json").write_text(json.dumps({"epoch": 4}))
    (tmp_path / staged_path("last.pdopt", 4)).write_bytes(b"o4")
    settle_checkpoint(str(tmp_path))
    assert (tmp_path / "last.pdopt").read_bytes() == b"o4"
    assert not (tmp_path / staged_path("last.pdopt", 4)).exists()


def test_finished_epochs_are_those_history_and_last_json_both_hold(tmp_path):
    """A history row is written before its epoch's checkpoint commits: a crash between them must not make the
    run look finished (complete_run would skip its last epoch). A committed experiment (history, no last.json)
    counts its rows."""
    import json

    from simam_paddle.engine.checkpoints import finished_epochs
    from simam_paddle.engine.history import HISTORY_COLUMNS

    rows = "\n".join(",".join([str(e)] + ["0.5"] * (len(HISTORY_COLUMNS) - 1)) for e in (1, 2, 3))
    (tmp_path / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n" + rows + "\n")
    assert finished_epochs(str(tmp_path)) == 3
    (tmp_path / "last.json").write_text(json.dumps({"epoch": 2}))
    assert finished_epochs(str(tmp_path)) == 2
    (tmp_path / "last.json").write_text(json.dumps({"epoch": 3}))
    assert finished_epochs(str(tmp_path)) == 3
    assert finished_epochs(str(tmp_path / "nothing")) == 0
