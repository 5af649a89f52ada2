"""Fused SimAM: forward and backward as one compiled Paddle custom operator.

The plain formula runs about ten element-wise kernels forward and more backward, each a full
pass over memory, and autograd keeps four or five full-size intermediates. The operator in
``csrc/`` (C++ with OpenMP; a CUDA kernel where Paddle is built with CUDA) computes each map's
statistics in double and the output in a few passes, and keeps only the input for backward.
float32 and float64 run natively; float16/bfloat16 are cast to float32 around the operator
(so backward keeps that float32 copy). The float32 kernels use a branch-free polynomial exp
(Cephes ``expf``: at most 1 ulp, checked over every float in its range) that the compiler vectorises, computed once per
element forward and once backward; float64 uses ``std::exp``.

Build and cache:
    Built on first use (never at import) with Paddle's custom-operator tooling
    (``paddle.utils.cpp_extension.setup`` run in a subprocess), then loaded with
    ``load_op_meta_info_and_register_op``. The library is cached under ``$SIMAM_PADDLE_CACHE``
    (default ``~/.cache/simam_paddle``) in a folder named for the Paddle version and commit,
    the Python version, the platform, the compiler command and a hash of the sources and
    flags, so later processes load it without compiling and any change rebuilds it. No
    ``-march=native``: the kernels are compiled for the baseline ISA and, on x86-64, once more
    for AVX2+FMA, picked at run time from the CPU, so the cached library runs on any machine of
    the same platform. Concurrent first
    builds are serialised by a file lock, and each build goes to a temporary folder that is
    renamed into place, so a reader never sees a half-written library. A SHA-256 of the library
    is stored next to it and checked before every load: a library damaged later (a full disk, a
    cut-short copy) would crash ``dlopen`` rather than fail, so one that does not match is rebuilt.

Threads:
    Paddle configures its CPU threads through the Intel OpenMP runtime it ships
    (``OMP_NUM_THREADS`` read at import, where Paddle sets it to 1 if unset, or
    ``paddle.base.core.set_num_threads(n)`` later). The operator is linked against that same
    runtime and asks it for the current thread count on every call (:func:`simam_paddle._paddle.num_threads`),
    so it uses exactly what Paddle is configured with (and shares Paddle's thread pool instead of starting a
    second one). Where Paddle ships no ``libiomp5`` the count comes from ``OMP_NUM_THREADS``.

Export:
    Only eager (dynamic-graph) calls use the compiled operator. Under ``paddle.jit.to_static``
    / static mode SimAM is built from plain Paddle ops, so ``paddle.jit.save`` writes a model
    that any Paddle runtime can load without this library.
"""
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings
from pathlib import Path
from typing import Optional, Union

import paddle

from .._paddle import is_paddle2, num_threads, openmp_library

__all__ = ["fused_available", "fused_unavailable_reason", "fused_cache_dir", "env_switch"]

_OP_NAME = "simam_fused"
_LIB_NAME = "simam_paddle_ops"
_CSRC = Path(__file__).resolve().parent / "csrc"
_CACHE_ENV = "SIMAM_PADDLE_CACHE"
# "0" keeps impl="auto" on the Paddle implementation without trying to build (tests, CI).
_ENABLE_ENV = "SIMAM_PADDLE_FUSED"
# The CUDA kernel compiles but has not yet been run on a GPU by this project, so impl="auto" keeps
# GPU tensors on the Paddle implementation unless this is "1"; impl="fused" uses it regardless.
_CUDA_AUTO_ENV = "SIMAM_PADDLE_FUSED_CUDA"
_LOW_PRECISION = (paddle.float16, paddle.bfloat16)
_SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
                 "off": False}


