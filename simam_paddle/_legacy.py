"""Old module paths of the flat layout (``simam_paddle.zoo``, ...), kept working after the split into subpackages.

A meta path finder answers ``import simam_paddle.<old>`` with a small stand-in module, with a
``DeprecationWarning`` that names the new place. The stand-in looks names up in the module's new place
first, then wherever the name itself moved (``read_history`` left ``callbacks`` for ``engine.history``),
so code written against the flat layout keeps working.

They are kept for one release: version 0.3.0 removes this module (with :data:`LEGACY_MODULES` and :data:`MOVED_NAMES`, which
``simam_paddle/__init__.py`` reads), and every warning says so (:data:`REMOVED_IN`).
"""
import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Dict, List

__all__ = ["REMOVED_IN", "MOVED_NAMES", "LEGACY_MODULES", "install_legacy_module_finder"]

REMOVED_IN = "0.3.0"  # the release without the old paths and names

# Names ``simam_paddle`` exported before the package was split into subpackages -> their new home.
MOVED_NAMES = {
    "BasicConv2d": "models",
    "CALTECH_SOURCES": "experiments",
    "CIFAR_DEPTHS": "models",
    "CheckpointSaver": "engine",
    "CifarBasicBlock": "models",
    "CifarResNet": "models",
    "CosineDecayToZero": "engine",
    "DEFAULT_CACHE_BYTES": "data",
    "DEMO_SETTINGS": "experiments",
    "DigitsSummary": "data",
    "EpochLR": "engine",
    "HISTORY_COLUMNS": "engine",
    "HistoryLogger": "engine",
    "IMAGE_EXTENSIONS": "data",
    "Inception": "models",
    "MANIFEST_NAME": "data",
    "NOTEBOOK_MEAN": "data",
    "NOTEBOOK_STD": "data",
    "PreparedData": "experiments",
    "QUICK_ENV": "experiments",
    "SkippedFile": "data",
    "SplitReport": "data",
    "TRAIN_DEFAULTS": "experiments",
    "aggregate_runs": "experiments",
    "atomic_save": "engine",
    "atomic_write_text": "engine",
    "attention_options": "experiments",
    "check_num_classes": "data",
    "compute_mean_std": "data",
    "confusion_matrix": "engine",
    "default_weight_decay": "engine",
    "evaluate": "engine",
    "export_run": "experiments",
    "find_caltech": "experiments",
    "format_markdown_table": "experiments",
    "fused_available": "layers",
    "fused_cache_dir": "layers",
    "fused_unavailable_reason": "layers",
    "is_main_process": "engine",
    "load_checkpoint_state": "engine",
    "load_config": "experiments",
    "make_cluttered_digits_dataset": "data",
    "make_digits_dataset": "data",
    "make_loader": "engine",
    "make_optimizer": "engine",
    "make_visualdl": "engine",
    "per_class_accuracy": "engine",
    "plot_confusion_matrix": "plots",
    "plot_mean_curves": "plots",
    "plot_sample_grid": "plots",
    "portable_optimizer_state": "engine",
    "predict": "engine",
    "prepare_split": "experiments",
    "quick_profile": "experiments",
    "read_history": "engine",
    "register_attention": "layers",
    "restore_optimizer_state": "engine",
    "run_ablation": "experiments",
    "run_demo": "experiments",
    "save_confusion_matrix_csv": "engine",
    "seed_everything": "engine",
    "select_device": "engine",
    "simam_weights": "layers",
    "summarize_runs": "experiments",
    "to_rgb": "data",
    "train": "engine",
}

# Modules of the flat layout -> their new place, for ``import simam_paddle.zoo`` and the like.
LEGACY_MODULES = {
    "simam": "layers.simam",
    "fused": "layers.fused",
    "attention": "layers.attention",
    "blocks": "models.blocks",
    "towernet": "models.towernet",
    "zoo": "models.zoo",
    "images": "data.images",
    "split": "data.split",
    "digits": "data.digits",
    "callbacks": "engine.callbacks",
    "training": "engine.training",
    "evaluation": "engine.evaluation",
    "runs": "experiments.runs",
    "ablation": "experiments.ablation",
    "report": "experiments.report",
    "demo": "experiments.demo",
    "notebook": "experiments.notebook",
}

_MISSING = object()


class _LegacyModule(types.ModuleType):
    """Stand-in for a module of the flat layout: attribute look-ups go to where the names live now."""

    def __init__(self, name: str, target: str, moved: Dict[str, str]):
        super().__init__(name, f"Moved to {target}.")
        self._target, self._moved = target, moved
        self._originals: Dict[str, object] = {}  # what a name patched through this module was before

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        module = importlib.import_module(self._target)
        if hasattr(module, attr):
            return getattr(module, attr)
        if attr in self._moved:
            return getattr(importlib.import_module(self._moved[attr]), attr)
        raise AttributeError(f"{self.__name__} moved to {self._target}, which has no attribute {attr!r}")

    def __setattr__(self, attr: str, value) -> None:
        # Patching a name through the old path (tests, plugins) patches the module that uses it.
        if attr.startswith("__") or attr in ("_target", "_moved", "_originals"):
            super().__setattr__(attr, value)
        else:
            module = importlib.import_module(self._target)
            self._originals.setdefault(attr, getattr(module, attr, _MISSING))
            setattr(module, attr, value)

    def __delattr__(self, attr: str) -> None:
        # Deleting a name patched through the old path puts back what the module had before the first
        # patch (pytest >= 9.2's monkeypatch undoes a patch of a module this way); otherwise it deletes it.
        module = importlib.import_module(self._target)
        original = self._originals.pop(attr, _MISSING)
        if original is _MISSING:
            delattr(module, attr)
        else:
            setattr(module, attr, original)

    def __dir__(self) -> List[str]:
        return sorted(set(dir(importlib.import_module(self._target))) | set(self._moved))


class _LegacyLoader(importlib.abc.Loader):
    def __init__(self, target: str, moved: Dict[str, str]):
        self.target, self.moved = target, moved

    def create_module(self, spec):
        return _LegacyModule(spec.name, self.target, self.moved)

    def exec_module(self, module) -> None:
        pass


class _LegacyModuleFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str, moves: Dict[str, str], names: Dict[str, str]):
        self.package, self.moves = package, dict(moves)
        self.names = {name: f"{package}.{place}" for name, place in names.items()}

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.rpartition(".")
        if prefix != self.package or old not in self.moves:
            return None
        new = f"{self.package}.{self.moves[old]}"
        warnings.warn(f"module {fullname} moved to {new}; import it from there (the old path is removed in "
                      f"{REMOVED_IN}).", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _LegacyLoader(new, self.names))


def install_legacy_module_finder(package: str, moves: Dict[str, str], names: Dict[str, str]) -> None:
    """Let ``import <package>.<old>`` work for every ``old`` in ``moves`` (old module -> new module, relative to
    ``package``); ``names`` (name -> subpackage or module it moved to) finds names that left their module."""
    if not any(isinstance(f, _LegacyModuleFinder) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_LegacyModuleFinder(package, moves, names))
