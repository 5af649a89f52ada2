"""Networks: TowerNet, the official SimAM CIFAR ResNets, Paddle's ImageNet models, and one registry (:func:`build_model`).

Imports :mod:`simam_paddle.layers` only.
"""
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import

from .blocks import BasicConv2d, Inception
from .towernet import TowerNet
from .cifar_resnet import CifarBasicBlock, CifarResNet, CIFAR_DEPTHS
from .zoo import (
    ModelSpec,
    model_spec,
    resolve_attention,
    build_model,
    available_models,
    insert_attention,
    get_sublayer,
    OFFICIAL_MODEL_FAMILIES,
)
from .official_init import OFFICIAL_INIT_FAMILIES, official_init
from .torch_checkpoint import TorchCheckpointError, load_torch_checkpoint
from .official import (
    OFFICIAL_MODELS,
    OFFICIAL_IMAGE_SIZE,
    official_attention_options,
    convert_official_state_dict,
    load_official_checkpoint,
)

__all__ = [
    "BasicConv2d",
    "Inception",
    "TowerNet",
    "CifarBasicBlock",
    "CifarResNet",
    "CIFAR_DEPTHS",
    "ModelSpec",
    "model_spec",
    "resolve_attention",
    "build_model",
    "available_models",
    "insert_attention",
    "get_sublayer",
    "OFFICIAL_INIT_FAMILIES",
    "OFFICIAL_MODEL_FAMILIES",
    "official_init",
    "load_torch_checkpoint",
    "TorchCheckpointError",
    "OFFICIAL_MODELS",
    "OFFICIAL_IMAGE_SIZE",
    "official_attention_options",
    "convert_official_state_dict",
    "load_official_checkpoint",
]
