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
