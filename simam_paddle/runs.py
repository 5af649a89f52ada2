"""Run folders: train a zoo model on a split image folder, then evaluate or export it from its folder.

A run folder (``RUN``) is self-describing: ``config.json`` holds every setting (model, attention,
num_classes, classes, image_size, ...), so ``evaluate_run``/``export_run``/``load_run`` rebuild the
network from it alone. A split folder (``SPLIT``) holds ``train/`` and ``eval/``, each with one
sub-folder per class (as ``split_dataset`` writes it).
"""
import json
import os
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import paddle

from .callbacks import atomic_write_text, is_main_process, read_history

__all__ = ["TRAIN_DEFAULTS", "attention_options", "train_run", "complete_run", "load_config", "load_run", "evaluate_run", "export_run"]

# The notebook's settings; weight_decay None means default_weight_decay(model).
TRAIN_DEFAULTS: Dict[str, Any] = {
    "model": "towernet",
    "attention": None,  # the model as published: TowerNet with SimAM, baselines without
    "e_lambda": None,  # SimAM's lambda; None: the layer's default (1e-4)
    "reduction": None,  # SE / CBAM reduction ratio; None: the layer's default (16)
    "epochs": 100,
    "image_size": 256,
    "batch_size": 32,
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": None,
    "seed": 0,
    "num_workers": 0,
    "cache": False,
    "device": "auto",
    "train_per_class": None,
    "eval_per_class": None,
    "init_from": None,  # a run folder whose best weights to start from (fine-tuning); None: random init
}
# Settings that may change when resuming (they do not change what is being trained).
_RESUMABLE_CHANGES = ("num_workers", "cache", "device")


def _split_dirs(data: Optional[str]) -> Tuple[str, str]:
    if data is None:
        raise FileNotFoundError("this run has no data of its own (converted from a checkpoint?); "
                                "give --data with a split folder or a class folder")
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


def _limit_per_class(dataset, per_class: Optional[int]):
    """The first ``per_class`` samples of each class (all if None), for quick experiments."""
    if per_class is None:
        return dataset
    if not (isinstance(per_class, int) and per_class > 0):
        raise ValueError(f"a per-class limit must be a positive integer, got {per_class!r}")
    seen: Dict[int, int] = {}
    keep = []
    for index, label in enumerate(dataset.targets):
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            keep.append(index)
    return paddle.io.Subset(dataset, keep)


def _datasets(config: Dict[str, Any], eval_root: Optional[str] = None, train: bool = True):
    """(train, eval) datasets of a config (train None if not asked), both with the eval classes checked."""
    from .data import ImageFolderDataset, eval_transforms, train_transforms

    size = config["image_size"]
    train_dir, eval_dir = _split_dirs(config["data"]) if (train or eval_root is None) else (None, None)
    eval_data = ImageFolderDataset(eval_root or eval_dir, transform=eval_transforms(size), cache=config["cache"],
                                   image_size=size)
    train_data = None
    if train:
        train_data = ImageFolderDataset(train_dir, transform=train_transforms(size), cache=config["cache"],
                                        image_size=size)
    return train_data, eval_data


def _check_model_name(name: str) -> None:
    from .zoo import available_models

    names = list(available_models())
    if name not in names:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(names)}")


def _build_network(config: Dict[str, Any]) -> paddle.nn.Layer:
    from .zoo import build_model

    _check_model_name(config["model"])
    # None builds the model as published (TowerNet with SimAM); "none" removes TowerNet's attention.
    return build_model(config["model"], config["num_classes"], attention=config.get("attention"),
                       attention_kwargs=attention_options(config) or None)


# Options of the attention layer that the run settings carry, by the attention they belong to.
_ATTENTION_OPTIONS = {"simam": ("e_lambda",), "se": ("reduction",), "cbam": ("reduction",)}


def _effective_attention(config: Dict[str, Any]) -> str:
    attention = config.get("attention")
    if attention is None:
        return "simam" if config["model"] == "towernet" else "none"
    return attention.lower()


