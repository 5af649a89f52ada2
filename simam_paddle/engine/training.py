"""Training on ``paddle.Model``: optimizer and LR schedule, data loaders, resumable runs.

The recipe is the AI Studio notebook's (Momentum 0.9, L2 weight decay 1e-4 for the baselines and
2e-4 for TowerNet, cosine learning rate from ``lr`` to 0, cross-entropy, accuracy) without its
bugs. The notebook builds ``CosineAnnealingDecay(T_max=epochs)``, but hapi steps LR schedulers
once per *batch* by default, so its cosine reaches 0 after ``epochs`` batches (about two epochs)
and then climbs back up and oscillates. Here the schedule counts optimizer steps
(``T_max = epochs * steps_per_epoch``) and is also put at the right place at every epoch start by
:class:`~simam_paddle.engine.callbacks.EpochLR`, so stepping per epoch (or not at all) gives the
per-epoch cosine instead of a silently wrong curve.

A run folder holds ``config.json`` (written by the caller, e.g. the CLI), ``history.csv``,
``best_model.pdparams``, ``last.pdparams``/``last.pdopt``/``last.json`` (resume state) and
``visualdl/``.
"""
import dataclasses
import math
import os
import signal
import threading
from typing import Any, Dict, Optional, Sequence

import paddle

from .._io import NotTextError, atomic_write_text, is_main_process, read_text
from .._quiet import training_warning_filters
from ..config import RECIPES, TRAIN_DEFAULTS, TrainConfig
from ..data.dataset import ClearErrorDataLoader
from ..models.zoo import ModelSpec, available_models, model_spec, resolve_attention
from .acceleration import onednn_convolutions, onednn_default
from .callbacks import CurrentEpoch, ResumedProgBar, run_callbacks
from .checkpoints import (check_state_fits, load_checkpoint_state, load_state, restore_optimizer_state,
                          settle_checkpoint)
from .device import describe_device, seed_everything, select_device
from .history import RunFileError, read_history  # read_history: train's example

__all__ = [
    "CosineDecayToZero",
    "OfficialStepDecay",
    "SCHEDULES",
    "OPTIMIZERS",
    "make_optimizer",
    "default_weight_decay",
    "resolve_config",
    "make_loader",
    "restore_last_checkpoint",
    "train",
    "TrainingInterrupted",
]


class CosineDecayToZero(paddle.optimizer.lr.LRScheduler):
    """One cosine half-period from ``learning_rate`` to 0 over ``epochs * steps_per_epoch`` steps.

    ``lr(t) = learning_rate * (1 + cos(pi * t / T)) / 2`` with ``t`` the optimizer step counted from 0
    and ``T = epochs * steps_per_epoch``; past ``T`` it stays at 0 (no second period). Each
    ``step()`` is one batch. :meth:`set_epoch` puts the schedule at the first step of an epoch:
    called at every epoch start it makes per-epoch stepping give ``lr * (1 + cos(pi * e / epochs)) / 2``
    for epoch ``e`` and corrects drift if an epoch has fewer or more batches than
    ``steps_per_epoch``. ``train`` does both through :class:`~simam_paddle.engine.callbacks.EpochLR`.

    Args:
        learning_rate (float): the learning rate of the first step.
        epochs (int): number of epochs of the whole run.
        steps_per_epoch (int): batches per epoch (per process under data parallelism).
        last_epoch (int, optional): the step to resume from, -1 to start. Default: -1.
        verbose (bool, optional): print the LR at every step. Default: False.

    Examples:
        >>> sched = CosineDecayToZero(0.01, epochs=4, steps_per_epoch=10)
        >>> sched.set_epoch(2)
        >>> round(sched.get_lr(), 6)
        0.005
    """

    def __init__(self, learning_rate: float, epochs: int, steps_per_epoch: int,
                 last_epoch: int = -1, verbose: bool = False):
        if not (isinstance(epochs, int) and epochs > 0):
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if not (isinstance(steps_per_epoch, int) and steps_per_epoch > 0):
            raise ValueError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = epochs * steps_per_epoch
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self) -> float:
        t = min(max(self.last_epoch, 0), self.total_steps)
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * t / self.total_steps))

    def set_epoch(self, epoch: int) -> None:
        """Move the schedule to the first step of 0-based ``epoch``."""
        self.step(epoch * self.steps_per_epoch)


