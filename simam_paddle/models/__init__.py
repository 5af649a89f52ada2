"""Networks: TowerNet, the official SimAM CIFAR ResNets, Paddle's ImageNet models, and one registry (:func:`build_model`).

Imports :mod:`simam_paddle.layers` only.
"""
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
