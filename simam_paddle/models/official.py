"""Load checkpoints of the official SimAM code (github.com/ZjjConan/SimAM, PyTorch) into the zoo's Paddle models.

The official scripts save ``torch.save({"epoch", "arch", "state_dict", "best_acc", ...})``; the released
ImageNet weights are ``{"state_dict": ...}`` with DataParallel's ``module.`` prefix. Both are read with
:func:`simam_paddle.models.load_torch_checkpoint` (no PyTorch needed) and renamed to the zoo's keys:

- the official code wraps a layer with its attention in an ``nn.Sequential``: SimAM wraps a block's
  ``conv2`` (``conv2.0.weight`` -> ``conv2.weight``; MobileNetV2: the depthwise ConvBNReLU becomes
  ``[conv, simam, bn, relu6]``, so its BatchNorm ``conv.K.2.*`` -> ``conv.K.1.*``); SE and CBAM wrap the
  block's last BatchNorm (``bn2.0.*`` -> ``bn2.*``, ``bn2.1.*`` -> ``attention.*``; ``bn3`` in
  bottlenecks; MobileNetV2 appends them to the block's ``conv`` Sequential) where the zoo adds sublayer
  ``attention``;
- SE's ``fc.0`` / ``fc.2`` and CBAM's ``ChannelGate.mlp.1`` / ``.3`` linears are 1x1 convs here (``fc1`` /
  ``fc2``, ``mlp.0`` / ``mlp.2``, weights reshaped to ``[out, in, 1, 1]``); CBAM's ``SpatialGate.spatial.conv``
  / ``.bn`` are ``spatial_conv`` / ``spatial_bn``;
- BatchNorm ``running_mean`` / ``running_var`` are ``_mean`` / ``_variance``, ``num_batches_tracked`` is
  dropped; classifier weights (``linear``, ``fc``, MobileNetV2 ``classifier.0`` -> ``classifier.1``,
  after Paddle's Dropout) are transposed to Paddle's ``[in, out]``.

The other names (``conv1``, ``bn1``, ``layerK.i.*``, ``downsample``, ``shortcut``, ``features``) are the
same on both sides.
"""
import json
import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from .zoo import OFFICIAL_MODEL_FAMILIES
from .torch_checkpoint import TorchCheckpointError, load_torch_checkpoint

__all__ = ["OFFICIAL_MODELS", "OFFICIAL_IMAGE_SIZE", "official_attention_options", "convert_official_state_dict",
           "load_official_checkpoint"]

OFFICIAL_MODELS: Dict[str, str] = OFFICIAL_MODEL_FAMILIES
"""Zoo models that official checkpoints load into -> their family (``cifar``, ``imagenet_resnet``, ``mobilenet_v2``)."""

_ATTENTIONS = ("none", "simam", "se", "cbam")
# The official `--attention_param` default is 4 in main_cifar.py and main_imagenet.py: SE's and CBAM's
# reduction. SimAM would silently get lambda = 4 from it; the README's SimAM commands (and the released
# weights) use 0.1, so that is SimAM's default here.
_DEFAULT_PARAM = {"simam": 0.1, "se": 4, "cbam": 4}
_CLASSIFIER = {"cifar": "linear.weight", "imagenet_resnet": "fc.weight", "mobilenet_v2": "classifier.0.weight"}
OFFICIAL_IMAGE_SIZE = {"cifar": 32, "imagenet_resnet": 224, "mobilenet_v2": 224}

# The attention's own names, official -> zoo, and how the tensor changes.
_ATTENTION_NAMES: List[Tuple[str, str, str]] = [
    (r"fc\.0\.weight$", "fc1.weight", "linear_to_conv"),
    (r"fc\.2\.weight$", "fc2.weight", "linear_to_conv"),
    (r"ChannelGate\.mlp\.1\.(weight|bias)$", r"mlp.0.\1", "linear_to_conv"),
    (r"ChannelGate\.mlp\.3\.(weight|bias)$", r"mlp.2.\1", "linear_to_conv"),
    (r"SpatialGate\.spatial\.conv\.weight$", "spatial_conv.weight", ""),
    (r"SpatialGate\.spatial\.bn\.", "spatial_bn.", ""),
]
_BN_STATS = [(r"\.running_mean$", "._mean"), (r"\.running_var$", "._variance")]


