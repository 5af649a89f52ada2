"""Initialise a zoo model as the official SimAM code (github.com/ZjjConan/SimAM, PyTorch) initialises it.

What the official code does, by model family:

- CIFAR ResNets (``networks/cifar/``): no initialisation of their own, so PyTorch's defaults: every
  conv and linear weight ``kaiming_uniform(a=sqrt(5))``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and
  every bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; BatchNorm weight 1, bias 0.
- ImageNet ResNets / ResNeXt (``networks/imagenet/resnet.py``): every ``nn.Conv2d``
  ``kaiming_normal(mode="fan_out", nonlinearity="relu")``, i.e. ``N(0, sqrt(2 / fan_out))``; BatchNorm
  weight 1, bias 0; ``nn.Linear`` layers (the classifier, SE's and CBAM's MLPs) keep PyTorch's default.
- MobileNetV2 (``networks/imagenet/mobilenetv2.py``): convs ``kaiming_normal(mode="fan_out")`` (gain
  ``sqrt(2)``), conv biases 0; BatchNorm weight 1, bias 0; every ``nn.Linear`` ``N(0, 0.01)``, bias 0; and
  its classifier has no Dropout (commented out there), so Paddle's ``Dropout(0.2)`` is replaced by an
  identity (the classifier's keys stay ``classifier.1.*``).

SE's and CBAM's fully connected layers are 1x1 convolutions here; they are initialised as the
``nn.Linear`` they stand for. Random numbers come from Paddle's generator, so ``paddle.seed`` fixes them.
"""
import math
from typing import Dict, Set

import paddle.nn as nn

from ..layers.attention import CBAM, SEModule

__all__ = ["OFFICIAL_INIT_FAMILIES", "official_init"]

OFFICIAL_INIT_FAMILIES = ("cifar", "imagenet_resnet", "mobilenet_v2")
"""Model families with an official initialisation, see :func:`official_init`; the zoo's registry says which
model belongs to which (:data:`simam_paddle.models.OFFICIAL_MODEL_FAMILIES`)."""


def _linear_like(model: nn.Layer) -> Set[int]:
    """ids of the 1x1 convs that stand for the official attention modules' ``nn.Linear`` layers."""
    ids = set()
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, SEModule):
            ids.update({id(layer.fc1), id(layer.fc2)})
        elif isinstance(layer, CBAM):
            ids.update({id(layer.mlp[0]), id(layer.mlp[2])})
    return ids


def _fans(weight, linear: bool) -> Dict[str, int]:
    shape = list(weight.shape)
    if linear and len(shape) == 2:  # Paddle's Linear weight is [in, out]
        return {"fan_in": shape[0], "fan_out": shape[1]}
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return {"fan_in": shape[1] * receptive, "fan_out": shape[0] * receptive}


def _uniform(param, bound: float) -> None:
    nn.initializer.Uniform(-bound, bound)(param)


def _torch_default(layer: nn.Layer, linear: bool) -> None:
    """PyTorch's default for ``nn.Conv2d`` / ``nn.Linear``: weight and bias ``U(+-1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(_fans(layer.weight, linear)["fan_in"])
    _uniform(layer.weight, bound)
    if getattr(layer, "bias", None) is not None:
        _uniform(layer.bias, bound)


def official_init(model: nn.Layer, family: str) -> nn.Layer:
    """Re-initialise ``model`` in place as the official SimAM code initialises that model family.

    Args:
        model (paddle.nn.Layer): A zoo model of ``family`` (any attention).
        family (str): One of :data:`OFFICIAL_INIT_FAMILIES`: ``"cifar"`` (CIFAR ResNets),
            ``"imagenet_resnet"`` (ResNet-18/34/50/101, ResNeXt-50) or ``"mobilenet_v2"``.

    Returns:
        paddle.nn.Layer: ``model`` itself.

    Examples:
        >>> from simam_paddle.models import build_model, official_init
        >>> net = official_init(build_model("cifar_resnet20", 10), "cifar")
        >>> float(net.conv1.weight.abs().max()) <= 1 / 27 ** 0.5
        True
    """
    if family not in OFFICIAL_INIT_FAMILIES:
        raise ValueError(f"no official initialisation for family {family!r}; known: {list(OFFICIAL_INIT_FAMILIES)}")
    linear_like = _linear_like(model)
    for layer in model.sublayers(include_self=True):
        is_linear = isinstance(layer, nn.Linear)
        if isinstance(layer, nn.layer.norm._BatchNormBase):
            nn.initializer.Constant(1.0)(layer.weight)
            nn.initializer.Constant(0.0)(layer.bias)
        elif is_linear or id(layer) in linear_like:
            if family == "mobilenet_v2":
                nn.initializer.Normal(0.0, 0.01)(layer.weight)
                if layer.bias is not None:
                    nn.initializer.Constant(0.0)(layer.bias)
            else:
                _torch_default(layer, is_linear)
        elif isinstance(layer, nn.layer.conv._ConvNd):
            if family == "cifar":
                _torch_default(layer, False)
            else:  # kaiming_normal, fan_out, gain sqrt(2) (relu; MobileNetV2's leaky_relu default with a=0)
                nn.initializer.Normal(0.0, math.sqrt(2.0 / _fans(layer.weight, False)["fan_out"]))(layer.weight)
                if layer.bias is not None:
                    nn.initializer.Constant(0.0)(layer.bias)
    if family == "mobilenet_v2":
        classifier = getattr(model, "classifier", None)
        for index, layer in enumerate(list(classifier.children()) if classifier is not None else []):
            if isinstance(layer, nn.Dropout):
                classifier._sub_layers[str(index)] = nn.Identity()
    return model