def attention_options(config: Dict[str, Any]) -> Dict[str, Any]:
    """The attention layer's options set in a run's settings (``e_lambda`` for SimAM, ``reduction`` for SE/CBAM).

    An option that the run's attention does not take is an error, never silently dropped.

    Examples:
        >>> attention_options({"model": "cifar_resnet20", "attention": "se", "reduction": 4, "e_lambda": None})
        {'reduction': 4}
    """
    accepted = _ATTENTION_OPTIONS.get(_effective_attention(config), ())
    options = {k: config[k] for k in ("e_lambda", "reduction") if config.get(k) is not None}
    wrong = sorted(set(options) - set(accepted))
    if wrong:
        raise ValueError(f"{', '.join(wrong)} set, but attention {config.get('attention')!r} of model "
                         f"{config['model']!r} does not take it (e_lambda is SimAM's, reduction SE's and CBAM's)")
    return options


def _check_input_size(network: paddle.nn.Layer, config: Dict[str, Any]) -> None:
    """One forward pass on a blank image, so a too-small --image-size fails before training."""
    size = config["image_size"]
    was_training = network.training
    network.eval()
    try:
        with paddle.no_grad():
            network(paddle.zeros([1, 3, size, size]))
    except (ValueError, RuntimeError) as err:
        raise ValueError(
            f"--image-size {size} does not fit model {config['model']!r}: {str(err).splitlines()[0]}") from None
    finally:
        if was_training:
            network.train()


def load_config(run_dir: str) -> Dict[str, Any]:
    """Read ``config.json`` of a run folder.

    Examples:
        >>> load_config("runs/demo/towernet_simam")["model"]
        'towernet'
    """
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        what = "does not exist" if not os.path.isdir(run_dir) else "has no config.json"
        raise FileNotFoundError(f"run folder {run_dir!r} {what}; give a folder written by `train --output`")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_same_run(config: Dict[str, Any], output: str, data: Optional[str], given: Dict[str, Any]) -> None:
    """Refuse to continue a run with other data or settings than it was started with."""
    if data is not None and os.path.abspath(data) != config["data"]:
        raise ValueError(f"--data {data!r} differs from the run's data {config['data']!r}; "
                         "resume with the same data or drop --data")
    changed = {k: (config.get(k), v) for k, v in given.items()
               if k not in _RESUMABLE_CHANGES and config.get(k) != v}
    if changed:
        detail = ", ".join(f"{k}: run has {old!r}, given {new!r}" for k, (old, new) in changed.items())
        raise ValueError(f"cannot resume {output!r} with different settings ({detail}); "
                         "drop them or start a new --output")


