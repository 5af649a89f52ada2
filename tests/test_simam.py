import glob
import os

import numpy as np
import paddle
import pytest

from simam_paddle import SimAM, simam
from simam_paddle.layers import simam_weights
from simam_paddle.layers.simam import _simam_plain

from reference import simam_reference as reference

FORMATS = {
    "NCL": (2, 3, 7),
    "NCHW": (2, 3, 5, 4),
    "NCDHW": (2, 3, 3, 4, 2),
    "NLC": (2, 7, 3),
    "NHWC": (2, 5, 4, 3),
    "NDHWC": (2, 3, 4, 2, 3),
}


def tensor(a, dtype="float64", grad=False):
    t = paddle.to_tensor(np.asarray(a), dtype=dtype)
    t.stop_gradient = not grad
    return t


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---- forward values -------------------------------------------------------------------------


@pytest.mark.parametrize("data_format", sorted(FORMATS))
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_matches_numpy_reference(rng, data_format, dtype, tol):
    x = rng.standard_normal(FORMATS[data_format]) * 3 + 1
    x = x.astype(dtype)
    for e_lambda in (1e-4, 0.5):
        expected = reference(x, e_lambda, data_format)
        got = simam(tensor(x, dtype), e_lambda, data_format).numpy()
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
        layer = SimAM(x.shape[1], e_lambda=e_lambda, data_format=data_format)
        np.testing.assert_allclose(layer(tensor(x, dtype)).numpy(), expected, rtol=tol, atol=tol)
        plain = _simam_plain(tensor(x, dtype), e_lambda, data_format).numpy()
        np.testing.assert_allclose(plain, expected, rtol=tol, atol=tol)
        w = simam_weights(tensor(x, dtype), e_lambda, data_format).numpy()
        expected_w = reference(x, e_lambda, data_format, weights=True)
        np.testing.assert_allclose(w, expected_w, rtol=tol, atol=tol)


@pytest.mark.parametrize("impl", ["auto", "paddle"])
def test_impls_match_the_reference_and_leave_the_input_untouched(rng, impl):
    # tests/conftest.py sets SIMAM_PADDLE_FUSED=0, so "auto" runs the Paddle implementation here;
    # tests/test_fused.py checks that it picks the fused operator where that builds.
    x = rng.standard_normal((2, 4, 6, 6))
    xt = tensor(x, grad=True)
    y = simam(xt, impl=impl)
    np.testing.assert_allclose(y.numpy(), reference(x), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    # The implementation works in place on its own buffers; the caller's tensor must survive.
    np.testing.assert_array_equal(xt.numpy(), x)


@pytest.mark.parametrize("shape,data_format", [((2, 3, 1, 1), "NCHW"), ((2, 3, 1), "NCL"),
                                               ((2, 1, 1, 3), "NHWC"), ((1, 2, 1, 1, 1), "NCDHW")])
@pytest.mark.parametrize("fn", [simam, _simam_plain], ids=["simam", "plain"])
def test_single_position_map_has_no_nan(rng, shape, data_format, fn):
    # n - 1 == 0: the official code divides 0 by 0 here (NaN forward and backward).
    x = rng.standard_normal(shape)
    xt = tensor(x, grad=True)
    y = fn(xt, data_format=data_format)
    sig_half = 1.0 / (1.0 + np.exp(-0.5))
    np.testing.assert_allclose(y.numpy(), x * sig_half, rtol=1e-12)
    g = rng.standard_normal(shape)
    (gx,) = paddle.grad(y, xt, tensor(g))
    # With every deviation from the mean zero, only the direct path x * s survives.
    np.testing.assert_allclose(gx.numpy(), g * sig_half, rtol=1e-12)


# ---- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_returns_input_dtype(rng, dtype):
    x = tensor(rng.standard_normal((2, 3, 8, 8)), "float32").astype(dtype)
    x.stop_gradient = False
    y = simam(x)
    assert y.dtype == x.dtype
    assert simam_weights(x).dtype == x.dtype
    # Exact reference on the rounded input; the only error left is rounding the output.
    expected = reference(x.astype("float32").numpy())
    tol = 2e-3 if dtype == "float16" else 1.6e-2
    np.testing.assert_allclose(y.astype("float32").numpy(), expected, rtol=tol, atol=tol)
    y.astype("float32").sum().backward()
    assert x.grad.dtype == x.dtype
    assert np.isfinite(x.grad.astype("float32").numpy()).all()


def test_float16_statistics_do_not_overflow(rng):
    # sum(d) here is ~1e9, far beyond float16's 65504: float16 statistics would give inf and
    # flatten every weight to sigmoid(0.5).
    x = (rng.standard_normal((1, 2, 64, 64)) * 500).astype(np.float16)
    y = simam(tensor(x, "float16"))
    assert y.dtype == paddle.float16
    got = y.astype("float32").numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference(x.astype(np.float64)), rtol=2e-3, atol=0.5)


