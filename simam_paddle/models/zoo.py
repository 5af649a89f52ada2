"""Models by name: TowerNet, CIFAR ResNets, Paddle's VGG19, ResNets and MobileNetV2, optionally with attention.

One registry, ``_MODELS``, holds every fact about a model that the rest of the package needs (see
:class:`ModelSpec` and :func:`model_spec`): its builder, family, published attention, weight decay,
minimum input size and whether attention can be inserted. ``attention=None`` means the model as
published everywhere; :func:`resolve_attention` turns it into that attention's name.

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
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import paddle
import paddle.nn as nn
from paddle.vision.models import mobilenet_v2, resnet18, resnet34, resnet50, resnet101, resnext50_32x4d, vgg19
from paddle.vision.models.mobilenetv2 import InvertedResidual
from paddle.vision.models.resnet import BasicBlock, BottleneckBlock

from ..layers.attention import create_attention
from .cifar_resnet import CifarBasicBlock, CifarResNet
from .official_init import OFFICIAL_INIT_FAMILIES, official_init
from .towernet import TowerNet

__all__ = ["ModelSpec", "model_spec", "resolve_attention", "build_model", "available_models", "insert_attention",
           "OFFICIAL_MODEL_FAMILIES", "get_sublayer"]

# Block type -> (sublayer SimAM follows, sublayer any other attention follows), as dotted paths;
# integers index into Sequentials and may be negative.
_PLACEMENT: Dict[type, Tuple[str, str]] = {
    BottleneckBlock: ("conv2", "bn3"),
    BasicBlock: ("conv2", "bn2"),
    CifarBasicBlock: ("conv2", "bn2"),
    # conv = [expand ConvBNReLU6 (if any), depthwise ConvBNReLU6, 1x1 Conv2D, BatchNorm2D]
    InvertedResidual: ("conv.-3.0", "conv.-1"),
}


def get_sublayer(network: nn.Layer, path: str) -> nn.Layer:
    """The sublayer of ``network`` at a dotted path: names of sublayers, or indices into them (negative from the end).

    Args:
        network (paddle.nn.Layer): the network.
        path (str): e.g. ``"layer4"``, ``"b5"``, ``"features.-2"`` (the second-last child of ``features``).

    Returns:
        paddle.nn.Layer: the sublayer.

    Examples:
        >>> from simam_paddle import build_model
        >>> type(get_sublayer(build_model("vgg19", 10), "features.-2")).__name__
        'ReLU'
    """
    layer = network
    for depth, part in enumerate(path.split(".") if isinstance(path, str) and path else [""]):
        children = dict(layer.named_children())
        try:
            layer = list(children.values())[int(part)] if part.lstrip("-").isdigit() else children[part]
        except (IndexError, KeyError):
            where = ".".join(path.split(".")[:depth]) or type(network).__name__
            raise ValueError(f"layer {path!r} not found: {where} has no sublayer {part!r}; its sublayers are "
                             f"{list(children) or 'none'} (indices count from 0, negative from the end)") from None
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
        target = get_sublayer(block, _PLACEMENT[type(block)][0 if is_simam else 1])
        layer = create_attention(attention, _out_channels(target), **attention_kwargs)
        block.add_sublayer("attention", layer)
        target.register_forward_post_hook(_ApplyAttention(layer))
    return len(blocks)


@dataclass(frozen=True)
class ModelSpec:
    """What the package knows about one registered model.

    Attributes:
        name (str): The registry name, as :func:`build_model` takes it.
        builder (callable): Builds the model without attention; called with ``num_classes`` and keywords.
        family (str): ``"towernet"``, ``"vgg"``, ``"cifar"``, ``"imagenet_resnet"`` or ``"mobilenet_v2"``; the
            last three are the official SimAM code's families (see :func:`simam_paddle.models.official_init`).
        attention (str): The attention of the model as published, what ``attention=None`` builds.
        weight_decay (float): The L2 coefficient its training uses unless told otherwise (the notebook's:
            2e-4 for TowerNet, 1e-4 for the baselines).
        min_input_size (int): The smallest square input it is meant for: its total stride, so the last stage
            sees at least one pixel of the image (TowerNet refuses anything smaller, see
            :attr:`TowerNet.min_input_size`).
        takes_attention (bool): Whether an attention can be put in (VGG19 has no published placement).
        cam_layer (str): The sublayer Grad-CAM looks at by default (see :func:`get_sublayer`): the last
            convolutional stage before the classifier's pooling, where the class evidence is still localised;
            for TowerNet the first Inception block of ``b5`` (4x4 at 128 px; ``b5`` itself is 1x1 there).
    """

    name: str
    builder: Callable[..., nn.Layer]
    family: str
    attention: str = "none"
    weight_decay: float = 1e-4
    min_input_size: int = 32
    takes_attention: bool = True
    cam_layer: str = "layer4"


def _paddle_model(builder: Callable[..., nn.Layer]) -> Callable[..., nn.Layer]:
    """A Paddle vision builder that never downloads weights."""
    return functools.partial(builder, pretrained=False)


_SPECS = [
    ModelSpec("towernet", TowerNet, "towernet", attention=TowerNet.published_attention, weight_decay=2e-4,
              min_input_size=TowerNet.min_input_size, cam_layer="b5.0"),
    # The last ReLU, before the last max pooling.
    ModelSpec("vgg19", _paddle_model(vgg19), "vgg", takes_attention=False, cam_layer="features.-2"),
    *(ModelSpec(name, _paddle_model(builder), "imagenet_resnet") for name, builder in (
        ("resnet18", resnet18), ("resnet34", resnet34), ("resnet50", resnet50), ("resnet101", resnet101),
        ("resnext50_32x4d", resnext50_32x4d))),
    ModelSpec("mobilenet_v2", _paddle_model(mobilenet_v2), "mobilenet_v2", cam_layer="features"),
    # Stride 4 in all: a stride-1 stem and two stride-2 stages.
    *(ModelSpec(f"cifar_resnet{depth}", functools.partial(CifarResNet, depth), "cifar", min_input_size=4,
                cam_layer="layer3")
      for depth in (20, 32, 56, 110)),
]
_MODELS: Dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}

OFFICIAL_MODEL_FAMILIES: Dict[str, str] = {
    spec.name: spec.family for spec in _SPECS if spec.family in OFFICIAL_INIT_FAMILIES}
"""Zoo models that the official SimAM code also has -> their family."""


_INITS = ("paddle", "official")


def available_models() -> List[str]:
    """Sorted names that :func:`build_model` accepts.

    Examples:
        >>> from simam_paddle import available_models
        >>> [name for name in available_models() if name.startswith("cifar")]
        ['cifar_resnet110', 'cifar_resnet20', 'cifar_resnet32', 'cifar_resnet56']
    """
    return sorted(_MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registry entry of a model: its family, published attention, weight decay, minimum input size.

    Args:
        name (str): One of :func:`available_models` (case-insensitive).

    Returns:
        ModelSpec: The model's entry.

    Examples:
        >>> from simam_paddle.models import model_spec
        >>> spec = model_spec("towernet")
        >>> spec.attention, spec.weight_decay, spec.min_input_size
        ('simam', 0.0002, 127)
    """
    if not isinstance(name, str) or name.lower() not in _MODELS:
        raise ValueError(f"Model {name!r} not found; available models = {available_models()}.")
    return _MODELS[name.lower()]


