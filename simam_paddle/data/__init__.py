"""Image data: image files, the dataset class and transforms, splitting a class folder, the embedded digit data sets.

Imports no other subpackage, so every layer of the package can use it.
"""
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import

from .images import IMAGE_EXTENSIONS, to_rgb
from .dataset import (
    ImageFolderDataset,
    train_transforms,
    cifar_train_transforms,
    eval_transforms,
    compute_mean_std,
    check_num_classes,
    per_class_subset,
    NOTEBOOK_MEAN,
    NOTEBOOK_STD,
    DEFAULT_CACHE_BYTES,
)
from .corruptions import CORRUPTIONS, SEVERITIES, available_corruptions, corrupt
from .split import split_dataset, SplitReport, SkippedFile, MANIFEST_NAME
from .digits import make_digits_dataset, make_cluttered_digits_dataset, DigitsSummary
from .caltech import (
    CALTECH16_CLASSES,
    CALTECH101_CITATION,
    CaltechError,
    CaltechSummary,
    caltech101_classes,
    embedded_caltech16,
    make_caltech101,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "to_rgb",
    "ImageFolderDataset",
    "train_transforms",
    "cifar_train_transforms",
    "eval_transforms",
    "compute_mean_std",
    "check_num_classes",
    "per_class_subset",
    "NOTEBOOK_MEAN",
    "NOTEBOOK_STD",
    "DEFAULT_CACHE_BYTES",
    "CORRUPTIONS",
    "SEVERITIES",
    "available_corruptions",
    "corrupt",
    "split_dataset",
    "SplitReport",
    "SkippedFile",
    "MANIFEST_NAME",
    "make_digits_dataset",
    "make_cluttered_digits_dataset",
    "DigitsSummary",
    "CALTECH16_CLASSES",
    "CALTECH101_CITATION",
    "CaltechError",
    "CaltechSummary",
    "caltech101_classes",
    "embedded_caltech16",
    "make_caltech101",
]
