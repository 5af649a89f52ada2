"""Keeping Paddle's routine messages out of the package's output; ``SIMAM_PADDLE_VERBOSE=1`` shows them all.

Three kinds of message say nothing to a user of this package and are hidden by default:

- ``import paddle`` warns "No ccache found" (its C++-extension tooling looks for ccache at import);
  only this import's copy is hidden, and only when this package's import is the one loading Paddle.
- Paddle's C++ log (glog) writes ``I``/``W`` lines such as "New Executor is Running" to the
  process's stderr when a model is saved or loaded for inference; :func:`quiet_native_logs` drops
  those lines (and keeps errors and anything else) while the package exports.
- BatchNorm warns "When training, we now always track global mean and variance." on the first
  training step, and hapi warns "To copy construct from a tensor"; :func:`training_warning_filters`
  hides those two messages while the package trains.
- Compiling a layer with ``paddle.jit.to_static`` logs "input provided by inputs has no use" (through
  Python's root logger) and warns "Tensor do not have 'place' interface"; :func:`compile_log_filters`
  hides those two while the package compiles its oneDNN convolutions.

With ``SIMAM_PADDLE_VERBOSE=1`` (or true/yes/on) in the environment nothing is hidden.
"""
import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator

__all__ = ["VERBOSE_ENV", "compile_log_filters", "drop_interrupted_loader_noise", "is_verbose",
           "native_stdout_dropped", "quiet_native_logs", "training_warning_filters"]

VERBOSE_ENV = "SIMAM_PADDLE_VERBOSE"
"""Environment variable: ``1`` shows every message that the package otherwise hides."""

# glog's line prefix: severity letter, MMDD, time, thread id, file:line]
_GLOG_LINE = re.compile(rb"^[IW]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^ \]]+:\d+\] ")


def is_verbose() -> bool:
    """Whether ``SIMAM_PADDLE_VERBOSE`` asks for every message (read on every call).

    Examples:
        >>> is_verbose()  # SIMAM_PADDLE_VERBOSE unset
        False
    """
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def paddle_import_filters() -> Iterator[None]:
    """Hide the "No ccache found" warning of ``import paddle`` inside this block (unless verbose)."""
    with warnings.catch_warnings():
        if not is_verbose():
            warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
        yield


@contextlib.contextmanager
def training_warning_filters() -> Iterator[None]:
    """Hide BatchNorm's and hapi's warnings that every training run repeats (unless verbose).

    Examples:
        >>> import paddle
        >>> with training_warning_filters():
        ...     list(paddle.nn.BatchNorm2D(3)(paddle.rand([2, 3, 4, 4])).shape)  # no UserWarning
        [2, 3, 4, 4]
    """
    with warnings.catch_warnings():
        if not is_verbose():
            # Paddle 3's BatchNorm warns on every training forward that it tracks running
            # statistics, which is what training is meant to do.
            warnings.filterwarnings("ignore", message="When training, we now always track", category=UserWarning)
            # hapi's train_batch re-wraps tensors with to_tensor; not ours to fix.
            warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)
        yield


class _DropLogMessages(logging.Filter):
    def __init__(self, *messages: str) -> None:
        super().__init__()
        self.messages = set(messages)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.messages


@contextlib.contextmanager
def compile_log_filters() -> Iterator[None]:
    """Hide what ``paddle.jit.to_static`` logs and warns on every compile of a layer (unless verbose).

    Paddle 3.3.1 logs "input provided by inputs has no use" on the root logger when it builds the
    backward program of a layer whose input needs no gradient, and warns that a static tensor has
    no 'place'; neither asks anything of the user.

    Examples:
        >>> import logging
        >>> with compile_log_filters():
        ...     logging.warning("input provided by inputs has no use")  # dropped
    """
    if is_verbose():
        yield
        return
    drop = _DropLogMessages("input provided by inputs has no use")
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface", category=UserWarning)
            yield
    finally:
        root.removeFilter(drop)


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Drop Paddle's C++ ``I``/``W`` log lines written to stderr inside this block (unless verbose).

    glog reads its level once, when Paddle loads, so it cannot be lowered afterwards; instead the
    process's stderr (file descriptor 2) goes to a temporary file inside the block, and every line
    of it that is not a glog info or warning line is written back to stderr at the end. Python's
    own ``sys.stderr`` is flushed on the way in and out, so its text keeps its place.

    Examples:
        >>> import paddle
        >>> spec = paddle.static.InputSpec([None, 3], "float32")
        >>> with quiet_native_logs():  # no "I... New Executor is Running" lines
        ...     paddle.jit.save(paddle.nn.Linear(3, 2), "/tmp/linear", input_spec=[spec])
        ...     list(paddle.jit.load("/tmp/linear")(paddle.rand([1, 3])).shape)
        [1, 2]
    """
    if is_verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True) if not _GLOG_LINE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


@contextlib.contextmanager
def native_stdout_dropped() -> Iterator[None]:
    """Drop what C++ writes to stdout inside this block (unless verbose).

    Paddle 3.3's predictor prints a line (``ReduceMeanCheckIfOneDNNSupport``) to ``std::cout`` on its first run
    for each mean it keeps off oneDNN (nine for a ResNet-20 with SimAM traced with means).
    """
    if is_verbose():
        yield
        return
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _half_built_loader_cleanup(unraisable) -> bool:
    """Whether an unraisable exception is Paddle's DataLoader iterator failing to clean up after its own
    construction was interrupted (``'_DataLoaderIterSingleProcess' object has no attribute '_shutdown'``)."""
    name = getattr(unraisable.object, "__qualname__", "")
    return (isinstance(unraisable.exc_value, AttributeError) and name.startswith("_DataLoaderIter")
            and name.endswith(".__del__"))


def drop_interrupted_loader_noise() -> None:
    """From now on, drop the traceback Paddle prints when a DataLoader iterator whose construction Ctrl-C or
    SIGTERM interrupted is collected (its ``__del__`` reads an attribute ``__init__`` never set); every other
    unraisable exception goes to the hook that was set before.

    The command line calls it after an interrupt, so that the interrupt's one line is all it prints.

    Examples:
        >>> import sys
        >>> before = sys.unraisablehook
        >>> drop_interrupted_loader_noise()
        >>> sys.unraisablehook is not before
        True
        >>> sys.unraisablehook = before
    """
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not _half_built_loader_cleanup(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook
