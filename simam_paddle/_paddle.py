"""Checks that a usable Paddle is installed, with a message that says how to get one, and what it runs with.

PaddlePaddle 3.x is the target; 2.6 is supported where it is cheap (the fused SimAM operator and
the oneDNN training path need 3.x and say so when asked for). Paddle 2.6's ``libpaddle`` exports
the symbols of its own, older zlib to the whole process: Python's ``zlib`` module, when it is
loaded after Paddle (Paddle itself imports it, through ``gzip``), binds to them and crashes on the
first decompression (a segmentation fault in ``inflateReset2``: scikit-learn's bundled digits,
SciPy's import, PNG images). Loading ``zlib`` before Paddle avoids it, which this module does
whenever it is the first to import Paddle.
"""
import functools
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Optional

__all__ = ["is_paddle2", "paddle_version", "require_paddle", "openmp_library", "num_threads"]

_INSTALL_HINT = (
    "simam_paddle needs PaddlePaddle 3.x (2.6 works with fewer features). Install the CPU build with "
    "`pip install paddlepaddle`; on a CUDA machine the GPU build comes from Paddle's own package index "
    "(PyPI's paddlepaddle-gpu stops at 2.6.2), e.g. for CUDA 11.8: `pip install paddlepaddle-gpu "
    "-i https://www.paddlepaddle.org.cn/packages/stable/cu118/` (cu126 for CUDA 12.6; see "
    "https://www.paddlepaddle.org.cn/install/quick). Never install both builds: they provide the same "
    "`paddle` module."
)


@functools.lru_cache(maxsize=None)
def paddle_version() -> tuple:
    """The installed Paddle's (major, minor), e.g. ``(3, 3)``; ``(0, 0)`` for a source build."""
    import paddle

    parts = (paddle.__version__.split(".") + ["0", "0"])[:2]
    return tuple(int(p) if p.isdigit() else 0 for p in parts)


def is_paddle2() -> bool:
    """Whether the installed Paddle is a 2.x release (2.6, the oldest accepted); False for 3.x and source builds."""
    return (0, 0) < paddle_version() < (3, 0)


def openmp_library() -> Optional[Path]:
    """The Intel OpenMP runtime (``libiomp5.so``) the installed Paddle ships and runs its CPU threads on, or None."""
    import paddle

    path = Path(paddle.__file__).resolve().parent / "libs" / "libiomp5.so"
    return path if path.is_file() else None


_openmp = None  # the loaded runtime, False where Paddle ships none; looked up once


def num_threads() -> int:
    """The CPU thread count Paddle is configured with.

    Paddle reads ``OMP_NUM_THREADS`` at import (setting it to 1 if unset) and
    ``paddle.base.core.set_num_threads(n)`` changes it later, both in its OpenMP runtime: this asks that runtime,
    so it sees every change. Where Paddle ships no ``libiomp5`` the count comes from ``OMP_NUM_THREADS``.
    """
    import ctypes
    import os

    global _openmp
    if _openmp is None:
        path = openmp_library()
        # libpaddle has loaded this library already; dlopen returns that same instance.
        _openmp = ctypes.CDLL(str(path)) if path is not None else False
    if _openmp:
        return max(1, int(_openmp.omp_get_max_threads()))
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def require_paddle() -> None:
    """Raise ``ImportError`` with install instructions if Paddle is missing or older than 2.6."""
    if importlib.util.find_spec("paddle") is None:
        raise ImportError(_INSTALL_HINT)
    import os

    from ._quiet import is_verbose, paddle_import_filters

    # Paddle's C++ INFO/WARNING lines ("New Executor is Running", "oneDNN v3.6.2", ...) follow the
    # GLOG_minloglevel that Paddle reads once, while it loads; errors still show. A level of the user's
    # own, or SIMAM_PADDLE_VERBOSE=1, keeps them. The variable is restored afterwards, so processes
    # started later inherit the user's environment unchanged.
    first_import = "paddle" not in sys.modules
    if first_import:
        import zlib  # noqa: F401  (before Paddle 2.6's libpaddle; see the module docstring)
    quiet_glog = first_import and not is_verbose() and "GLOG_minloglevel" not in os.environ
    if quiet_glog:
        os.environ["GLOG_minloglevel"] = "2"
    try:
        with paddle_import_filters():
            import paddle
    finally:
        if quiet_glog:
            del os.environ["GLOG_minloglevel"]

    version = paddle_version()
    # Source builds report "0.0.0"; trust them.
    if version != (0, 0) and version < (2, 6):
        raise ImportError(f"Found PaddlePaddle {paddle.__version__}. " + _INSTALL_HINT)
    if is_paddle2() and _zlib_loaded_after_paddle():
        warnings.warn(
            f"PaddlePaddle {paddle.__version__} was imported before simam_paddle, and Python's zlib module after "
            "it: with Paddle 2.6 that zlib crashes the process on its first decompression (scikit-learn's "
            "digits, PNG images). Import simam_paddle (or zlib) before paddle, or use Paddle 3.x.",
            RuntimeWarning,
            stacklevel=3,
        )


def _zlib_loaded_after_paddle() -> bool:
    """Whether Python's zlib extension was loaded after Paddle's ``libpaddle`` (it then uses libpaddle's zlib).

    Extensions bind their symbols when loaded, so the load order tells; glibc's ``dl_iterate_phdr``
    lists the loaded objects in that order. False where it cannot tell (no zlib extension file,
    not glibc).
    """
    import ctypes
    import os

    zlib_file = getattr(sys.modules.get("zlib"), "__file__", None)
    if not zlib_file:  # not loaded, or built into the interpreter
        return False

    class _PhdrInfo(ctypes.Structure):  # the first two fields of struct dl_phdr_info
        _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p)]

    loaded: list = []
    visit_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_PhdrInfo), ctypes.c_size_t, ctypes.c_void_p)

    def visit(info, size, data):
        name = info.contents.name
        loaded.append(os.path.realpath(name.decode()) if name else "")
        return 0

    try:
        ctypes.CDLL(None).dl_iterate_phdr(visit_type(visit), None)
    except (AttributeError, OSError):
        return False
    zlib_at = [i for i, name in enumerate(loaded) if name == os.path.realpath(zlib_file)]
    paddle_at = [i for i, name in enumerate(loaded) if os.path.basename(name).startswith("libpaddle")]
    return bool(zlib_at and paddle_at) and zlib_at[0] > paddle_at[0]