def train_run(data: Optional[str], output: str, resume: bool = False, verbose: int = 1,
              **settings: Any) -> Dict[str, Any]:
    """Train a zoo model on a split folder into a run folder; or resume one.

    Args:
        data (str|None): split folder with ``train/`` and ``eval/``; None when resuming.
        output (str): the run folder.
        resume (bool, optional): continue the run in ``output``; settings come from its
            ``config.json`` and may only repeat them (except num_workers, cache, device). Default: False.
        verbose (int, optional): 0 silent, 1 progress bar, 2 one line per epoch. Default: 1.
        **settings: any key of :data:`TRAIN_DEFAULTS`; missing ones take those defaults.

    Returns:
        dict: the run's configuration, as written to ``config.json``.

    Examples:
        >>> config = train_run("data/digits_split", "runs/t", model="towernet", epochs=2, image_size=128)
        >>> config["num_classes"]
        10
    """
    from .training import default_weight_decay, seed_everything, train

    unknown = sorted(set(settings) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; known: {sorted(TRAIN_DEFAULTS)}")
    given = {k: v for k, v in settings.items() if v is not None}
    if resume:
        config = load_config(output)
        _check_same_run(config, output, data, given)
        config.update({k: given[k] for k in _RESUMABLE_CHANGES if k in given})
    else:
        if data is None:
            raise ValueError("--data is required (a split folder holding train/ and eval/)")
        if given.get("init_from"):
            from .finetune import init_from_settings

            given = init_from_settings(given)
        # Only rank 0 checks: the others could already see the config.json rank 0 writes below.
        if is_main_process() and os.path.exists(os.path.join(output, "config.json")):
            raise FileExistsError(
                f"{output!r} already holds a run; add --resume to continue it or choose another --output")
        config = {**TRAIN_DEFAULTS, **given, "data": os.path.abspath(data)}
        if config["weight_decay"] is None:
            config["weight_decay"] = default_weight_decay(config["model"])
        for key in ("epochs", "image_size", "batch_size"):
            if not (isinstance(config[key], int) and config[key] > 0):
                raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, got {config[key]!r}")
        _check_model_name(config["model"])

    train_data, eval_data = _datasets(config)
    if list(train_data.classes) != list(eval_data.classes):
        raise ValueError(f"train/ and eval/ of {config['data']!r} hold different classes: "
                         f"{list(train_data.classes)} vs {list(eval_data.classes)}")
    if resume and list(train_data.classes) != config["classes"]:
        raise ValueError(f"the classes in {config['data']!r} changed since the run started: "
                         f"{list(train_data.classes)} vs {config['classes']}")
    classes = list(train_data.classes)
    train_data = _limit_per_class(train_data, config["train_per_class"])
    eval_data = _limit_per_class(eval_data, config["eval_per_class"])
    config.update(num_classes=len(classes), classes=classes, train_samples=len(train_data),
                  eval_samples=len(eval_data))

    seed_everything(config["seed"])
    network = _build_network(config)
    _check_input_size(network, config)
    if not resume and config.get("init_from"):
        from .finetune import init_from_run

        init_from_run(network, config["init_from"], verbose=bool(verbose) and is_main_process())
    if not resume:
        config.update(paddle_version=paddle.__version__, started=time.strftime("%Y-%m-%d %H:%M:%S"))
    if is_main_process():
        os.makedirs(output, exist_ok=True)
        atomic_write_text(json.dumps(config, indent=2) + "\n", os.path.join(output, "config.json"))
    train(network, train_data, eval_data, output_dir=output, epochs=config["epochs"],
          batch_size=config["batch_size"], lr=config["lr"], weight_decay=config["weight_decay"],
          momentum=config["momentum"], seed=config["seed"], num_workers=config["num_workers"],
          resume=resume, device=config["device"], verbose=verbose)
    return config


def _finished_epochs(run_dir: str) -> int:
    try:
        return len(read_history(run_dir))
    except FileNotFoundError:
        return 0


def complete_run(data: str, output: str, verbose: int = 1, **settings: Any) -> Dict[str, Any]:
    """Bring a run folder to its last epoch: train it if new, resume it if interrupted, skip it if done.

    Re-running a list of ``complete_run`` calls (a demo, an ablation) therefore only trains what is
    missing. An existing run must have been started on ``data`` with the same ``settings``.

    Args:
        data (str): split folder with ``train/`` and ``eval/``.
        output (str): the run folder.
        verbose (int, optional): 0 silent, 1 progress bar, 2 one line per epoch. Default: 1.
        **settings: any key of :data:`TRAIN_DEFAULTS`, as for :func:`train_run`.

    Returns:
        dict: the run's configuration.

    Examples:
        >>> config = complete_run("data/digits_split", "runs/t", epochs=2, image_size=128)  # doctest: +SKIP
        >>> len(read_history("runs/t")) == config["epochs"]  # doctest: +SKIP
        True
    """
    if not os.path.isfile(os.path.join(output, "config.json")):
        if os.path.isdir(output) and os.listdir(output):
            raise FileExistsError(f"{output!r} holds files but no run (no config.json); "
                                  "remove it or choose another output folder")
        return train_run(data, output, verbose=verbose, **settings)
    config = load_config(output)
    _check_same_run(config, output, data, {k: v for k, v in settings.items() if v is not None})
    if _finished_epochs(output) >= config["epochs"]:
        return config
    if not os.path.isfile(os.path.join(output, "last.json")):
        raise FileExistsError(f"{output!r} was started but finished no epoch, so it cannot be resumed; "
                              "remove it and run again")
    return train_run(None, output, resume=True, verbose=verbose, **settings)


def _check_state_fits(state: Dict[str, Any], network: paddle.nn.Layer, path: str, config: Dict[str, Any]) -> None:
    """Paddle only warns when a state dict does not fit; a checkpoint of another model must fail."""
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
        raise ValueError(f"{path} does not fit model {config['model']!r} (attention {config.get('attention')!r}, "
                         f"{config['num_classes']} classes): {'; '.join(parts)}. Is it from another run?")


def load_run(run_dir: str, weights: str = "best") -> Tuple[paddle.nn.Layer, Dict[str, Any]]:
    """Rebuild a run's network from ``config.json`` and load its weights, in eval mode.

    Args:
        run_dir (str): the run folder.
        weights (str, optional): "best" (``best_model.pdparams``) or "last" (``last.pdparams``). Default: "best".

    Returns:
        tuple: ``(network, config)``.

    Examples:
        >>> network, config = load_run("runs/demo/towernet_simam")
        >>> network(paddle.zeros([1, 3, config["image_size"], config["image_size"]])).shape
        [1, 10]
    """
    files = {"best": "best_model.pdparams", "last": "last.pdparams"}
    if weights not in files:
        raise ValueError(f"weights must be one of {sorted(files)}, got {weights!r}")
    config = load_config(run_dir)
    path = os.path.join(run_dir, files[weights])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} has no {files[weights]} (did an epoch finish?)")
    network = _build_network(config)
    state = paddle.load(path)
    _check_state_fits(state, network, path, config)
    network.set_state_dict(state)
    network.eval()
    return network, config


