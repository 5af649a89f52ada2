"""The fused SimAM operator (simam_paddle/layers/fused.py, csrc/): values, gradients, layouts, build cache.

The operator is compiled once per test session into a temporary cache (module fixture `op`).
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import paddle
import pytest

from simam_paddle import SimAM, simam
from simam_paddle._paddle import num_threads
from simam_paddle.layers import fused

from reference import simam_reference as reference
import subprocesses

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.paddle3(reason="the fused operator does not compile on Paddle 2.6 (tests/test_paddle26.py)")


def numeric_grad(x, g, data_format, eps=1e-6):
    """d(sum(reference(x) * g))/dx by central differences in float64."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = ((reference(xp, data_format=data_format) - reference(xm, data_format=data_format))
                   * g).sum() / (2 * eps)
    return grad


def fused_forward_backward(x, g, data_format="NCHW", dtype="float64"):
    xt = paddle.to_tensor(x, dtype=dtype, stop_gradient=False)
    y = simam(xt, data_format=data_format, impl="fused")
    y.backward(paddle.to_tensor(g, dtype=dtype))
    return y.numpy(), xt.grad.numpy()


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    """Build the operator into a fresh cache (or reuse the one this process loaded already)."""
    cache = tmp_path_factory.mktemp("simam_cache")
    if not fused.fused_available(cache):
        if shutil.which(fused._compiler_command("CXX")) is None:
            pytest.skip(f"no compiler: {fused.fused_unavailable_reason()}")
        pytest.fail(f"the fused operator did not build: {fused.fused_unavailable_reason()}")
    return Path(fused._state["path"])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


SHAPES = [
    ((2, 3, 5, 7), "NCHW"),
    ((2, 5, 7, 3), "NHWC"),
    ((2, 3, 11), "NCL"),
    ((2, 11, 3), "NLC"),
    ((1, 2, 3, 4, 5), "NCDHW"),
    ((1, 3, 4, 5, 2), "NDHWC"),
    ((3, 1, 4, 4), "NCHW"),  # one channel
    ((2, 4, 1, 1), "NCHW"),  # 1x1 maps
    ((2, 1, 1, 4), "NHWC"),  # 1x1 maps, channels last
    ((1, 3, 2, 260), "NHWC"),  # more channels than one channels-last tile (256) holds
]


@pytest.mark.parametrize("shape,data_format", SHAPES)
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-6)])
def test_forward_matches_numpy(op, rng, shape, data_format, dtype, rtol):
    x = rng.standard_normal(shape) * 3 + 1
    y = simam(paddle.to_tensor(x, dtype=dtype), data_format=data_format, impl="fused")
    assert y.dtype == getattr(paddle, dtype)
    x_seen = x.astype(dtype).astype(np.float64)  # the reference sees the rounded input
    np.testing.assert_allclose(y.numpy(), reference(x_seen, data_format=data_format), rtol=rtol,
                               atol=rtol)


