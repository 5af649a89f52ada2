"""Networks: TowerNet, the official SimAM CIFAR ResNets, Paddle's ImageNet models, and one registry (:func:`build_model`).

Imports :mod:`simam_paddle.layers` only.
"""
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import

from .blocks import BasicConv2d, Inception
from .towernet import TowerNet
from .cifar_resnet import CifarBasicBlock, CifarResNet, CIFAR_DEPTHS
from .zoo import build_model, available_models, insert_attention

__all__ = [
    "BasicConv2d",
    "Inception",
    "TowerNet",
    "CifarBasicBlock",
    "CifarResNet",
    "CIFAR_DEPTHS",
    "build_model",
    "available_models",
    "insert_attention",
]
