"""Checks that a usable Paddle is installed, with a message that says how to get one."""
import importlib.util

__all__ = ["require_paddle"]

_INSTALL_HINT = (
    "simam_paddle needs PaddlePaddle 3.x. Install the CPU build with `pip install paddlepaddle` "
    "or, on a CUDA machine, the GPU build with `pip install paddlepaddle-gpu` (AI Studio ships it); "
    "never both, they provide the same `paddle` module."
)


def require_paddle() -> None:
    """Raise ``ImportError`` with install instructions if Paddle is missing or older than 3.0."""
    if importlib.util.find_spec("paddle") is None:
        raise ImportError(_INSTALL_HINT)
    import os
    import sys

    from ._quiet import is_verbose, paddle_import_filters

    # Paddle's C++ INFO/WARNING lines ("New Executor is Running", "oneDNN v3.6.2", ...) follow the
    # GLOG_minloglevel that Paddle reads once, while it loads; errors still show. A level of the user's
    # own, or SIMAM_PADDLE_VERBOSE=1, keeps them. The variable is restored afterwards, so processes
    # started later inherit the user's environment unchanged.
    quiet_glog = "paddle" not in sys.modules and not is_verbose() and "GLOG_minloglevel" not in os.environ
    if quiet_glog:
        os.environ["GLOG_minloglevel"] = "2"
    try:
        with paddle_import_filters():
            import paddle
    finally:
        if quiet_glog:
            del os.environ["GLOG_minloglevel"]

    major = paddle.__version__.split(".")[0]
    # Source builds report "0.0.0"; trust them.
    if major.isdigit() and 0 < int(major) < 3:
        raise ImportError(f"Found PaddlePaddle {paddle.__version__}. " + _INSTALL_HINT)
