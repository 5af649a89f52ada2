"""Training callbacks for ``paddle.Model.fit``: best-model saving, checkpoints, CSV history, LR, VisualDL.

Every callback that writes files writes only on the process of global rank 0, so the same
training command can run under ``python -m paddle.distributed.launch`` and produce one set of
files. Files that a crash could leave half-written (the best model, the last checkpoint) are
written to a temporary file in the same folder and then renamed over the old one
(``os.replace`` is atomic on POSIX and Windows), so the previous version survives a crash.

A note on epochs: hapi numbers epochs from 0 inside ``fit``. These callbacks take an
``initial_epoch`` (the number of epochs finished before this ``fit``, non-zero on resume) and
number epochs in files from 1: ``epoch`` in ``history.csv`` is the count of finished epochs.
"""
import csv
import json
import math
import numbers
import os
import shutil
import tempfile
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence

import paddle
from paddle.callbacks import Callback

__all__ = [
    "SaveBestModel",
    "CheckpointSaver",
    "HistoryLogger",
    "EpochLR",
    "make_visualdl",
    "VISUALDL_FILE",
    "HISTORY_COLUMNS",
    "read_history",
    "check_state_fits",
    "is_main_process",
    "atomic_save",
    "atomic_write_text",
    "portable_optimizer_state",
    "restore_optimizer_state",
    "RunFileError",
    "load_state",
]

HISTORY_COLUMNS = ("epoch", "loss", "acc", "eval_loss", "eval_acc", "lr", "time")


class RunFileError(ValueError):
    """A run folder's file (``config.json``, ``last.json``, ``history.csv``, a checkpoint) is unreadable
    or holds something a run never writes; the message names the file and what is wrong."""


def is_main_process() -> bool:
    """Whether this process has global rank 0 (always true outside a distributed launch).

    Reads the launcher's environment each call (``PADDLE_TRAINER_ID``) rather than a cached value.

    Examples:
        >>> is_main_process()
        True
    """
    return paddle.distributed.ParallelEnv().rank == 0


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
    _atomic_write(path, lambda tmp: paddle.save(obj, tmp))


