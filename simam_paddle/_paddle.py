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
    from ._quiet import paddle_import_filters

    with paddle_import_filters():
        import paddle

    major = paddle.__version__.split(".")[0]
    # Source builds report "0.0.0"; trust them.
    if major.isdigit() and 0 < int(major) < 3:
        raise ImportError(f"Found PaddlePaddle {paddle.__version__}. " + _INSTALL_HINT)
