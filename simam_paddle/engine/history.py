"""A run's ``history.csv``: its columns, and reading it back; and reading a run's JSON files.

:class:`~simam_paddle.engine.callbacks.HistoryLogger` writes one row per finished epoch;
:func:`read_history` reads them for reports, plots and resuming. :class:`RunFileError` is what
every reader of a run folder's files raises for a file a run never writes.
"""
import csv
import io
import json
import os
from typing import Any, Dict, List, Optional

from .._io import NotTextError, read_text

__all__ = ["HISTORY_COLUMNS", "RunFileError", "read_history", "read_run_json"]

HISTORY_COLUMNS = ("epoch", "loss", "acc", "eval_loss", "eval_acc", "lr", "time", "onednn_convs", "paddle_convs")
"""Columns of ``history.csv``, in order. The last two, the convolution layers that ran on oneDNN and on Paddle's
kernels in the epoch, are new since 2026-12-06: older histories end at ``time`` (kernels not recorded)."""


class RunFileError(ValueError):
    """A run folder's file (``config.json``, ``last.json``, ``history.csv``, a checkpoint) is unreadable
    or holds something a run never writes; the message names the file and what is wrong."""


def read_run_json(path: str, hint: str) -> Dict[str, Any]:
    """Read a run folder's JSON file (``config.json``, ``last.json``), which must hold an object.

    Args:
        path (str): the file.
        hint (str): how the file comes about or what to do, appended to the error message.

    Raises:
        RunFileError: the file is not JSON, or holds something other than an object; the message names it.

    Examples:
        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "last.json")
        >>> with open(path, "w") as f:
        ...     json.dump([1], f)
        >>> read_run_json(path, "it is written after every epoch")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        simam_paddle.engine.history.RunFileError: .../last.json holds a JSON list, not an object; it is written ...
    """
    try:
        value = json.loads(read_text(path, "a run's JSON file"))
    except NotTextError as err:
        raise RunFileError(f"{err}; {hint}") from None
    except json.JSONDecodeError as err:
        raise RunFileError(f"{path} is not valid JSON ({err}); {hint}") from None
    if not isinstance(value, dict):
        raise RunFileError(f"{path} holds a JSON {type(value).__name__}, not an object; {hint}")
    return value


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
    try:
        text = read_text(path, "a history.csv written by `train`", newline="")
    except NotTextError as err:
        raise RunFileError(str(err)) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is not None and "epoch" not in reader.fieldnames:
        raise RunFileError(f"{path} has no epoch column (header {reader.fieldnames}); "
                           f"a history.csv written by `train` starts with {','.join(HISTORY_COLUMNS)}")
    rows = []
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

