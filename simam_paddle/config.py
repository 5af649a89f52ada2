"""The settings of a training run, written once: :class:`TrainConfig`.

Each field carries its default, its help text (the command line's ``train`` and ``ablation`` options are
generated from them), the rule a value must meet, whether it may change when a run is resumed, and
whether it is set per run (model, attention, seed) or shared by every run of an ablation. Everything else
is derived from the fields and the recipes: :data:`TRAIN_DEFAULTS`, :func:`resumable_settings`,
:func:`shared_settings` and :func:`compared_settings`.

One object from the command line to the network: ``train_run`` builds a :class:`TrainConfig` from the settings
given, :func:`simam_paddle.engine.resolve_config` resolves it once (the recipe's defaults, the model's
attention and weight decay, the kernels), ``config.json`` stores it, and :func:`simam_paddle.engine.train`
reads every setting it trains with from it.

Pure Python, no Paddle when imported, and shared by every layer (it imports none): the command line reads it
to build its ``--help``, the engine to train.

A ``config.json`` stores these keys (and the data and classes of the run), so the names are those of the
run folders already written: ``lr`` is the learning rate.
"""
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

__all__ = ["TrainConfig", "TRAIN_DEFAULTS", "OPTIMIZERS", "RECIPES", "Recipe", "setting_problems", "check_settings",
           "resumable_settings", "per_run_settings", "shared_settings", "compared_settings", "setting_type"]


OPTIMIZERS: Tuple[str, ...] = ("momentum", "adam")
"""The optimizers a run can train with (the ``optimizer`` setting): ``paddle.optimizer.Momentum`` and ``Adam``."""


@dataclass(frozen=True)
class Recipe:
    """A training recipe: defaults for the settings a run does not give, a schedule, augmentation, normalisation.

    Attributes:
        defaults (dict): settings the recipe fills in where the run does not set them: the fields of
            :class:`TrainConfig` whose default is None, "the recipe's" (a weight decay the recipe does not set
            is the model's own).
        schedule (str): ``"cosine"`` (to 0 over all epochs, per step) or ``"step"`` (the learning rate divided by
            10 at 81/164 and 122/164 of the epochs, the official CIFAR milestones 81 and 122 of 164).
        augment (str): ``"notebook"`` (resize, random rotation ±10°) or ``"pad-crop-flip"`` (zero-pad 4, random
            crop back, random horizontal flip: the official CIFAR augmentation).
        normalize (str): ``"notebook"`` (the notebook's fixed mean and std) or ``"train-images"`` (per-channel
            mean and std of the run's training images, computed once and stored in config.json).
        source (str): where the recipe comes from.
    """

    defaults: Dict[str, Any]
    schedule: str
    augment: str
    normalize: str
    source: str


RECIPES: Dict[str, Recipe] = {
    "notebook": Recipe(dict(epochs=100, lr=0.01, batch_size=32), "cosine", "notebook", "notebook",
                       "the AI Studio notebook"),
    "official-cifar": Recipe(dict(epochs=164, lr=0.1, batch_size=128, weight_decay=5e-4), "step", "pad-crop-flip",
                             "train-images", "the official SimAM code's main_cifar.py (ZjjConan/SimAM)"),
}
"""The recipes a run can train with (the ``recipe`` setting), by name."""


def _recipes_default(name: str) -> str:
    """``default_help`` of a setting the recipes fill in: each recipe's value, e.g. "the recipe's: 100 (notebook),
    164 (official-cifar)"."""
    return "the recipe's: " + ", ".join(f"{recipe.defaults[name]:g} ({key})" for key, recipe in RECIPES.items()
                                        if name in recipe.defaults)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value > 0


def _positive_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


# Upper bounds: far above any run this package trains, low enough that a typo (--epochs 10**30) is an error
# instead of a schedule that overflows or a batch that exhausts memory.
_MAX_EPOCHS, _MAX_IMAGE_SIZE, _MAX_BATCH_SIZE = 100_000, 8192, 65536


def _bounded_int(most: int) -> Callable[[Any], bool]:
    return lambda value: _positive_int(value) and value <= most


