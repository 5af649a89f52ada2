import numpy as np
import paddle
import paddle.nn as nn
import pytest

from simam_paddle import CBAM, SEModule, SimAM, available_attentions, create_attention
from simam_paddle.layers import register_attention, unregister_attention
from simam_paddle.layers import attention as attention_module


def _trainable(layer):
    return sum(int(np.prod(p.shape)) for p in layer.parameters() if p.trainable)


def _hidden(c, r):
    return max(1, c // r)


# Closed-form trainable parameter counts; every registered attention must have one.
CLOSED_FORM = {
    "none": lambda c, r, k: 0,
    "simam": lambda c, r, k: 0,
    "se": lambda c, r, k: 2 * c * _hidden(c, r),  # official: no biases
    "cbam": lambda c, r, k: 2 * c * _hidden(c, r) + _hidden(c, r) + c + 2 * k * k + 2,
}
OPTIONS = {"se": {"reduction": 4}, "cbam": {"reduction": 4, "spatial_kernel": 5}}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_registry_has_the_required_names_sorted():
    names = available_attentions()
    assert {"simam", "se", "cbam", "none"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", available_attentions())
def test_shape_preserved_no_nan_and_gradients(name):
    paddle.seed(0)
    layer = create_attention(name, 32)
    x = paddle.randn([2, 32, 6, 5])
    x.stop_gradient = False
    y = layer(x)
    assert y.shape == x.shape
    assert np.isfinite(y.numpy()).all()
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("name", available_attentions())
@pytest.mark.parametrize("channels", [64, 3])  # 3 // 4 == 0: the hidden width must still be 1
def test_parameter_count_matches_closed_form(name, channels):
    assert name in CLOSED_FORM, f"add a closed-form parameter count for {name!r}"
    opts = OPTIONS.get(name, {})
    layer = create_attention(name, channels, **opts)
    expected = CLOSED_FORM[name](channels, opts.get("reduction", 16), opts.get("spatial_kernel", 7))
    assert _trainable(layer) == expected


def test_defaults_follow_the_papers():
    se, cbam = SEModule(64), CBAM(64)
    assert _trainable(se) == 2 * 64 * 4  # r = 16, no biases as in the official SimAM code
    assert _trainable(SEModule(64, bias=True)) == 2 * 64 * 4 + 4 + 64  # the SE paper's layers
    assert cbam.spatial_order == ("max", "mean")
    assert cbam.spatial_bn._momentum == pytest.approx(0.99)  # torch momentum 0.01
    assert cbam.spatial_conv.weight.shape == [1, 2, 7, 7]


@pytest.mark.parametrize("bias", [False, True])
def test_se_against_numpy_reference(bias):
    rng = np.random.default_rng(0)
    c, r = 12, 4
    layer = SEModule(c, reduction=r, bias=bias)
    w1, b1 = rng.normal(size=(c // r, c)), rng.normal(size=c // r) * bias
    w2, b2 = rng.normal(size=(c, c // r)), rng.normal(size=c) * bias
    layer.fc1.weight.set_value(w1.reshape(c // r, c, 1, 1).astype("float32"))
    layer.fc2.weight.set_value(w2.reshape(c, c // r, 1, 1).astype("float32"))
    if bias:
        layer.fc1.bias.set_value(b1.astype("float32"))
        layer.fc2.bias.set_value(b2.astype("float32"))
    else:
        assert layer.fc1.bias is None and layer.fc2.bias is None
    x = rng.normal(size=(3, c, 5, 4))

    squeezed = x.mean(axis=(2, 3))  # average, not max pooling
    scale = _sigmoid(np.maximum(squeezed @ w1.T + b1, 0) @ w2.T + b2)
    expected = x * scale[:, :, None, None]

    got = layer(paddle.to_tensor(x.astype("float32"))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _correlate2d_same(maps, kernel):
    """maps: (N, 2, H, W), kernel: (2, k, k) -> (N, H, W), zero padding, cross-correlation like Conv2D."""
    k = kernel.shape[-1]
    p = k // 2
    n, _, h, w = maps.shape
    padded = np.pad(maps, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((n, h, w))
    for i in range(h):
        for j in range(w):
            out[:, i, j] = (padded[:, :, i:i + k, j:j + k] * kernel).sum(axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("order", [("max", "mean"), ("mean", "max")])
def test_cbam_against_numpy_reference_in_eval_mode(order):
    rng = np.random.default_rng(1)
    c, r, k = 8, 2, 3
    layer = CBAM(c, reduction=r, spatial_kernel=k, spatial_order=order)
    w1, b1 = rng.normal(size=(c // r, c)), rng.normal(size=c // r)
    w2, b2 = rng.normal(size=(c, c // r)), rng.normal(size=c)
    ks = rng.normal(size=(2, k, k))
    gamma, beta, mean, var = 1.5, -0.2, 0.3, 2.0
    layer.mlp[0].weight.set_value(w1.reshape(c // r, c, 1, 1).astype("float32"))
    layer.mlp[0].bias.set_value(b1.astype("float32"))
    layer.mlp[2].weight.set_value(w2.reshape(c, c // r, 1, 1).astype("float32"))
    layer.mlp[2].bias.set_value(b2.astype("float32"))
    layer.spatial_conv.weight.set_value(ks.reshape(1, 2, k, k).astype("float32"))
    bn = layer.spatial_bn
    for param, value in ((bn.weight, gamma), (bn.bias, beta), (bn._mean, mean), (bn._variance, var)):
        param.set_value(np.full([1], value, dtype="float32"))
    layer.eval()
    x = rng.normal(size=(2, c, 5, 6))

    def mlp(v):
        return np.maximum(v @ w1.T + b1, 0) @ w2.T + b2

    xc = x * _sigmoid(mlp(x.mean(axis=(2, 3))) + mlp(x.max(axis=(2, 3))))[:, :, None, None]
    pooled = {"max": xc.max(axis=1), "mean": xc.mean(axis=1)}
    maps = np.stack([pooled[order[0]], pooled[order[1]]], axis=1)
    s = _correlate2d_same(maps, ks)
    s = (s - mean) / np.sqrt(var + 1e-5) * gamma + beta
    expected = xc * _sigmoid(s)[:, None]

    got = layer(paddle.to_tensor(x.astype("float32"))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [SEModule, CBAM])
def test_channels_last_matches_channels_first(cls):
    paddle.seed(2)
    first = cls(16, reduction=4)
    last = cls(16, reduction=4, data_format="NHWC")
    last.set_state_dict(first.state_dict())
    first.eval(), last.eval()
    x = paddle.randn([2, 16, 5, 7])
    got = last(x.transpose([0, 2, 3, 1])).transpose([0, 3, 1, 2])
    np.testing.assert_allclose(got.numpy(), first(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["se", "cbam", "simam"])
def test_attention_changes_its_input(name):
    x = paddle.randn([2, 16, 6, 6])
    assert not np.allclose(create_attention(name, 16)(x).numpy(), x.numpy())


def test_none_and_none_string_give_identity():
    for name in (None, "none", "NONE"):
        layer = create_attention(name, 16)
        assert isinstance(layer, nn.Identity)


def test_factory_passes_options_and_is_case_insensitive():
    simam = create_attention("SimAM", 16, e_lambda=0.5)
    assert isinstance(simam, SimAM) and simam.e_lambda == 0.5
    se = create_attention("se", 32, reduction=8)
    assert isinstance(se, SEModule) and se.fc1.weight.shape[0] == 4


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        create_attention("eca", 16)
    for known in available_attentions():
        assert known in str(err.value)


def test_unexpected_option_is_an_error_not_ignored():
    with pytest.raises(ValueError, match="reduction"):
        create_attention("simam", 16, reduction=4)
    with pytest.raises(ValueError, match="e_lambda"):
        create_attention("se", 16, e_lambda=1e-4)
    with pytest.raises(ValueError, match="e_lambda"):
        create_attention("none", 16, e_lambda=1e-4)


@pytest.mark.parametrize("kwargs", [
    {"channels": 0}, {"channels": 16.0}, {"channels": 16, "reduction": 0}, {"channels": 16, "data_format": "NCL"},
])
@pytest.mark.parametrize("cls", [SEModule, CBAM])
def test_bad_layer_arguments(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)


def test_cbam_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        CBAM(16, spatial_kernel=4)


def test_register_attention_adds_a_layer_and_refuses_duplicates():
    try:
        @register_attention("double")
        class Double(nn.Layer):
            def __init__(self, channels, factor=2.0):
                super().__init__()
                self.factor = factor

            def forward(self, x):
                return self.factor * x

        assert "double" in available_attentions()
        x = paddle.ones([1, 4, 2, 2])
        np.testing.assert_allclose(create_attention("double", 4, factor=3.0)(x).numpy(), 3.0)
        with pytest.raises(ValueError, match="already registered"):
            register_attention("double")(Double)
    finally:
        unregister_attention("double")
    assert "double" not in available_attentions()
    with pytest.raises(ValueError, match="lower-case"):
        register_attention("Bad")


def test_unregister_attention_keeps_the_built_in_ones_and_names_unknown_ones():
    with pytest.raises(ValueError, match="built in"):
        unregister_attention("simam")
    with pytest.raises(ValueError, match="not registered.*simam"):
        unregister_attention("nothing")
    assert {"cbam", "none", "se", "simam"} <= set(available_attentions())


def test_register_attention_example_leaves_the_registry_as_it_was():
    import doctest

    before = dict(attention_module._REGISTRY)
    finder = doctest.DocTestFinder()
    (test,) = finder.find(attention_module.register_attention, globs=vars(attention_module).copy())
    result = doctest.DocTestRunner().run(test, out=lambda text: None)
    assert result.failed == 0 and result.attempted >= 4
    assert attention_module._REGISTRY == before


@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
@pytest.mark.parametrize("which", ["spatial", "channel"])
def test_cbam_max_pooling_values_and_gradients_match_numpy(data_format, which):
    """CBAM's max maps (pooling, not Paddle's slow max reduction): value and gradient against numpy,
    where the gradient of ``sum(max * g)`` is ``g`` at the position of each maximum, 0 elsewhere."""
    from simam_paddle.layers.attention import _channel_max, _global_max

    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 6 * 5 * 7).reshape(2, 6, 5, 7).astype("float32")  # distinct values: unique maxima
    axes = (2, 3) if which == "spatial" else (1,)
    if data_format == "NHWC":
        x = x.transpose(0, 2, 3, 1)
        axes = (1, 2) if which == "spatial" else (3,)
    expected = x.max(axis=axes, keepdims=True)
    g = rng.normal(size=expected.shape).astype("float32")
    tensor = paddle.to_tensor(x, stop_gradient=False)
    pool = _global_max if which == "spatial" else _channel_max
    got = pool(tensor, data_format)
    (got * paddle.to_tensor(g)).sum().backward()
    np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_array_equal(tensor.grad.numpy(), np.where(x == expected, np.broadcast_to(g, x.shape), 0))