class OfficialStepDecay(paddle.optimizer.lr.MultiStepDecay):
    """The official SimAM CIFAR schedule: the learning rate divided by 10 at 81/164 and 122/164 of the run.

    For 164 epochs these are the official milestones, epochs 81 and 122 (0-based: the rate drops at the start of
    the 82nd and the 123rd epoch); other lengths keep the fractions (rounded to whole epochs). Stepped per batch
    (as hapi's ``LRScheduler`` callback does), so the milestones are in steps; :meth:`set_epoch` puts it at an
    epoch's first step, which makes a resumed run's rate right.

    Args:
        learning_rate (float): the rate until the first milestone.
        epochs (int): epochs of the whole run.
        steps_per_epoch (int): batches per epoch.

    Examples:
        >>> sched = OfficialStepDecay(0.1, epochs=164, steps_per_epoch=10)
        >>> sched.milestone_epochs
        [81, 122]
        >>> [round((sched.set_epoch(e), sched.get_lr())[1], 6) for e in (80, 81, 121, 122)]
        [0.1, 0.01, 0.01, 0.001]
    """

    FRACTIONS = (81 / 164, 122 / 164)

    def __init__(self, learning_rate: float, epochs: int, steps_per_epoch: int, last_epoch: int = -1,
                 verbose: bool = False):
        if not (isinstance(epochs, int) and epochs > 0 and isinstance(steps_per_epoch, int) and steps_per_epoch > 0):
            raise ValueError(f"epochs and steps_per_epoch must be positive integers, got {epochs!r}, "
                             f"{steps_per_epoch!r}")
        self.milestone_epochs = sorted({max(1, round(epochs * f)) for f in self.FRACTIONS})
        self.steps_per_epoch = steps_per_epoch
        super().__init__(learning_rate, [m * steps_per_epoch for m in self.milestone_epochs], gamma=0.1,
                         last_epoch=last_epoch, verbose=verbose)

    def set_epoch(self, epoch: int) -> None:
        """Move the schedule to the first step of 0-based ``epoch``."""
        self.step(epoch * self.steps_per_epoch)


SCHEDULES = {"cosine": CosineDecayToZero, "step": OfficialStepDecay}
"""The learning-rate schedules :func:`make_optimizer` builds, by the name a recipe's ``schedule`` takes."""


def default_weight_decay(model_name: str) -> float:
    """A zoo model's L2 weight decay, from its registry entry: the notebook's 2e-4 for TowerNet, 1e-4 for the others.

    Examples:
        >>> default_weight_decay("towernet"), default_weight_decay("resnet50")
        (0.0002, 0.0001)
    """
    return model_spec(model_name).weight_decay


def resolve_config(config: TrainConfig) -> TrainConfig:
    """``config`` with every None that stands for a value made concrete: the settings a run trains with.

    Where ``config`` leaves them None: epochs, batch size, learning rate and weight decay are its recipe's
    (:data:`~simam_paddle.config.RECIPES`); the attention is the model's as published, by name
    (:func:`~simam_paddle.models.resolve_attention`); a weight decay the recipe does not set either is the
    model's (:func:`default_weight_decay`); ``onednn`` is :func:`~simam_paddle.engine.acceleration.onednn_default`.
    The attention layer's options (``e_lambda``, ``reduction``) stay None: the layer's own. A model outside the
    zoo (a network of the caller's own, named in a notebook's settings) keeps the attention given and needs a
    weight decay given: it has no published one (``ValueError`` otherwise). A run resolves its
    settings once, when it starts, and ``config.json`` stores the result.

    Args:
        config (TrainConfig): the settings given.

    Returns:
        TrainConfig: a new one; the settings given are kept as they are.

    Examples:
        >>> config = resolve_config(TrainConfig(model="cifar_resnet20", recipe="official-cifar", epochs=10))
        >>> config.epochs, config.lr, config.batch_size, config.weight_decay, config.attention
        (10, 0.1, 128, 0.0005, 'none')
        >>> resolve_config(TrainConfig(model="towernet")).weight_decay  # the notebook recipe: the model's own
        0.0002
    """
    recipe = {k: v for k, v in RECIPES[config.recipe].defaults.items() if getattr(config, k) is None}
    config = dataclasses.replace(config, **recipe)
    if config.model.lower() not in available_models():
        # A network of the caller's own (a notebook's): no published attention or weight decay to fall back on.
        if config.weight_decay is None:
            raise ValueError(f"model={config.model!r} is not one of the zoo's ({', '.join(available_models())}), "
                             "so it has no weight decay of its own; give weight_decay (the one its optimizer uses)")
        return dataclasses.replace(config, onednn=onednn_default() if config.onednn is None else config.onednn,
                                   attention=None if config.attention is None else config.attention.lower())
    return dataclasses.replace(
        config, attention=resolve_attention(config.model, config.attention),
        weight_decay=default_weight_decay(config.model) if config.weight_decay is None else config.weight_decay,
        onednn=onednn_default() if config.onednn is None else config.onednn)


OPTIMIZERS = {"momentum": paddle.optimizer.Momentum, "adam": paddle.optimizer.Adam}
"""The optimizers :func:`make_optimizer` builds, by the name a run's ``optimizer`` setting takes
(:data:`simam_paddle.config.OPTIMIZERS` lists the same names without importing Paddle)."""


def make_optimizer(parameters, lr: float, epochs: int, steps_per_epoch: int,
                   momentum: float = TRAIN_DEFAULTS["momentum"], weight_decay: float = ModelSpec.weight_decay,
                   optimizer: str = TRAIN_DEFAULTS["optimizer"],
                   schedule: str = RECIPES["notebook"].schedule) -> paddle.optimizer.Optimizer:
    """The notebook's Momentum (or Adam) with L2 weight decay and a :class:`CosineDecayToZero` learning rate.

    Args:
        parameters (list): the parameters to train, e.g. ``network.parameters()``.
        lr (float): learning rate at the first step (the notebook uses 0.01).
        epochs (int): epochs in the whole run.
        steps_per_epoch (int): batches per epoch, e.g. ``len(train_loader)``.
        momentum (float, optional): momentum; for Adam its ``beta1``, the decay of the running mean of
            gradients that momentum is in SGD. Default: ``TRAIN_DEFAULTS["momentum"]``, 0.9.
        weight_decay (float, optional): L2 coefficient, added to the gradient (for Adam too: not AdamW's
            decoupled decay); the notebook uses 1e-4 for the baselines and 2e-4 for TowerNet (see
            :func:`default_weight_decay`). Default: a zoo model's unless its entry says otherwise,
            ``ModelSpec.weight_decay``, 1e-4.
        optimizer (str, optional): ``"momentum"`` (``paddle.optimizer.Momentum``, the notebook's) or
            ``"adam"`` (``paddle.optimizer.Adam``, its default ``beta2`` and ``epsilon``).
            Default: ``TRAIN_DEFAULTS["optimizer"]``, "momentum".
        schedule (str, optional): ``"cosine"`` (:class:`CosineDecayToZero`, the notebook's) or ``"step"``
            (:class:`OfficialStepDecay`, the official CIFAR recipe's). Default: the notebook recipe's, "cosine".

    Returns:
        paddle.optimizer.Optimizer: its ``_learning_rate`` is the scheduler.

    Examples:
        >>> opt = make_optimizer(paddle.nn.Linear(2, 2).parameters(), 0.01, epochs=3, steps_per_epoch=5)
        >>> type(opt).__name__, opt.get_lr()
        ('Momentum', 0.01)
        >>> type(make_optimizer(paddle.nn.Linear(2, 2).parameters(), 1e-4, 3, 5, optimizer="adam")).__name__
        'Adam'
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} not found; available optimizers = {list(OPTIMIZERS)}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r} not found; available schedules = {list(SCHEDULES)}")
    scheduler = SCHEDULES[schedule](lr, epochs, steps_per_epoch)
    decay = paddle.regularizer.L2Decay(weight_decay)
    first_moment = {"momentum": "momentum", "adam": "beta1"}[optimizer]
    return OPTIMIZERS[optimizer](learning_rate=scheduler, weight_decay=decay, parameters=parameters,
                                 **{first_moment: momentum})


def make_loader(dataset, batch_size: int, shuffle: bool = False, num_workers: int = 0,
                drop_last: bool = False) -> paddle.io.DataLoader:
    """A ``DataLoader`` over a ``DistributedBatchSampler`` (each process gets its share under a launcher).

    It is a :class:`~simam_paddle.data.dataset.ClearErrorDataLoader`: a dataset's error (a damaged
    image) is raised by the loop that iterates it, with or without workers, instead of Paddle's
    "Blocking queue is killed".

    With ``shuffle`` the order of epoch ``e`` is fixed by ``loader.batch_sampler.set_epoch(e)``
    (``train`` sets it from the seed and the epoch), so it is the same on every process and after
    a resume.

    Examples:
        >>> ds = paddle.io.TensorDataset([paddle.rand([10, 3]), paddle.arange(10)])
        >>> len(make_loader(ds, batch_size=4))
        3
    """
    sampler = paddle.io.DistributedBatchSampler(dataset, batch_size=batch_size, shuffle=shuffle,
                                                drop_last=drop_last)
    return ClearErrorDataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, return_list=True)


def _trim_history(path: str, epochs_done: int) -> None:
    """Drop rows written after the last checkpoint (a crash between the two), keep the rest."""
    if not os.path.isfile(path):
        return
    try:
        lines = read_text(path, "a history.csv written by `train`").splitlines(keepends=True)
    except NotTextError as err:
        raise RunFileError(str(err)) from None
    kept = lines[:1]
    for number, line in enumerate(lines[1:], start=2):
        try:
            if line.strip() and int(line.split(",", 1)[0]) <= epochs_done:
                kept.append(line)
        except ValueError:
            raise RunFileError(f"{path}, line {number}: {line.strip()[:60]!r} is not a row of epoch numbers; "
                               "remove that line") from None
    if kept != lines:
        atomic_write_text("".join(kept), path)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT) or SIGTERM; the run folder keeps every finished epoch.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still does. ``train(..., resume=True)``
    continues the run when ``finished_epochs > 0``.

    Attributes:
        output_dir (str): the run folder.
        epoch (int): the 1-based epoch that was running.
        finished_epochs (int): epochs saved in the run folder's checkpoint.
        signum (int): ``signal.SIGINT`` or ``signal.SIGTERM``.
        exit_code (int): the shell's code for death by that signal, ``128 + signum`` (130, 143).

    Examples:
        >>> err = TrainingInterrupted("runs/demo", epoch=3, finished_epochs=2, signum=signal.SIGINT)
        >>> err.exit_code, err.resumable
        (130, True)
    """

    def __init__(self, output_dir: str, epoch: int, finished_epochs: int, signum: int):
        self.output_dir, self.epoch, self.finished_epochs, self.signum = output_dir, epoch, finished_epochs, signum
        self.exit_code = 128 + int(signum)
        self.resumable = finished_epochs > 0
        what = (f"resume with train(..., resume=True) after epoch {finished_epochs}" if self.resumable
                else "no epoch finished, nothing to resume")
        super().__init__(f"training of {output_dir} interrupted in epoch {epoch}; {what}")


