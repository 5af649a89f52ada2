import numpy as np
import paddle
import paddle.nn as nn
import pytest

from simam_paddle.models import BasicConv2d, Inception


def _conv_params(cin, cout, k):
    return cin * cout * k * k + cout


def test_basic_conv2d_is_conv_bn_relu_with_notebook_epsilon():
    layer = BasicConv2d(3, 8, 3, stride=2, padding=1)
    conv, bn, act = list(layer.children())
    assert isinstance(conv, nn.Conv2D) and conv.bias is not None
    assert isinstance(bn, nn.BatchNorm2D) and bn._epsilon == pytest.approx(1e-3)
    assert isinstance(act, nn.ReLU)
    assert layer(paddle.randn([2, 3, 9, 9])).shape == [2, 8, 5, 5]


def test_basic_conv2d_matches_numpy_in_eval_mode():
    rng = np.random.default_rng(0)
    layer = BasicConv2d(2, 3, 1)
    w, b = rng.normal(size=(3, 2)), rng.normal(size=3)
    mean, var, gamma, beta = rng.normal(size=3), rng.uniform(0.5, 2, size=3), rng.normal(size=3), rng.normal(size=3)
    conv, bn, _ = list(layer.children())
    conv.weight.set_value(w.reshape(3, 2, 1, 1).astype("float32"))
    conv.bias.set_value(b.astype("float32"))
    for param, value in ((bn._mean, mean), (bn._variance, var), (bn.weight, gamma), (bn.bias, beta)):
        param.set_value(value.astype("float32"))
    layer.eval()
    x = rng.normal(size=(2, 2, 3, 3))
    z = np.einsum("oc,nchw->nohw", w, x) + b[:, None, None]
    z = (z - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * gamma[:, None, None] + beta[:, None, None]
    got = layer(paddle.to_tensor(x.astype("float32"))).numpy()
    np.testing.assert_allclose(got, np.maximum(z, 0), rtol=1e-5, atol=1e-5)


def test_inception_parameter_count_and_shape():
    layer = Inception(256, 64, (64, 128), (16, 32), 32)
    expected = (_conv_params(256, 64, 1) + _conv_params(256, 64, 1) + _conv_params(64, 128, 3)
                + _conv_params(256, 16, 1) + _conv_params(16, 32, 5) + _conv_params(256, 32, 1))
    assert sum(int(np.prod(p.shape)) for p in layer.parameters()) == expected
    assert layer(paddle.randn([1, 256, 5, 7])).shape == [1, 64 + 128 + 32 + 32, 5, 7]
    assert layer.out_channels == 256


def test_inception_concatenates_routes_in_order_after_relu():
    layer = Inception(4, 2, (3, 5), (2, 3), 1)
    for p in layer.parameters():
        p.set_value(np.zeros(p.shape, dtype="float32"))
    # Zero weights: each route outputs relu(its last bias); a negative bias checks the final ReLU.
    layer.route1x1_1.bias.set_value(np.full([2], 1.0, dtype="float32"))
    layer.route3x3_2.bias.set_value(np.full([5], 2.0, dtype="float32"))
    layer.route5x5_3.bias.set_value(np.full([3], -3.0, dtype="float32"))
    layer.route1x1_4.bias.set_value(np.full([1], 4.0, dtype="float32"))
    out = layer(paddle.randn([1, 4, 3, 3])).numpy()[0, :, 0, 0]
    np.testing.assert_array_equal(out, [1, 1, 2, 2, 2, 2, 2, 0, 0, 0, 4])
