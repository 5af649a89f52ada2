"""What the notebooks in ``notebooks/`` share: their profile, their data, and hapi runs kept in run folders.

- :func:`notebook_profile` picks one of three profiles: ``smoke`` (a few steps, for the test
  suite), ``cpu`` (minutes per notebook on a 2-core CPU, and models that really learn; the
  committed outputs use it) and ``full`` (the AI Studio notebook's settings, for a GPU).
  ``SIMAM_PROFILE=smoke|cpu|full`` forces one; the older ``SIMAM_QUICK=1`` / ``0`` means smoke /
  full; otherwise it is ``full`` with a GPU and ``cpu`` without. :func:`quick_profile` answers the
  older yes/no question (anything but ``full``).
- :func:`prepare_split` splits Caltech101 (``Images.zip`` or ``Images/`` in the data folder, see
  ``data/README.md``) or, without it, the embedded handwritten digits, so every notebook can run
  on its own on a fresh machine.
- :func:`per_class_subset` (from :mod:`simam_paddle.data.dataset`) takes the first images of each class, as the
  profiles' sample limits do.
- :func:`layer_table` is a summary of a network's top-level blocks, short enough to read.
- :func:`open_run` makes a ``paddle.Model`` that a notebook prepared and fits itself re-run safe:
  it ties the model to a run folder, so a finished run is read back, an interrupted one resumes,
  and a new one is recorded (``config.json``, ``history.csv``, checkpoints, VisualDL) exactly as
  :func:`simam_paddle.complete_run` records its runs.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..data.dataset import per_class_subset  # the notebooks reach it here
from ..data.split import SplitReport

__all__ = [
    "PROFILE_ENV", "PROFILES", "QUICK_ENV", "CALTECH_SOURCES", "notebook_profile", "quick_profile", "find_caltech",
    "prepare_split", "PreparedData", "per_class_subset", "layer_table", "NotebookRun", "open_run", "class_examples",
]

PROFILE_ENV = "SIMAM_PROFILE"
"""Environment variable naming the notebooks' profile: ``smoke``, ``cpu`` or ``full``."""
PROFILES = ("smoke", "cpu", "full")
"""The notebooks' profiles, smallest first."""
QUICK_ENV = "SIMAM_QUICK"
"""Older environment variable: ``1`` means the smoke profile, ``0`` the full one."""
CALTECH_SOURCES = ("Images.zip", "Images")
"""Names looked for in the data folder, in this order (the AI Studio notebook's archive and its folder)."""

_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def _has_gpu() -> bool:
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def notebook_profile(environ: Optional[Mapping[str, str]] = None, has_gpu: Optional[bool] = None) -> Tuple[str, str]:
    """The notebooks' profile, ``"smoke"``, ``"cpu"`` or ``"full"``, and why.

    ``SIMAM_PROFILE`` names it; else ``SIMAM_QUICK=1`` (or true/yes/on) means ``"smoke"`` and
    ``SIMAM_QUICK=0`` (or false/no/off) ``"full"``; with neither set it is ``"full"`` when Paddle
    sees a GPU and ``"cpu"`` otherwise.

    Args:
        environ (Mapping[str, str], optional): the environment to read. Default: None (``os.environ``).
        has_gpu (bool, optional): whether a GPU is available. Default: None (ask Paddle).

    Returns:
        tuple[str, str]: ``(profile, reason)``, the reason as a short phrase for the notebook to print.

    Examples:
        >>> notebook_profile({"SIMAM_PROFILE": "cpu"})
        ('cpu', 'SIMAM_PROFILE=cpu in the environment')
        >>> notebook_profile({"SIMAM_QUICK": "1"})
        ('smoke', 'SIMAM_QUICK=1 in the environment')
        >>> notebook_profile({}, has_gpu=False)
        ('cpu', 'no GPU, so the CPU profile')
    """
    env = os.environ if environ is None else environ
    raw = env.get(PROFILE_ENV, "").strip()
    if raw:
        if raw.lower() not in PROFILES:
            raise ValueError(f"{PROFILE_ENV}={raw!r} is not a profile; set it to one of {', '.join(PROFILES)}, "
                             "or leave it unset to choose by the device")
        return raw.lower(), f"{PROFILE_ENV}={raw} in the environment"
    raw = env.get(QUICK_ENV, "").strip()
    if raw.lower() in _YES:
        return "smoke", f"{QUICK_ENV}={raw} in the environment"
    if raw.lower() in _NO:
        return "full", f"{QUICK_ENV}={raw} in the environment"
    if raw:
        raise ValueError(f"{QUICK_ENV}={raw!r} is not understood; set it to 1 (quick profile) or 0 (full profile), "
                         f"or leave it unset to be quick on CPU only (or set {PROFILE_ENV}={'|'.join(PROFILES)})")
    if _has_gpu() if has_gpu is None else has_gpu:
        return "full", "a GPU is available"
    return "cpu", "no GPU, so the CPU profile"