def env_switch(name: str, default: bool) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off (any case); unset or empty is ``default``.

    Raises:
        ValueError: any other value, naming the variable and the values it takes.

    Examples:
        >>> os.environ["SIMAM_EXAMPLE_SWITCH"] = "False"
        >>> env_switch("SIMAM_EXAMPLE_SWITCH", True)
        False
    """
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _SWITCH_WORDS:
        raise ValueError(f"{name}={os.environ[name]!r} is not understood; set it to 1 or 0 (true/false, yes/no, "
                         "on/off), or unset it")
    return _SWITCH_WORDS[raw]
# -fno-trapping-math lets the compiler if-convert the clamp in the vectorised exp (no results
# change: we never read floating-point exception flags). No -march: see the module docstring.
_CXX_FLAGS = ["-O3", "-fopenmp", "-fno-trapping-math"]
_CUDA_FLAGS = ["-O3"]


class FusedBuildError(RuntimeError):
    """The fused operator could not be built or loaded; the message says why."""


# Process-wide state: a custom op can be registered once per process.
_state = {"loaded": False, "error": None, "path": None, "cuda": False}


def _with_cuda() -> bool:
    return paddle.is_compiled_with_cuda() and shutil.which("nvcc") is not None


def _sources():
    sources = [_CSRC / "simam_op.cc"]
    if _with_cuda():
        sources.append(_CSRC / "simam_op.cu")
    return sources


def _link_flags():
    # Share Paddle's OpenMP runtime (see "Threads" above); gcc's -fopenmp code only calls the
    # GOMP_* entry points, which libiomp5 provides.
    return ["-l:libiomp5.so"] if openmp_library() is not None else ["-fopenmp"]


def _compiler_command(var: str) -> str:
    return (os.environ.get(var) or sysconfig.get_config_var(var) or var.lower()).split()[0]


def _cache_tag() -> str:
    """Folder name that changes whenever the library built here would differ."""
    digest = hashlib.sha256()
    for path in sorted(_CSRC.iterdir()):
        if path.suffix not in (".cc", ".cu", ".h", ".inc"):
            continue
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(repr((_CXX_FLAGS, _CUDA_FLAGS, _link_flags())).encode())
    commit = getattr(paddle.version, "commit", "")[:10]
    compiler = os.path.basename(_compiler_command("CXX"))
    cuda = "cuda" if _with_cuda() else "cpu"
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return "-".join(
        [f"paddle{paddle.__version__}", commit, python, sysconfig.get_platform(), compiler,
         cuda, digest.hexdigest()[:12]]
    )


def fused_cache_dir(cache_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The folder that holds (or will hold) the compiled operator for this Paddle and machine.

    Args:
        cache_dir (str|PathLike, optional): Root of the cache. Default: ``$SIMAM_PADDLE_CACHE``
            if set, else ``~/.cache/simam_paddle``.

    Returns:
        Path: ``<root>/<paddle version, python, platform, compiler, source hash>``.

    Examples:
        >>> from simam_paddle.layers import fused_cache_dir
        >>> fused_cache_dir("/tmp/simam_cache").parent.name
        'simam_cache'
    """
    root = cache_dir or os.environ.get(_CACHE_ENV) or Path.home() / ".cache" / "simam_paddle"
    return Path(root).expanduser() / _cache_tag()


def _check_compilers() -> None:
    for var in ("CC", "CXX"):
        command = _compiler_command(var)
        if shutil.which(command) is None:
            raise FusedBuildError(
                f"no C++ compiler: {var}={command!r} is not on PATH; install g++ (or clang++) "
                f"or point {var} at one"
            )


_SETUP = textwrap.dedent(
    """
    from paddle.utils.cpp_extension import {kind}, BuildExtension, setup

    setup(
        name={name!r},
        ext_modules=[{kind}(
            sources={sources!r},
            extra_compile_args={{"cxx": {cxx!r}, "nvcc": {nvcc!r}}},
            extra_link_args={ldflags!r},
        )],
        cmdclass={{"build_ext": BuildExtension.with_options(
            output_dir={out!r}, no_python_abi_suffix=True)}},
    )
    """
)


def _build(target: Path, verbose: bool) -> None:
    """Compile into a temporary folder next to ``target``, then rename it into place."""
    _check_compilers()
    sources = [str(p) for p in _sources()]
    sys.stderr.write(
        f"simam_paddle: compiling the fused SimAM operator into {target.parent} "
        "(once per machine and Paddle version, about a minute)\n"
    )
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as tmp:
        script = Path(tmp) / "setup.py"
        script.write_text(
            _SETUP.format(
                kind="CUDAExtension" if len(sources) > 1 else "CppExtension",
                name=_LIB_NAME, sources=sources, cxx=_CXX_FLAGS, nvcc=_CUDA_FLAGS,
                ldflags=_link_flags(), out=str(Path(tmp) / "out"),
            )
        )
        proc = subprocess.run(
            [sys.executable, str(script), "build_ext"], cwd=tmp, text=True,
            stdout=None if verbose else subprocess.PIPE,
            stderr=None if verbose else subprocess.STDOUT,
        )
        built = sorted((Path(tmp) / "out").glob(f"{_LIB_NAME}*.so"))
        if proc.returncode != 0 or not built:
            tail = "\n".join((proc.stdout or "").strip().splitlines()[-15:])
            raise FusedBuildError(f"compiling {sources[0]} failed:\n{tail}")
        os.replace(built[0], target)


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache consistent.
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _checksum_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(target: Path) -> bool:
    """Whether ``target`` exists and matches the checksum stored when it was built."""
    stored = _checksum_path(target)
    return target.is_file() and stored.is_file() and stored.read_text().strip() == _checksum(target)


def _build_and_record(target: Path, verbose: bool) -> None:
    """Build ``target`` and store its checksum (the caller holds the cache's lock)."""
    if target.is_file():
        sys.stderr.write(f"simam_paddle: the cached fused operator {target} is damaged or was built without "
                         "a checksum; rebuilding it\n")
    _build(target, verbose)
    partial = _checksum_path(target).with_suffix(".part")
    partial.write_text(_checksum(target) + "\n")
    os.replace(partial, _checksum_path(target))


