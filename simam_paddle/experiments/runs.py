"""Run folders: train a zoo model on a split image folder, then evaluate or export it from its folder.

A run folder (``RUN``) is self-describing: ``config.json`` holds every setting (model, attention,
num_classes, classes, image_size, ...; see :class:`~simam_paddle.experiments.TrainConfig`), so
``evaluate_run``/``export_run``/``load_run`` rebuild the network from it alone. It stores concrete
values: the attention of the model as published, never None (configs written before this rule are
resolved when read, by :func:`load_config`). A split folder (``SPLIT``) holds ``train/`` and ``eval/``, each with one
sub-folder per class (as ``split_dataset`` writes it).
"""
import contextlib
import dataclasses
import json
import os
import stat
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing Paddle; a quiet import if this module loads it

import paddle  # noqa: E402

from .._io import atomic_write_text, is_main_process
from ..data.dataset import per_class_subset
from ..engine.checkpoints import CHECKPOINT_FILES, check_state_fits, finished_epochs, load_state, settle_checkpoint
from ..engine.history import RunFileError, read_history, read_run_json
from .._quiet import quiet_native_logs
from .config import RECIPES, TRAIN_DEFAULTS, TrainConfig, check_settings, load_config, resumable_settings

__all__ = [
    "TRAIN_DEFAULTS", "TrainConfig", "ATTENTION_OPTIONS", "attention_options", "build_network", "run_datasets",
    "train_run", "stored_data_path", "run_environment", "write_run_config", "clear_unfinished_run", "given_settings",
    "complete_run", "load_config", "load_run", "run_kernels", "evaluate_run", "export_run", "lock_run_folder",
    "RunInUseError", "run_folders",
]

def _check_settings(settings: Dict[str, Any]) -> None:
    """Refuse a setting out of range (see :class:`TrainConfig`), and a device this machine lacks."""
    check_settings(settings)
    if settings.get("device") is not None:
        from ..engine.device import resolve_device

        resolve_device(settings["device"])


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _split_dirs(data: Optional[str]) -> Tuple[str, str]:
    if data is None:
        raise FileNotFoundError("this run has no data of its own (converted from a checkpoint?); "
                                "give data=SPLIT, a split folder or a class folder")
    if os.path.isfile(data):
        raise ValueError(f"data={data!r} is a file; training needs a split folder holding train/ and eval/: "
                         f"make one with split_dataset({data!r}, SPLIT) (the `split` command) and pass data=SPLIT")
    if not os.path.isdir(data):
        raise FileNotFoundError(f"data folder {data!r} does not exist; give a split folder holding train/ and eval/")
    found = sorted(os.listdir(data))
    dirs = [os.path.join(data, part) for part in ("train", "eval")]
    missing = [os.path.basename(d) for d in dirs if not os.path.isdir(d)]
    if missing:
        raise FileNotFoundError(
            f"{data!r} has no {' or '.join(m + '/' for m in missing)} (found: {found or 'nothing'}); "
            "a split folder holds train/ and eval/ with one sub-folder per class "
            "(make one with `python -m simam_paddle split`)")
    return dirs[0], dirs[1]


def run_datasets(config: Dict[str, Any], eval_root: Optional[str] = None, train: bool = True):
    """(train, eval) datasets of a config (train None if not asked), both with the eval classes checked."""
    from ..data.dataset import ImageFolderDataset

    size = config["image_size"]
    train_dir, eval_dir = _split_dirs(config["data"]) if (train or eval_root is None) else (None, None)
    eval_data = ImageFolderDataset(eval_root or eval_dir, transform=run_transforms(config, train=False),
                                   cache=config["cache"], image_size=size)
    train_data = None
    if train:
        train_data = ImageFolderDataset(train_dir, transform=run_transforms(config, train=True),
                                        cache=config["cache"], image_size=size)
    return train_data, eval_data


def run_transforms(config: Dict[str, Any], train: bool):
    """The transforms a run's images go through: its recipe's augmentation (training) at its image size,
    normalised as the run was (official-cifar: its training images' mean and std, stored in config.json).

    Examples:
        >>> from PIL import Image
        >>> run_transforms({"image_size": 32, "recipe": "official-cifar"}, train=True)(Image.new("RGB", (40, 30))).shape
        (3, 32, 32)
    """
    from ..data.dataset import cifar_train_transforms, eval_transforms, train_transforms

    norm = config.get("normalize") or {}
    mean_std = {k: tuple(norm[k]) for k in ("mean", "std") if k in norm}
    if not train:
        return eval_transforms(config["image_size"], **mean_std)
    augment = {"notebook": train_transforms, "pad-crop-flip": cifar_train_transforms}
    return augment[RECIPES[config.get("recipe", "notebook")].augment](config["image_size"], **mean_std)


def _check_model_name(name: str) -> None:
    from ..models.zoo import available_models

    names = list(available_models())
    if name not in names:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(names)}")


def given_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """The settings a caller set (None means not given), with attention names in lower case as stored.

    Examples:
        >>> given_settings({"model": "towernet", "attention": "SimAM", "lr": None})
        {'model': 'towernet', 'attention': 'simam'}
    """
    given = {k: v for k, v in settings.items() if v is not None}
    if isinstance(given.get("attention"), str):
        given["attention"] = given["attention"].lower()
    return given


def build_network(config: Dict[str, Any]) -> paddle.nn.Layer:
    """The run's network as its settings describe it (model, attention and its options, num_classes)."""
    from ..models.zoo import build_model

    _check_model_name(config["model"])
    return build_model(config["model"], config["num_classes"], attention=config.get("attention"),
                       attention_kwargs=attention_options(config) or None)


# Options of the attention layer that the run settings carry, by the attention they belong to.
ATTENTION_OPTIONS = {"simam": ("e_lambda",), "se": ("reduction",), "cbam": ("reduction",)}


def attention_options(config: Dict[str, Any]) -> Dict[str, Any]:
    """The attention layer's options set in a run's settings (``e_lambda`` for SimAM, ``reduction`` for SE/CBAM).

    An option that the run's attention does not take is an error, never silently dropped.

    Examples:
        >>> attention_options({"model": "cifar_resnet20", "attention": "se", "reduction": 4, "e_lambda": None})
        {'reduction': 4}
    """
    from ..models.zoo import resolve_attention

    accepted = ATTENTION_OPTIONS.get(resolve_attention(config["model"], config.get("attention")), ())
    options = {k: config[k] for k in ("e_lambda", "reduction") if config.get(k) is not None}
    wrong = sorted(set(options) - set(accepted))
    if wrong:
        raise ValueError(f"{', '.join(wrong)} set, but attention {config.get('attention')!r} of model "
                         f"{config['model']!r} does not take it (e_lambda is SimAM's, reduction SE's and CBAM's)")
    return options


def _check_input_size(network: paddle.nn.Layer, config: Dict[str, Any]) -> None:
    """The model's minimum input size, then one forward pass on a blank image: a too-small image size
    fails before training."""
    from ..models.zoo import model_spec

    size = config["image_size"]
    minimum = model_spec(config["model"]).min_input_size
    if size < minimum:
        raise ValueError(f"image_size={size} does not fit model {config['model']!r}: it needs at least {minimum} px")
    was_training = network.training
    network.eval()
    try:
        with paddle.no_grad():
            network(paddle.zeros([1, 3, size, size]))
    except (ValueError, RuntimeError) as err:
        raise ValueError(
            f"image_size={size} does not fit model {config['model']!r}: {str(err).splitlines()[0]}") from None
    finally:
        if was_training:
            network.train()