def load_state(path: str) -> Any:
    """``paddle.load(path)`` of a run's checkpoint; a missing file is a ``FileNotFoundError`` and an
    empty or unreadable one a :class:`RunFileError`, both naming ``path``.

    Examples:
        >>> sorted(load_state("/tmp/linear.pdparams"))
        ['bias', 'weight']
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    if os.path.getsize(path) == 0:
        raise RunFileError(f"{path} is empty (0 bytes; written by a full disk or a copy that failed?); "
                           "restore it or retrain")
    try:
        return paddle.load(path)
    except (EOFError, ValueError, RuntimeError, TypeError, KeyError, IndexError, AttributeError,
            ImportError) as err:  # what unpickling a damaged file raises
        detail = str(err).splitlines()[0] if str(err) else "truncated?"
        raise RunFileError(f"{path} is not a readable Paddle checkpoint ({type(err).__name__}: {detail}); "
                           "restore it or retrain") from None


def atomic_write_text(text: str, path: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename), like :func:`atomic_save`."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    _atomic_write(path, write)


def _atomic_write(path: str, write) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        # mkstemp makes the file private (0600); give it the permissions open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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


def _scalar(value: Any) -> Optional[float]:
    """hapi logs metrics as numbers, one-element lists or numpy arrays; return a float or None."""
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, numbers.Number):
        return float(value)
    return None


class SaveBestModel(Callback):
    """Save the network's weights whenever the monitored evaluation metric improves.

    Writes ``<save_dir>/best_model.pdparams`` (the network's ``state_dict``) atomically, on rank 0
    only. The metric is read from the evaluation logs at the end of each evaluation, where hapi
    names them like the training ones (``acc``, ``loss``); one-element lists are unwrapped.

    The AI Studio notebook's call ``SaveBestModel(target=0.5, path="work/best_model")`` works too:
    ``path`` is a file prefix as in ``paddle.Model.save(path)`` (the weights go to
    ``work/best_model.pdparams``), and ``target`` is the value a first model must beat before
    anything is saved. Unlike the notebook's callback, which called ``model.save`` and so also
    wrote the optimizer state, only the weights are written (resuming is :class:`CheckpointSaver`'s
    job).

    Args:
        save_dir (str, optional): folder for ``best_model.pdparams``; give it or ``path``. Default: None.
        monitor (str, optional): key of the evaluation logs to watch. Default: "acc".
        mode (str, optional): "max" if larger is better, "min" if smaller is. Default: "max".
        filename (str, optional): file name inside ``save_dir``. Default: "best_model.pdparams".
        verbose (int, optional): 1 prints a line on each improvement. Default: 1.
        target (float, optional): save only values better than this (larger for "max", smaller for
            "min"); None saves the first value. Default: None.
        path (str, optional): instead of ``save_dir``: the prefix of the file, without
            ``.pdparams``, which is added. Default: None.

    Attributes:
        path (str): the file written.
        best (float|None): best value saved so far (None until a value beats ``target``); set it to
            resume a run.
        best_epoch (int|None): 1-based epoch of ``best``.

    Examples:
        >>> cb = SaveBestModel("runs/demo", monitor="acc", mode="max")
        >>> cb.path, cb.best is None
        ('runs/demo/best_model.pdparams', True)
        >>> SaveBestModel(target=0.5, path="work/best_model").path
        'work/best_model.pdparams'
    """

    def __init__(self, save_dir: Optional[str] = None, monitor: str = "acc", mode: str = "max",
                 filename: str = "best_model.pdparams", verbose: int = 1, *, target: Optional[float] = None,
                 path: Optional[str] = None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.path = _best_model_path(save_dir, filename, path)
        if target is not None and not isinstance(target, numbers.Real):
            raise TypeError(f"target must be a number (the value to beat), got {target!r}")
        self.save_dir = save_dir if save_dir is not None else os.path.dirname(self.path)
        self.monitor = monitor
        self.mode = mode
        self.target = None if target is None else float(target)
        self.verbose = verbose
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.initial_epoch = 0
        self._epoch = 0
        self._warned = False

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = self.initial_epoch + epoch + 1

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        bar = self.best if self.best is not None else self.target
        if bar is None:
            return True
        return value > bar if self.mode == "max" else value < bar

    def on_eval_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        value = _scalar((logs or {}).get(self.monitor))
        if value is None:
            if not self._warned:
                warnings.warn(
                    f"SaveBestModel: the evaluation logs have no numeric {self.monitor!r} "
                    f"(keys: {sorted(logs or {})}); no best model is saved.", stacklevel=2)
                self._warned = True
            return
        if not self._improves(value):
            return
        self.best, self.best_epoch = value, self._epoch
        if is_main_process():
            atomic_save(self.model.network.state_dict(), self.path)
            if self.verbose:
                print(f"best {self.monitor} {value:.4f} at epoch {self._epoch}, saved {self.path}")


def _best_model_path(save_dir, filename: str, path: Optional[str]) -> str:
    """``SaveBestModel``'s file from ``save_dir`` + ``filename``, or from the notebook's ``path`` prefix."""
    if save_dir is not None and not isinstance(save_dir, (str, os.PathLike)):
        raise TypeError(f"save_dir must be a folder name, got {save_dir!r}; "
                        "for the notebook's threshold write SaveBestModel(target=..., path=...)")
    if path is None:
        if save_dir is None:
            raise TypeError("SaveBestModel needs save_dir (a folder) or path (a file prefix such as 'work/best_model')")
        return os.path.join(save_dir, filename)
    if save_dir is not None:
        raise TypeError(f"give save_dir or path, not both (got save_dir={save_dir!r}, path={path!r})")
    if filename != "best_model.pdparams":
        raise TypeError("filename goes with save_dir; with path, the file is path + '.pdparams'")
    path = os.fspath(path)
    if path.endswith(".pdparams"):
        raise ValueError(f"path is a prefix, as for paddle.Model.save: give {path[:-len('.pdparams')]!r}, "
                         f"which writes {path!r}")
    return path + ".pdparams"


class _AfterEvalCallback(Callback):
    """Calls ``_epoch_done(epoch, train_logs, eval_logs)`` once per epoch, after its evaluation.

    hapi evaluates after ``on_epoch_end``; a row of history or a checkpoint must include both.
    Without evaluation data the epoch is finished at the next epoch's start or at the end.
    ``epoch`` passed on is 1-based and counts ``initial_epoch``.
    """

    def __init__(self):
        super().__init__()
        self.initial_epoch = 0
        self._pending = None

    def _epoch_done(self, epoch: int, train_logs: Dict[str, Any], eval_logs: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _flush(self, eval_logs: Optional[Dict[str, Any]] = None) -> None:
        if self._pending is not None:
            epoch, train_logs = self._pending
            self._pending = None
            self._epoch_done(epoch, train_logs, dict(eval_logs or {}))

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._flush()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._pending = (self.initial_epoch + epoch + 1, dict(logs or {}))

    def on_eval_end(self, logs=None) -> None:
        # A stand-alone Model.evaluate also ends here, with nothing pending: ignored.
        self._flush(logs)

    def on_train_end(self, logs=None) -> None:
        self._flush()


class CheckpointSaver(_AfterEvalCallback):
    """Save the state needed to resume after every epoch: ``last.pdparams``, ``last.pdopt``, ``last.json``.

    ``last.json`` holds ``{"epoch": finished_epochs, "best": ..., "best_epoch": ...}`` and is written
    last, so it never names an epoch whose weights are not on disk. Rank 0 only, each file atomic.

    Args:
        save_dir (str): the run folder.
        best_model (SaveBestModel, optional): whose ``best``/``best_epoch`` to record. Default: None.

    Examples:
        >>> saver = CheckpointSaver("runs/demo")
        >>> saver.initial_epoch
        0
    """

    def __init__(self, save_dir: str, best_model: Optional[SaveBestModel] = None):
        super().__init__()
        self.save_dir = save_dir
        self.best_model = best_model

    def _epoch_done(self, epoch, train_logs, eval_logs) -> None:
        if not is_main_process():
            return
        prefix = os.path.join(self.save_dir, "last")
        atomic_save(self.model.network.state_dict(), prefix + ".pdparams")
        atomic_save(portable_optimizer_state(self.model._optimizer, self.model.network), prefix + ".pdopt")
        state = {"epoch": epoch}
        if self.best_model is not None:
            state.update(best=self.best_model.best, best_epoch=self.best_model.best_epoch)
        atomic_write_text(json.dumps(state, indent=2) + "\n", prefix + ".json")


class HistoryLogger(_AfterEvalCallback):
    """Append one row per epoch to a CSV file (rank 0 only).

    Columns are :data:`HISTORY_COLUMNS`: ``epoch`` (1-based), ``loss`` and ``acc`` (training, loss
    averaged over the epoch's samples, accuracy accumulated over the epoch), ``eval_loss`` and
    ``eval_acc`` (empty without evaluation data), ``lr`` (the learning rate of the epoch's first
    step) and ``time`` (seconds for the epoch, training plus evaluation). Each row is flushed and
    fsynced as it is written, so an interrupted run keeps every finished epoch. Under data
    parallelism ``eval_acc`` covers all samples (hapi gathers them), while the losses and ``acc``
    are those of rank 0's share.

    Args:
        path (str): the CSV file; created with a header if missing, appended to otherwise.

    Examples:
        >>> logger = HistoryLogger("runs/demo/history.csv")
        >>> logger.path
        'runs/demo/history.csv'
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self._start = 0.0
        self._lr = float("nan")
        self._sums = {}

    def on_epoch_begin(self, epoch, logs=None) -> None:
        super().on_epoch_begin(epoch, logs)
        self._start = time.time()
        self._lr = float(self.model._optimizer.get_lr())
        self._sums = {"train": [0.0, 0], "eval": [0.0, 0]}

    def _add_batch(self, mode: str, logs) -> None:
        loss, size = _scalar((logs or {}).get("loss")), (logs or {}).get("batch_size")
        if loss is not None and size:
            self._sums[mode][0] += loss * size
            self._sums[mode][1] += size

    def on_train_batch_end(self, step, logs=None) -> None:
        self._add_batch("train", logs)

    def on_eval_batch_end(self, step, logs=None) -> None:
        if self._pending is not None:
            self._add_batch("eval", logs)

    def _mean_loss(self, mode: str, logs) -> Optional[float]:
        total, count = self._sums.get(mode, (0.0, 0))
        return total / count if count else _scalar(logs.get("loss"))

    def _epoch_done(self, epoch, train_logs, eval_logs) -> None:
        row = {
            "epoch": epoch,
            "loss": self._mean_loss("train", train_logs),
            "acc": _scalar(train_logs.get("acc")),
            "eval_loss": self._mean_loss("eval", eval_logs) if eval_logs else None,
            "eval_acc": _scalar(eval_logs.get("acc")),
            "lr": self._lr,
            "time": round(time.time() - self._start, 3),
        }
        if not is_main_process():
            return
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
            f.flush()
            os.fsync(f.fileno())


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


def read_history(path: str) -> List[Dict[str, Optional[float]]]:
    """Read a ``history.csv`` written by :class:`HistoryLogger` (or the run folder holding it).

    Args:
        path (str): the CSV file or its run folder.

    Returns:
        list[dict]: one dict per epoch; numbers as ``float`` (``epoch`` as ``int``), empty cells as None.

    Examples:
        >>> rows = read_history("runs/demo/towernet_simam")  # written by `python -m simam_paddle demo`  # doctest: +SKIP
        >>> sorted(rows[0])  # doctest: +SKIP
        ['acc', 'epoch', 'eval_acc', 'eval_loss', 'loss', 'lr', 'time']
    """
    if os.path.isdir(path):
        path = os.path.join(path, "history.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no training history at {path}; a run folder made by `train` has history.csv")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is not None and "epoch" not in reader.fieldnames:
            raise RunFileError(f"{path} has no epoch column (header {reader.fieldnames}); "
                               f"a history.csv written by `train` starts with {','.join(HISTORY_COLUMNS)}")
        for raw in reader:
            try:
                row = {k: (float(v) if v not in ("", None) else None) for k, v in raw.items()}
                row["epoch"] = int(row["epoch"])
            except (TypeError, ValueError):
                line = ",".join(str(v) for v in raw.values() if v is not None)
                raise RunFileError(f"{path}, line {reader.line_num}: {line[:60]!r} is not a row of numbers "
                                   "with an epoch; remove that line") from None
            rows.append(row)
    return rows


class EpochLR(Callback):
    """Put the learning-rate schedule at the start of each epoch and report it.

    If the optimizer's scheduler has ``set_epoch`` (as :class:`simam_paddle.training.CosineDecayToZero`
    has), it is called with the absolute epoch at every epoch start. The schedule is then right
    whether hapi steps it per batch (its default), per epoch, or not at all, and after a resume.

    Args:
        verbose (int, optional): 1 prints the epoch's learning rate. Default: 0.

    Examples:
        >>> EpochLR(verbose=1).initial_epoch
        0
    """

    def __init__(self, verbose: int = 0):
        super().__init__()
        self.verbose = verbose
        self.initial_epoch = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        optimizer = self.model._optimizer
        scheduler = getattr(optimizer, "_learning_rate", None)
        if hasattr(scheduler, "set_epoch"):
            scheduler.set_epoch(self.initial_epoch + epoch)
        if self.verbose and is_main_process():
            print(f"epoch {self.initial_epoch + epoch + 1}: lr {optimizer.get_lr():.6g}")


def make_visualdl(log_dir: str, initial_epoch: int = 0, display_name: Optional[str] = None) -> Optional[Callback]:
    """A ``paddle.callbacks.VisualDL`` for resumable runs, or None without visualdl.

    Writes ``train/loss``, ``train/acc`` per batch (step: batches since the run started) and
    ``eval/*`` and ``train/lr`` per epoch (step: the 1-based epoch, as in ``history.csv``), on
    rank 0, into one record file, ``<log_dir>/vdlrecords.run.log``. VisualDL shows only the newest
    record file of a folder, so a resumed run appends to that file; before it does, points written
    after the last checkpoint (a run stopped mid-epoch) are dropped, so every step appears once.
    View with ``visualdl --logdir runs`` to compare runs side by side.

    Args:
        log_dir (str): folder for the VisualDL records.
        initial_epoch (int, optional): epochs finished before this fit (resume). Default: 0.
        display_name (str, optional): the run's name in VisualDL's list of runs; None uses the
            run folder's name (the parent of ``log_dir`` when that is called ``visualdl``). Default: None.

    Returns:
        Callback|None: the callback, or None (with a warning) if ``visualdl`` is not installed.

    Examples:
        >>> make_visualdl("runs/towernet_none_seed0/visualdl").display_name
        'towernet_none_seed0'
    """
    try:
        import visualdl  # noqa: F401
    except ImportError:
        warnings.warn("visualdl is not installed; no VisualDL logs (pip install visualdl).", stacklevel=2)
        return None
    return _VisualDL(log_dir, initial_epoch, display_name)


VISUALDL_FILE = "vdlrecords.run.log"
"""The one VisualDL record file of a run (VisualDL reads files whose names hold ``vdlrecords``)."""


def _run_name(log_dir: str) -> str:
    folder = os.path.normpath(os.path.abspath(log_dir))
    if os.path.basename(folder) == "visualdl":
        folder = os.path.dirname(folder)
    return os.path.basename(folder)


def _is_epoch_tag(tag: str) -> bool:
    return tag == "train/lr" or tag.startswith("eval/")


def _record_files(log_dir: str) -> List[str]:
    """VisualDL record files of ``log_dir``, oldest first (time-stamped names, then the run's file)."""
    if not os.path.isdir(log_dir):
        return []
    names = [n for n in os.listdir(log_dir) if "vdlrecords" in n and os.path.isfile(os.path.join(log_dir, n))]
    return sorted(names, key=lambda n: (n == VISUALDL_FILE, n))


def _open_writer(log_dir: str, display_name: str):
    import contextlib
    import io

    import visualdl

    # LogWriter prints a notice when it appends to an existing file.
    with contextlib.redirect_stdout(io.StringIO()):
        return visualdl.LogWriter(log_dir, file_name=VISUALDL_FILE, display_name=display_name)


def _keep_finished_points(log_dir: str, display_name: str, epochs: int, batches: int) -> None:
    """Rewrite ``log_dir``'s records as one file holding only points of finished epochs.

    Per-epoch tags keep steps up to ``epochs``, per-batch tags up to ``batches``; a later file's
    point replaces an earlier one of the same tag and step. The new file is written in a temporary
    folder next to ``log_dir`` and renamed into place, then the other record files are removed.
    """
    files = _record_files(log_dir)
    if not files:
        return
    from visualdl import LogReader

    points: Dict[str, Dict[int, Any]] = {}
    for name in files:
        reader = LogReader(file_path=os.path.join(log_dir, name))
        for tag in reader.get_tags().get("scalar", []):
            last = epochs if _is_epoch_tag(tag) else batches
            for record in reader.get_data("scalar", tag):
                if record.id <= last:
                    points.setdefault(tag, {})[record.id] = (record.value, record.timestamp)
    tmp = tempfile.mkdtemp(prefix=".visualdl-", dir=os.path.dirname(os.path.abspath(log_dir)))
    try:
        writer = _open_writer(tmp, display_name)
        for tag, steps in points.items():
            for step in sorted(steps):
                value, walltime = steps[step]
                writer.add_scalar(tag=tag, value=value, step=step, walltime=walltime)
        writer.close()
        os.replace(os.path.join(tmp, VISUALDL_FILE), os.path.join(log_dir, VISUALDL_FILE))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in files:
        if name != VISUALDL_FILE:
            os.remove(os.path.join(log_dir, name))


class _VisualDL(paddle.callbacks.VisualDL):
    def __init__(self, log_dir: str, initial_epoch: int = 0, display_name: Optional[str] = None):
        super().__init__(log_dir)
        self.initial_epoch = initial_epoch
        self.display_name = display_name or _run_name(log_dir)

    def _is_write(self) -> bool:
        # Paddle's checks the local rank, which is 0 once per machine; files are written once per job.
        return is_main_process()

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        self.train_step = self.initial_epoch * (self.params.get("steps") or 0)
        if self._is_write():
            _keep_finished_points(self.log_dir, self.display_name, self.initial_epoch, self.train_step)

    def _updates(self, logs, mode) -> None:
        if self._is_write() and not hasattr(self, "writer"):
            self.writer = _open_writer(self.log_dir, self.display_name)
        super()._updates(logs, mode)

    def on_epoch_begin(self, epoch=None, logs=None) -> None:
        super().on_epoch_begin(epoch, logs)
        # 1-based like history.csv; hapi's eval records take their step from self.epoch.
        self.epoch = self.initial_epoch + epoch + 1
        if self._is_write():
            if not hasattr(self, "writer"):
                self.writer = _open_writer(self.log_dir, self.display_name)
            self.writer.add_scalar(tag="train/lr", step=self.epoch, value=float(self.model._optimizer.get_lr()))