class _Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler that ``train`` installs."""


def _raise_terminated(signum, frame):
    raise _Terminated()


class _SigtermAsInterrupt:
    """While active, SIGTERM raises like Ctrl-C (Paddle's own handler would print a FatalError
    block and kill the process mid-write); the previous handler comes back afterwards."""

    def __enter__(self):
        # Only the main thread may set handlers (a notebook trains there; other threads skip this).
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            # None means a handler installed outside Python; the default is the closest we can restore.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)


def _saved_epochs(output_dir: str) -> int:
    try:
        settle_checkpoint(output_dir)
        return int(load_checkpoint_state(output_dir)["epoch"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def restore_last_checkpoint(output_dir: str, network: paddle.nn.Layer, optimizer) -> Dict[str, Any]:
    """Load a run's last checkpoint into ``network`` and ``optimizer`` (its learning-rate schedule included).

    History rows written after that checkpoint (a crash between the two) are dropped, so the run goes on
    from the epoch both agree on. ``train(..., resume=True)`` and
    :func:`~simam_paddle.experiments.open_run` resume with it.

    Args:
        output_dir (str): the run folder, holding ``last.json``, ``last.pdparams`` and ``last.pdopt``.
        network (paddle.nn.Layer): the run's network.
        optimizer (paddle.optimizer.Optimizer): the run's optimizer, from :func:`make_optimizer`.

    Returns:
        dict: the checkpoint's state: ``epoch`` (epochs finished), ``best`` and ``best_epoch`` (the best
        evaluation so far), as :func:`~simam_paddle.engine.callbacks.run_callbacks` takes it.

    Examples:
        >>> restore_last_checkpoint("runs/demo/towernet_simam", network, optimizer)["epoch"]  # doctest: +SKIP
        3
    """
    settle_checkpoint(output_dir)
    state = load_checkpoint_state(output_dir)
    weights_path = os.path.join(output_dir, "last.pdparams")
    weights = load_state(weights_path)
    # Paddle only warns about weights that do not fit; the run would go on from random ones.
    check_state_fits(weights, network, weights_path)
    network.set_state_dict(weights)
    restore_optimizer_state(optimizer, network, load_state(os.path.join(output_dir, "last.pdopt")))
    if is_main_process():
        _trim_history(os.path.join(output_dir, "history.csv"), int(state["epoch"]))
    return state


def _check_train_call(config: Optional[TrainConfig], output_dir: Optional[str], settings: Dict[str, Any]) -> None:
    """A ``TypeError`` for a call of ``train`` without its config or run folder, or with settings as keywords (as
    before ``TrainConfig``), saying how to write it now."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    if settings:
        words = ", ".join(f"{k}={v!r}" for k, v in settings.items() if k in known)
        others = sorted(set(settings) - known)
        raise TypeError("train() takes the run's settings in one config, not as keywords"
                        + (f" (got {', '.join(others)}, which no setting is)" if others else "")
                        + f": train(network, train_data, eval_data, config=resolve_config(TrainConfig({words})), "
                        "output_dir=...)")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train() needs config=resolve_config(TrainConfig(...)), got {config!r}")
    if output_dir is None:
        raise TypeError("train() needs output_dir, the run folder it writes")


