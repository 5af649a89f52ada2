"""Training machinery on ``paddle.Model``: optimizer and schedule, callbacks, train, evaluate and predict.

- :mod:`~simam_paddle.engine.training`: ``resolve_config`` (a :class:`~simam_paddle.config.TrainConfig` made
  concrete), optimizer, LR schedule, loaders, ``train`` (which takes the config whole), resuming.
- :mod:`~simam_paddle.engine.device`: the device, its CPU threads, seeding.
- :mod:`~simam_paddle.engine.callbacks`: every callback ``train`` and the notebooks use (best model, checkpoint,
  history, LR, per-epoch seeds, VisualDL, ...).
- :mod:`~simam_paddle.engine.checkpoints`: writing, reading and checking a run's checkpoints.
- :mod:`~simam_paddle.engine.history`: a run's ``history.csv``.
- :mod:`~simam_paddle.engine.evaluation`: ``evaluate``, ``predict``, confusion matrix, per-class accuracy.
- :mod:`~simam_paddle.engine.inference`: ``InferencePredictor``, a network run by Paddle Inference (the
  ``engine="inference"`` of ``evaluate_run`` and ``predict_images``).
- :mod:`~simam_paddle.engine.gradcam`: Grad-CAM maps of any network at a chosen layer.

Imports :mod:`simam_paddle.models`, :mod:`simam_paddle.layers`, :mod:`simam_paddle.data` and
:mod:`simam_paddle.config`.
"""
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import

from .._io import atomic_write_text, is_main_process
from .callbacks import (SaveBestModel, CheckpointSaver, HistoryLogger, EpochLR, EpochSeed, make_visualdl, VISUALDL_FILE,
                        run_callbacks)
from .device import seed_everything, select_device, resolve_device, describe_device
from .history import HISTORY_COLUMNS, RunFileError, read_history, read_run_json
from .checkpoints import (
    atomic_save,
    load_state,
    check_state_fits,
    portable_optimizer_state,
    restore_optimizer_state,
    load_checkpoint_state,
)
from .training import (
    CosineDecayToZero,
    OPTIMIZERS,
    make_optimizer,
    default_weight_decay,
    resolve_config,
    make_loader,
    restore_last_checkpoint,
    train,
    TrainingInterrupted,
)
from .acceleration import onednn_available, onednn_convolutions, onednn_default, onednn_gradient_error
from .inference import ENGINES, InferencePredictor, check_engine
from .evaluation import evaluate, predict, confusion_matrix, per_class_accuracy, save_confusion_matrix_csv
from .gradcam import GradCAM, grad_cam

__all__ = [
    "SaveBestModel",
    "CheckpointSaver",
    "HistoryLogger",
    "EpochLR",
    "make_visualdl",
    "VISUALDL_FILE",
    "HISTORY_COLUMNS",
    "read_history",
    "check_state_fits",
    "is_main_process",
    "atomic_save",
    "atomic_write_text",
    "portable_optimizer_state",
    "restore_optimizer_state",
    "RunFileError",
    "read_run_json",
    "load_state",
    "CosineDecayToZero",
    "OPTIMIZERS",
    "make_optimizer",
    "default_weight_decay",
    "resolve_config",
    "restore_last_checkpoint",
    "run_callbacks",
    "seed_everything",
    "EpochSeed",
    "select_device",
    "resolve_device",
    "make_loader",
    "train",
    "evaluate",
    "predict",
    "ENGINES",
    "InferencePredictor",
    "check_engine",
    "load_checkpoint_state",
    "TrainingInterrupted",
    "describe_device",
    "onednn_available",
    "onednn_convolutions",
    "onednn_default",
    "onednn_gradient_error",
    "confusion_matrix",
    "per_class_accuracy",
    "save_confusion_matrix_csv",
    "GradCAM",
    "grad_cam",
]
