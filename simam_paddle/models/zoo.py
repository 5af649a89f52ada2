"""Models by name: TowerNet and Paddle's own VGG19, ResNet50 and MobileNetV2, optionally with attention.

Attention goes where the official SimAM code (github.com/ZjjConan/SimAM) puts it, written once in
``_PLACEMENT``: SimAM right after each block's 3x3 conv (ResNet ``conv2``) or depthwise conv
(MobileNetV2 inverted residual), before that conv's BatchNorm; any other attention (SE, CBAM, ...)
after the block's last BatchNorm, before the residual addition.

The attention layer is added to each block as a new sublayer named ``attention`` and applied by a forward
post-hook on the sublayer it follows. So the base model's state_dict keys do not change (Paddle's
pretrained weights still load, with only the attention's own keys missing) and ``paddle.jit.save``
exports the hooked model.
"""
import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

import paddle
import paddle.nn as nn
from paddle.vision.models import mobilenet_v2, resnet18, resnet34, resnet50, resnet101, resnext50_32x4d, vgg19
from paddle.vision.models.mobilenetv2 import InvertedResidual
from paddle.vision.models.resnet import BasicBlock, BottleneckBlock

from ..layers.attention import create_attention
from .cifar_resnet import CifarBasicBlock, CifarResNet
from .official_init import OFFICIAL_MODEL_FAMILIES, official_init
from .towernet import TowerNet

__all__ = ["build_model", "available_models", "insert_attention"]

# Block type -> (sublayer SimAM follows, sublayer any other attention follows), as dotted paths;
# integers index into Sequentials and may be negative.
_PLACEMENT: Dict[type, Tuple[str, str]] = {
    BottleneckBlock: ("conv2", "bn3"),
    BasicBlock: ("conv2", "bn2"),
    CifarBasicBlock: ("conv2", "bn2"),
    # conv = [expand ConvBNReLU6 (if any), depthwise ConvBNReLU6, 1x1 Conv2D, BatchNorm2D]
    InvertedResidual: ("conv.-3.0", "conv.-1"),
}


def _resolve(layer: nn.Layer, path: str) -> nn.Layer:
    for part in path.split("."):
        layer = list(layer.children())[int(part)] if part.lstrip("-").isdigit() else getattr(layer, part)
    return layer


def _out_channels(layer: nn.Layer) -> int:
    if isinstance(layer, nn.layer.conv._ConvNd):
        return layer._out_channels
    return layer.weight.shape[0]  # a norm layer: one scale per channel


class _ApplyAttention:
    """Forward post-hook that passes a sublayer's output through an attention layer."""

    def __init__(self, attention: nn.Layer):
        self.attention = attention

    def __call__(self, layer: nn.Layer, inputs: Any, output: paddle.Tensor) -> paddle.Tensor:
        return self.attention(output)


def insert_attention(model: nn.Layer, attention: str, **attention_kwargs) -> int:
    """Insert an attention layer into every ResNet / MobileNetV2 block of ``model``, in place.

    Placement, as in the official SimAM code: ``"simam"`` right after each block's 3x3 / depthwise conv;
    every other attention after the block's last BatchNorm, before the residual addition. Each attention
    layer becomes sublayer ``attention`` of its block; existing state_dict keys are unchanged.

    Args:
        model (paddle.nn.Layer): A model built from ``paddle.vision.models`` ResNet ``BottleneckBlock`` /
            ``BasicBlock`` or MobileNetV2 ``InvertedResidual`` blocks.
        attention (str): A name from :func:`simam_paddle.available_attentions` other than ``"none"``.
        **attention_kwargs: Options for that attention layer.

    Returns:
        int: Number of blocks that got an attention layer.

    Examples:
        >>> import paddle
        >>> from simam_paddle import insert_attention
        >>> net = paddle.vision.models.resnet18(num_classes=10)
        >>> insert_attention(net, "simam")
        8
        >>> list(net(paddle.randn([1, 3, 64, 64])).shape)
        [1, 10]
    """
    blocks = [layer for layer in model.sublayers(include_self=True) if type(layer) in _PLACEMENT]
    if not blocks:
        known = sorted(t.__name__ for t in _PLACEMENT)
        raise ValueError(
            f"{type(model).__name__} has no block with a known attention placement; known blocks = {known}."
        )
    is_simam = isinstance(attention, str) and attention.lower() == "simam"
    for block in blocks:
        if "attention" in block._sub_layers:
            raise ValueError(f"{type(block).__name__} already has an attention layer; insert attention only once.")
        target = _resolve(block, _PLACEMENT[type(block)][0 if is_simam else 1])
        layer = create_attention(attention, _out_channels(target), **attention_kwargs)
        block.add_sublayer("attention", layer)
        target.register_forward_post_hook(_ApplyAttention(layer))
    return len(blocks)