@pytest.mark.parametrize("shape,data_format", [s for s in SHAPES if np.prod(s[0]) <= 120])
def test_gradients_match_central_differences(op, rng, shape, data_format):
    x = rng.standard_normal(shape) * 2
    g = rng.standard_normal(shape)
    expected = numeric_grad(x, g, data_format)
    _, grad64 = fused_forward_backward(x, g, data_format, "float64")
    np.testing.assert_allclose(grad64, expected, rtol=1e-6, atol=1e-8)
    _, grad32 = fused_forward_backward(x.astype(np.float32), g, data_format, "float32")
    np.testing.assert_allclose(grad32, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("shape,data_format", [((4, 16, 9, 9), "NCHW"), ((4, 9, 9, 16), "NHWC")])
def test_matches_paddle_implementation(op, rng, shape, data_format):
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    results = {}
    for impl in ("fused", "paddle"):
        xt = paddle.to_tensor(x, stop_gradient=False)
        y = simam(xt, data_format=data_format, impl=impl)
        y.backward(paddle.to_tensor(g))
        results[impl] = (y.numpy(), xt.grad.numpy())
    np.testing.assert_allclose(results["fused"][0], results["paddle"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results["fused"][1], results["paddle"][1], rtol=1e-4, atol=1e-5)


def test_single_position_is_x_times_sigmoid_half(op, rng):
    # v := 0 on a 1x1 map, so y = x sigmoid(1/2) and dy/dx = sigmoid(1/2): no NaN anywhere.
    x = rng.standard_normal((4, 3, 1, 1))
    g = rng.standard_normal((4, 3, 1, 1))
    s = 1 / (1 + np.exp(-0.5))
    for dtype in ("float32", "float64"):
        y, grad = fused_forward_backward(x, g, "NCHW", dtype)
        np.testing.assert_allclose(y, x * s, rtol=1e-6)
        np.testing.assert_allclose(grad, g * s, rtol=1e-6)


def test_heavy_tailed_input_covers_the_exp_range(op, rng):
    # Cauchy samples put the sigmoid argument anywhere from 1/2 to thousands, through the
    # vectorised exp's whole range (and its clamp at -87); float32 must stay within rounding.
    x = rng.standard_cauchy((2, 8, 33, 31)).astype(np.float32)
    y = simam(paddle.to_tensor(x), impl="fused").numpy()
    np.testing.assert_allclose(y, reference(x), rtol=1e-6, atol=1e-30)


def test_statistics_survive_a_large_mean(op, rng):
    # float32 sums of 1e4 + noise lose the variance; double accumulation keeps it.
    x = (1e4 + rng.standard_normal((1, 2, 64, 64))).astype(np.float32)
    y = simam(paddle.to_tensor(x), impl="fused").numpy()
    np.testing.assert_allclose(y, reference(x), rtol=2e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_goes_through_float32(op, rng, dtype):
    x = paddle.to_tensor(rng.standard_normal((2, 3, 6, 6)) * 4, dtype=dtype)
    x.stop_gradient = False
    y = simam(x, impl="fused")
    assert y.dtype == x.dtype
    y.sum().backward()
    assert x.grad.dtype == x.dtype
    exact = reference(x.astype("float32").numpy())
    tol = 1e-2 if dtype == "float16" else 2e-2
    np.testing.assert_allclose(y.astype("float32").numpy(), exact, rtol=tol, atol=tol)


def test_strided_views(op, rng):
    base = rng.standard_normal((2, 5, 6, 8))
    g = rng.standard_normal((2, 8, 5, 3))
    xt = paddle.to_tensor(base, stop_gradient=False)
    view = xt.transpose([0, 3, 1, 2])[:, :, :, ::2]  # NCHW view of NHWC memory, every other column
    y = simam(view, impl="fused")
    y.backward(paddle.to_tensor(g))
    x_view = base.transpose(0, 3, 1, 2)[:, :, :, ::2]
    np.testing.assert_allclose(y.numpy(), reference(x_view), rtol=1e-12)
    expected = np.zeros_like(base)
    expected.transpose(0, 3, 1, 2)[:, :, :, ::2] = numeric_grad(x_view, g, "NCHW")
    np.testing.assert_allclose(xt.grad.numpy(), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "shape,data_format", [((4, 32, 24, 24), "NCHW"), ((1, 24, 24, 64), "NHWC")]
)
def test_follows_paddle_thread_setting(op, rng, shape, data_format):
    # Large enough to run in parallel; channels last with batch 1 splits the channels into tiles.
    before = num_threads()
    x = rng.standard_normal(shape).astype(np.float32)
    try:
        outputs = []
        for threads in (1, 2):
            paddle.base.core.set_num_threads(threads)
            assert num_threads() == threads
            xt = paddle.to_tensor(x, stop_gradient=False)
            y = simam(xt, data_format=data_format, impl="fused")
            y.sum().backward()
            outputs.append((y.numpy(), xt.grad.numpy()))
    finally:
        paddle.base.core.set_num_threads(before)
    # Each map is computed whole by one thread, so the thread count cannot change a bit.
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
    np.testing.assert_allclose(outputs[1][0], reference(x, data_format=data_format), rtol=2e-6)


def test_auto_uses_fused_and_export_records_plain_ops(op, rng, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMAM_PADDLE_FUSED", "1")
    x = paddle.to_tensor(rng.standard_normal((2, 4, 6, 6)), dtype="float32")
    np.testing.assert_array_equal(simam(x).numpy(), simam(x, impl="fused").numpy())
    net = paddle.nn.Sequential(paddle.nn.Conv2D(4, 4, 3, padding=1), SimAM(4))
    net.eval()
    prefix = str(tmp_path / "model")
    paddle.jit.save(net, prefix, input_spec=[paddle.static.InputSpec([None, 4, 6, 6], "float32")])
    saved = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"simam_fused" not in saved  # loadable without this library
    np.testing.assert_allclose(paddle.jit.load(prefix)(x).numpy(), net(x).numpy(), rtol=1e-5,
                               atol=1e-6)


def test_errors_name_what_is_expected(op):
    with pytest.raises(ValueError, match="data_format 'NHWC' expects a 4-D"):
        simam(paddle.randn([2, 3, 4]), data_format="NHWC", impl="fused")


# ---- build cache and fallback (subprocesses) --------------------------------------------------


def run_python(code, env_updates, timeout=300):
    return subprocesses.run_python(textwrap.dedent(code), env={"CC": None, "CXX": None, **env_updates},
                                   timeout=timeout)


CHECK_FUSED = """
    import json, warnings
    import numpy as np, paddle
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import simam_paddle
        from simam_paddle.layers import fused
        x = paddle.to_tensor(np.linspace(-3, 3, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5), dtype="float32")
        y = simam_paddle.simam(x)
        y2 = simam_paddle.simam(x)
    print(json.dumps({"y": y.numpy().tolist(), "state": fused._state,
                      "warnings": [str(w.message) for w in caught
                                   if issubclass(w.category, RuntimeWarning)]}))
"""


def last_json(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def x_check():
    return np.linspace(-3, 3, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(np.float32)


@pytest.mark.slow
def test_second_process_loads_the_cache_without_compiling(op, tmp_path):
    folder = op.parent
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    empty_bin = tmp_path / "bin"  # no compiler reachable: a rebuild would fail and fall back
    empty_bin.mkdir()
    proc = run_python(CHECK_FUSED, {"SIMAM_PADDLE_CACHE": str(folder.parent),
                                    "SIMAM_PADDLE_FUSED": "1", "PATH": str(empty_bin)})
    out = last_json(proc)
    assert out["state"]["loaded"] and out["state"]["path"] == str(op), out
    assert out["warnings"] == []
    assert "simam_paddle: compiling" not in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    np.testing.assert_allclose(out["y"], reference(x_check()), rtol=2e-6)


@pytest.mark.slow
def test_missing_compiler_falls_back_with_one_warning(tmp_path):
    proc = run_python(
        CHECK_FUSED + """
    try:
        simam_paddle.simam(x, impl="fused")
    except RuntimeError as exc:
        print(json.dumps({"error": str(exc)}))
    """,
        {"SIMAM_PADDLE_CACHE": str(tmp_path / "cache"), "SIMAM_PADDLE_FUSED": "1",
         "CC": "/nonexistent/cc", "CXX": "/nonexistent/c++"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert not first["state"]["loaded"]
    assert len(first["warnings"]) == 1, first["warnings"]  # two calls, one warning
    assert "compiler" in first["warnings"][0] and "impl='paddle'" in first["warnings"][0]
    np.testing.assert_allclose(first["y"], reference(x_check()), rtol=2e-6)
    assert "impl='fused' is unavailable" in second["error"] and "compiler" in second["error"]
    assert not list((tmp_path / "cache").rglob("*.so"))


@pytest.mark.slow
def test_concurrent_first_builds_build_once(op, tmp_path):
    # Two processes race to build into an empty cache; the "compiler" here is a stand-in that
    # copies the real library slowly and logs each run, so the race is cheap to stage.
    log = tmp_path / "builds.log"
    code = f"""
        import os, shutil, time
        from simam_paddle.layers import fused

        def slow_build(target, verbose):
            with open({str(log)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(2)
            partial = target.with_suffix(".part")
            shutil.copy({str(op)!r}, partial)
            os.replace(partial, target)

        fused._build = slow_build
    """
    code = textwrap.dedent(code) + textwrap.dedent(CHECK_FUSED)
    env = {"SIMAM_PADDLE_CACHE": str(tmp_path / "cache"), "SIMAM_PADDLE_FUSED": "1"}
    env_full = {**{k: v for k, v in os.environ.items()}, **env}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                              env=env_full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-3000:]
        out = json.loads(stdout.strip().splitlines()[-1])
        assert out["state"]["loaded"] and out["warnings"] == [], out
        np.testing.assert_allclose(out["y"], reference(x_check()), rtol=2e-6)
    assert len(log.read_text().split()) == 1


@pytest.mark.slow
def test_a_damaged_cached_library_is_rebuilt_once(op, tmp_path):
    # A library cut short after it was built (a full disk, a killed copy) used to crash every later
    # process in dlopen (SIGBUS); its checksum no longer matches, so the next process rebuilds it.
    # The stand-in "compiler" copies the real library and logs each run, as in the test above.
    log = tmp_path / "builds.log"
    cache = tmp_path / "cache"
    damaged = fused.fused_cache_dir(cache) / op.name
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(op.read_bytes()[:4096])
    checksum = op.with_name(op.name + ".sha256")
    shutil.copy(checksum, damaged.with_name(checksum.name))
    code = f"""
        import os, shutil
        from simam_paddle.layers import fused

        def copy_build(target, verbose):
            with open({str(log)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            shutil.copy({str(op)!r}, target)

        fused._build = copy_build
    """
    env = {"SIMAM_PADDLE_CACHE": str(cache), "SIMAM_PADDLE_FUSED": "1"}
    for attempt in range(2):  # the second process loads the rebuilt library as it is
        proc = run_python(textwrap.dedent(code) + textwrap.dedent(CHECK_FUSED), env)
        out = last_json(proc)
        assert out["state"]["loaded"] and out["warnings"] == [], out
        np.testing.assert_allclose(out["y"], reference(x_check()), rtol=2e-6)
        assert (f"{damaged} is damaged" in proc.stderr) == (attempt == 0), proc.stderr
    assert len(log.read_text().split()) == 1
    assert damaged.read_bytes() == op.read_bytes()


@pytest.mark.parametrize("value, expected", [("false", False), ("OFF", False), ("no", False), ("0", False),
                                             ("True", True), ("1", True), ("", True)])
def test_the_fused_switch_reads_the_usual_words(monkeypatch, value, expected):
    from simam_paddle.layers.fused import env_switch

    monkeypatch.setenv("SIMAM_PADDLE_FUSED", value)
    assert env_switch("SIMAM_PADDLE_FUSED", True) is expected


def test_the_fused_switch_refuses_other_words(monkeypatch):
    from simam_paddle.layers.fused import env_switch

    monkeypatch.setenv("SIMAM_PADDLE_FUSED", "maybe")
    with pytest.raises(ValueError, match="SIMAM_PADDLE_FUSED='maybe' is not understood"):
        env_switch("SIMAM_PADDLE_FUSED", True)
