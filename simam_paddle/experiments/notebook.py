"""What the notebooks in ``notebooks/`` share: the quick profile and their data.

- :func:`quick_profile` decides between the notebook's full settings (256 px, 100 epochs) and a
  quick profile small enough for a 2-core CPU: ``SIMAM_QUICK=1`` / ``0`` in the environment
  forces it, otherwise it is quick exactly when Paddle has no GPU.
- :func:`prepare_split` splits Caltech101 (``Images.zip`` or ``Images/`` in the data folder, see
  ``data/README.md``) or, without it, the embedded handwritten digits, so every notebook can run
  on its own on a fresh machine.

They train with :func:`simam_paddle.complete_run`, which skips finished runs and resumes
interrupted ones, so re-running a cell never fails on its own earlier output.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

from ..data.split import SplitReport

__all__ = ["QUICK_ENV", "CALTECH_SOURCES", "quick_profile", "find_caltech", "prepare_split", "PreparedData"]

QUICK_ENV = "SIMAM_QUICK"
"""Environment variable that forces the quick profile (``1``) or the full one (``0``)."""
CALTECH_SOURCES = ("Images.zip", "Images")
"""Names looked for in the data folder, in this order (the AI Studio notebook's archive and its folder)."""

_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def _has_gpu() -> bool:
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def quick_profile(environ: Optional[Mapping[str, str]] = None, has_gpu: Optional[bool] = None) -> Tuple[bool, str]:
    """Whether to use the quick profile, and why.

    ``SIMAM_QUICK=1`` (or true/yes/on) forces it and ``SIMAM_QUICK=0`` (or false/no/off) forbids
    it; unset or empty, the profile is quick exactly when Paddle sees no GPU.

    Args:
        environ (Mapping[str, str], optional): the environment to read. Default: None (``os.environ``).
        has_gpu (bool, optional): whether a GPU is available. Default: None (ask Paddle).

    Returns:
        tuple[bool, str]: ``(quick, reason)``, the reason as a short phrase for the notebook to print.

    Examples:
        >>> quick_profile({"SIMAM_QUICK": "1"})
        (True, 'SIMAM_QUICK=1 in the environment')
        >>> quick_profile({}, has_gpu=True)
        (False, 'a GPU is available')
    """
    env = os.environ if environ is None else environ
    raw = env.get(QUICK_ENV, "")
    value = raw.strip().lower()
    if value in _YES:
        return True, f"{QUICK_ENV}={raw.strip()} in the environment"
    if value in _NO:
        return False, f"{QUICK_ENV}={raw.strip()} in the environment"
    if value:
        raise ValueError(f"{QUICK_ENV}={raw!r} is not understood; set it to 1 (quick profile) or 0 (full profile), "
                         "or leave it unset to be quick on CPU only")
    if _has_gpu() if has_gpu is None else has_gpu:
        return False, "a GPU is available"
    return True, "no GPU, so the CPU-sized profile"


def find_caltech(data_dir: Union[str, os.PathLike]) -> Optional[Path]:
    """The Caltech101 source in ``data_dir``: ``Images.zip`` if present, else an ``Images/`` folder, else None.

    Examples:
        >>> find_caltech("data")  # doctest: +SKIP
        PosixPath('data/Images.zip')
    """
    for name in CALTECH_SOURCES:
        path = Path(data_dir) / name
        if path.is_file() if name.endswith(".zip") else path.is_dir():
            return path
    return None


@dataclass(frozen=True)
class PreparedData:
    """The data a notebook trains on.

    Attributes:
        kind (str): ``"caltech"`` or ``"digits"``.
        source (Path): ``Images.zip``, ``Images/`` or the written digits folder.
        split (Path): the split folder holding ``train/`` and ``eval/``.
        report (SplitReport): per-class counts and skipped files of the split.
    """

    kind: str
    source: Path
    split: Path
    report: SplitReport


def prepare_split(data_dir: Union[str, os.PathLike] = "data", eval_every: int = 5,
                  progress: Optional[bool] = None, caltech: bool = True) -> PreparedData:
    """Split Caltech101 from ``data_dir`` if it is there, otherwise the embedded digits.

    With ``Images.zip`` or ``Images/`` in ``data_dir`` the split goes to ``data_dir/caltech_split``;
    otherwise scikit-learn's handwritten digits are written to ``data_dir/digits`` and split to
    ``data_dir/digits_split``. Both steps are safe to repeat: finished data are verified, not
    rewritten (see :func:`simam_paddle.split_dataset`).

    Args:
        data_dir (str|PathLike, optional): the data folder. Default: "data".
        eval_every (int, optional): every ``eval_every``-th image of a class goes to ``eval/``
            (the notebook's 80/20 split). Default: 5.
        progress (bool, optional): progress bar while splitting; None decides by size. Default: None.
        caltech (bool, optional): False takes the digits even where Caltech101 is present. Default: True.

    Returns:
        PreparedData: kind, source, split folder and the split's report.

    Examples:
        >>> data = prepare_split("/tmp/data")  # doctest: +SKIP
        >>> data.kind, data.report.num_train, data.report.num_eval  # doctest: +SKIP
        ('digits', 1433, 364)
    """
    from ..data.digits import make_digits_dataset
    from ..data.split import split_dataset

    data_dir = Path(data_dir)
    source = find_caltech(data_dir) if caltech else None
    if source is not None:
        kind, split = "caltech", data_dir / "caltech_split"
    else:
        kind, source, split = "digits", data_dir / "digits", data_dir / "digits_split"
        make_digits_dataset(source)
    report = split_dataset(source, split, eval_every=eval_every, progress=progress)
    return PreparedData(kind=kind, source=source, split=split, report=report)