def run_folders(run_dirs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> List[str]:
    """Run folders: a run folder itself, the run folders inside a folder (sorted), or a list as given.

    Examples:
        >>> run_folders(["runs/a", "runs/b"])
        ['runs/a', 'runs/b']
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = os.fspath(run_dirs)
        if os.path.isfile(os.path.join(run_dirs, "config.json")):
            return [run_dirs]
        if not os.path.isdir(run_dirs):
            raise FileNotFoundError(f"{run_dirs!r} does not exist; give run folders or a folder holding them")
        found = sorted(os.path.join(run_dirs, d) for d in os.listdir(run_dirs)
                       if os.path.isfile(os.path.join(run_dirs, d, "config.json")))
        if not found:
            raise FileNotFoundError(f"{run_dirs!r} holds no run folders (sub-folders with config.json); "
                                    "give folders written by `train --output`")
        return found
    folders = [os.fspath(d) for d in run_dirs]
    if not folders:
        raise ValueError("summarize_runs needs at least one run folder")
    return folders


def _require_classes(config: Dict[str, Any], run_dir: str) -> None:
    if "classes" not in config:
        raise RunFileError(f"{os.path.join(run_dir, 'config.json')} is missing classes; "
                           "a run's config.json is written by `train`")


class RunInUseError(OSError):
    """Another process is training into the run folder."""


@contextlib.contextmanager
def lock_run_folder(run_dir: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<run_dir>/.lock`` (creating the folder) for as long as the block runs.

    A second process that asks for the same folder gets :class:`RunInUseError` at once. The lock is
    the OS's (``fcntl.flock``): it goes when the process ends, however it ends, so a killed run leaves
    no stale lock. Only rank 0 locks (the other ranks of a launch write nothing). On Windows, which
    has no ``flock``, nothing is locked. A folder this call created and nothing else wrote to is
    removed again on exit.

    Examples:
        >>> with lock_run_folder("runs/t"):
        ...     pass
    """
    try:
        import fcntl
    except ImportError:  # Windows: running two trainings on one folder is not guarded against there
        fcntl = None
    if fcntl is None or not is_main_process():
        yield
        return
    created = not os.path.isdir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, ".lock")
    try:  # O_NOFOLLOW: a .lock that is a link is refused, never truncated and written through
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError:
        if os.path.islink(path):
            raise RunFileError(f"{path} is a link; the run's lock is a plain file it makes itself: remove the link "
                               "and run again (nothing was written)") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunFileError(f"{path} is not a plain file; remove it and run again (nothing was written)")
    with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as handle:  # a garbled pid is only not shown
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise RunInUseError(f"run folder {run_dir!r} is in use by another process"
                                f"{f' (pid {holder})' if holder.isdigit() else ''}; wait for it to end "
                                "or choose another output folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            if created and os.listdir(run_dir) == [".lock"]:
                with contextlib.suppress(OSError):
                    os.remove(path)
                    os.rmdir(run_dir)


def stored_data_path(data: str) -> str:
    """The data folder as ``config.json`` stores it: relative to the working folder when it lies
    inside it (so a run folder committed with its results names no path of the machine that ran it,
    and resumes from the same working folder on another machine), absolute otherwise.

    Examples:
        >>> import os
        >>> stored_data_path(os.path.join(os.getcwd(), "data", "digits_split"))
        'data/digits_split'
        >>> stored_data_path("data/./digits_split/")
        'data/digits_split'
    """
    full = os.path.abspath(data)
    inside = os.path.relpath(full, os.getcwd())
    if inside == os.curdir or inside.startswith(os.pardir + os.sep) or inside == os.pardir:
        return full
    return inside.replace(os.sep, "/")


def _check_same_run(config: Dict[str, Any], output: str, data: Optional[str], given: Dict[str, Any]) -> None:
    """Refuse to continue a run with other data or settings than it was started with."""
    if data is not None and os.path.abspath(data) != os.path.abspath(config["data"]):
        raise ValueError(f"data={data!r} differs from the run's data {config['data']!r}; "
                         "resume with the same data or without data")
    detail = changed_settings(config, given)
    if detail:
        raise ValueError(f"cannot resume {output!r} with different settings ({detail}); "
                         "drop them, or start a new run in another output folder")


def changed_settings(record: Dict[str, Any], given: Dict[str, Any]) -> str:
    """The ``given`` settings that differ from a run's ``record`` (config.json), other than those a resume may
    change, as ``"name: run has old, given new"`` joined by commas; ``""`` when none differs.

    Examples:
        >>> changed_settings({"lr": 0.01, "cache": False}, {"lr": 0.1, "cache": True})
        'lr: run has 0.01, given 0.1'
    """
    resumable = resumable_settings()  # they do not change what is trained
    return ", ".join(f"{k}: run has {record.get(k)!r}, given {v!r}" for k, v in given.items()
                     if k not in resumable and not _same_setting(k, record.get(k), v))


def _same_setting(name: str, recorded: Any, given: Any) -> bool:
    """Whether a given setting is the one recorded: a run folder (``init_from``, stored absolute by
    :func:`~simam_paddle.experiments.finetune.init_from_settings`) is the same folder however it is written."""
    if name == "init_from" and isinstance(recorded, str) and isinstance(given, str):
        return os.path.abspath(recorded) == os.path.abspath(given)
    return recorded == given


def train_run(data: Optional[str], output: str, resume: bool = False, verbose: int = 1,
              **settings: Any) -> Dict[str, Any]:
    """Train a zoo model on a split folder into a run folder; or resume one.

    Args:
        data (str|None): split folder with ``train/`` and ``eval/``; None when resuming.
        output (str): the run folder.
        resume (bool, optional): continue the run in ``output``; settings come from its
            ``config.json`` and may only repeat them (except the resumable ones: num_workers, cache,
            device, onednn). Default: False.
        verbose (int, optional): 0 silent, 1 progress bar, 2 one line per epoch. Default: 1.
        **settings: any field of :class:`TrainConfig` (or ``**config.to_settings()`` of one); None is "not
            given". A new run builds one :class:`TrainConfig` from them and resolves it once
            (:func:`simam_paddle.engine.resolve_config`: the recipe's epochs, batch size, learning rate and
            weight decay where not given, the model's own attention and weight decay, the kernels), stores it
            in ``config.json`` and trains with it (:func:`simam_paddle.engine.train`); a resumed run reads it
            back from there.

    Returns:
        dict: the run's configuration, as written to ``config.json``.

    Examples:
        >>> split = "runs/demo/data/digits_split"  # written by `python -m simam_paddle demo`  # doctest: +SKIP
        >>> config = train_run(split, "runs/t", model="towernet", epochs=2, image_size=128)  # doctest: +SKIP
        >>> config["num_classes"]  # doctest: +SKIP
        10
    """
    from ..engine.training import resolve_config

    unknown = sorted(set(settings) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; known: {sorted(TRAIN_DEFAULTS)}")
    given = given_settings(settings)
    # Every setting is checked before anything is written, so a bad one never leaves a run folder behind.
    _check_settings(given)
    if resume:
        record = load_config(output)
        _require_classes(record, output)
        _check_same_run(record, output, data, given)
        record.update({k: given[k] for k in resumable_settings() if k in given})
        _check_settings(record)
        config = TrainConfig.from_record(record)
    else:
        if data is None:
            raise ValueError("data=SPLIT is required: a split folder holding train/ and eval/")
        if given.get("init_from"):
            from .finetune import init_from_settings

            given = init_from_settings(given)
        _check_model_name(given.get("model", TRAIN_DEFAULTS["model"]))
        # The recipe's defaults where the caller gave none, the model's own attention and weight decay (by
        # name and value), the kernels: resolved once, and what config.json stores.
        config = resolve_config(TrainConfig(**given))
        record = {**dataclasses.asdict(config), "data": stored_data_path(data)}
        attention_options(record)
        record.update(_normalisation(record))
    with lock_run_folder(output):
        if is_main_process():  # the others could already see the files rank 0 writes below
            _check_folder_state(output, resume, verbose)
        return _train_locked(config, record, output, resume, verbose)


def _normalisation(record: Dict[str, Any]) -> Dict[str, Any]:
    """``{"normalize": ...}``, the training images' mean and std, for a recipe normalising with them; else ``{}``."""
    train_dir, _ = _split_dirs(record["data"])
    if RECIPES[record["recipe"]].normalize != "train-images":
        return {}
    from ..data.dataset import compute_mean_std

    mean, std = compute_mean_std(train_dir, record["image_size"])
    return {"normalize": {"mean": [round(v, 8) for v in mean], "std": [round(v, 8) for v in std],
                          "from": "the training images"}}


def _check_folder_state(output: str, resume: bool, verbose: int) -> None:
    """Under the run's lock: refuse a new run over a run with finished epochs, or a resume of a run
    without one; a run that finished no epoch (a crash or a bad setting in its first) starts over."""
    finished = os.path.isfile(os.path.join(output, "last.json"))
    if resume:
        if not finished:
            raise FileNotFoundError(f"nothing to resume in {output!r}: no epoch finished (no last.json); "
                                    "train again without resume=True to start it over")
        return
    if not os.path.exists(os.path.join(output, "config.json")):
        return
    if finished or finished_epochs(output):
        raise FileExistsError(f"{output!r} already holds a run with finished epochs; pass resume=True to continue "
                              "it, or another output folder")
    clear_unfinished_run(output)
    if verbose:
        print(f"{output} holds a run that finished no epoch (no last.json); starting it over")


def clear_unfinished_run(run_dir: str) -> None:
    """Remove what a run that finished no epoch left (``history.csv``, best and last weights), so it starts over;
    ``config.json`` is rewritten by the new start.

    Examples:
        >>> clear_unfinished_run("runs/t")  # doctest: +SKIP

    Raises:
        FileExistsError: ``run_dir`` holds a run converted from an official checkpoint (``convert-official``): it
            has no last.json either, but its best_model.pdparams are the converted weights, kept.
    """
    _refuse_converted_run(run_dir)
    settle_checkpoint(run_dir)  # no last.json: removes the staged files of an epoch that never committed
    for name in ("history.csv", *CHECKPOINT_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run_dir, name))


def _refuse_converted_run(run_dir: str, record: Optional[Dict[str, Any]] = None) -> None:
    """A ``FileExistsError`` if ``run_dir`` holds a run converted from an official checkpoint (its config.json,
    or ``record`` read from it, names ``converted_from``): never trained into, never started over."""
    if record is None:
        try:
            record = read_run_json(os.path.join(run_dir, "config.json"), "")
        except (OSError, RunFileError):  # none, or unreadable: not a converted run's, as convert-official writes it
            return
    if record.get("converted_from"):
        raise FileExistsError(
            f"{run_dir!r} holds a run converted from {record['converted_from']!r} (convert-official): its "
            "best_model.pdparams are those weights, so it is not trained into; train into another output folder "
            f"(init_from={run_dir} fine-tunes from it)")


def _train_locked(config: TrainConfig, record: Dict[str, Any], output: str, resume: bool,
                  verbose: int) -> Dict[str, Any]:
    """Under the run's lock: the datasets and network of ``record`` (what config.json holds), trained with
    ``config``; config.json is written, with what the run sees (classes, sample counts, Paddle, device),
    before the first epoch."""
    from ..engine.device import seed_everything
    from ..engine.training import train

    train_data, eval_data = run_datasets(record)
    if list(train_data.classes) != list(eval_data.classes):
        raise ValueError(f"train/ and eval/ of {record['data']!r} hold different classes: "
                         f"{list(train_data.classes)} vs {list(eval_data.classes)}")
    if resume and list(train_data.classes) != record["classes"]:
        raise ValueError(f"the classes in {record['data']!r} changed since the run started: "
                         f"{list(train_data.classes)} vs {record['classes']}")
    classes = list(train_data.classes)
    train_data = per_class_subset(train_data, config.train_per_class)
    eval_data = per_class_subset(eval_data, config.eval_per_class)
    record.update(num_classes=len(classes), classes=classes, train_samples=len(train_data),
                  eval_samples=len(eval_data))

    seed_everything(config.seed)
    network = build_network(record)
    _check_input_size(network, record)
    if not resume and config.init_from:
        from .finetune import init_from_run

        init_from_run(network, config.init_from, verbose=bool(verbose) and is_main_process())
    if not resume:
        from ..engine.device import select_device

        select_device(config.device)  # the device the run is on, recorded as such ("device" is what was asked)
        record.update(run_environment())
    write_run_config(output, record)
    train(network, train_data, eval_data, config=config, output_dir=output, resume=resume, verbose=verbose)
    return record


def run_environment() -> Dict[str, Any]:
    """What a new run's ``config.json`` records of where it ran: Paddle's version, the device (select it first)
    and the start time.

    Examples:
        >>> sorted(run_environment())
        ['paddle_version', 'ran_on', 'started']
    """
    from ..engine.device import describe_device

    return {"paddle_version": paddle.__version__, "ran_on": describe_device(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_run_config(output: str, record: Dict[str, Any]) -> None:
    """Write ``record`` as the ``config.json`` of run folder ``output`` (rank 0 only), replacing it atomically.

    ``record`` is what :func:`load_config` reads back: the run's resolved settings
    (``dataclasses.asdict`` of a :class:`TrainConfig`), then ``data`` (as :func:`stored_data_path` gives it) and
    what the run sees: ``classes``, ``num_classes``, sample counts, :func:`run_environment`.

    Examples:
        >>> write_run_config("runs/t", {**TRAIN_DEFAULTS, "data": "data/split"})  # doctest: +SKIP
    """
    if is_main_process():
        os.makedirs(output, exist_ok=True)
        atomic_write_text(json.dumps(record, indent=2) + "\n", os.path.join(output, "config.json"))


def complete_run(data: str, output: str, verbose: int = 1, **settings: Any) -> Dict[str, Any]:
    """Bring a run folder to its last epoch: train it if new, resume it if interrupted, skip it if done.

    Re-running a list of ``complete_run`` calls (a demo, an ablation) therefore only trains what is
    missing. An existing run must have been started on ``data`` with the same ``settings``.

    Args:
        data (str): split folder with ``train/`` and ``eval/``.
        output (str): the run folder.
        verbose (int, optional): 0 silent, 1 progress bar, 2 one line per epoch. Default: 1.
        **settings: any field of :class:`TrainConfig`, as for :func:`train_run`.

    Returns:
        dict: the run's configuration.

    Examples:
        >>> config = complete_run("runs/demo/data/digits_split", "runs/t", epochs=2, image_size=128)  # doctest: +SKIP
        >>> len(read_history("runs/t")) == config["epochs"]  # doctest: +SKIP
        True
    """
    if not os.path.isfile(os.path.join(output, "config.json")):
        if os.path.isdir(output) and set(os.listdir(output)) - {".lock"}:
            raise FileExistsError(f"{output!r} holds files but no run (no config.json); "
                                  "remove it or choose another output folder")
        return train_run(data, output, verbose=verbose, **settings)
    config = load_config(output)
    _refuse_converted_run(output, config)
    given = given_settings(settings)
    if finished_epochs(output) >= config["epochs"]:
        # Finished: nothing will be read from the data, so only the settings must match. This lets a
        # committed experiment (config.json and history.csv, made elsewhere) be skipped on any machine.
        _check_same_run(config, output, None, given)
        return config
    _check_same_run(config, output, data, given)
    if not os.path.isfile(os.path.join(output, "last.json")):
        return train_run(data, output, verbose=verbose, **settings)  # finished no epoch: starts it over
    return train_run(None, output, resume=True, verbose=verbose, **settings)


def load_run(run_dir: str, weights: str = "best") -> Tuple[paddle.nn.Layer, Dict[str, Any]]:
    """Rebuild a run's network from ``config.json`` and load its weights, in eval mode.

    Args:
        run_dir (str): the run folder.
        weights (str, optional): "best" (``best_model.pdparams``) or "last" (``last.pdparams``). Default: "best".

    Returns:
        tuple: ``(network, config)``.

    Examples:
        >>> network, config = load_run("runs/demo/towernet_simam")  # doctest: +SKIP
        >>> list(network(paddle.zeros([1, 3, config["image_size"], config["image_size"]])).shape)  # doctest: +SKIP
        [1, 10]
    """
    files = {"best": "best_model.pdparams", "last": "last.pdparams"}
    if weights not in files:
        raise ValueError(f"weights must be one of {sorted(files)}, got {weights!r}")
    config = load_config(run_dir)
    _require_classes(config, run_dir)
    settle_checkpoint(run_dir)  # an epoch's files committed but not yet renamed (a crash there) are its
    path = os.path.join(run_dir, files[weights])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} has no {files[weights]} (did an epoch finish?)")
    network = build_network(config)
    state = load_state(path)
    check_state_fits(state, network, path, what=f"model {config['model']!r} (attention {config.get('attention')!r}, "
                                              f"{config['num_classes']} classes)")
    network.set_state_dict(state)
    network.eval()
    return network, config


def run_kernels(network: paddle.nn.Layer, config: Dict[str, Any], onednn: Optional[bool] = None):
    """While active, ``network`` runs its convolutions on the kernels its run was trained and evaluated with.

    A network trained on oneDNN convolutions (``config["onednn"]``, the default on Paddle 3.x CPUs)
    and evaluated again on Paddle's own kernels gets logits that differ beyond rounding wherever a
    ReLU input or a pooling tie sits within rounding of its threshold (see
    :mod:`simam_paddle.engine.acceleration`); an image whose two best classes are that close then
    changes class, so the accuracy printed in training is not reproduced. With the run's own kernels,
    the same batches give the same logits on the same machine. Where this Paddle cannot run oneDNN
    convolutions (Paddle 2.6, a build without oneDNN) or the network is on a GPU, Paddle's kernels are used.

    Args:
        network (paddle.nn.Layer): the run's network, e.g. from :func:`load_run`.
        config (dict): the run's ``config.json``; runs written before the setting used Paddle's kernels.
        onednn (bool|None, optional): None: the run's kernels; True or False: oneDNN's or Paddle's. Default: None.

    Returns:
        A context manager yielding the number of convolutions switched to oneDNN (0: Paddle's kernels).

    Examples:
        >>> network = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.Flatten(), paddle.nn.Linear(4, 2))
        >>> with run_kernels(network, {"onednn": False}) as switched:  # a run trained on Paddle's kernels
        ...     logits = network(paddle.zeros([1, 3, 3, 3]))
        >>> switched, list(logits.shape)
        (0, [1, 2])
    """
    from ..engine.acceleration import onednn_convolutions, onednn_default

    check_settings({"onednn": onednn})  # the rule of the training setting: True, False or None
    enabled = (bool(config.get("onednn")) and onednn_default()) if onednn is None else onednn
    return onednn_convolutions(network, enabled)


def evaluate_run(run_dir: str, data: Optional[str] = None, batch_size: Optional[int] = None,
                 output: Optional[str] = None, onednn: Optional[bool] = None,
                 engine: str = "dygraph") -> Dict[str, Any]:
    """Evaluate a run's best weights; write ``confusion_matrix.csv`` and ``.png``.

    On the run's own evaluation data, with its batch size and kernels (:func:`run_kernels`), the
    accuracy is the best ``eval_acc`` of its history when evaluated on the machine it trained on.

    Args:
        run_dir (str): the run folder.
        data (str, optional): a class folder, or a split folder whose ``eval/`` is used; None uses
            the run's own evaluation data. Default: None.
        batch_size (int, optional): None uses the run's. Default: None.
        output (str, optional): folder for the confusion matrix files; None is ``run_dir`` for the run's own
            evaluation data, and ``run_dir/evaluations/NAME`` for ``data`` (NAME: its folder's name), so that
            evaluating other data never replaces the run's own matrix. Default: None.
        onednn (bool|None, optional): convolution kernels; None uses the run's (:func:`run_kernels`); with
            ``engine="inference"``, None uses oneDNN where Paddle has it. Default: None.
        engine (str, optional): "dygraph", or "inference": Paddle Inference on the CPU
            (:class:`~simam_paddle.engine.inference.InferencePredictor`), several times faster, logits equal
            to float32 rounding rather than bit for bit. Default: "dygraph".

    Returns:
        dict: ``acc``, ``loss``, ``per_class`` (class name to accuracy), ``confusion_matrix``,
        ``classes``, ``best_eval_acc`` (from the history, None if absent), ``onednn`` (whether the
        convolutions ran on oneDNN kernels), ``engine``, ``files`` and ``write_error`` (why the confusion
        matrix could not be written, e.g. a read-only run folder; None when it was).

    Examples:
        >>> result = evaluate_run("runs/demo/towernet_simam")  # doctest: +SKIP
        >>> result["acc"] == result["best_eval_acc"]  # doctest: +SKIP
        True
    """
    from ..data.dataset import check_num_classes
    from ..engine.evaluation import confusion_matrix, per_class_accuracy, save_confusion_matrix_csv
    from ..plots import plot_confusion_matrix
    from ..engine.evaluation import evaluate
    from ..engine.inference import InferencePredictor, check_engine

    check_engine(engine)
    if batch_size is not None and not _positive_int(batch_size):
        raise ValueError(f"the batch size must be a positive integer, got {batch_size!r}")
    network, config = load_run(run_dir)
    root = None
    if data is not None:
        if not os.path.isdir(data):
            raise FileNotFoundError(f"evaluation data {data!r} does not exist; give a class folder or a split folder")
        root = os.path.join(data, "eval") if os.path.isdir(os.path.join(data, "eval")) else data
    _, dataset = run_datasets(config, eval_root=root, train=False)
    check_num_classes(dataset, config["num_classes"])
    if list(dataset.classes) != list(config["classes"]):
        raise ValueError(f"{dataset.root} holds classes {list(dataset.classes)}, "
                         f"but the run was trained on {config['classes']}")
    if root is None:  # the run's own evaluation data, limited as in training
        dataset = per_class_subset(dataset, config.get("eval_per_class"))
    if engine == "inference":
        model = InferencePredictor(network, config["image_size"], onednn=onednn)
        result = evaluate(model, dataset, batch_size=batch_size or config["batch_size"])
        used_onednn = model.onednn
    else:
        with run_kernels(network, config, onednn) as switched:
            result = evaluate(paddle.Model(network), dataset, batch_size=batch_size or config["batch_size"])
        used_onednn = switched > 0
    cm = confusion_matrix(result["labels"], result["logits"], num_classes=config["num_classes"])
    out = output or (run_dir if data is None else
                     os.path.join(run_dir, "evaluations", os.path.basename(os.path.abspath(os.fspath(data)))))
    files = [os.path.join(out, "confusion_matrix.csv"), os.path.join(out, "confusion_matrix.png")]
    write_error = None
    try:  # a read-only run folder (shared, mounted) must not cost the numbers just computed
        save_confusion_matrix_csv(cm, files[0], config["classes"])
        plot_confusion_matrix(cm, config["classes"], output=files[1],
                              title=f"{config['model']} ({config.get('attention')}): acc {result['acc']:.4f}")
    except OSError as err:
        write_error = f"could not write the confusion matrix to {out} ({err.strerror or err}); pass output=DIR"
        files = []
    try:
        best = max(r["eval_acc"] for r in read_history(run_dir) if r["eval_acc"] is not None)
    except (FileNotFoundError, ValueError):
        best = None
    return {
        "acc": result["acc"],
        "loss": result["loss"],
        "per_class": dict(zip(config["classes"], per_class_accuracy(cm).tolist())),
        "confusion_matrix": cm,
        "classes": list(config["classes"]),
        "best_eval_acc": best,
        "write_error": write_error,
        "onednn": used_onednn,
        "engine": engine,
        "files": files,
    }


def export_run(run_dir: str, output: str, weights: str = "best") -> Dict[str, Any]:
    """``paddle.jit.save`` a run's network for inference and check the saved model's logits.

    Writes ``<output>/model.json`` and ``model.pdiparams`` (Paddle 3's program format; older
    Paddle writes ``model.pdmodel``) with input ``InputSpec([None, 3, S, S], "float32", "image")``,
    loads them back with ``paddle.jit.load`` and compares logits on random input with the dygraph
    network's.

    Returns:
        dict: ``prefix`` (path prefix of the saved files), ``files``, ``max_abs_diff``.

    Examples:
        >>> export_run("runs/demo/towernet_simam", "export/towernet")["max_abs_diff"] < 1e-4  # doctest: +SKIP
        True
    """
    if os.path.exists(output) and not os.path.isdir(output):
        raise NotADirectoryError(f"output={output} is a file; the export writes model.json and model.pdiparams into "
                                 "a folder: give a new or existing folder")
    network, config = load_run(run_dir, weights)
    size = config["image_size"]
    prefix = os.path.join(output, "model")
    os.makedirs(output, exist_ok=True)
    try:  # Paddle reports an unwritable folder as a RuntimeError from C++; find out first
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as err:
        raise PermissionError(err.errno, f"cannot write the exported model into {output!r} ({err.strerror})") from None
    spec = paddle.static.InputSpec([None, 3, size, size], "float32", "image")
    x = paddle.to_tensor(np.random.RandomState(0).randn(2, 3, size, size).astype("float32"))
    with quiet_native_logs():  # Paddle's C++ log announces its executor when saving and loading
        paddle.jit.save(network, prefix, input_spec=[spec])
        with paddle.no_grad():
            expected = network(x).numpy()
            loaded = paddle.jit.load(prefix)
            loaded.eval()
            got = loaded(x).numpy()
    diff = float(np.abs(got - expected).max())
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    if got.shape != expected.shape or not diff <= tolerance:
        raise RuntimeError(f"the exported model's logits differ from the network's by {diff} (shape {got.shape} vs "
                           f"{expected.shape}); the export of {config['model']!r} is not faithful")
    files = sorted(os.path.join(output, f) for f in os.listdir(output) if f.startswith("model."))
    return {"prefix": prefix, "files": files, "max_abs_diff": diff}
