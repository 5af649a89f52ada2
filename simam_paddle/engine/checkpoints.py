"""Checkpoints of a run folder: written atomically, read with errors that name the file, checked
against the network they are loaded into, optimizer state that survives rebuilding the network.

A run folder holds ``best_model.pdparams``, and after every epoch ``last.pdparams`` (weights),
``last.pdopt`` (optimizer state, :func:`portable_optimizer_state`) and ``last.json``
(:func:`load_checkpoint_state`), written by :class:`~simam_paddle.engine.callbacks.CheckpointSaver`.

An epoch's files are committed together: they are first written under staged names
(:func:`staged_path`, ``last.pdparams.epoch7``), then ``last.json`` naming the epoch is written (the commit),
then the staged files are renamed over the others. A crash at any point leaves either the previous epoch or
this one, never a mix (last weights of one epoch with the optimizer state or ``last.json`` of another, or a
best model of an epoch the history no longer has): :func:`settle_checkpoint` finishes a commit that
``last.json`` names and discards files of an epoch it does not.
"""
import io
import os
import pickle
import re
import struct
from typing import Any, Dict

import paddle

from .._io import atomic_write_bytes
from .history import RunFileError, read_history, read_run_json

__all__ = [
    "atomic_save",
    "load_state",
    "check_checkpoint_safe",
    "check_state_fits",
    "portable_optimizer_state",
    "restore_optimizer_state",
    "load_checkpoint_state",
    "staged_path",
    "settle_checkpoint",
    "finished_epochs",
]

# The files of a run folder that an epoch's checkpoint commits (CheckpointSaver; SaveBestModel's default file).
CHECKPOINT_FILES = ("last.pdparams", "last.pdopt", "best_model.pdparams")
_STAGED = re.compile(r"(?P<name>.+)\.epoch(?P<epoch>[0-9]+)")


def atomic_save(obj: Any, path: str) -> None:
    """``paddle.save(obj, path)`` that never leaves ``path`` half-written.

    Saves to a temporary file in the same folder, then renames it over ``path``; if saving
    fails the temporary file is removed and the old ``path`` is untouched.

    Args:
        obj (Any): what ``paddle.save`` accepts, e.g. a ``state_dict()``.
        path (str): destination file.

    Examples:
        >>> atomic_save(paddle.nn.Linear(2, 3).state_dict(), "/tmp/linear.pdparams")
        >>> list(paddle.load("/tmp/linear.pdparams")["weight"].shape)
        [2, 3]
    """
    buffer = io.BytesIO()
    paddle.save(obj, buffer)  # the same bytes as saving to a file
    atomic_write_bytes(buffer.getvalue(), path)



# What a state dict or optimizer state saved by paddle.save holds: numpy arrays in plain containers.
_CHECKPOINT_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
})


class _CheckpointUnpickler(pickle._Unpickler):
    """Unpickles numpy arrays, numbers, strings and containers only; any other class or function is refused.

    The Python unpickler, so that ``BUILD`` can be checked too: it may set the state of a new array, and of a
    dtype only to the state that dtype already has (numpy's dtypes are shared objects: a changed one would
    corrupt every later array of that type in the process).
    """

    def find_class(self, module: str, name: str):
        if (module, name) in _CHECKPOINT_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused {module}.{name}")

    def load_build(self):
        import numpy as np

        state, target = self.stack[-1], self.stack[-2]
        if isinstance(target, np.dtype):
            if state != target.__reduce__()[2]:
                raise pickle.UnpicklingError(f"refused a BUILD that would change the shared numpy dtype {target}")
        elif not isinstance(target, np.ndarray):
            raise pickle.UnpicklingError(f"refused a BUILD on a {type(target).__name__}")
        super().load_build()

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}


def check_checkpoint_safe(path: str) -> None:
    """Read ``path`` as a pickle that may hold only numpy arrays, numbers, strings and plain containers.

    ``paddle.load`` unpickles without restriction, so a shared run folder's weights file could run any code
    (a pickle that calls ``os.system``). This reads the whole file first with an unpickler that builds only
    numpy arrays and the containers ``paddle.save`` writes for a state dict or an optimizer state; anything else
    stops with a :class:`RunFileError` before ``paddle.load`` sees the file.

    Raises:
        RunFileError: the file asks for another class or function (named), or is not a pickle.

    Examples:
        >>> atomic_save(paddle.nn.Linear(2, 3).state_dict(), "/tmp/linear.pdparams")
        >>> check_checkpoint_safe("/tmp/linear.pdparams")
    """
    try:
        with open(path, "rb") as f:
            _CheckpointUnpickler(f).load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("refused "):
            raise RunFileError(f"{path} is not a plain checkpoint: its pickle asks for {str(err)[8:]}, which "
                               "loading would run (a weights file can run code); it was not loaded. Use weights "
                               "from a source you trust, saved by paddle.save(state_dict)") from None
        raise RunFileError(f"{path} is not a readable Paddle checkpoint ({err}); restore it or retrain") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError, OverflowError,
            struct.error) as err:  # what reading a damaged pickle raises
        detail = str(err).splitlines()[0] if str(err) else "truncated?"
        raise RunFileError(f"{path} is not a readable Paddle checkpoint ({type(err).__name__}: {detail}); "
                           "restore it or retrain") from None


def load_state(path: str) -> Any:
    """``paddle.load(path)`` of a run's checkpoint, after :func:`check_checkpoint_safe`; a missing file is a
    ``FileNotFoundError`` and an empty, unreadable or unsafe one a :class:`RunFileError`, both naming ``path``.

    Examples:
        >>> sorted(load_state("/tmp/linear.pdparams"))
        ['bias', 'weight']
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    if os.path.getsize(path) == 0:
        raise RunFileError(f"{path} is empty (0 bytes; written by a full disk or a copy that failed?); "
                           "restore it or retrain")
    check_checkpoint_safe(path)
    try:
        return paddle.load(path)
    except (EOFError, ValueError, RuntimeError, TypeError, KeyError, IndexError, AttributeError,
            ImportError) as err:  # what unpickling a damaged file raises
        detail = str(err).splitlines()[0] if str(err) else "truncated?"
        raise RunFileError(f"{path} is not a readable Paddle checkpoint ({type(err).__name__}: {detail}); "
                           "restore it or retrain") from None



def check_state_fits(state: Dict[str, Any], network: paddle.nn.Layer, path: str, what: str = "the network") -> None:
    """Raise ``ValueError`` naming the first missing, unexpected and mis-shaped key if ``state`` does not fit ``network``.

    Paddle's ``set_state_dict`` only warns, so a checkpoint of another model would silently leave random weights.

    Args:
        state (dict): a state dict, e.g. from :func:`load_state`.
        network (paddle.nn.Layer): the network it is meant for.
        path (str): where the state came from, for the message.
        what (str, optional): how the message names the network. Default: "the network".

    Examples:
        >>> import paddle
        >>> net = paddle.nn.Linear(2, 3)
        >>> check_state_fits(paddle.nn.Linear(2, 3).state_dict(), net, "a.pdparams")
        >>> check_state_fits(paddle.nn.Linear(2, 4).state_dict(), net, "b.pdparams")
        Traceback (most recent call last):
        ...
        ValueError: b.pdparams does not fit the network: 2 of other shape (e.g. bias: [4] vs [3]). Is it from another run?
    """
    expected = {k: list(v.shape) for k, v in network.state_dict().items()}
    got = {k: list(v.shape) for k, v in state.items()}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    wrong = [k for k in set(expected) & set(got) if expected[k] != got[k]]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        if wrong:
            k = sorted(wrong)[0]
            parts.append(f"{len(wrong)} of other shape (e.g. {k}: {got[k]} vs {expected[k]})")
        raise ValueError(f"{path} does not fit {what}: {'; '.join(parts)}. Is it from another run?")



def _rename_keys(state: Dict[str, Any], names: Dict[str, str]) -> Dict[str, Any]:
    """Rename keys that start with a known name followed by ``_`` (longest name first)."""
    ordered = sorted(names, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        if isinstance(value, dict) and key == "master_weights":
            value = _rename_keys(value, names)
        for old in ordered:
            if key == old or key.startswith(old + "_"):
                key = names[old] + key[len(old):]
                break
        out[key] = value
    return out


def portable_optimizer_state(optimizer, network: paddle.nn.Layer) -> Dict[str, Any]:
    """The optimizer's ``state_dict`` keyed by structured parameter names (``"0.weight_velocity_0"``).

    Paddle keys optimizer state by generated parameter names (``"conv2d_7.w_0_velocity_0"``), which
    differ when the same network is built again after other layers were created; structured names
    do not. :func:`restore_optimizer_state` maps them back onto a newly built network.

    Examples:
        >>> net = paddle.nn.Sequential(paddle.nn.Linear(2, 2))
        >>> opt = paddle.optimizer.Momentum(0.1, parameters=net.parameters())
        >>> net(paddle.rand([1, 2])).sum().backward(); opt.step()
        >>> sorted(portable_optimizer_state(opt, net))[:1]
        ['@0.bias_velocity_0']
    """
    names = {p.name: "@" + structured for structured, p in network.named_parameters()}
    return _rename_keys(optimizer.state_dict(), names)


def restore_optimizer_state(optimizer, network: paddle.nn.Layer, state: Dict[str, Any]) -> None:
    """Load a :func:`portable_optimizer_state` into ``optimizer`` of a (re)built ``network``."""
    names = {"@" + structured: p.name for structured, p in network.named_parameters()}
    optimizer.set_state_dict(_rename_keys(state, names))



def load_checkpoint_state(run_dir: str) -> Dict[str, Any]:
    """Read ``last.json`` of a run folder: ``{"epoch": finished_epochs, "best": ..., "best_epoch": ...}``.

    Examples:
        >>> load_checkpoint_state("runs/demo/towernet_simam")["epoch"]  # after `python -m simam_paddle demo`  # doctest: +SKIP
        4
    """
    path = os.path.join(run_dir, "last.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"nothing to resume in {run_dir}: no epoch finished (no last.json); "
                                "train again without resume to start it over")
    state = read_run_json(path, "it is written after every epoch, restore it or start the run over")
    epoch = state.get("epoch")
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0):
        raise RunFileError(f"{path}: epoch must be the number of finished epochs (an integer >= 0), "
                           f"got {epoch!r}")
    return state


def staged_path(path: str, epoch: int) -> str:
    """Where epoch ``epoch``'s version of the checkpoint file ``path`` waits until ``last.json`` commits it.

    Examples:
        >>> staged_path("runs/demo/last.pdparams", 7)
        'runs/demo/last.pdparams.epoch7'
    """
    return f"{path}.epoch{int(epoch)}"


def settle_checkpoint(run_dir: str) -> None:
    """Finish or undo an epoch's checkpoint that a crash (or Ctrl-C) interrupted while it was being committed.

    Staged files (:func:`staged_path`) of the epoch ``last.json`` names were committed: they replace the files
    they stand for (the run then reads that epoch's weights, optimizer state and best model). Staged files of any
    other epoch were never committed: they are removed, and the previous epoch's files stand. Without staged
    files nothing changes. Readers of a run folder's checkpoints call this first.

    Args:
        run_dir (str): the run folder.

    Examples:
        >>> settle_checkpoint("runs/demo/towernet_simam")  # doctest: +SKIP
    """
    try:
        names = os.listdir(run_dir)
    except (FileNotFoundError, NotADirectoryError):
        return
    staged = [(name, match) for name in sorted(names)
              if (match := _STAGED.fullmatch(name)) and match["name"] in CHECKPOINT_FILES]
    if not staged:
        return
    committed = -1
    if os.path.isfile(os.path.join(run_dir, "last.json")):
        committed = int(load_checkpoint_state(run_dir)["epoch"])
    for name, match in staged:
        path = os.path.join(run_dir, name)
        if int(match["epoch"]) == committed:
            os.replace(path, os.path.join(run_dir, match["name"]))
        else:
            os.remove(path)


def finished_epochs(run_dir: str) -> int:
    """The epochs a run folder has finished: those ``history.csv`` and ``last.json`` both hold (after
    :func:`settle_checkpoint`). A history row is written before its epoch's checkpoint commits, so a crash
    between them leaves one row more, which a resume drops; a folder without ``last.json`` (a committed
    experiment: ``config.json`` and ``history.csv`` only) counts its history rows.

    Examples:
        >>> finished_epochs("runs/demo/towernet_simam")  # doctest: +SKIP
        4
    """
    settle_checkpoint(run_dir)
    try:
        rows = len(read_history(run_dir))
    except FileNotFoundError:
        rows = 0
    if not os.path.isfile(os.path.join(run_dir, "last.json")):
        return rows
    return min(rows, int(load_checkpoint_state(run_dir)["epoch"]))