# ---- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("data_format", sorted(FORMATS))
def test_gradient_matches_plain_autograd(rng, data_format):
    shape = FORMATS[data_format]
    x = rng.standard_normal(shape) * 2 + 0.5
    g = rng.standard_normal(shape)
    for e_lambda in (1e-4, 0.3):
        xa, xb = tensor(x, grad=True), tensor(x, grad=True)
        (ga,) = paddle.grad(simam(xa, e_lambda, data_format), xa, tensor(g))
        (gb,) = paddle.grad(_simam_plain(xb, e_lambda, data_format), xb, tensor(g))
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,data_format", [((2, 2, 3, 3), "NCHW"), ((1, 5, 2), "NLC"),
                                               ((1, 2, 2, 2, 2), "NCDHW")])
def test_gradient_matches_central_differences(rng, shape, data_format):
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    e_lambda = 1e-2
    xt = tensor(x, grad=True)
    (analytic,) = paddle.grad(simam(xt, e_lambda, data_format), xt, tensor(g))
    # Finite differences of the numpy reference of L = sum(g * y), one element at a time.
    h = 1e-6
    numeric = np.empty(x.size)
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = h
        step = step.reshape(shape)
        up = (g * reference(x + step, e_lambda, data_format)).sum()
        down = (g * reference(x - step, e_lambda, data_format)).sum()
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(analytic.numpy().ravel(), numeric, rtol=1e-6, atol=1e-8)


def test_gradient_flows_through_layer_in_a_network(rng):
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, padding=1), SimAM(4))
    net(paddle.to_tensor(rng.standard_normal((2, 3, 6, 6)), dtype="float32")).mean().backward()
    conv_grad = net[0].weight.grad
    assert conv_grad is not None and np.isfinite(conv_grad.numpy()).all()
    assert float(paddle.abs(conv_grad).sum()) > 0


# ---- the closed form behind the formula -----------------------------------------------------


def energy_minimum(t: float, others: np.ndarray, lam: float):
    """Minimise e_t(w, b) = 1/(M-1) sum (-1 - (w x_i + b))^2 + (1 - (w t + b))^2 + lam w^2.

    e_t is a sum of squared residuals in (w, b), so it is an ordinary least-squares problem.
    """
    m1 = len(others)
    scale = 1.0 / np.sqrt(m1)
    a = np.vstack([
        np.column_stack([others * scale, np.full(m1, scale)]),
        [t, 1.0],
        [np.sqrt(lam), 0.0],
    ])
    y = np.concatenate([np.full(m1, -scale), [1.0], [0.0]])
    (w, b), *_ = np.linalg.lstsq(a, y, rcond=None)
    return w, b, float(np.sum((a @ [w, b] - y) ** 2))


@pytest.mark.parametrize("lam", [1e-4, 0.1, 2.0])
def test_energy_closed_form(rng, lam):
    x = rng.standard_normal(40) * 1.5 + 3.0
    for k in (0, 7, 21):
        t, others = x[k], np.delete(x, k)
        mu, var = others.mean(), others.var()  # over the other M-1 neurons, 1/(M-1)
        w, b, e_min = energy_minimum(t, others, lam)
        denom = (t - mu) ** 2 + 2 * var + 2 * lam
        closed = 4 * (var + lam) / denom
        np.testing.assert_allclose(e_min, closed, rtol=1e-9)
        # Minimising eq. 2 as written gives w with the sign of (t - mu) and b = -(t + mu) w / 2.
        np.testing.assert_allclose(w, 2 * (t - mu) / denom, rtol=1e-9)
        np.testing.assert_allclose(b, -0.5 * (t + mu) * w, rtol=1e-9, atol=1e-12)
        # The seed notes' eq. 5 reads mu^2 for sigma^2 in the numerator; that is not the minimum.
        assert not np.isclose(4 * (mu ** 2 + lam) / denom, e_min, rtol=1e-3)
        # 1/e* is exactly the sigmoid's argument the code uses, with leave-one-out statistics.
        np.testing.assert_allclose(1 / closed, (t - mu) ** 2 / (4 * (var + lam)) + 0.5, rtol=1e-12)


@pytest.mark.parametrize("m", [64, 256, 1024])
def test_code_approximates_leave_one_out_energy(rng, m):
    # The code uses all-n statistics instead of leave-one-out ones; first-order error (2 + z^2)/M.
    lam = 1e-4
    x = rng.standard_normal(m)
    w = simam_weights(tensor(x.reshape(1, 1, m)), lam, "NCL").numpy().ravel()
    code_inv_e = np.log(w / (1 - w))
    inv_e = np.array([
        1 / energy_minimum(x[k], np.delete(x, k), lam)[2] for k in range(m)
    ])
    z2 = (x - x.mean()) ** 2 / x.var(ddof=1)
    rel = np.abs(code_inv_e - inv_e) / inv_e
    assert np.all(rel <= 2 * (1 + z2) / m)


# ---- layer, errors, export ------------------------------------------------------------------


def test_layer_has_no_parameters_and_ignores_channels():
    for layer in (SimAM(), SimAM(64), SimAM(channels=3, e_lambda=0.1, data_format="NHWC")):
        assert layer.parameters() == []
        assert layer.state_dict() == {}
    assert "e_lambda=0.1" in repr(SimAM(3, e_lambda=0.1))


def test_errors_say_what_is_expected():
    with pytest.raises(ValueError, match="at least 3 dims"):
        simam(paddle.randn([4, 5]))
    with pytest.raises(ValueError, match=r"'NCHW' expects a 4-D.*\['NCL', 'NLC'\]"):
        simam(paddle.randn([2, 3, 4]))
    with pytest.raises(ValueError, match=r"'NHWC' expects a 4-D.*'NCDHW'"):
        SimAM(data_format="NHWC")(paddle.randn([2, 3, 4, 4, 4]))
    with pytest.raises(ValueError, match="6-D input SimAM supports 3-D to 5-D"):
        simam(paddle.randn([1, 2, 2, 2, 2, 2]))
    with pytest.raises(ValueError, match=r"Unknown data_format 'NWHC'.*'NHWC'"):
        simam(paddle.randn([2, 3, 4, 4]), data_format="NWHC")
    with pytest.raises(ValueError, match=r"Unknown data_format 'nchw'.*'NCHW'"):
        SimAM(8, data_format="nchw")
    with pytest.raises(ValueError, match=r"Unknown SimAM impl 'cuda'.*'auto'.*'paddle'"):
        simam(paddle.randn([2, 3, 4, 4]), impl="cuda")
    for bad in (0, -1e-4, float("nan"), float("inf"), "1e-4"):
        with pytest.raises(ValueError, match="e_lambda must be a positive"):
            SimAM(e_lambda=bad)
        with pytest.raises(ValueError, match="e_lambda must be a positive"):
            simam(paddle.randn([2, 3, 4, 4]), e_lambda=bad)


@pytest.mark.parametrize("spatial", [[8, 8], [None, None]], ids=["static", "dynamic"])
def test_jit_save_round_trip(tmp_path, rng, spatial):
    paddle.seed(0)
    net = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3, padding=1), SimAM(4), paddle.nn.Conv2D(4, 2, 1), SimAM(2)
    )
    net.eval()
    prefix = str(tmp_path / "model")
    spec = paddle.static.InputSpec([None, 3, *spatial], "float32")
    paddle.jit.save(net, prefix, input_spec=[spec])
    assert glob.glob(prefix + ".*"), os.listdir(tmp_path)
    loaded = paddle.jit.load(prefix)
    sizes = [(8, 8)] if spatial[0] else [(8, 8), (5, 3), (1, 1)]
    for h, w in sizes:
        x = paddle.to_tensor(rng.standard_normal((2, 3, h, w)), dtype="float32")
        expected = net(x).numpy()
        got = loaded(x).numpy()
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
