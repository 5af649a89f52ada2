"""Each run records the kernels its convolutions really ran on (history.csv), and report refuses to pool mixtures.

The record is counted from what ran (a compiled oneDNN convolution counts itself each time it runs), not copied
from what was asked for: a compile failure is retried, then stops the run; it never trains on other kernels.
"""
import csv

import paddle
import pytest

from simam_paddle.engine import acceleration
from simam_paddle.engine.acceleration import OneDNNCompileError, onednn_default
from simam_paddle.engine.history import read_history
from simam_paddle.experiments.ablation import run_ablation
from simam_paddle.experiments.report import write_report
from simam_paddle.models import build_model

from test_runs import make_split

FAST = dict(model="cifar_resnet20", image_size=32, batch_size=4, epochs=2, verbose=0)
needs_onednn = pytest.mark.skipif(not onednn_default(), reason="oneDNN convolutions need Paddle 3.x with oneDNN")


def _convs(attention):
    net = build_model("cifar_resnet20", 2, attention=attention)
    every = [m for m in net.sublayers() if isinstance(m, paddle.nn.Conv2D)]
    hooked = [m for m in every if m._forward_post_hooks]  # SimAM rides on these; they run on oneDNN too
    return len(every), len(hooked)


def _one_pixel_convs(attention):
    """Convolutions that see a 1 x 1 map at 32 px (SE's channel MLP): these run on Paddle's kernels."""
    net, seen = build_model("cifar_resnet20", 2, attention=attention), set()
    for conv in (m for m in net.sublayers() if isinstance(m, paddle.nn.Conv2D)):
        conv.register_forward_pre_hook(lambda layer, inputs: seen.add(id(layer)) if inputs[0].shape[2:] == [1, 1]
                                       else None)
    with paddle.no_grad():
        net(paddle.rand([1, 3, 32, 32]))
    return len(seen)


@needs_onednn
def test_a_three_run_ablation_in_one_process_records_each_runs_kernels(tmp_path):
    split = make_split(tmp_path / "split")
    result = run_ablation(split, str(tmp_path / "ab"), attentions=["none", "simam", "se"], seeds=[0], **FAST)
    for attention in ("none", "simam", "se"):
        total, one_pixel = _convs(attention)[0], _one_pixel_convs(attention)
        rows = read_history(tmp_path / "ab" / f"cifar_resnet20_{attention}_seed0")
        assert len(rows) == 2
        for row in rows:
            assert (row["onednn_convs"], row["paddle_convs"]) == (total - one_pixel, one_pixel), attention
    assert _one_pixel_convs("none") == _one_pixel_convs("simam") == 0 and _one_pixel_convs("se") == 18
    assert _convs("simam")[1] == 9 and _convs("none")[1] == 0
    kernels = {row["attention"]: row["kernels"] for row in result["rows"]}
    assert kernels == {"none": "21 / 0", "simam": "21 / 0", "se": f"{_convs('se')[0] - 18} / 18"}
    assert "| 21 / 0 |" in (tmp_path / "ab" / "summary.md").read_text()


def test_paddle_kernels_are_recorded_as_such(tmp_path):
    split = make_split(tmp_path / "split")
    run_ablation(split, str(tmp_path / "ab"), attentions=["none"], seeds=[0], onednn=False, **FAST)
    rows = read_history(tmp_path / "ab" / "cifar_resnet20_none_seed0")
    assert [(r["onednn_convs"], r["paddle_convs"]) for r in rows] == [(0, 21), (0, 21)]


def _failing_to_static(monkeypatch, fail):
    """paddle.jit.to_static whose programs raise for the calls ``fail(n)`` says (n counts every program made),
    from no program compiled (programs are shared by every convolution of a kind for the process)."""
    from simam_paddle.engine import acceleration

    monkeypatch.setattr(acceleration, "_PROGRAMS", {})
    real, made = paddle.jit.to_static, []

    def to_static(function, *args, **kwargs):
        made.append(function)
        if fail(len(made)):
            def broken(*a, **k):
                raise ValueError("Function: forward doesn't exist in the Module transformed from AST.")
            return broken
        return real(function, *args, **kwargs)

    monkeypatch.setattr(paddle.jit, "to_static", to_static)
    return made