_MODELS: Dict[str, Callable[..., nn.Layer]] = {
    "towernet": TowerNet,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnext50_32x4d": resnext50_32x4d,
    "mobilenet_v2": mobilenet_v2,
    **{f"cifar_resnet{depth}": functools.partial(CifarResNet, depth) for depth in (20, 32, 56, 110)},
}


_INITS = ("paddle", "official")


def available_models() -> List[str]:
    """Sorted names that :func:`build_model` accepts.

    Examples:
        >>> from simam_paddle import available_models
        >>> [name for name in available_models() if name.startswith("cifar")]
        ['cifar_resnet110', 'cifar_resnet20', 'cifar_resnet32', 'cifar_resnet56']
    """
    return sorted(_MODELS)


def build_model(name: str, num_classes: int, attention: Optional[str] = None,
                attention_kwargs: Optional[Dict[str, Any]] = None, init: str = "paddle", **kwargs) -> nn.Layer:
    """Build a model by name, randomly initialised (never downloads weights).

    Args:
        name (str): One of :func:`available_models`.
        num_classes (int): Number of output logits.
        attention (str|None, optional): ``None`` builds the model as published: TowerNet with SimAM, the
            Paddle models without attention. A name from :func:`simam_paddle.available_attentions` puts
            that attention in TowerNet's attention slots, or in every ResNet50 / MobileNetV2 block (see
            :func:`insert_attention`); ``"none"`` removes TowerNet's. VGG19 has no published placement and
            accepts only ``None`` or ``"none"``. Default: None.
        attention_kwargs (dict, optional): Options for the attention layer, e.g. ``{"e_lambda": 1e-4}``
            for SimAM or ``{"reduction": 16}`` for SE. Default: None.
        init (str, optional): ``"paddle"``: the layers' Paddle defaults (the Paddle builders' own init), so
            runs trained before this option existed rebuild with the same weights for a seed.
            ``"official"``: as the official SimAM code initialises the model, for reproducing its training
            from scratch (see :func:`simam_paddle.official_init`; MobileNetV2 then has no Dropout, as
            there). Only the models the official code has (CIFAR ResNets, ResNets, ResNeXt-50,
            MobileNetV2) accept it. Default: "paddle".
        **kwargs: Passed to the model's constructor, e.g. ``in_channels`` for TowerNet or ``scale`` for
            MobileNetV2. ``pretrained`` is refused; load weights with ``set_state_dict`` instead.

    Returns:
        paddle.nn.Layer: The model.

    Examples:
        >>> import paddle
        >>> from simam_paddle import build_model
        >>> net = build_model("resnet50", 16, attention="simam")
        >>> list(net(paddle.randn([1, 3, 64, 64])).shape)
        [1, 16]
    """
    if not isinstance(name, str) or name.lower() not in _MODELS:
        raise ValueError(f"Model {name!r} not found; available models = {available_models()}.")
    name = name.lower()
    if "pretrained" in kwargs:
        raise ValueError(
            "build_model never downloads weights (pretrained is not accepted); build the model, then "
            "load a checkpoint with model.set_state_dict(paddle.load(path))."
        )
    if init not in _INITS:
        raise ValueError(f"init {init!r} is not one of {list(_INITS)}.")
    if init == "official" and name not in OFFICIAL_MODEL_FAMILIES:
        raise ValueError(f"init='official' needs a model of the official SimAM code, one of "
                         f"{sorted(OFFICIAL_MODEL_FAMILIES)}; {name!r} has no official initialisation, "
                         "use init='paddle'.")
    attention_kwargs = dict(attention_kwargs or {})
    no_attention = isinstance(attention, str) and attention.lower() == "none"
    if attention_kwargs and (attention is None and name != "towernet" or no_attention):
        raise ValueError(f"attention_kwargs {sorted(attention_kwargs)} given but no attention chosen for {name!r}.")

    if name == "towernet":
        return TowerNet(num_classes=num_classes, attention="simam" if attention is None else attention,
                        **attention_kwargs, **kwargs)
    if name == "vgg19" and attention is not None and not no_attention:
        raise ValueError(
            f"vgg19 has no published attention placement, so attention={attention!r} is not supported; "
            f"use attention=None, or one of {[m for m in available_models() if m != 'vgg19']}."
        )
    if name.startswith("cifar_resnet"):
        model = _MODELS[name](num_classes=num_classes, **kwargs)
    else:
        model = _MODELS[name](pretrained=False, num_classes=num_classes, **kwargs)
    if attention is not None and not no_attention:
        insert_attention(model, attention, **attention_kwargs)
    if init == "official":
        official_init(model, OFFICIAL_MODEL_FAMILIES[name])
    return model