def official_attention_options(attention: str, attention_param: Optional[float] = None) -> Dict[str, Any]:
    """The zoo's attention options for the official ``--attention_type`` / ``--attention_param``.

    ``attention_param`` is SimAM's ``e_lambda`` or SE's / CBAM's ``reduction``, as in the official scripts;
    None takes the default used here: reduction 4 (the official ``--attention_param`` default) for SE and
    CBAM, and e_lambda 0.1 for SimAM (the official README's SimAM commands; the scripts' default 4 is
    meant as the reduction).

    Examples:
        >>> from simam_paddle.models import official_attention_options
        >>> official_attention_options("simam"), official_attention_options("se", 16)
        ({'e_lambda': 0.1}, {'reduction': 16})
    """
    attention = _check_attention(attention)
    if attention == "none":
        if attention_param is not None:
            raise ValueError(f"attention_param {attention_param!r} given for attention 'none', which takes none.")
        return {}
    value = _DEFAULT_PARAM[attention] if attention_param is None else attention_param
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"attention_param must be a positive number, got {value!r}.")
    if attention == "simam":
        return {"e_lambda": float(value)}
    if float(value) != int(value):
        raise ValueError(f"attention_param is {attention.upper()}'s reduction ratio, a whole number; got {value!r}.")
    return {"reduction": int(value)}


def _check_attention(attention: str) -> str:
    if not isinstance(attention, str) or attention.lower() not in _ATTENTIONS:
        raise ValueError(f"attention {attention!r} is not one the official code has; use one of {list(_ATTENTIONS)}.")
    return attention.lower()


def _check_model(model: str) -> str:
    if not isinstance(model, str) or model.lower() not in OFFICIAL_MODELS:
        raise ValueError(f"model {model!r} has no official checkpoints to load; use one of {sorted(OFFICIAL_MODELS)}.")
    return model.lower()


def _family_of(network: nn.Layer) -> str:
    from paddle.vision.models import MobileNetV2, ResNet

    from .cifar_resnet import CifarResNet

    for cls, family in ((CifarResNet, "cifar"), (ResNet, "imagenet_resnet"), (MobileNetV2, "mobilenet_v2")):
        if isinstance(network, cls):
            return family
    raise ValueError(f"{type(network).__name__} is not a model of the official SimAM code; "
                     f"build one of {sorted(OFFICIAL_MODELS)} with build_model.")


