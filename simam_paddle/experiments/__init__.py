"""Run folders and what is built on them: train/resume/evaluate/export a run, ablations, reports, the demo.

The top layer: it may import every other subpackage; none imports it.
"""
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import

from .runs import (
    TRAIN_DEFAULTS,
    ATTENTION_OPTIONS,
    attention_options,
    build_network,
    run_datasets,
    train_run,
    complete_run,
    load_config,
    load_run,
    evaluate_run,
    export_run,
    lock_run_folder,
    RunInUseError,
)
from .ablation import run_ablation
from .report import (
    summarize_runs,
    aggregate_runs,
    format_markdown_table,
    paired_differences,
    format_paired_table,
    write_report,
)
from .demo import DEMO_SETTINGS, run_demo
from .notebook import (
    PROFILE_ENV,
    PROFILES,
    QUICK_ENV,
    CALTECH_SOURCES,
    notebook_profile,
    quick_profile,
    find_caltech,
    prepare_split,
    PreparedData,
    per_class_subset,
    layer_table,
    NotebookRun,
    open_run,
    class_examples,
)
from .prediction import Prediction, find_images, predict_images, write_predictions_csv
from .finetune import init_from_settings, init_from_run
from .official_runs import convert_official_checkpoint

__all__ = [
    "TRAIN_DEFAULTS",
    "ATTENTION_OPTIONS",
    "attention_options",
    "build_network",
    "run_datasets",
    "train_run",
    "complete_run",
    "load_config",
    "load_run",
    "evaluate_run",
    "export_run",
    "lock_run_folder",
    "RunInUseError",
    "run_ablation",
    "summarize_runs",
    "aggregate_runs",
    "format_markdown_table",
    "paired_differences",
    "format_paired_table",
    "write_report",
    "DEMO_SETTINGS",
    "run_demo",
    "PROFILE_ENV",
    "PROFILES",
    "QUICK_ENV",
    "CALTECH_SOURCES",
    "notebook_profile",
    "quick_profile",
    "find_caltech",
    "prepare_split",
    "PreparedData",
    "per_class_subset",
    "layer_table",
    "NotebookRun",
    "open_run",
    "class_examples",
    "Prediction",
    "find_images",
    "predict_images",
    "write_predictions_csv",
    "init_from_settings",
    "init_from_run",
    "convert_official_checkpoint",
]
