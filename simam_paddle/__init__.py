"""simam-paddle: SimAM, the parameter-free 3-D attention module, for PaddlePaddle.

Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021.

The package is layered; each subpackage imports only those below it:

- :mod:`simam_paddle.layers`: SimAM, SE, CBAM and the attention factory.
- :mod:`simam_paddle.models`: TowerNet, the CIFAR and ImageNet families, :func:`build_model`.
- :mod:`simam_paddle.engine`: optimizer, callbacks, train / evaluate / predict on ``paddle.Model``.
- :mod:`simam_paddle.experiments`: run folders, ablations, reports, the demo.
- :mod:`simam_paddle.data` (images, dataset, split, embedded data) is usable by all of them, and
  :mod:`simam_paddle.plots` holds every figure.

This module re-exports, lazily, the few names the notebooks and the README use, so
``import simam_paddle`` (and ``python -m simam_paddle --help``) stays fast; everything else is
reached through its subpackage. Importing it picks no device and changes no global Paddle state.
"""
import importlib
import warnings
from typing import Any, List

from ._legacy import LEGACY_MODULES as _LEGACY_MODULES
from ._legacy import MOVED_NAMES as _MOVED
from ._legacy import REMOVED_IN as _REMOVED_IN
from ._legacy import install_legacy_module_finder as _install_legacy_module_finder

__version__ = "0.2.0"

# Public name -> the subpackage (or module) it is imported from on first use.
_EXPORTS = {
    "SimAM": "layers",
    "simam": "layers",
    "SEModule": "layers",
    "CBAM": "layers",
    "create_attention": "layers",
    "available_attentions": "layers",
    "build_model": "models",
    "available_models": "models",
    "insert_attention": "models",
    "TowerNet": "models",
    "load_official_checkpoint": "models",
    "ImageFolderDataset": "data",
    "train_transforms": "data",
    "eval_transforms": "data",
    "split_dataset": "data",
    "SaveBestModel": "engine",
    "train_run": "experiments",
    "complete_run": "experiments",
    "load_run": "experiments",
    "evaluate_run": "experiments",
    "plot_curves": "plots",
    "plot_attention_maps": "plots",
    "attention_maps": "plots",
    "predict_images": "experiments",
}

__all__ = list(_EXPORTS)


_SUBPACKAGES = ("layers", "models", "data", "engine", "experiments", "plots")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    elif name in _MOVED:
        place = f"{__name__}.{_MOVED[name]}"
        warnings.warn(f"simam_paddle.{name} moved to {place}.{name}; import it from there (the old name is "
                      f"removed in {_REMOVED_IN}).", DeprecationWarning, stacklevel=2)
        value = getattr(importlib.import_module(place), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))


_install_legacy_module_finder(__name__, _LEGACY_MODULES, {**_MOVED, **_EXPORTS})
