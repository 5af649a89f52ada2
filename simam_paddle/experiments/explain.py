"""Grad-CAM of trained runs on image files: which regions each network uses for its decision.

:func:`explain_images` loads runs (their best weights, on Paddle's own convolution kernels), puts each image through a run's
evaluation transforms, and computes :func:`simam_paddle.engine.grad_cam` at the model's registry layer (or a
chosen one) for the predicted class, a named class, or the class named by the image's folder (as in a split's
``eval/<class>/``). :func:`simam_paddle.plots.plot_grad_cam` draws the result, one row per image and one
column per run, as the SimAM paper's Figure 1 does for ResNet-50, +SE and +SimAM.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .._paddle import require_paddle

require_paddle()

import paddle  # noqa: E402
from PIL import Image  # noqa: E402

from ..data.images import load_image, to_rgb  # noqa: E402
from ..engine.gradcam import grad_cam  # noqa: E402
from ..models.zoo import model_spec  # noqa: E402
from .prediction import find_images  # noqa: E402
from .runs import load_run, run_transforms  # noqa: E402

__all__ = ["Explanation", "explain_images", "MAX_EXPLAINED_IMAGES"]

MAX_EXPLAINED_IMAGES = 32
"""The most images one explanation takes: one figure row each."""


@dataclass
class Explanation:
    """What :func:`explain_images` returns.

    Attributes:
        paths (list[str]): the image files, one row each.
        images (list[numpy.ndarray]): each image as the first run sees it, ``[S, S, 3]`` uint8.
        runs (list[str]): the run folders, one column each.
        labels (list[str]): a short name per run (its attention, or model and attention where models differ).
        layers (list[str]): the layer each run's maps come from.
        maps (list[numpy.ndarray]): per run, ``[N, S, S]`` maps scaled to [0, 1].
        predicted (list[list[str]]): per run and image, the predicted class.
        probability (list[list[float]]): per run and image, the softmax probability of the predicted class.
        explained (list[list[str]]): per run and image, the class the map explains.
    """

    paths: List[str]
    images: List[np.ndarray]
    runs: List[str] = field(default_factory=list)
    labels: List[str] = field(default_factory=list)
    layers: List[str] = field(default_factory=list)
    maps: List[np.ndarray] = field(default_factory=list)
    predicted: List[List[str]] = field(default_factory=list)
    probability: List[List[float]] = field(default_factory=list)
    explained: List[List[str]] = field(default_factory=list)


def _pixels(path: str, size: int) -> np.ndarray:
    image = to_rgb(load_image(path, fix="remove it from the images to explain"))
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _targets(config: Dict, paths: Sequence[str], class_name: Optional[str], class_of_folder: bool,
             run: str) -> Optional[List[int]]:
    classes = list(config["classes"])
    if class_name is not None:
        names = [class_name] * len(paths)
    elif class_of_folder:
        names = [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in paths]
    else:
        return None
    missing = sorted({n for n in names if n not in classes})
    if missing:
        raise ValueError(f"class {', '.join(map(repr, missing))} is not one of run {run}'s classes {classes}"
                         + ("; with class_of_folder each image must sit in a folder named for its class"
                            if class_of_folder else ""))
    return [classes.index(n) for n in names]


def _labels(configs: Sequence[Dict]) -> List[str]:
    models = {c["model"] for c in configs}
    words = [c["attention"] if len(models) == 1 else f"{c['model']} {c['attention']}" for c in configs]
    if len(set(words)) < len(words):  # same attention twice: tell the runs apart by seed
        words = [f"{w} seed {c['seed']}" for w, c in zip(words, configs)]
    return words


def explain_images(runs: Union[str, Sequence[str]], images: Union[str, Sequence[str]], layer: Optional[str] = None,
                   class_name: Optional[str] = None, class_of_folder: bool = False,
                   weights: str = "best") -> Explanation:
    """Grad-CAM maps of one or more trained runs for image files.

    Args:
        runs (str|list[str]): run folders written by ``train``; one column each.
        images (str|list[str]): image files or folders of images (see
            :func:`simam_paddle.experiments.prediction.find_images`), at most :data:`MAX_EXPLAINED_IMAGES`.
        layer (str, optional): the sublayer explained in every run; None takes each model's registry default
            (``model_spec(model).cam_layer``). Default: None.
        class_name (str, optional): explain this class (a name of the runs' classes) for every image.
            Default: None (each run's predicted class).
        class_of_folder (bool, optional): explain the class named by each image's folder, e.g. its true class
            in a split's ``eval/<class>/``. Default: False.
        weights (str, optional): "best" or "last". Default: "best".

    Returns:
        Explanation: the images, and per run its maps, predictions and explained classes.

    Examples:
        >>> result = explain_images(["runs/demo/towernet_none", "runs/demo/towernet_simam"],
        ...                         "runs/demo/data/digits_split/eval/3")  # doctest: +SKIP
        >>> result.maps[0].shape  # doctest: +SKIP
        (37, 64, 64)
    """
    if class_name is not None and class_of_folder:
        raise ValueError("give class_name or class_of_folder=True, not both: each says which class to explain")
    runs = [runs] if isinstance(runs, (str, os.PathLike)) else [os.fspath(r) for r in runs]
    if not runs:
        raise ValueError("explain_images needs at least one run folder")
    paths = find_images(images)
    if not paths:
        raise ValueError(f"no images found in {images}; give image files or folders of images")
    if len(paths) > MAX_EXPLAINED_IMAGES:
        raise ValueError(f"{len(paths)} images given, at most {MAX_EXPLAINED_IMAGES} fit one figure (a row each); "
                         "give fewer files")
    loaded = [load_run(os.fspath(run), weights) for run in runs]
    result = Explanation(paths, [_pixels(p, loaded[0][1]["image_size"]) for p in paths], runs=list(runs),
                         labels=_labels([config for _, config in loaded]))
    for run, (network, config) in zip(runs, loaded):
        size = config["image_size"]
        pixels = result.images if size == loaded[0][1]["image_size"] else [_pixels(p, size) for p in paths]
        transform = run_transforms(config, train=False)
        batch = np.stack([transform(Image.fromarray(a)) for a in pixels]).astype(np.float32)
        chosen = layer or model_spec(config["model"]).cam_layer
        # On Paddle's own kernels: through oneDNN convolutions (each a compiled program) Paddle 3.3.1's
        # paddle.grad cannot reach an inner activation ("does not appear in the backward graph").
        cam = grad_cam(network, batch, chosen, class_ids=_targets(config, paths, class_name, class_of_folder, run))
        probs = paddle.nn.functional.softmax(paddle.to_tensor(cam.logits), axis=1).numpy()
        top = probs.argmax(axis=1)
        classes = list(config["classes"])
        result.layers.append(chosen)
        result.maps.append(cam.maps)
        result.predicted.append([classes[i] for i in top])
        result.probability.append([float(probs[n, i]) for n, i in enumerate(top)])
        result.explained.append([classes[i] for i in cam.class_ids])
    return result