def evaluate_run(run_dir: str, data: Optional[str] = None, batch_size: Optional[int] = None,
                 output: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate a run's best weights; write ``confusion_matrix.csv`` and ``.png``.

    Args:
        run_dir (str): the run folder.
        data (str, optional): a class folder, or a split folder whose ``eval/`` is used; None uses
            the run's own evaluation data. Default: None.
        batch_size (int, optional): None uses the run's. Default: None.
        output (str, optional): folder for the confusion matrix files; None is ``run_dir``. Default: None.

    Returns:
        dict: ``acc``, ``loss``, ``per_class`` (class name to accuracy), ``confusion_matrix``,
        ``classes``, ``best_eval_acc`` (from the history, None if absent) and ``files``.

    Examples:
        >>> result = evaluate_run("runs/demo/towernet_simam")
        >>> result["acc"] == result["best_eval_acc"]
        True
    """
    from .data import check_num_classes
    from .evaluation import confusion_matrix, per_class_accuracy, plot_confusion_matrix, save_confusion_matrix_csv
    from .training import evaluate

    network, config = load_run(run_dir)
    root = None
    if data is not None:
        if not os.path.isdir(data):
            raise FileNotFoundError(f"evaluation data {data!r} does not exist; give a class folder or a split folder")
        root = os.path.join(data, "eval") if os.path.isdir(os.path.join(data, "eval")) else data
    _, dataset = _datasets(config, eval_root=root, train=False)
    check_num_classes(dataset, config["num_classes"])
    if list(dataset.classes) != list(config["classes"]):
        raise ValueError(f"{dataset.root} holds classes {list(dataset.classes)}, "
                         f"but the run was trained on {config['classes']}")
    if root is None:  # the run's own evaluation data, limited as in training
        dataset = _limit_per_class(dataset, config.get("eval_per_class"))
    model = paddle.Model(network)
    result = evaluate(model, dataset, batch_size=batch_size or config["batch_size"])
    cm = confusion_matrix(result["labels"], result["logits"], num_classes=config["num_classes"])
    out = output or run_dir
    files = [os.path.join(out, "confusion_matrix.csv"), os.path.join(out, "confusion_matrix.png")]
    save_confusion_matrix_csv(cm, files[0], config["classes"])
    plot_confusion_matrix(cm, config["classes"], output=files[1],
                          title=f"{config['model']} ({config.get('attention')}): acc {result['acc']:.4f}")
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
        >>> export_run("runs/demo/towernet_simam", "export/towernet")["max_abs_diff"] < 1e-4
        True
    """
    network, config = load_run(run_dir, weights)
    size = config["image_size"]
    prefix = os.path.join(output, "model")
    os.makedirs(output, exist_ok=True)
    spec = paddle.static.InputSpec([None, 3, size, size], "float32", "image")
    paddle.jit.save(network, prefix, input_spec=[spec])
    x = paddle.to_tensor(np.random.RandomState(0).randn(2, 3, size, size).astype("float32"))
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