def _load(cache_dir=None, verbose: bool = False) -> None:
    """Build (once per cache) and register the operator (once per process).

    Raises FusedBuildError saying why not.
    """
    if _state["loaded"]:
        return
    if _state["error"] is not None:
        raise FusedBuildError(_state["error"])
    folder = None
    try:
        if is_paddle2():
            # Paddle 2.x's custom-operator API has no double attributes (e_lambda is one), so
            # the operator does not compile there; say so instead of showing compiler errors.
            raise FusedBuildError(
                f"it needs PaddlePaddle 3.x, this is {paddle.__version__}; "
                "impl='paddle' computes the same SimAM"
            )
        folder = fused_cache_dir(cache_dir)
        target = folder / f"{_LIB_NAME}.so"
        if not _intact(target):
            folder.mkdir(parents=True, exist_ok=True)
            with _file_lock(folder / ".lock"):
                if not _intact(target):  # another process may have built it while we waited
                    _build_and_record(target, verbose)
        from paddle.utils.cpp_extension.extension_utils import load_op_meta_info_and_register_op

        load_op_meta_info_and_register_op(str(target))
    except Exception as exc:  # noqa: BLE001 - any failure here only means "no fused op"
        _state["error"] = str(exc) if isinstance(exc, FusedBuildError) else (
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            + (f" (cache {folder}; deleting it makes the next process rebuild it)" if folder else "")
        )
        raise FusedBuildError(_state["error"]) from exc
    _state.update(loaded=True, path=str(target), cuda=_with_cuda())


def fused_available(
    cache_dir: Optional[Union[str, os.PathLike]] = None, verbose: bool = False
) -> bool:
    """Build (first use only) and load the fused operator; ``False`` if that is impossible.

    Args:
        cache_dir (str|PathLike, optional): Root of the build cache, see :func:`fused_cache_dir`.
            Default: None.
        verbose (bool, optional): Show the compiler's output. Default: False.

    Returns:
        bool: Whether ``simam(x, impl="fused")`` can run; :func:`fused_unavailable_reason`
            says why not.

    Examples:
        >>> from simam_paddle.layers import fused_available
        >>> isinstance(fused_available(), bool)
        True
    """
    try:
        _load(cache_dir, verbose)
    except FusedBuildError:
        return False
    return True


def fused_unavailable_reason() -> Optional[str]:
    """Why the fused operator failed to build or load in this process, or None.

    Returns:
        str|None: The error, for example a missing compiler; None if it loaded or was not tried.

    Examples:
        >>> from simam_paddle.layers import fused_unavailable_reason
        >>> fused_unavailable_reason() is None or isinstance(fused_unavailable_reason(), str)
        True
    """
    return _state["error"]


def _device_supported(x: paddle.Tensor) -> bool:
    place = x.place
    return place.is_cpu_place() or (place.is_gpu_place() and _state["cuda"])


def _run(x: paddle.Tensor, e_lambda: float, channels_last: bool) -> paddle.Tensor:
    """The compiled op (eager mode); float16/bfloat16 go through float32. Raises FusedBuildError."""
    _load()
    if not _device_supported(x):
        raise FusedBuildError(
            f"the fused SimAM operator runs on CPU{' and CUDA' if _state['cuda'] else ''} tensors, "
            f"got one on {x.place}; use impl='paddle'"
        )
    x32 = x.astype("float32") if x.dtype in _LOW_PRECISION else x
    y = paddle._C_ops._run_custom_op(_OP_NAME, x32, float(e_lambda), channels_last, num_threads())
    return y[0].astype(x.dtype) if x32 is not x else y[0]


_warned = False


# Never converted by paddle.jit.to_static: under tracing it is not called (simam checks
# in_dynamic_mode first), and Paddle 2.6's converter cannot compile its `global` statement.
@paddle.jit.not_to_static
def _auto_usable(x: paddle.Tensor) -> bool:
    """Whether impl="auto" should use the fused op for ``x``; warns once per process if not."""
    global _warned
    if not env_switch(_ENABLE_ENV, True):
        return False
    if not x.place.is_cpu_place() and not env_switch(_CUDA_AUTO_ENV, False):
        return False
    try:
        _load()
        if not _device_supported(x):
            raise FusedBuildError(f"it was built without a kernel for {x.place}")
    except FusedBuildError as exc:
        if not _warned:
            _warned = True
            warnings.warn(
                f"simam_paddle: the fused SimAM operator is unavailable ({exc}); using the Paddle "
                f"implementation (impl='paddle') instead.",
                RuntimeWarning,
                stacklevel=4,
            )
        return False
    return True
