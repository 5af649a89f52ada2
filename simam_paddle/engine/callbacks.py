"""Training callbacks for ``paddle.Model.fit``: best-model saving, checkpoints, CSV history, LR, per-epoch seeds,
absolute epoch numbers (progress bar, the running epoch), a printed line per epoch, quiet warnings, VisualDL.

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
import io
import json
import math
import numbers
import os
import shutil
import tempfile
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple

import paddle
from paddle.callbacks import Callback

from .._io import atomic_write_text, is_main_process, read_text
from .._quiet import training_warning_filters
from .acceleration import convolution_kernels
from .checkpoints import CHECKPOINT_FILES, atomic_save, portable_optimizer_state, staged_path
from .device import seed_everything
from .history import HISTORY_COLUMNS, read_history

__all__ = [
    "SaveBestModel",
    "CheckpointSaver",
    "HistoryLogger",
    "EpochLR",
    "EpochSeed",
    "CurrentEpoch",
    "ResumedProgBar",
    "EpochReport",
    "QuietTraining",
    "make_visualdl",
    "VISUALDL_FILE",
    "run_callbacks",
]


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
        # Set by a CheckpointSaver of the same folder: the best model is staged and committed with its epoch.
        self.staged = False

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
            path = staged_path(self.path, self._epoch) if self.staged else self.path
            atomic_save(self.model.network.state_dict(), path)
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

    ``last.json`` holds ``{"epoch": finished_epochs, "best": ..., "best_epoch": ...}``. The epoch's files are
    committed together (see :mod:`simam_paddle.engine.checkpoints`): written under staged names, then
    ``last.json`` (the commit), then renamed; the best model of ``best_model`` (when it writes into the same
    folder) is staged and committed with them, so an interrupted epoch never leaves weights, optimizer state,
    ``last.json`` or a best model of different epochs. Rank 0 only, each file atomic.

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
        if (best_model is not None and os.path.basename(best_model.path) in CHECKPOINT_FILES
                and os.path.dirname(os.path.abspath(best_model.path)) == os.path.abspath(save_dir)):
            best_model.staged = True  # committed with the epoch (settle_checkpoint knows its name)

    def _epoch_done(self, epoch, train_logs, eval_logs) -> None:
        if not is_main_process():
            return
        prefix = os.path.join(self.save_dir, "last")
        files = [prefix + ".pdparams", prefix + ".pdopt"]
        atomic_save(self.model.network.state_dict(), staged_path(files[0], epoch))
        atomic_save(portable_optimizer_state(self.model._optimizer, self.model.network), staged_path(files[1], epoch))
        state = {"epoch": epoch}
        if self.best_model is not None:
            state.update(best=self.best_model.best, best_epoch=self.best_model.best_epoch)
            if self.best_model.staged and self.best_model.best_epoch == epoch:
                files.append(self.best_model.path)
        atomic_write_text(json.dumps(state, indent=2) + "\n", prefix + ".json")  # the commit
        for path in files:
            os.replace(staged_path(path, epoch), path)


class HistoryLogger(_AfterEvalCallback):
    """Append one row per epoch to a CSV file (rank 0 only).

    Columns are :data:`HISTORY_COLUMNS`: ``epoch`` (1-based), ``loss`` and ``acc`` (training, loss
    averaged over the epoch's samples, accuracy accumulated over the epoch), ``eval_loss`` and
    ``eval_acc`` (empty without evaluation data), ``lr`` (the learning rate of the epoch's first
    step), ``time`` (seconds for the epoch, training plus evaluation), ``onednn_convs`` and ``paddle_convs`` (the
    convolution layers that ran on oneDNN and on Paddle's kernels in the epoch, as
    :func:`~simam_paddle.engine.acceleration.convolution_kernels` counts them). Each row is flushed and
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
        row["onednn_convs"], row["paddle_convs"] = convolution_kernels(self.model.network)
        if not is_main_process():
            return
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        # A history begun before the kernel columns existed keeps its header (resumed runs stay one table).
        columns = HISTORY_COLUMNS if new else _header(self.path)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
            f.flush()
            os.fsync(f.fileno())


def _header(path: str) -> Tuple[str, ...]:
    header = next(csv.reader(io.StringIO(read_text(path, "a history.csv written by `train`", newline=""),
                                         newline="")), None)
    return tuple(header) if header and "epoch" in header else HISTORY_COLUMNS


class EpochLR(Callback):
    """Put the learning-rate schedule at the start of each epoch and report it.

    If the optimizer's scheduler has ``set_epoch`` (as :class:`simam_paddle.engine.training.CosineDecayToZero`
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


class EpochSeed(Callback):
    """Seed every epoch from (seed, absolute epoch): shuffling and augmentation are reproducible,
    the same on every process, and the same after a resume as without one."""

    def __init__(self, batch_sampler, seed: int, initial_epoch: int):
        super().__init__()
        self.batch_sampler, self.seed, self.initial_epoch = batch_sampler, seed, initial_epoch

    def on_epoch_begin(self, epoch, logs=None) -> None:
        # DistributedBatchSampler shuffles with RandomState(epoch); mixing in the seed keeps
        # different seeds from sharing one sequence of orders.
        epoch_seed = (self.seed * 1_000_003 + self.initial_epoch + epoch) % 2**32
        self.batch_sampler.set_epoch(epoch_seed)
        seed_everything(epoch_seed)


class ResumedProgBar(paddle.callbacks.ProgBarLogger):
    """hapi's progress display with absolute epochs: a resumed run shows ``Epoch 3/4``, not ``Epoch 1/2``."""

    def __init__(self, log_freq: int, verbose: int, initial_epoch: int):
        super().__init__(log_freq, verbose=verbose)
        self.initial_epoch = initial_epoch

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        self.epochs = self.initial_epoch + self.params["epochs"]

    def on_epoch_begin(self, epoch=None, logs=None) -> None:
        super().on_epoch_begin(self.initial_epoch + epoch, logs)


class CurrentEpoch(Callback):
    """Which 1-based epoch is running; first in the list, so it is right before anything else runs."""

    def __init__(self, initial_epoch: int):
        super().__init__()
        self.initial_epoch = initial_epoch
        self.epoch = initial_epoch + 1

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.epoch = self.initial_epoch + epoch + 1


class EpochReport(Callback):
    """One printed line per epoch, from the row of ``history.csv`` the :class:`HistoryLogger` before it has just
    written (put it after that logger); ``(best)`` marks the epoch ``best`` (a :class:`SaveBestModel`) kept."""

    def __init__(self, history: str, epochs: int, best: "SaveBestModel"):
        super().__init__()
        self.history, self.epochs, self.best = history, epochs, best

    def on_eval_end(self, logs=None) -> None:
        rows = read_history(self.history)
        if not rows:
            return
        row = rows[-1]
        best = " (best)" if self.best.best_epoch == row["epoch"] else ""
        print(f"epoch {row['epoch']:>{len(str(self.epochs))}}/{self.epochs}: "
              f"loss {row['loss']:.3f}, acc {row['acc']:.3f} | "
              f"eval loss {row['eval_loss']:.3f}, eval acc {row['eval_acc']:.3f}{best} | "
              f"{row['time']:.0f} s")


class QuietTraining(Callback):
    """Hides, from ``on_train_begin`` to ``on_train_end``, the warnings every training step repeats (see ``_quiet``)."""

    def on_train_begin(self, logs=None) -> None:
        self._filters = training_warning_filters()
        self._filters.__enter__()

    def on_train_end(self, logs=None) -> None:
        self._filters.__exit__(None, None, None)


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


def run_callbacks(output_dir: str, train_loader, seed: int, checkpoint: Optional[Dict[str, Any]] = None,
                  verbose: int = 0) -> List[Callback]:
    """The callbacks that make ``fit`` a run of ``output_dir``, resumable, going on after ``checkpoint``.

    In order: :class:`EpochSeed` (each epoch's shuffling from ``seed``), :class:`EpochLR` (the schedule put at
    each epoch's start), :class:`SaveBestModel` (on eval ``acc``), :class:`HistoryLogger` (``history.csv``),
    :class:`CheckpointSaver` (``last.*``), VisualDL where installed (:func:`make_visualdl`), and hapi's
    ``LRScheduler`` stepping the schedule every batch. ``train`` fits with them, and a notebook through
    :func:`~simam_paddle.experiments.open_run`, so both write the same run folder.

    Args:
        output_dir (str): the run folder.
        train_loader (paddle.io.DataLoader): from :func:`~simam_paddle.engine.make_loader` with ``shuffle=True``.
        seed (int): the run's seed.
        checkpoint (dict, optional): the state of the checkpoint the run resumes from
            (:func:`~simam_paddle.engine.restore_last_checkpoint`): ``epoch`` finished, ``best`` and
            ``best_epoch``; None or empty for a new run. Default: None.
        verbose (int, optional): 2 prints each epoch's learning rate; 1 and 2 each new best model. Default: 0.

    Returns:
        list: the callbacks, every one numbering epochs after the checkpoint's.

    Examples:
        >>> loader = paddle.io.DataLoader(paddle.io.TensorDataset([paddle.rand([4, 2])]), batch_size=2)
        >>> [type(cb).__name__ for cb in run_callbacks("runs/t", loader, seed=0, checkpoint={"epoch": 2})][:5]
        ['EpochSeed', 'EpochLR', 'SaveBestModel', 'HistoryLogger', 'CheckpointSaver']
    """
    checkpoint = checkpoint or {}
    initial_epoch = int(checkpoint.get("epoch", 0))
    best = SaveBestModel(output_dir, monitor="acc", mode="max", verbose=verbose)
    best.best, best.best_epoch = checkpoint.get("best"), checkpoint.get("best_epoch")
    own = [
        EpochSeed(train_loader.batch_sampler, seed, initial_epoch),
        EpochLR(verbose=1 if verbose == 2 else 0),
        best,
        HistoryLogger(os.path.join(output_dir, "history.csv")),
        CheckpointSaver(output_dir, best_model=best),
    ]
    visualdl = make_visualdl(os.path.join(output_dir, "visualdl"), initial_epoch)
    if visualdl is not None:
        own.append(visualdl)
    for callback in own:
        callback.initial_epoch = initial_epoch
    return own + [paddle.callbacks.LRScheduler(by_step=True, by_epoch=False)]


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