def resolve_attention(model: str, attention: Optional[str] = None) -> str:
    """The attention name that ``attention`` means for ``model``: None is the model as published.

    Examples:
        >>> from simam_paddle.models import resolve_attention
        >>> resolve_attention("towernet"), resolve_attention("resnet50"), resolve_attention("resnet50", "SE")
        ('simam', 'none', 'se')
    """
    if attention is None:
        return model_spec(model).attention
    if not isinstance(attention, str):
        raise ValueError(f"attention must be an attention name or None, got {attention!r}.")
    return attention.lower()


def build_model(name: str, num_classes: int, attention: Optional[str] = None,
                attention_kwargs: Optional[Dict[str, Any]] = None, init: str = "paddle", **kwargs) -> nn.Layer:
    """Build a model by name, randomly initialised (never downloads weights).

    Args:
        name (str): One of :func:`available_models`.
        num_classes (int): Number of output logits.
        attention (str|None, optional): ``None`` builds the model as published (its registry entry's
            attention, see :func:`model_spec`): TowerNet with SimAM, the others without. A name from
            :func:`simam_paddle.available_attentions` puts that attention in TowerNet's attention
            slots, or in every ResNet / MobileNetV2 block (see
            :func:`insert_attention`); ``"none"`` removes TowerNet's. VGG19 has no published placement and
            accepts only ``None`` or ``"none"``. Default: None.
        attention_kwargs (dict, optional): Options for the attention layer, e.g. ``{"e_lambda": 1e-4}``
            for SimAM or ``{"reduction": 16}`` for SE. Default: None.
        init (str, optional): ``"paddle"``: the layers' Paddle defaults (the Paddle builders' own init), so
            runs trained before this option existed rebuild with the same weights for a seed.
            ``"official"``: as the official SimAM code initialises the model, for reproducing its training
            from scratch (see :mod:`simam_paddle.models.official_init`; MobileNetV2 then has no Dropout, as
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
    spec = model_spec(name)
    name = spec.name
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
    attention = resolve_attention(name, attention)
    attention_kwargs = dict(attention_kwargs or {})
    if attention_kwargs and attention == "none":
        raise ValueError(f"attention_kwargs {sorted(attention_kwargs)} given but no attention chosen for {name!r}.")
    if not spec.takes_attention and attention != "none":
        raise ValueError(
            f"{name} has no published attention placement, so attention={attention!r} is not supported; "
            f"use attention=None, or one of {[m for m in available_models() if _MODELS[m].takes_attention]}."
        )

    if spec.family == "towernet":  # attention goes in TowerNet's own slots
        return spec.builder(num_classes=num_classes, attention=attention, **attention_kwargs, **kwargs)
    model = spec.builder(num_classes=num_classes, **kwargs)
    if attention != "none":
        insert_attention(model, attention, **attention_kwargs)
    if init == "official":
        official_init(model, spec.family)
    return model