def quick_profile(environ: Optional[Mapping[str, str]] = None, has_gpu: Optional[bool] = None) -> Tuple[bool, str]:
    """Whether a CPU-sized profile (``smoke`` or ``cpu``) is in use, and why: see :func:`notebook_profile`.

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
    profile, reason = notebook_profile(environ, has_gpu)
    return profile != "full", reason


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
    """Split Caltech101: the user's copy in ``data_dir`` if there is one, else the embedded Caltech-16; or the digits.

    With ``Images.zip`` or ``Images/`` in ``data_dir`` the split goes to ``data_dir/caltech_split``;
    otherwise the embedded Caltech-16 (``data/caltech16`` of the repository, 16 classes, 1,817 images) is
    split to ``data_dir/caltech16_split``. With ``caltech=False``, or where neither exists (an installed
    package without the repository), scikit-learn's handwritten digits are written to ``data_dir/digits`` and
    split to ``data_dir/digits_split``. Every step is safe to repeat: finished data are verified, not
    rewritten (see :func:`simam_paddle.split_dataset`); the source images are only read.

    Args:
        data_dir (str|PathLike, optional): the data folder. Default: "data".
        eval_every (int, optional): every ``eval_every``-th image of a class goes to ``eval/``
            (the notebook's 80/20 split). Default: 5.
        progress (bool, optional): progress bar while splitting; None decides by size. Default: None.
        caltech (bool, optional): False takes the digits (the notebooks' smoke profile). Default: True.

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
    elif caltech and _embedded_caltech16() is not None:
        kind, source, split = "caltech", _embedded_caltech16(), data_dir / "caltech16_split"
    else:
        kind, source, split = "digits", data_dir / "digits", data_dir / "digits_split"
        make_digits_dataset(source)
    report = split_dataset(source, split, eval_every=eval_every, progress=progress)
    return PreparedData(kind=kind, source=source, split=split, report=report)



def _embedded_caltech16() -> Optional[Path]:
    """The embedded Caltech-16, relative to the working folder (a notebook prints no machine path), or None."""
    from ..data.caltech import embedded_caltech16

    try:
        return Path(os.path.relpath(embedded_caltech16()))
    except (FileNotFoundError, ValueError):  # ValueError: another drive than the working folder's (Windows)
        return None


def layer_table(network, input_size: Union[int, Sequence[int]], depth: int = 1) -> str:
    """A summary of ``network`` by its blocks: name, type, output shape and parameters of each.

    ``paddle.summary`` lists every layer (well over a hundred rows for ResNet50); this lists the sub-layers
    ``depth`` levels down (the top-level blocks by default), measured with one forward pass on
    zeros in eval mode, and ends with the total parameter count.

    Args:
        network (paddle.nn.Layer): the network.
        input_size (int|Sequence[int]): the image side, or a full input shape such as ``[1, 3, 64, 64]``.
        depth (int, optional): how many levels of sub-layers to descend. Default: 1.

    Returns:
        str: a fixed-width table, one row per block.

    Examples:
        >>> import paddle
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3), paddle.nn.Flatten())
        >>> print(layer_table(net, 5))
        block   type      output shape         params
        0       Conv2D    [1, 8, 3, 3]            224
        1       Flatten   [1, 72]                   0
        total                                     224
    """
    import paddle

    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    shape = [1, 3, input_size, input_size] if isinstance(input_size, int) else list(input_size)
    blocks = [(name, layer) for name, layer in network.named_sublayers()
              if name.count(".") == depth - 1 or (name.count(".") < depth - 1 and not layer.sublayers())]
    outputs: Dict[str, List[int]] = {}
    handles = []
    for name, layer in blocks:
        def hook(layer, inputs, output, name=name):
            first = output[0] if isinstance(output, (list, tuple)) else output
            outputs[name] = list(first.shape)
        handles.append(layer.register_forward_post_hook(hook))
    was_training = network.training
    network.eval()
    try:
        with paddle.no_grad():
            network(paddle.zeros(shape))
    finally:
        for handle in handles:
            handle.remove()
        if was_training:
            network.train()
    rows = [(name, type(layer).__name__, str(outputs.get(name, "(not called)")),
             sum(int(p.size) for p in layer.parameters())) for name, layer in blocks]
    total = sum(int(p.size) for p in network.parameters())
    width = max([len("block"), len("total")] + [len(r[0]) for r in rows]) + 3
    type_width = max([len("type")] + [len(r[1]) for r in rows]) + 3
    lines = [f"{'block':<{width}}{'type':<{type_width}}{'output shape':<16}{'params':>11}"]
    lines += [f"{n:<{width}}{t:<{type_width}}{s:<16}{p:>11,}" for n, t, s, p in rows]
    lines.append(f"{'total':<{width}}{'':<{type_width}}{'':<16}{total:>11,}")
    return "\n".join(line.rstrip() for line in lines)


def _check_prepared_optimizer(optimizer: Any, name: str) -> None:
    """Refuse a model prepared with another optimizer than the run's settings name (config.json records the name)."""
    from ..engine import OPTIMIZERS

    if type(optimizer) is OPTIMIZERS[name]:
        return
    matching = [key for key, cls in OPTIMIZERS.items() if type(optimizer) is cls]
    fix = (f"give settings optimizer={matching[0]!r}" if matching else
           f"prepare it with simam_paddle.engine.make_optimizer(..., optimizer={name!r})")
    raise ValueError(f"the model was prepared with {type(optimizer).__name__}, but the run's settings say "
                     f"optimizer={name!r} (what config.json records); {fix}")


def _prepared_settings(optimizer: Any, train_loader: Any) -> Dict[str, Any]:
    """What a prepared model really trains with, where Paddle's objects say it: the initial learning rate and the
    epochs of the schedule (``make_optimizer``'s), the momentum (Adam: beta1), the L2 weight decay and the batch
    size of ``train_loader``. A value Paddle does not expose is left out (not checked)."""
    values: Dict[str, Any] = {}
    scheduler = optimizer._learning_rate
    if isinstance(scheduler, (int, float)):
        values["lr"] = float(scheduler)
    elif isinstance(getattr(scheduler, "base_lr", None), (int, float)):
        values["lr"] = float(scheduler.base_lr)
        if isinstance(getattr(scheduler, "epochs", None), int):  # CosineDecayToZero: the run's length
            values["epochs"] = scheduler.epochs
    momentum = getattr(optimizer, "_momentum", getattr(optimizer, "_beta1", None))
    if isinstance(momentum, (int, float)):
        values["momentum"] = float(momentum)
    regularization = getattr(optimizer, "regularization", None)
    decay = (getattr(regularization, "_coeff", None) if regularization is not None
             else getattr(optimizer, "_regularization_coeff", None))
    if isinstance(decay, (int, float)):
        values["weight_decay"] = float(decay)
    elif regularization is None and getattr(optimizer, "_regularization_method", "") == "":
        values["weight_decay"] = 0.0  # prepared without any
    batch_size = getattr(getattr(train_loader, "batch_sampler", None), "batch_size", None)
    if isinstance(batch_size, int):
        values["batch_size"] = batch_size
    return values


def _refuse_other_preparation(run_dir: str, prepared: Dict[str, Any], record: Mapping[str, Any], new: bool) -> None:
    """A ``ValueError`` naming every setting the prepared model and loader train with other than the run's (what
    ``config.json`` records, or will): the record must say what really ran."""
    import math

    differ = [(name, value, record.get(name)) for name, value in prepared.items()
              if record.get(name) is not None
              and not math.isclose(value, record[name], rel_tol=1e-9, abs_tol=1e-15)]
    if not differ:
        return
    where = "the run's settings resolve to" if new else f"{run_dir!r} was made with"
    listing = ", ".join(f"{name}: prepared {value!r}, {'settings' if new else 'run'} {run!r}"
                        for name, value, run in differ)
    fix = ", ".join(f"{name}={run!r}" for name, _, run in differ)
    raise ValueError(f"the model and loader are prepared to train otherwise than {where} ({listing}); config.json "
                     f"must record what trains: prepare them with {fix} (make_optimizer, make_loader), or give "
                     "the prepared values in the settings" + ("" if new else " and another run folder"))


@dataclass
class NotebookRun:
    """A run folder tied to a ``paddle.Model`` that the notebook prepared: see :func:`open_run`.

    Attributes:
        path (str): the run folder.
        epochs (int): epochs of the whole run.
        initial_epoch (int): epochs finished before this session (all of them for a finished run).
        status (str): ``"new"``, ``"resumed"`` or ``"finished"``.
        message (str): one line saying what happened, for the notebook to print.
        callbacks (list): the callbacks to give ``model.fit``; empty for a finished run.
        onednn (bool): whether the run trains with oneDNN convolutions on the CPU, as ``config.json``
            records it: the notebook fits inside
            ``simam_paddle.engine.onednn_convolutions(model.network, run.onednn)``.
    """

    path: str
    epochs: int
    initial_epoch: int
    status: str
    message: str
    callbacks: List[Any] = field(default_factory=list)
    onednn: bool = False

    @property
    def remaining_epochs(self) -> int:
        """Epochs left to train; 0 for a finished run (call ``fit`` only when it is not: hapi's ``fit`` fails with 0 epochs)."""
        return self.epochs - self.initial_epoch


def _dataset_classes(dataset) -> List[str]:
    while not hasattr(dataset, "classes") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset  # a paddle.io.Subset of an ImageFolderDataset
    if not hasattr(dataset, "classes"):
        raise TypeError(f"cannot find the class names of {type(dataset).__name__}; "
                        "train on an ImageFolderDataset (or a subset of one)")
    return list(dataset.classes)


def open_run(run_dir: Union[str, os.PathLike], model, train_loader, data: Union[str, os.PathLike],
             settings: Mapping[str, Any], eval_loader=None, verbose: int = 1) -> NotebookRun:
    """Tie a prepared ``paddle.Model`` to a run folder, so that fitting it in a notebook is re-run safe.

    The notebook builds the datasets, loaders, ``paddle.Model``, optimizer and ``prepare`` itself;
    this looks at ``run_dir`` and

    - **finished** (``history.csv`` has every epoch): loads the run's best weights into the model,
      and gives no callbacks and 0 remaining epochs (skip ``model.fit`` then: hapi cannot fit 0 epochs);
    - **interrupted** (``last.json`` names the finished epochs): loads the last weights and the
      optimizer state (learning-rate schedule included) and resumes after that epoch;
    - **new** (or started without finishing an epoch): writes ``config.json`` and starts.

    ``onednn`` says whether to fit inside ``onednn_convolutions`` (as ``train`` does on the CPU):
    ``settings["onednn"]`` if given, else what an existing run's ``config.json`` records (Paddle's
    kernels for runs that predate the setting), else ``onednn_default()``; a new run records it.

    ``callbacks`` are ``train``'s (:func:`simam_paddle.engine.run_callbacks`: the per-epoch seed and learning
    rate, ``SaveBestModel``, ``HistoryLogger``, ``CheckpointSaver``, VisualDL, hapi's per-step ``LRScheduler``)
    and one printed line per epoch; a run is resumed as ``train`` resumes it
    (:func:`simam_paddle.engine.restore_last_checkpoint`) and its settings are resolved and recorded as
    :func:`simam_paddle.complete_run` records them (:func:`simam_paddle.engine.resolve_config`, the data folder
    relative to the working folder when inside it), so ``load_run``, ``evaluate_run`` and ``summarize_runs``
    read the run folder.

    Args:
        run_dir (str|PathLike): the run folder.
        model (paddle.Model): prepared with an optimizer made by ``simam_paddle.engine.make_optimizer``.
        train_loader (paddle.io.DataLoader): from ``simam_paddle.engine.make_loader(..., shuffle=True)``.
        data (str|PathLike): the split folder the datasets come from (recorded in ``config.json``).
        settings (Mapping[str, Any]): the run's settings, keys of ``simam_paddle.experiments.TRAIN_DEFAULTS``
            (``model``, ``epochs``, ``image_size``, ``batch_size``, ``lr``, ``seed``, ...); an existing
            run must have been made with the same ones.
        eval_loader (paddle.io.DataLoader, optional): its size is recorded. Default: None.
        verbose (int, optional): 1 prints a line per epoch and the run's state. Default: 1.

    Returns:
        NotebookRun: ``callbacks`` and ``remaining_epochs`` for ``model.fit``, and what was done.

    Examples:
        >>> run = open_run("runs/nb/resnet50", model, train_loader, "data/digits_split", SETTINGS)  # doctest: +SKIP
        >>> if run.remaining_epochs:  # doctest: +SKIP
        ...     with onednn_convolutions(model.network, run.onednn):  # doctest: +SKIP
        ...         model.fit(train_loader, eval_loader, epochs=run.remaining_epochs, callbacks=run.callbacks)
    """
    from ..engine import check_state_fits, is_main_process, load_state, resolve_config
    from ..engine.checkpoints import finished_epochs
    from ..engine.device import select_device
    from ..models.zoo import available_models
    from .config import TrainConfig, load_config
    from .runs import attention_options

    run_dir = os.fspath(run_dir)
    given = _open_run_settings(model, settings)
    config = TrainConfig(**given)
    # As train does: the device asked for and, on the CPU, every core (Paddle's default is one thread).
    select_device(config.device)
    network = model.network
    epochs = config.epochs

    checkpoint: Dict[str, Any] = {}
    onednn = config.onednn
    prepared = _prepared_settings(model._optimizer, train_loader)
    if os.path.isfile(os.path.join(run_dir, "config.json")):
        record = load_config(run_dir)
        if onednn is None:
            onednn = record["onednn"]
        _refuse_other_settings(run_dir, record, given)
        _refuse_other_preparation(run_dir, prepared, record, new=False)
        if "seed" not in given:  # the run's own, as train_run resumes from config.json: it seeds the shuffling
            config = dataclasses.replace(config, seed=record.get("seed", config.seed))
        if finished_epochs(run_dir) >= epochs:
            path = os.path.join(run_dir, "best_model.pdparams")
            state = load_state(path)
            check_state_fits(state, network, path)
            network.set_state_dict(state)
            message = f"{run_dir}: finished ({epochs} epochs), its best weights read back; nothing to train"
            run = NotebookRun(run_dir, epochs, epochs, "finished", message, [], onednn)
            if verbose:
                print(message)
            return run
        checkpoint = _resume_or_start_over(run_dir, model)
    initial_epoch = int(checkpoint.get("epoch", 0))
    if initial_epoch == 0:
        config = resolve_config(dataclasses.replace(config, onednn=onednn))
        if config.model.lower() in available_models():  # as train_run: an option the attention ignores is an error
            attention_options(dataclasses.asdict(config))
        _refuse_other_preparation(run_dir, prepared, dataclasses.asdict(config), new=True)
        onednn = config.onednn
        if is_main_process():
            _write_run_config(run_dir, config, data, train_loader, eval_loader)
    callbacks = _run_callbacks(run_dir, train_loader, config.seed, checkpoint, epochs, verbose)
    if initial_epoch:
        status, message = "resumed", f"{run_dir}: resuming after epoch {initial_epoch} of {epochs}"
    else:
        status, message = "new", f"{run_dir}: new run of {epochs} epochs"
    if verbose:
        print(message)
    return NotebookRun(run_dir, epochs, initial_epoch, status, message, callbacks, onednn)


def _open_run_settings(model, settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The settings ``open_run`` was given (None: not given), checked; the model must be prepared to match."""
    from .config import TRAIN_DEFAULTS, check_settings
    from .runs import given_settings

    unknown = sorted(set(settings) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown run settings {unknown}; known: {sorted(TRAIN_DEFAULTS)}")
    if "model" not in settings or "epochs" not in settings:
        raise ValueError("settings need at least 'model' (its name) and 'epochs'")
    if model._optimizer is None:
        raise ValueError("prepare the model first: model.prepare(optimizer, loss, metrics)")
    given = given_settings(dict(settings))  # None is not given; the attention by its stored, lower-case name
    if isinstance(given["epochs"], bool) or not isinstance(given["epochs"], int) or given["epochs"] < 1:
        raise ValueError(f"epochs must be a positive integer, got {given['epochs']!r}")
    check_settings(given)
    if given.get("recipe", "notebook") != "notebook":
        raise ValueError(f"recipe={given['recipe']!r}: a notebook builds its own transforms, optimizer and schedule, "
                         "so open_run records the notebook recipe only; train other recipes with train_run or "
                         "`python -m simam_paddle train --recipe ...`")
    _check_prepared_optimizer(model._optimizer, given.get("optimizer", TRAIN_DEFAULTS["optimizer"]))
    return given


def _refuse_other_settings(run_dir: str, config: Dict[str, Any], given: Dict[str, Any]) -> None:
    """A ``ValueError`` naming every given setting (other than those a resume may change) the run has not."""
    from .runs import changed_settings

    detail = changed_settings(config, given)
    if detail:
        raise ValueError(f"{run_dir!r} holds a run with other settings ({detail}); "
                         "use another run folder, or remove this one to train it again")


def _resume_or_start_over(run_dir: str, model) -> Dict[str, Any]:
    """An interrupted run's last weights and optimizer state loaded into ``model``, as ``train`` resumes: the
    checkpoint's state; a run that finished no epoch has its files removed: ``{}``."""
    from ..engine import is_main_process, restore_last_checkpoint
    from .runs import clear_unfinished_run

    if os.path.isfile(os.path.join(run_dir, "last.json")):
        return restore_last_checkpoint(run_dir, model.network, model._optimizer)
    if is_main_process():  # started, but no epoch finished: start over
        clear_unfinished_run(run_dir)
    return {}


def _write_run_config(run_dir: str, config, data: Union[str, os.PathLike], train_loader, eval_loader) -> None:
    """A new run's ``config.json`` as ``train_run`` writes it: the resolved settings, the data folder, and what
    the run sees (classes, sample counts, Paddle, device)."""
    from .runs import run_environment, stored_data_path, write_run_config

    classes = _dataset_classes(train_loader.dataset)
    write_run_config(run_dir, {
        **dataclasses.asdict(config), "data": stored_data_path(os.fspath(data)), "num_classes": len(classes),
        "classes": classes, "train_samples": len(train_loader.dataset),
        "eval_samples": len(eval_loader.dataset) if eval_loader is not None else None, **run_environment()})


def _run_callbacks(run_dir: str, train_loader, seed: int, checkpoint: Dict[str, Any], epochs: int,
                   verbose: int) -> list:
    """``train``'s callbacks (:func:`~simam_paddle.engine.run_callbacks`), so ``fit`` writes the run folder as it
    does, with the training warnings hidden and one printed line per epoch instead of a progress bar."""
    from ..engine import SaveBestModel, is_main_process, run_callbacks
    from ..engine.callbacks import EpochReport, QuietTraining

    callbacks = [QuietTraining(), *run_callbacks(run_dir, train_loader, seed, checkpoint)]
    if verbose and is_main_process():
        best = next(cb for cb in callbacks if isinstance(cb, SaveBestModel))
        # before hapi's LRScheduler, the last
        callbacks.insert(-1, EpochReport(os.path.join(run_dir, "history.csv"), epochs, best))
    return callbacks


def class_examples(dataset, classes: int = 3) -> Dict[str, Any]:
    """The first image of each of the first ``classes`` classes of ``dataset``, by class name.

    Args:
        dataset (ImageFolderDataset): a dataset with ``classes`` and ``targets``, or a
            ``paddle.io.Subset`` of one (as :func:`per_class_subset` gives).
        classes (int, optional): how many classes, in label order. Default: 3.

    Returns:
        dict[str, Any]: class name to its first (transformed) image.

    Examples:
        >>> images = class_examples(eval_data, 3)  # doctest: +SKIP
        >>> list(images)  # doctest: +SKIP
        ['0', '1', '2']
    """
    names = _dataset_classes(dataset)
    indices = list(getattr(dataset, "indices", range(len(dataset))))
    base = dataset.dataset if hasattr(dataset, "indices") else dataset
    examples: Dict[str, Any] = {}
    for position, index in enumerate(indices):
        label = base.targets[index]
        if label < classes and names[label] not in examples:
            examples[names[label]] = dataset[position][0]
    return {names[label]: examples[names[label]] for label in range(min(classes, len(names)))
            if names[label] in examples}