def _unwrap(checkpoint: Any, source: str) -> Dict[str, np.ndarray]:
    """The state dict inside a checkpoint (``{"state_dict": ...}`` or plain), without ``module.``."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, np.ndarray) for v in state.values()):
        found = sorted(map(str, checkpoint))[:6] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise TorchCheckpointError(f"{source} holds no state dict of tensors (found {found}); "
                                   "expected {'state_dict': {...}} or a plain state dict")
    odd = next((k for k in state if not isinstance(k, str)), None)
    if odd is not None:  # int keys are fine in an optimizer's state, never in a model's
        raise TorchCheckpointError(f"{source} has a state dict key that is not a parameter name: the "
                                   f"{type(odd).__name__} {str(odd)[:40]}; a model's state dict maps names to tensors")
    if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _guess_attention(keys: Sequence[str]) -> str:
    text = "\n".join(keys)
    if "ChannelGate." in text:
        return "cbam"
    if re.search(r"\.fc\.0\.weight", text):
        return "se"
    if re.search(r"\.conv2\.0\.weight|conv\.\d+\.2\.weight", text):
        return "simam"
    return "none"


def _map_key(key: str, family: str, attention: str) -> Tuple[Optional[str], str, bool]:
    """(zoo key or None to drop, transform, whether an attention wrapper was undone)."""
    if key.endswith("num_batches_tracked"):
        return None, "", False
    new, wrapped = key, 0
    if attention == "simam":
        pattern = (r"^(features\.\d+\.conv\.\d+)\.2\.", r"\1.1.") if family == "mobilenet_v2" \
            else (r"\.conv2\.0\.", ".conv2.")
        new, wrapped = re.subn(*pattern, new)
    elif attention in ("se", "cbam"):
        if family == "mobilenet_v2":
            new = re.sub(r"^(features\.\d+)\.conv\.\d+\.(?=fc\.|ChannelGate\.|SpatialGate\.)", r"\1.attention.", new)
        else:
            new, wrapped = re.subn(r"\.(bn\d)\.0\.", r".\1.", new)
            new = re.sub(r"\.bn\d\.1\.", ".attention.", new)
    transform = ""
    if ".attention." in new:
        head, tail = new.split(".attention.", 1)
        for pattern, replacement, how in _ATTENTION_NAMES:
            if re.match(pattern, tail):
                tail, transform = re.sub(pattern, replacement, tail), how
                break
        new = f"{head}.attention.{tail}"
    for pattern, replacement in _BN_STATS:
        new = re.sub(pattern, replacement, new)
    if family == "mobilenet_v2":
        new = re.sub(r"^classifier\.0\.", "classifier.1.", new)
    if new in ("linear.weight", "fc.weight", "classifier.1.weight"):
        transform = "transpose"
    return new, transform, bool(wrapped)


def _transform(value: np.ndarray, how: str) -> np.ndarray:
    if how == "transpose":
        return value.T
    if how == "linear_to_conv" and value.ndim == 2:
        return value.reshape(value.shape + (1, 1))
    return value


def _numpy_dtype(tensor: paddle.Tensor) -> np.dtype:
    floats = {paddle.float32: "float32", paddle.float64: "float64", paddle.float16: "float16"}
    return np.dtype(floats[tensor.dtype]) if tensor.dtype in floats else tensor.numpy().dtype


def convert_official_state_dict(state_dict: Dict[str, np.ndarray], network: nn.Layer, attention: str,
                                source: str = "the checkpoint") -> Dict[str, np.ndarray]:
    """Rename an official SimAM state dict to ``network``'s keys, checking that it fits exactly.

    Args:
        state_dict (dict): Official names (as ``torch.save`` wrote them, ``module.`` prefix allowed) to
            numpy arrays, e.g. ``load_torch_checkpoint(path)["state_dict"]``.
        network (paddle.nn.Layer): The zoo model to load into, built with the same attention.
        attention (str): ``"none"``, ``"simam"``, ``"se"`` or ``"cbam"``: the official ``--attention_type``.
        source (str, optional): What to call the state dict in errors. Default: "the checkpoint".

    Returns:
        dict: ``network``'s state dict keys to numpy arrays of its dtypes and shapes.

    Raises:
        ValueError: One line naming the first missing, unexpected or mis-shaped key.

    Examples:
        >>> from simam_paddle.models import build_model, convert_official_state_dict, load_torch_checkpoint
        >>> net = build_model("cifar_resnet20", 10, attention="simam")
        >>> official = load_torch_checkpoint("tests/data/official/official_cifar_resnet20_simam.pth.tar")
        >>> state = convert_official_state_dict(official["state_dict"], net, "simam")
        >>> state["layer1.0.conv2.weight"].shape
        (16, 16, 3, 3)
    """
    attention = _check_attention(attention)
    family = _family_of(network)
    state_dict = _unwrap(state_dict, source)
    expected = network.state_dict()
    hint = f" (the checkpoint looks like attention {_guess_attention(list(state_dict))!r})"
    where = f"{source} does not fit {type(network).__name__} with attention {attention!r}"
    mapped: Dict[str, np.ndarray] = {}
    origin: Dict[str, str] = {}
    wrapped = set()
    for key, value in state_dict.items():
        new, how, was_wrapped = _map_key(key, family, attention)
        if new is None:
            continue
        if new not in expected:
            raise ValueError(f"{where}: unexpected key {key}" + (f" (as {new})" if new != key else "") + hint)
        if new in mapped:
            raise ValueError(f"{where}: {key} and {origin[new]} both map to {new}")
        original, value = value, _transform(value, how)
        if list(value.shape) != list(expected[new].shape):
            raise ValueError(f"{where}: {key} has shape {list(original.shape)}, {new} needs "
                             f"{list(expected[new].shape)}" + (f" ({how.replace('_', ' ')})" if how else "") + hint)
        mapped[new], origin[new] = value.astype(_numpy_dtype(expected[new]), copy=False), key
        if was_wrapped:
            wrapped.add(new.split(".conv2.")[0] if family != "mobilenet_v2" else new.rsplit(".", 2)[0])
    missing = [k for k in expected if k not in mapped]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]} ({len(missing)} missing)" + hint)
    blocks = sum(1 for layer in network.sublayers() if "attention" in layer._sub_layers)
    if attention == "simam" and len(wrapped) != blocks:
        # SimAM has no tensors: only the wrapped conv2 (conv.K.2 in MobileNetV2) shows it was there.
        raise ValueError(f"{where}: {len(wrapped)} of {blocks} blocks have SimAM's wrapped layer "
                         f"(e.g. layer1.0.conv2.0.weight)" + hint)
    return mapped


def _classifier_classes(state: Dict[str, np.ndarray], family: str, source: str, model: str) -> int:
    key = _CLASSIFIER[family]
    if key not in state or state[key].ndim != 2:
        raise ValueError(f"{source} has no classifier weight {key!r}, so it is not a {model} checkpoint of the "
                         f"official code (its first keys: {sorted(state)[:3]})")
    return int(state[key].shape[0])


def load_official_checkpoint(path: str, model: str, attention: str = "simam",
                             attention_param: Optional[float] = None,
                             num_classes: Optional[int] = None) -> nn.Layer:
    """Build a zoo model and load a checkpoint of the official SimAM code (PyTorch) into it; no torch needed.

    Args:
        path (str): A ``torch.save`` file of the official ``main_cifar.py`` / ``main_imagenet.py``, or one of
            the released weights (``{"state_dict": ...}``, ``module.`` prefix), zip or legacy format.
        model (str): The network, one of :data:`OFFICIAL_MODELS` (official ``resnet20`` is
            ``cifar_resnet20``; ImageNet ``resnet50`` is ``resnet50``, ...).
        attention (str, optional): The official ``--attention_type``: ``"none"``, ``"simam"``, ``"se"`` or
            ``"cbam"``. Default: "simam".
        attention_param (float, optional): The official ``--attention_param``: SimAM's ``e_lambda`` (it has
            no weights, so the checkpoint cannot tell it; the released ImageNet models use 0.1) or SE's /
            CBAM's reduction. None: 0.1 for SimAM, 4 for SE and CBAM, see
            :func:`official_attention_options`. Default: None.
        num_classes (int, optional): None: read from the classifier's weight. Default: None.

    Returns:
        paddle.nn.Layer: The network (built with ``init="official"``), weights loaded, in eval mode.

    Raises:
        ValueError: One line, when the file is not a checkpoint or does not fit the model (naming the first
            missing, unexpected or mis-shaped key).

    Examples:
        >>> import paddle
        >>> from simam_paddle import load_official_checkpoint
        >>> net = load_official_checkpoint("tests/data/official/official_cifar_resnet20_simam.pth.tar",
        ...                                "cifar_resnet20", "simam", attention_param=0.1)
        >>> list(net(paddle.zeros([1, 3, 32, 32])).shape)
        [1, 10]
    """
    from .zoo import build_model

    model, attention = _check_model(model), _check_attention(attention)
    options = official_attention_options(attention, attention_param)
    state = _unwrap(load_torch_checkpoint(path), path)
    found = _classifier_classes(state, OFFICIAL_MODELS[model], path, model)
    if num_classes is None:
        num_classes = found
    elif num_classes != found:
        raise ValueError(f"{path} has a classifier for {found} classes, not num_classes={num_classes}; "
                         "leave num_classes None to read it from the checkpoint")
    network = build_model(model, num_classes, attention=attention, attention_kwargs=options or None, init="official")
    network.set_state_dict(convert_official_state_dict(state, network, attention, source=path))
    network.eval()
    return network