def _or_none(rule: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or rule(value)


def _setting(default: Any, help: str, rule: Callable[[Any], bool], words: str, *, default_help: str = "",
             resumable: bool = False, per_run: bool = False, metavar: Optional[str] = None,
             choices: Tuple[str, ...] = ()) -> Any:
    """A field of :class:`TrainConfig` with what the rest of the package needs to know about it.

    ``help`` describes the setting; ``default_help`` says in words what the default means where the
    value alone would not (None defaults); ``rule``/``words`` test a value and say what it must be;
    ``resumable`` settings do not change what is trained, so a resumed run may change them;
    ``per_run`` settings differ between the runs of an ablation.
    """
    return field(default=default, metadata={
        "help": help, "default_help": default_help, "rule": rule, "words": words, "resumable": resumable,
        "per_run": per_run, "metavar": metavar, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one training run: what was asked, then, resolved, what it trains with.

    Building one checks every value (``ValueError`` naming the setting); it cannot be changed after (frozen:
    ``dataclasses.replace`` gives a changed copy, checked again). ``None`` means "the recipe's" for
    epochs, batch size, learning rate and weight decay (:data:`RECIPES`; the notebook's by default), and
    "the model's own" for the attention of the model as published, a weight decay no recipe sets (see
    :func:`simam_paddle.models.model_spec`) and the attention layer's default option; ``onednn`` None is
    "wherever Paddle can". :func:`simam_paddle.engine.resolve_config` fills them in, once, and ``config.json``
    stores the concrete values.

    Examples:
        >>> from simam_paddle.experiments import TrainConfig
        >>> config = TrainConfig(model="cifar_resnet20", epochs=2, image_size=32)
        >>> config.to_settings()
        {'model': 'cifar_resnet20', 'epochs': 2, 'image_size': 32}
        >>> config.lr is None  # the recipe's, until resolved
        True
        >>> TrainConfig(epochs=0)
        Traceback (most recent call last):
        ...
        ValueError: epochs=0: must be a positive integer up to 100,000
    """

    model: str = _setting("towernet", "one of the zoo's models, e.g. towernet, resnet50",
                          lambda v: isinstance(v, str), "a model name", per_run=True)
    attention: Optional[str] = _setting(
        None, "attention to put in the model: simam, se, cbam or none", _or_none(lambda v: isinstance(v, str)),
        "an attention name", default_help="the model as published, e.g. TowerNet with simam, the ResNets "
        "with none", per_run=True)
    e_lambda: Optional[float] = _setting(
        None, "SimAM's lambda", _or_none(_positive_finite), "a finite number > 0",
        default_help="the layer's own, 1e-4; the official ImageNet runs use 0.1")
    reduction: Optional[int] = _setting(
        None, "SE / CBAM reduction ratio", _or_none(_positive_int), "a positive integer",
        default_help="the layer's own, 16; the official CIFAR runs use 4")
    epochs: Optional[int] = _setting(None, "epochs", _or_none(_bounded_int(_MAX_EPOCHS)),
                                     f"a positive integer up to {_MAX_EPOCHS:,}", default_help=_recipes_default("epochs"))
    image_size: int = _setting(256, "square input size, at least the model's minimum, 127 for TowerNet",
                               _bounded_int(_MAX_IMAGE_SIZE), f"a positive integer up to {_MAX_IMAGE_SIZE:,}")
    batch_size: Optional[int] = _setting(None, "batch size per process", _or_none(_bounded_int(_MAX_BATCH_SIZE)),
                               f"a positive integer up to {_MAX_BATCH_SIZE:,}",
                               default_help=_recipes_default("batch_size"))
    lr: Optional[float] = _setting(
        None, "initial learning rate, then the recipe's schedule: notebook cosine to 0 over all epochs, "
        "official-cifar divided by 10 at 81/164 and 122/164 of them", _or_none(_positive_finite),
        "a finite number > 0", default_help=_recipes_default("lr"))
    optimizer: str = _setting(
        "momentum", "optimizer, with the same L2 weight decay and learning-rate schedule: momentum (the notebook's) "
        "or adam", lambda v: v in OPTIMIZERS, "one of " + ", ".join(OPTIMIZERS), choices=OPTIMIZERS)
    momentum: float = _setting(0.9, "momentum (Adam: beta1, the decay of its running mean of gradients)",
                               lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    weight_decay: Optional[float] = _setting(
        None, "L2 coefficient", _or_none(lambda v: _is_number(v) and math.isfinite(v) and v >= 0),
        "a finite number >= 0", default_help=_recipes_default("weight_decay") + "; else the model's own, e.g. 2e-4 "
        "for TowerNet, 1e-4 for the ResNets")
    seed: int = _setting(0, "random seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0", per_run=True)
    num_workers: int = _setting(0, "DataLoader worker processes", lambda v: _is_int(v) and v >= 0,
                                "an integer >= 0", resumable=True)
    cache: bool = _setting(False, "keep decoded, resized images in memory", lambda v: isinstance(v, bool),
                           "true or false", resumable=True)
    device: str = _setting("auto", "device to train on: auto is the GPU if Paddle has one, else the CPU",
                           lambda v: isinstance(v, str), "a device name", resumable=True,
                           choices=("auto", "cpu", "gpu"))
    onednn: Optional[bool] = _setting(
        None, "on the CPU, run the convolutions on oneDNN kernels while training and evaluating: 2.7-4.7x faster "
        "here with the same accuracy over three seeds, though one batch's gradients can differ from Paddle's "
        "own kernels by more than rounding (docs/PERFORMANCE.md); false: Paddle's own kernels",
        _or_none(lambda v: isinstance(v, bool)), "true or false", resumable=True,
        default_help="on wherever Paddle can (3.x with oneDNN); config.json stores the choice")
    train_per_class: Optional[int] = _setting(
        None, "use only the first N training images per class", _or_none(_positive_int), "a positive integer",
        default_help="all", metavar="N")
    eval_per_class: Optional[int] = _setting(
        None, "use only the first N eval images per class", _or_none(_positive_int), "a positive integer",
        default_help="all", metavar="N")
    recipe: str = _setting(
        "notebook", "training recipe: notebook (cosine learning rate, resize + rotation, the notebook's "
        "normalisation) or official-cifar (the official SimAM CIFAR recipe: 164 epochs, lr 0.1 divided by 10 at "
        "epochs 81 and 122, batch 128, weight decay 5e-4, pad 4 + random crop + horizontal flip, normalised with "
        "the training images' mean and std; the settings given override its defaults)",
        lambda v: v in RECIPES, "one of " + ", ".join(RECIPES), choices=tuple(RECIPES))
    init_from: Optional[str] = _setting(
        None, "start from RUN's best weights (e.g. a convert-official run; its model, attention and image size "
        "unless given); a new classifier if the classes differ", _or_none(lambda v: isinstance(v, str)),
        "a run folder", default_help="random initialisation", metavar="RUN")

    def __post_init__(self) -> None:
        check_settings(asdict(self))

    def to_settings(self) -> Dict[str, Any]:
        """The settings that differ from the fields' defaults, as keywords for ``train_run`` / ``complete_run``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "TrainConfig":
        """The settings of a run's ``config.json`` (as :func:`simam_paddle.experiments.load_config` reads it);
        its other keys (data, classes, ...) are left out.

        Examples:
            >>> TrainConfig.from_record({"model": "resnet18", "epochs": 3, "data": "data/split"}).epochs
            3
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


TRAIN_DEFAULTS: Dict[str, Any] = {**{f.name: f.default for f in fields(TrainConfig)}, **RECIPES["notebook"].defaults}
"""Every training setting and its value when none is given: the fields' defaults, the notebook recipe's where
they are "the recipe's" (None: the model's or the layer's own, resolved by
:func:`simam_paddle.engine.resolve_config`)."""


def setting_problems(settings: Dict[str, Any]) -> Iterator[Tuple[str, str]]:
    """``(name, problem)`` for every setting in ``settings`` that breaks its field's rule; other keys are ignored.

    Examples:
        >>> list(setting_problems({"epochs": 0, "lr": 0.1, "data": "x"}))
        [('epochs', 'must be a positive integer up to 100,000, got 0')]
    """
    for f in _broken_settings(settings):
        yield f.name, f"must be {f.metadata['words']}, got {settings[f.name]!r}"


def check_settings(settings: Dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first setting that breaks its rule, as ``name=value: problem``."""
    for f in _broken_settings(settings):
        raise ValueError(f"{f.name}={settings[f.name]!r}: must be {f.metadata['words']}")


def _broken_settings(settings: Dict[str, Any]) -> Iterator[Any]:
    """The :class:`TrainConfig` fields whose value in ``settings`` breaks the field's rule, in field order."""
    return (f for f in fields(TrainConfig) if f.name in settings and not f.metadata["rule"](settings[f.name]))


def resumable_settings() -> List[str]:
    """Settings a resumed run may change: they do not change what is trained.

    Examples:
        >>> resumable_settings()
        ['num_workers', 'cache', 'device', 'onednn']
    """
    return [f.name for f in fields(TrainConfig) if f.metadata["resumable"]]


def per_run_settings() -> List[str]:
    """Settings that differ between the runs of an ablation.

    Examples:
        >>> per_run_settings()
        ['model', 'attention', 'seed']
    """
    return [f.name for f in fields(TrainConfig) if f.metadata["per_run"]]


def shared_settings() -> List[str]:
    """Settings that every run of an ablation shares (all but the :func:`per_run_settings`)."""
    return [f.name for f in fields(TrainConfig) if not f.metadata["per_run"]]


def compared_settings() -> List[str]:
    """Shared settings that change what is trained, so runs averaged over seeds must agree on them."""
    return [f.name for f in fields(TrainConfig) if not f.metadata["per_run"] and not f.metadata["resumable"]]


def setting_type(name: str) -> type:
    """The value type of a setting (``Optional[int]`` gives ``int``), for parsing it from text."""
    annotation = typing.get_type_hints(TrainConfig)[name]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation
