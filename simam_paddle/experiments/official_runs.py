"""Official SimAM checkpoints (PyTorch) as run folders, so ``evaluate``, ``export`` and ``train --init-from`` take them."""
import json
import os
import time
from typing import Any, Dict, Optional, Sequence

from .._paddle import require_paddle

require_paddle()  # a clear message for a missing Paddle; a quiet import if this module loads it

import paddle  # noqa: E402
import paddle.nn as nn  # noqa: E402

from .._io import atomic_write_text
from ..engine.checkpoints import atomic_save
from ..engine.training import default_weight_decay
from ..models.official import OFFICIAL_MODELS, OFFICIAL_IMAGE_SIZE, load_official_checkpoint, official_attention_options
from .runs import TRAIN_DEFAULTS

__all__ = ["convert_official_checkpoint"]


def convert_official_checkpoint(path: str, output: str, model: str, attention: str = "simam",
                                attention_param: Optional[float] = None,
                                classes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Convert an official SimAM checkpoint into a run folder that ``evaluate``, ``export`` and ``load_run`` take.

    Writes ``output/config.json`` (the format :func:`simam_paddle.train_run` writes; ``data`` is None,
    ``image_size`` 32 for CIFAR models and 224 for ImageNet ones, ``converted_from`` names ``path``) and
    ``output/best_model.pdparams``, each atomically. Fine-tune it with ``train --init-from output``.

    Args:
        path (str): The official checkpoint, see :func:`simam_paddle.models.load_official_checkpoint`.
        output (str): The run folder to create (new, or without a ``config.json``).
        model (str): One of :data:`simam_paddle.models.OFFICIAL_MODELS`.
        attention (str, optional): The official ``--attention_type``. Default: "simam".
        attention_param (float, optional): The official ``--attention_param``; None as in
            :func:`simam_paddle.models.official_attention_options`. Default: None.
        classes (list, optional): Class names, one per logit; None: ``"0"``, ``"1"``, .... Default: None.

    Returns:
        dict: The run's configuration, as written to ``config.json``.

    Examples:
        >>> from simam_paddle.experiments import convert_official_checkpoint
        >>> config = convert_official_checkpoint("tests/data/official/official_cifar_resnet20_se.pth.tar",
        ...                                      "/tmp/official_se", "cifar_resnet20", "se")  # doctest: +SKIP
        >>> config["reduction"], config["num_classes"]  # doctest: +SKIP
        (4, 10)
    """
    if os.path.exists(os.path.join(output, "config.json")):
        raise FileExistsError(f"{output!r} already holds a run; choose another output folder")
    network = load_official_checkpoint(path, model, attention, attention_param)
    model, attention = model.lower(), attention.lower()
    num_classes = int([layer for layer in network.sublayers() if isinstance(layer, nn.Linear)][-1].weight.shape[1])
    classes = [str(c) for c in range(num_classes)] if classes is None else [str(c) for c in classes]
    if len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names given, but {path} has {num_classes} classes")
    if len(set(classes)) != len(classes):
        raise ValueError("class names must be unique")
    config = {
        **TRAIN_DEFAULTS,
        "model": model,
        "attention": attention,
        **official_attention_options(attention, attention_param),
        "image_size": OFFICIAL_IMAGE_SIZE[OFFICIAL_MODELS[model]],
        "weight_decay": default_weight_decay(model),
        "data": None,
        "num_classes": num_classes,
        "classes": classes,
        "train_samples": None,
        "eval_samples": None,
        "paddle_version": paddle.__version__,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "converted_from": os.path.abspath(path),
    }
    os.makedirs(output, exist_ok=True)
    atomic_save(network.state_dict(), os.path.join(output, "best_model.pdparams"))
    atomic_write_text(json.dumps(config, indent=2) + "\n", os.path.join(output, "config.json"))
    return config
