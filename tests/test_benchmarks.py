"""The counting helpers of the benchmark scripts (the scripts themselves are run by hand, see docs/PERFORMANCE.md)."""
import importlib.util
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_changed_decisions_counts_relu_sign_flips_and_positive_pool_winner_changes():
    gradients = _load("onednn_gradients")
    x = np.array([[[[3.0, 1.0], [2.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]]], dtype=np.float32)  # [1, 2, 2, 2]
    first = {"relu": [np.array([1e-7, -2.0, 0.5], np.float32), np.array([-1e-8], np.float32)],
             "pool": [(x, np.array([[[[0]], [[0]]]]))]}
    second = {"relu": [np.array([-1e-7, -1.0, 0.4], np.float32), np.array([1e-8], np.float32)],
              "pool": [(x, np.array([[[[3]], [[2]]]]))]}
    # Two ReLU inputs crossed 0; channel 0's tie (3 at 0 and 3) is broken the other way (counted),
    # channel 1's all-zero window passes no gradient whichever element wins (not counted).
    assert gradients.changed_decisions(first, second) == (2, 1)
    assert gradients.changed_decisions(first, first) == (0, 0)


def test_decisions_records_every_relu_input_and_the_pool_winners_then_restores_relu():
    gradients = _load("onednn_gradients")
    paddle.seed(0)
    conv = nn.Conv2D(1, 2, 3, padding=1)
    network = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2D(2, 2))
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 1, 4, 4)).astype(np.float32))
    original = F.relu
    with gradients.decisions(network) as seen:
        assert F.relu is not original  # recording while inside
        network(x)
    assert F.relu is original
    np.testing.assert_allclose(seen["relu"][0], conv(x).numpy(), rtol=1e-6)
    pooled_input, mask = seen["pool"][0]
    np.testing.assert_allclose(pooled_input, np.maximum(conv(x).numpy(), 0), rtol=1e-6)
    windows = pooled_input.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    flat = pooled_input.reshape(1, 2, 16)
    winners = np.take_along_axis(flat, mask.reshape(1, 2, 4), axis=2).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(winners, windows.max(axis=-1))


def _operator(name, ts, dur, tid=1):
    return {"cat": "Operator", "ph": "X", "name": f"{name}[{dur} us]", "ts": ts, "dur": dur, "tid": tid}


def test_self_times_take_nested_operators_out_of_their_parent_once():
    profile = _load("profile_train")
    events = [
        _operator("Global_Dy2StGradNode", 0, 100),  # a compiled convolution's backward program ...
        _operator("onednn_op.conv2d_grad", 10, 50),  # ... with two operators inside it,
        _operator("pd_op.onednn_to_paddle_layout", 70, 20),
        _operator("relu dygraph", 120, 7),  # a sibling after it
        _operator("conv2d dygraph", 0, 30, tid=2),  # another thread
        {"cat": "Forward", "ph": "X", "name": "TowerNet", "ts": 0, "dur": 500, "tid": 1},  # not an operator
    ]
    assert profile.self_times(events) == {"Global_Dy2StGradNode": 30.0, "onednn_op.conv2d_grad": 50.0,
                                          "pd_op.onednn_to_paddle_layout": 20.0, "relu": 7.0, "conv2d": 30.0}


def test_every_operator_of_a_training_step_has_one_kind():
    profile = _load("profile_train")
    assert profile.kind_of("conv2d") == profile.kind_of("Global_Conv2dGradNodeFinal") == "convolution, Paddle kernels"
    assert profile.kind_of("onednn_op.conv2d_grad") == "convolution, oneDNN kernels"
    assert profile.kind_of("onednn_op.add_grad") == profile.kind_of("onednn_op.reshape") \
        == "bias add and its gradient inside oneDNN programs"
    assert profile.kind_of("Global_Dy2StGradNode") == profile.kind_of("pd_op.assign") \
        == "oneDNN programs: layout changes, copies, launch"
    assert profile.kind_of("Global_CustomOpGradNode: simam_fused_grad") == "SimAM (fused operator)"
    assert profile.kind_of("cross_entropy_with_softmax") == profile.OTHER


def test_bias_benchmark_times_both_sums_and_compares_them(capsys, monkeypatch):
    bench = _load("bench_bias")
    monkeypatch.setattr(bench, "SHAPES", [[2, 3, 4, 5]])
    bench.main(["--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| [")]
    assert len(rows) == 1 and rows[0].startswith("| [2, 3, 4, 5] |")
    # The bias gradients of the two sums, compared by the script, agree to float32 rounding.
    assert float(rows[0].rstrip(" |").rsplit("|", 1)[1]) < 1e-5
    _, _, out, bias_grad, x_grad = bench.time_ms(bench._channel_bias, [2, 3, 4, 5], 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal([2, 3, 4, 5], dtype=np.float32)
    bias = rng.standard_normal(3, dtype=np.float32)
    grad = rng.standard_normal([2, 3, 4, 5], dtype=np.float32)
    np.testing.assert_array_equal(out, x + bias[None, :, None, None])
    np.testing.assert_allclose(bias_grad, grad.sum(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(x_grad, grad)


def test_inference_benchmark_gets_dygraphs_logits_from_every_variant(tmp_path):
    """Paddle Inference with and without oneDNN (the README's serving path) against the dygraph network."""
    import pytest

    from simam_paddle._paddle import is_paddle2

    if is_paddle2():
        pytest.skip("Paddle 2.6 saves model.pdmodel, the benchmark reads Paddle 3's model.json")
    bench = _load("bench_inference")
    spec = _load("bench_train").parse_spec("cifar_resnet20@32x4", 1)
    found = bench.measure(spec, steps=1, warmup=0, threads=1, folder=str(tmp_path))
    assert list(found) == ["dygraph", "dygraph, oneDNN convolutions", "Paddle Inference", "Paddle Inference, oneDNN"]
    for name, (speed, diff) in found.items():
        assert speed > 0 and diff < 1e-3, (name, diff)


def test_torch_networks_have_the_packages_parameter_counts():
    """The official PyTorch ResNet-20s of benchmarks/torch_resnet20.py against the package's, attention by attention.

    Runs where torch is importable, or in the interpreter SIMAM_PADDLE_TORCH_PYTHON names (torch is no
    dependency of the project, so it usually lives in an environment of its own).
    """
    import json
    import os
    import subprocess
    import sys

    import pytest

    from simam_paddle.models.zoo import build_model

    bench = _load("bench_train")
    expected = {}
    for attention in bench.TORCH_ATTENTIONS:
        spec = bench.parse_spec(f"cifar_resnet20:{attention}@32x1", 1)
        network = build_model("cifar_resnet20", 10, attention=attention, attention_kwargs=bench.attention_options(spec))
        expected[attention] = sum(int(np.prod(p.shape)) for p in network.parameters() if p.trainable)
    python = os.environ.get("SIMAM_PADDLE_TORCH_PYTHON")
    if importlib.util.find_spec("torch") is not None:
        script = _load("torch_resnet20")
        assert script.parameter_counts() == script.EXPECTED_PARAMETERS == expected
    elif python:
        done = subprocess.run([python, str(BENCHMARKS / "torch_resnet20.py"), "--check"], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr  # the script's own check against EXPECTED_PARAMETERS
        assert json.loads(done.stdout.strip().splitlines()[-1])["parameters"] == expected
    else:
        pytest.skip(f"torch is not importable by {sys.executable} and SIMAM_PADDLE_TORCH_PYTHON names no Python "
                    "that has it (torch is no dependency of the project)")
    assert expected == {"none": 272_474, "se": 280_538, "cbam": 281_858, "simam": 272_474}
