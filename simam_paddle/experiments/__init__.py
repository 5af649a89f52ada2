"""Run folders and what is built on them: train/resume/evaluate/export a run, ablations, reports, the demo.

The top layer: it may import every other subpackage; none imports it.

The names are imported on first use, so :mod:`simam_paddle.experiments.config` (pure Python) can be read
without importing Paddle, as the command line's ``--help`` does.
"""
import importlib
from typing import Any, List

from .config import TRAIN_DEFAULTS, TrainConfig

# Public name -> the module of this package that defines it, imported on first use.
_EXPORTS = {
    "ATTENTION_OPTIONS": "runs",
    "attention_options": "runs",
    "build_network": "runs",
    "run_datasets": "runs",
    "train_run": "runs",
    "complete_run": "runs",
    "load_config": "config",
    "load_run": "runs",
    "run_kernels": "runs",
    "evaluate_run": "runs",
    "export_run": "runs",
    "lock_run_folder": "runs",
    "RunInUseError": "runs",
    "stored_data_path": "runs",
    "run_ablation": "ablation",
    "summarize_runs": "report",
    "aggregate_runs": "report",
    "format_markdown_table": "report",
    "paired_differences": "report",
    "format_paired_table": "report",
    "write_report": "report",
    "report_block": "report",
    "robustness_table": "report",
    "evaluate_robustness": "robustness",
    "read_robustness": "robustness",
    "Explanation": "explain",
    "explain_images": "explain",
    "DEMO_SETTINGS": "demo",
    "run_demo": "demo",
    "QUICK_ENV": "notebook",
    "CALTECH_SOURCES": "notebook",
    "quick_profile": "notebook",
    "find_caltech": "notebook",
    "prepare_split": "notebook",
    "PreparedData": "notebook",
    "PROFILE_ENV": "notebook",
    "PROFILES": "notebook",
    "notebook_profile": "notebook",
    "per_class_subset": "notebook",
    "layer_table": "notebook",
    "NotebookRun": "notebook",
    "open_run": "notebook",
    "class_examples": "notebook",
    "Prediction": "prediction",
    "find_images": "prediction",
    "predict_images": "prediction",
    "write_predictions_csv": "prediction",
    "init_from_settings": "finetune",
    "init_from_run": "finetune",
    "convert_official_checkpoint": "official_runs",
}

__all__ = ["TrainConfig", "TRAIN_DEFAULTS", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .._paddle import require_paddle

    require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
