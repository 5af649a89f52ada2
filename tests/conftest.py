import os

# simam(impl="auto") would otherwise compile the fused operator into the user's cache as a side
# effect of any test that calls it. tests/test_fused.py builds it into a temporary cache and
# turns "auto" back on where it tests it. Subprocesses inherit this.
os.environ.setdefault("SIMAM_PADDLE_FUSED", "0")


import pytest  # noqa: E402

# Doctests whose examples need Paddle 3 (pytest's doctest items cannot carry a marker).
_PADDLE3_DOCTESTS = {
    "simam_paddle.engine.acceleration.onednn_convolutions": "oneDNN convolutions are refused on Paddle 2.6",
    "simam_paddle.engine.acceleration.onednn_gradient_error": "oneDNN convolutions are refused on Paddle 2.6",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "paddle3(reason): needs PaddlePaddle 3.x; skipped on 2.6, saying why")
    config.addinivalue_line("markers", "paddle2(reason): checks how Paddle 2.6 is handled; skipped on 3.x")


def pytest_collection_modifyitems(config, items):
    """Skip, with the reason, the tests that need another Paddle than the one installed."""
    from simam_paddle._paddle import is_paddle2

    paddle2 = is_paddle2()
    for item in items:
        wanted, why = ("paddle3", "needs PaddlePaddle 3.x") if paddle2 else ("paddle2", "checks PaddlePaddle 2.6")
        marker = item.get_closest_marker(wanted)
        reason = marker.kwargs.get("reason", "") if marker else _PADDLE3_DOCTESTS.get(item.name) if paddle2 else None
        if marker or reason:
            item.add_marker(pytest.mark.skip(reason=f"{why}: {reason}" if reason else why))
