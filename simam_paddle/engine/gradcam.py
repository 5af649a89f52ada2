"""Grad-CAM: where in the image a network finds the evidence for a class.

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017:
for a layer's activations ``A`` (channels ``k``) and a class score ``y_c`` (the logit, before softmax),
``cam = ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the mean over positions of ``d y_c / d A_k``. For a network
that ends in global average pooling and one linear layer, at the last convolution this is the class activation
map of Zhou et al. (CVPR 2016), ``sum_k W[k, c] A_k``, up to a positive scale. The SimAM paper's Figure 1 shows
such maps for ResNet-50 with and without attention.

The gradients come from Paddle's autograd (``paddle.grad``) on the layer's output, captured by a forward
post-hook; nothing in the network changes and no parameter gets a gradient.
"""
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import paddle
import paddle.nn.functional as F

from ..models.zoo import get_sublayer

__all__ = ["GradCAM", "grad_cam"]


class GradCAM(NamedTuple):
    """What :func:`grad_cam` returns.

    Attributes:
        maps (numpy.ndarray): ``[N, H, W]`` float32 maps, each scaled to a maximum of 1 (all zero where the class
            has no positive evidence), at the input's size (or the layer's, ``upsample=False``).
        logits (numpy.ndarray): ``[N, num_classes]`` the network's logits for the images.
        class_ids (numpy.ndarray): ``[N]`` int64, the class each map explains.
        layer (str): the sublayer the maps were computed at.
    """

    maps: np.ndarray
    logits: np.ndarray
    class_ids: np.ndarray
    layer: str


def grad_cam(network: paddle.nn.Layer, images: Union[np.ndarray, paddle.Tensor], layer: str,
             class_ids: Optional[Union[int, Sequence[int]]] = None, upsample: bool = True) -> GradCAM:
    """Grad-CAM maps of ``network`` at ``layer`` for a batch of images.

    The network is used as it is (call ``network.eval()`` first for BatchNorm's running statistics and no
    dropout); its parameters get no gradient.

    Args:
        network (paddle.nn.Layer): a classifier returning ``[N, num_classes]`` logits.
        images (numpy.ndarray|paddle.Tensor): ``[N, C, H, W]`` float32 inputs, normalised as in training.
        layer (str): the sublayer whose output is explained, a dotted path (see
            :func:`simam_paddle.models.get_sublayer`); the registry's default per model is
            ``model_spec(name).cam_layer``. Its output must be ``[N, K, h, w]``.
        class_ids (int|sequence of int, optional): the class to explain, one for all images or one per
            image. Default: None (each image's predicted class).
        upsample (bool, optional): resize the maps bilinearly to the input's ``H, W``. Default: True.

    Returns:
        GradCAM: ``maps``, ``logits``, ``class_ids`` and ``layer``.

    Examples:
        >>> import numpy as np
        >>> from simam_paddle import build_model
        >>> net = build_model("cifar_resnet20", 10)
        >>> _ = net.eval()
        >>> result = grad_cam(net, np.random.rand(2, 3, 32, 32).astype("float32"), "layer3")
        >>> result.maps.shape, result.logits.shape, float(result.maps.max()) <= 1.0
        ((2, 32, 32), (2, 10), True)
    """
    target = get_sublayer(network, layer)
    x = paddle.to_tensor(images, dtype="float32") if not isinstance(images, paddle.Tensor) else images
    if x.ndim != 4:
        raise ValueError(f"images must be a [N, C, H, W] batch, got shape {list(x.shape)}")
    captured = []
    handle = target.register_forward_post_hook(lambda _layer, _inputs, output: captured.append(output))
    try:
        logits = network(x)
    finally:
        handle.remove()
    if len(captured) != 1 or not isinstance(captured[0], paddle.Tensor) or captured[0].ndim != 4:
        what = (f"ran {len(captured)} times" if len(captured) != 1
                else f"returned {type(captured[0]).__name__} of shape {list(getattr(captured[0], 'shape', []))}")
        raise ValueError(f"layer {layer!r} {what} in one forward pass; Grad-CAM needs a layer that runs once and "
                         "returns a [N, K, h, w] feature map, such as the last convolutional stage")
    activation = captured[0]
    if activation.shape[2] * activation.shape[3] == 1:
        raise ValueError(f"layer {layer!r} gives a 1x1 map for {list(x.shape[2:])} inputs, so every Grad-CAM map is "
                         "one constant; choose an earlier layer, or larger images")
    if activation.stop_gradient:
        raise ValueError(f"layer {layer!r}'s output has no gradient path to the logits (stop_gradient is set, "
                         "e.g. inside paddle.no_grad()); call grad_cam outside no_grad")
    num_classes = logits.shape[1]
    ids = _class_ids(class_ids, logits, num_classes)
    score = (logits * F.one_hot(paddle.to_tensor(ids), num_classes)).sum()
    (gradient,) = paddle.grad([score], [activation])
    weights = gradient.mean(axis=[2, 3], keepdim=True)
    cams = F.relu((weights * activation).sum(axis=1, keepdim=True))
    if upsample:
        cams = F.interpolate(cams, size=list(x.shape[2:]), mode="bilinear", align_corners=False)
    maps = cams.squeeze(1).numpy().astype(np.float32)
    peak = maps.reshape(len(maps), -1).max(axis=1)
    maps = np.divide(maps, peak[:, None, None], out=np.zeros_like(maps), where=peak[:, None, None] > 0)
    return GradCAM(maps, logits.numpy(), ids, layer)


def _class_ids(class_ids, logits: paddle.Tensor, num_classes: int) -> np.ndarray:
    """The class per image: the prediction, or those asked for, checked against the number of classes."""
    count = logits.shape[0]
    if class_ids is None:
        return logits.argmax(axis=1).numpy().astype(np.int64)
    ids = np.asarray(class_ids).reshape(-1)
    if ids.dtype.kind not in "iu" or ids.size not in (1, count):
        raise ValueError(f"class_ids must be one integer or one per image ({count}), got {class_ids!r}")
    if ((ids < 0) | (ids >= num_classes)).any():
        raise ValueError(f"class_ids {ids.tolist()} out of range: the network has {num_classes} classes, "
                         f"0 to {num_classes - 1}")
    return np.broadcast_to(ids, (count,)).astype(np.int64)
