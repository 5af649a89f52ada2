"""A traced SimAM (export, Paddle Inference) takes its means as global average pooling, which Paddle 3.3's
oneDNN predictor runs on oneDNN (``mean`` over H, W it keeps off), with the logits of dygraph's SimAM."""
import importlib

import numpy as np
import paddle
import pytest

from simam_paddle.engine.acceleration import onednn_available
from simam_paddle.engine.device import seed_everything, select_device
from simam_paddle.engine.inference import InferencePredictor
from simam_paddle.models.zoo import build_model

from reference import simam_reference

simam_module = importlib.import_module("simam_paddle.layers.simam")


@pytest.fixture(autouse=True)
def cpu():
    select_device("cpu")


@pytest.mark.parametrize("shape", [[2, 3, 5, 7], [1, 4, 1, 1], [3, 2, 8, 8]])
def test_traced_simam_pools_and_matches_numpy(shape):
    x = np.random.RandomState(0).randn(*shape).astype("float32") * 2 + 0.5
    layer = simam_module.SimAM()
    traced = paddle.jit.to_static(layer.forward, input_spec=[paddle.static.InputSpec(shape, "float32")],
                                  full_graph=True)
    got = traced(paddle.to_tensor(x)).numpy()
    # Paddle 3's PIR operators have name() ("pd_op.pool2d"), Paddle 2.6's legacy ones a type ("pool2d").
    ops = [op.name().replace("pd_op.", "") if hasattr(op, "name") else op.type
           for op in traced.concrete_program.main_program.global_block().ops]
    assert ops.count("pool2d") == 2 and "mean" not in ops and "reduce_mean" not in ops and "pow" not in ops, ops
    np.testing.assert_allclose(got, simam_reference(x), rtol=1e-5, atol=1e-6)


def test_unknown_sizes_keep_the_reductions():
    """Pooling needs n = H * W when tracing; a program for any image size keeps mean and sum."""
    x = np.random.RandomState(1).randn(2, 3, 6, 4).astype("float32")
    layer = simam_module.SimAM()
    traced = paddle.jit.to_static(layer.forward, input_spec=[paddle.static.InputSpec([None, 3, None, None],
                                                                                     "float32")], full_graph=True)
    np.testing.assert_allclose(traced(paddle.to_tensor(x)).numpy(), simam_reference(x),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not onednn_available(), reason="this Paddle has no oneDNN kernels")
@pytest.mark.parametrize("name,size", [("cifar_resnet20", 32), ("towernet", 128)])
def test_simam_network_through_the_onednn_predictor_has_dygraphs_logits(name, size):
    seed_everything(0)
    network = build_model(name, 10, attention="simam")
    network.eval()
    x = np.random.RandomState(2).randn(4, 3, size, size).astype("float32")
    with paddle.no_grad():
        want = network(paddle.to_tensor(x)).numpy()
    got = InferencePredictor(network, image_size=size, onednn=True)(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
