"""A run's settings as its folder records them: :func:`load_config` reads ``config.json`` back.

The settings themselves, their defaults and rules live in :mod:`simam_paddle.config` (shared by every layer:
the engine trains with a :class:`TrainConfig`); they are importable from here too. Pure Python, no Paddle
when imported.
"""
import os
from typing import Any, Dict

from ..config import (OPTIMIZERS, RECIPES, TRAIN_DEFAULTS, Recipe, TrainConfig, check_settings, compared_settings,
                      per_run_settings, resumable_settings, setting_problems, setting_type, shared_settings)

__all__ = ["TrainConfig", "TRAIN_DEFAULTS", "OPTIMIZERS", "RECIPES", "Recipe", "setting_problems", "check_settings",
           "resumable_settings", "per_run_settings", "shared_settings", "compared_settings", "setting_type",
           "load_config"]


# Keys every config.json written by `train` holds (newer settings may be missing from older runs);
# rebuilding, evaluating or resuming the run also needs "classes" (see runs._require_classes).
_REQUIRED_CONFIG = ("model", "num_classes", "image_size", "batch_size", "epochs", "data")


def load_config(run_dir: str) -> Dict[str, Any]:
    """Read ``config.json`` of a run folder; a broken one is a :class:`RunFileError` naming it.

    A config written before attention names were stored (``"attention": null``, the model as published)
    gets the name it meant, one written before the ``optimizer`` setting gets ``"momentum"`` and one written
    before the ``onednn`` setting gets False (Paddle's kernels), so every reader sees what was trained.

    Examples:
        >>> load_config("runs/demo/towernet_simam")["model"]  # doctest: +SKIP
        'towernet'
    """
    from ..engine.history import RunFileError, read_run_json  # Paddle: imported when a run is read, not for --help

    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        what = "does not exist" if not os.path.isdir(run_dir) else "has no config.json"
        raise FileNotFoundError(f"run folder {run_dir!r} {what}; give a run folder written by train_run "
                                "(the `train` command)")
    config = read_run_json(path, "a run's config.json holds its settings, as `train` writes them")
    missing = [key for key in _REQUIRED_CONFIG if key not in config]
    if missing:
        raise RunFileError(f"{path} is missing {', '.join(missing)}; a run's config.json is written by `train`")
    problems = [f"{key} {problem}" for key, problem in setting_problems(config)]
    problems += [f"{key} must be set, got None" for key in ("epochs", "batch_size") if config[key] is None]
    num_classes = config["num_classes"]
    if not (isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 0):
        problems.append(f"num_classes must be a positive integer, got {config['num_classes']!r}")
    elif "classes" in config and not (isinstance(config["classes"], list)
                                      and len(config["classes"]) == config["num_classes"]
                                      and all(isinstance(c, str) for c in config["classes"])):
        problems.append(f"classes must be a list of {config['num_classes']} names, got {config['classes']!r}")
    if not (isinstance(config["data"], str) or config["data"] is None and config.get("converted_from")):
        problems.append(f"data must be a folder name (None only in a run converted from a checkpoint), "
                        f"got {config['data']!r}")
    if problems:
        raise RunFileError(f"{path}: {'; '.join(problems)}")
    # Runs written before the optimizer setting existed all trained with Momentum.
    config.setdefault("optimizer", "momentum")
    if config.get("onednn") is None:  # and on Paddle's own kernels
        config["onednn"] = False
    if config.get("attention") is None:
        from ..models.zoo import available_models, resolve_attention

        if config["model"] in available_models():  # an unknown model is named when the network is built
            config["attention"] = resolve_attention(config["model"])
    return config