# What train reads from its config: None in any of them is a setting left to resolve_config.
_RESOLVED = ("epochs", "batch_size", "lr", "weight_decay", "onednn")


def train(network: paddle.nn.Layer, train_data, eval_data=None, *, config: Optional[TrainConfig] = None,
          output_dir: Optional[str] = None, resume: bool = False, verbose: int = 1,
          callbacks: Sequence[paddle.callbacks.Callback] = (), **settings: Any) -> paddle.Model:
    """Train ``network`` with the settings of ``config``, writing a resumable run folder.

    Writes into ``output_dir`` (rank 0 only): ``history.csv`` (one row per epoch),
    ``best_model.pdparams`` (weights of the best evaluation accuracy), ``last.pdparams``,
    ``last.pdopt`` and ``last.json`` after every epoch, and ``visualdl/`` logs where visualdl is installed.
    Seed before building ``network`` (:func:`~simam_paddle.engine.device.seed_everything`) for reproducible
    initial weights; this function reseeds for shuffling and augmentation.

    From ``config`` it reads: ``device``, ``seed`` (Python, NumPy, Paddle and the shuffling), ``batch_size``
    (per process), ``num_workers``, the optimizer's ``lr``, ``epochs`` (of the whole run, also when resuming),
    ``momentum``, ``weight_decay`` and ``optimizer``, the learning-rate schedule of its ``recipe`` (see
    :func:`make_optimizer`), and ``onednn``: on the CPU, run the convolutions on oneDNN kernels during
    training and the per-epoch evaluation (:func:`~simam_paddle.engine.acceleration.onednn_convolutions`;
    measured 2.7x the training images/s of Paddle's dygraph kernels for TowerNet and 4.7x for the CIFAR
    ResNet-20, with the same accuracy over three seeds of each, docs/PERFORMANCE.md; one batch's gradients
    can differ from those of Paddle's kernels by more than float32 rounding, which
    :func:`~simam_paddle.engine.acceleration.onednn_gradient_error` measures; ignored on a GPU).

    Args:
        network (paddle.nn.Layer): the model to train, returning logits.
        train_data (paddle.io.Dataset): items ``(image, label)``.
        eval_data (paddle.io.Dataset, optional): evaluated after every epoch. Default: None.
        config (TrainConfig): the run's settings, resolved (:func:`resolve_config`): none of epochs,
            batch size, learning rate, weight decay and onednn left None.
        output_dir (str): the run folder.
        resume (bool, optional): continue from ``output_dir/last.*`` with the LR schedule, best
            accuracy and history as they were (:func:`restore_last_checkpoint`). Default: False.
        verbose (int, optional): hapi's progress display (0 silent, 1 progress bar, 2 per epoch). Default: 1.
        callbacks (list, optional): further callbacks; a ``paddle.callbacks.LRScheduler`` among them replaces
            the one stepping the schedule every batch, a ``ProgBarLogger`` the progress display. Default: ().

    Returns:
        paddle.Model: the prepared model holding the last epoch's weights.

    Raises:
        TypeError: ``config`` or ``output_dir`` missing, or settings given as keywords (``epochs=...``, the call
            before :class:`TrainConfig`): the message writes the call with them in ``config``.
        ValueError: ``config`` not resolved (:func:`resolve_config`).

    Examples:
        >>> ds = paddle.io.TensorDataset([paddle.rand([8, 4]), paddle.randint(0, 2, [8, 1])])
        >>> import tempfile; run = tempfile.mkdtemp()
        >>> config = resolve_config(TrainConfig(epochs=1, batch_size=4, device="cpu"))
        >>> model = train(paddle.nn.Linear(4, 2), ds, ds, config=config, output_dir=run, verbose=0)
        >>> len(read_history(run))
        1
    """
    _check_train_call(config, output_dir, settings)
    unresolved = [name for name in _RESOLVED if getattr(config, name) is None]
    if unresolved:
        raise ValueError(f"config leaves {', '.join(unresolved)} to be resolved; pass resolve_config(config), "
                         "which fills in the recipe's and the model's own values")
    select_device(config.device)
    seed_everything(config.seed)

    train_loader = make_loader(train_data, config.batch_size, shuffle=True, num_workers=config.num_workers)
    eval_loader = (make_loader(eval_data, config.batch_size, num_workers=config.num_workers)
                   if eval_data is not None else None)
    optimizer = make_optimizer(network.parameters(), config.lr, config.epochs, len(train_loader),
                               weight_decay=config.weight_decay, momentum=config.momentum,
                               optimizer=config.optimizer, schedule=RECIPES[config.recipe].schedule)
    model = paddle.Model(network)
    model.prepare(optimizer, paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())

    checkpoint: Dict[str, Any] = {}
    if resume:
        checkpoint = restore_last_checkpoint(output_dir, network, optimizer)
        if verbose:
            print(f"resuming {output_dir} after epoch {checkpoint['epoch']} of {config.epochs}")
    elif is_main_process() and (os.path.exists(os.path.join(output_dir, "last.json"))
                                or os.path.exists(os.path.join(output_dir, "history.csv"))):
        # Only rank 0 checks: the others could already see the files rank 0 is writing.
        raise FileExistsError(
            f"{output_dir} already holds a run (history.csv/last.json); resume it or choose another output folder")
    if is_main_process():
        os.makedirs(output_dir, exist_ok=True)
    initial_epoch = int(checkpoint.get("epoch", 0))
    own = run_callbacks(output_dir, train_loader, config.seed, checkpoint, verbose)
    if any(isinstance(cb, paddle.callbacks.LRScheduler) for cb in callbacks):
        own = [cb for cb in own if not isinstance(cb, paddle.callbacks.LRScheduler)]

    remaining = config.epochs - initial_epoch
    if remaining <= 0:
        if verbose:
            print(f"{output_dir} already finished {initial_epoch} of {config.epochs} epochs; nothing to do")
        return model
    log_freq = len(train_loader) if verbose == 2 else max(1, len(train_loader) // 10)
    if verbose and not any(isinstance(cb, paddle.callbacks.ProgBarLogger) for cb in callbacks):
        own.insert(0, ResumedProgBar(log_freq, verbose, initial_epoch))
    _fit(model, train_loader, eval_loader, remaining, [*own, *callbacks], output_dir, initial_epoch,
         config.onednn, verbose, log_freq)
    return model


def _fit(model: paddle.Model, train_loader, eval_loader, epochs: int, callbacks: list, output_dir: str,
         initial_epoch: int, onednn: bool, verbose: int, log_freq: int) -> None:
    """``model.fit`` with the training warnings hidden, on oneDNN kernels if asked, Ctrl-C and SIGTERM raised
    as :class:`TrainingInterrupted` naming the epoch that ran and the epochs saved."""
    current = CurrentEpoch(initial_epoch)  # first, so it is right before anything else runs
    try:
        with training_warning_filters(), _SigtermAsInterrupt(), \
                onednn_convolutions(model.network, onednn) as switched:
            if verbose and is_main_process():
                kernels = (f", {switched} convolutions on oneDNN kernels (given a 1 x 1 map, Paddle's; onednn=False: "
                           "Paddle's)" if switched else "")
                print(f"training on {describe_device()}{kernels}", flush=True)
            model.fit(train_loader, eval_loader, epochs=epochs, callbacks=[current, *callbacks], verbose=verbose,
                      log_freq=log_freq)
    except KeyboardInterrupt as err:
        signum = signal.SIGTERM if isinstance(err, _Terminated) else signal.SIGINT
        raise TrainingInterrupted(output_dir, current.epoch, _saved_epochs(output_dir), signum) from None
