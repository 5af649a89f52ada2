"""How Paddle 2.6 is handled: the features it cannot run say so, and its zlib clash is avoided.

These run only on Paddle 2.6 (`bash .ci/run-paddle26`); on 3.x they are skipped.
"""

import numpy as np
import paddle
import pytest

from simam_paddle import simam
from simam_paddle.engine.acceleration import onednn_convolutions
from simam_paddle.layers import fused

from reference import simam_reference
from subprocesses import run_python

pytestmark = pytest.mark.paddle2(reason="Paddle 2.6 behaviour")


def test_fused_operator_is_refused_with_one_clear_reason_and_auto_falls_back(monkeypatch):
    assert not fused.fused_available()
    assert fused.fused_unavailable_reason().startswith("it needs PaddlePaddle 3.x, this is 2.6")
    monkeypatch.setenv("SIMAM_PADDLE_FUSED", "1")
    monkeypatch.setattr(fused, "_warned", False)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    with pytest.warns(RuntimeWarning, match="needs PaddlePaddle 3.x"):
        y = simam(paddle.to_tensor(x), impl="auto")
    np.testing.assert_allclose(y.numpy(), simam_reference(x), rtol=1e-12)


def test_onednn_convolutions_are_refused():
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3))
    with pytest.raises(RuntimeError, match="need PaddlePaddle 3.x.*onednn=False"):
        with onednn_convolutions(net):
            pass
    with onednn_convolutions(net, enabled=False) as switched:  # the default path is untouched
        assert switched == 0


def test_zlib_works_when_simam_paddle_is_imported_first():
    done = run_python("import simam_paddle.data, paddle, zlib, scipy.stats\n"
                      "from sklearn.datasets import load_digits\n"
                      "assert zlib.decompress(zlib.compress(b'x' * 100)) == b'x' * 100\n"
                      "print(load_digits().data.shape)")
    assert done.returncode == 0 and "(1797, 64)" in done.stdout, done.stderr[-2000:]


def test_importing_paddle_first_warns_about_the_zlib_clash():
    done = run_python("import paddle\nimport simam_paddle.layers")
    assert done.returncode == 0 and "Import simam_paddle (or zlib) before paddle" in done.stderr, done.stderr[-2000:]