@needs_onednn
def test_a_compile_failure_is_retried_and_the_run_still_all_onednn(tmp_path, monkeypatch):
    split = make_split(tmp_path / "split")
    _failing_to_static(monkeypatch, lambda n: n == 4)  # once, in the first try (the fourth kind of convolution)
    with pytest.warns(RuntimeWarning, match="trying again"):
        run_ablation(split, str(tmp_path / "ab"), attentions=["none"], seeds=[0], **FAST)
    rows = read_history(tmp_path / "ab" / "cifar_resnet20_none_seed0")
    assert [(r["onednn_convs"], r["paddle_convs"]) for r in rows] == [(21, 0), (21, 0)]


@needs_onednn
def test_a_lasting_compile_failure_stops_the_run_instead_of_changing_kernels(tmp_path, monkeypatch):
    split = make_split(tmp_path / "split")
    run_ablation(split, str(tmp_path / "ab"), attentions=["none"], seeds=[0], **FAST)
    # Every program after the third fails: the kinds compiled before are kept, so every try fails.
    _failing_to_static(monkeypatch, lambda n: n >= 4)
    with pytest.warns(RuntimeWarning, match="trying again"), pytest.raises(OneDNNCompileError, match="--no-onednn"):
        run_ablation(split, str(tmp_path / "ab"), attentions=["none", "se"], seeds=[0], **FAST)
    assert not (tmp_path / "ab" / "cifar_resnet20_se_seed0" / "history.csv").exists()
    assert len(read_history(tmp_path / "ab" / "cifar_resnet20_none_seed0")) == 2


def _history(path, counts):
    with open(path / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", "acc", "eval_loss", "eval_acc", "lr", "time", "onednn_convs", "paddle_convs"])
        for epoch, (onednn, plain) in enumerate(counts, 1):
            writer.writerow([epoch, 1.0, 0.5, 1.0, 0.5, 0.01, 1.0, onednn, plain])


@pytest.mark.parametrize("second, match", [([(0, 21), (0, 21)], "different kernels"),
                                           ([(21, 0), (0, 21)], "mixed: epoch 1 21 / 0, epoch 2 0 / 21")])
def test_report_refuses_to_pool_runs_on_different_kernels_unless_told(tmp_path, second, match):
    split = make_split(tmp_path / "split")
    run_ablation(split, str(tmp_path / "ab"), attentions=["none"], seeds=[0, 1], onednn=False, **FAST)
    _history(tmp_path / "ab" / "cifar_resnet20_none_seed0", [(21, 0), (21, 0)])
    _history(tmp_path / "ab" / "cifar_resnet20_none_seed1", second)
    with pytest.raises(ValueError, match=match):
        write_report(tmp_path / "ab", figure=False)
    report = write_report(tmp_path / "ab", figure=False, mixed_kernels=True)
    assert report["groups"][0]["n"] == 2


def test_an_old_history_without_kernel_columns_keeps_its_header_when_resumed(tmp_path):
    from types import SimpleNamespace

    from simam_paddle.engine.callbacks import HistoryLogger

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,acc,eval_loss,eval_acc,lr,time\n1,1.0,0.5,1.0,0.5,0.01,1.0\n")
    logger = HistoryLogger(str(path))
    logger.model = SimpleNamespace(network=paddle.nn.Conv2D(3, 4, 3))
    logger._epoch_done(2, {"acc": 0.75}, {"acc": 0.5})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(len(line.split(",")) == 7 for line in lines)
    assert [r.get("onednn_convs") for r in read_history(path)] == [None, None]
    new = tmp_path / "new.csv"
    logger = HistoryLogger(str(new))
    logger.model = SimpleNamespace(network=paddle.nn.Conv2D(3, 4, 3))
    logger._epoch_done(1, {"acc": 0.75}, {"acc": 0.5})
    assert [(r["onednn_convs"], r["paddle_convs"]) for r in read_history(new)] == [(0, 1)]
