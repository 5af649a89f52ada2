"""Attention layers that refine a feature map, and one factory to build any of them by name.

- ``"simam"``: SimAM, parameter-free 3-D attention (Yang et al., ICML 2021), see :mod:`simam_paddle.layers.simam`.
- ``"se"``: :class:`SEModule`, squeeze-and-excitation channel attention
  (Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, https://arxiv.org/abs/1709.01507).
- ``"cbam"``: :class:`CBAM`, channel then spatial attention
  (Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018,
  https://arxiv.org/abs/1807.06521).
- ``"none"``: ``nn.Identity``, for ablations.

The factory rule: **the first positional argument of every attention layer is the channel count** of
the feature map it refines (layers that need none, like SimAM, accept and ignore it); every other option
is a keyword argument. Every layer maps a tensor to one of the same shape.
"""
import inspect
from typing import Callable, Dict, List, Optional, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .simam import SimAM

__all__ = ["SEModule", "CBAM", "create_attention", "available_attentions", "register_attention", "unregister_attention"]

_DATA_FORMATS = ("NCHW", "NHWC")


def _check_layer_args(name: str, channels: int, reduction: int, data_format: str) -> None:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{name} needs channels as a positive int, got {channels!r}.")
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
        raise ValueError(f"{name} needs reduction as a positive int (the paper uses 16), got {reduction!r}.")
    if data_format not in _DATA_FORMATS:
        raise ValueError(f"{name} supports data_format in {_DATA_FORMATS}, got {data_format!r}.")


class SEModule(nn.Layer):
    """Squeeze-and-excitation channel attention (Hu et al., CVPR 2018).

    Global average pool -> 1x1 conv ``C -> C // reduction`` -> ReLU -> 1x1 conv back to ``C`` -> sigmoid
    -> scale each channel. The 1x1 convolutions are the paper's fully connected layers applied to the
    pooled vector, so no reshapes are needed and the layer exports as is.

    The default is the SE layer the SimAM paper compares against (the official SimAM code's
    ``se_module``: fully connected layers without biases), so its numbers and checkpoints carry over;
    ``bias=True`` gives the SE paper's layers with biases.

    Args:
        channels (int): Number of channels of the input.
        reduction (int, optional): Reduction ratio ``r`` of the bottleneck. The hidden width is
            ``max(1, channels // reduction)`` so narrow layers still get one unit. Default: 16.
        bias (bool, optional): Whether the two fully connected layers have biases. Default: False.
        data_format (str, optional): ``"NCHW"`` or ``"NHWC"``. Default: "NCHW".

    Parameters: ``2 * C * Ch`` with ``Ch = max(1, C // reduction)``, plus ``Ch + C`` with biases.

    Examples:
        >>> import paddle
        >>> from simam_paddle import SEModule
        >>> list(SEModule(64)(paddle.randn([2, 64, 8, 8])).shape)
        [2, 64, 8, 8]
    """

    def __init__(self, channels: int, reduction: int = 16, bias: bool = False, data_format: str = "NCHW"):
        super().__init__()
        _check_layer_args("SEModule", channels, reduction, data_format)
        if not isinstance(bias, bool):
            raise ValueError(f"SEModule needs bias as a bool, got {bias!r}.")
        hidden = max(1, channels // reduction)
        self.channels, self.reduction, self.bias, self.data_format = channels, reduction, bias, data_format
        self.pool = nn.AdaptiveAvgPool2D(1, data_format=data_format)
        bias_attr = None if bias else False
        self.fc1 = nn.Conv2D(channels, hidden, 1, bias_attr=bias_attr, data_format=data_format)
        self.fc2 = nn.Conv2D(hidden, channels, 1, bias_attr=bias_attr, data_format=data_format)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * F.sigmoid(self.fc2(F.relu(self.fc1(self.pool(x)))))

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, reduction={self.reduction}, bias={self.bias}, "
                f"data_format={self.data_format}")


class CBAM(nn.Layer):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018): channel, then spatial attention.

    Channel attention: a shared MLP (1x1 convs ``C -> C // reduction -> C`` with ReLU, with biases)
    applied to the globally average-pooled and max-pooled features; the two outputs are summed and
    passed through a sigmoid to scale channels. Spatial attention: the channel-wise max and mean maps are
    concatenated, convolved by a ``spatial_kernel`` x ``spatial_kernel`` conv (2 -> 1, no bias) followed by
    BatchNorm, as in the authors' code, then a sigmoid scales positions.

    The defaults are the official SimAM code's ``cbam_module`` (taken from the CBAM authors' code), so
    its checkpoints load and behave the same: spatial input ordered ``[max, mean]`` and a spatial
    BatchNorm with PyTorch momentum 0.01, i.e. Paddle ``momentum=0.99``. The CBAM paper writes the
    pooled maps as ``[mean; max]``: ``spatial_order=("mean", "max")`` gives that order.

    Args:
        channels (int): Number of channels of the input.
        reduction (int, optional): Reduction ratio of the channel MLP; hidden width
            ``max(1, channels // reduction)``. Default: 16.
        spatial_kernel (int, optional): Odd kernel size of the spatial conv. Default: 7.
        spatial_order (tuple, optional): Order of the pooled maps fed to the spatial conv, a permutation
            of ``("max", "mean")``. Default: ("max", "mean").
        bn_momentum (float, optional): Paddle momentum of the spatial BatchNorm's running statistics
            (PyTorch's momentum is ``1 - bn_momentum``). Default: 0.99.
        data_format (str, optional): ``"NCHW"`` or ``"NHWC"``. Default: "NCHW".

    Trainable parameters: ``2 * C * Ch + Ch + C + 2 * k * k + 2`` with ``Ch = max(1, C // reduction)``
    (the last 2 are the BatchNorm scale and shift; its running mean and variance are not trained).

    Examples:
        >>> import paddle
        >>> from simam_paddle import CBAM
        >>> list(CBAM(64)(paddle.randn([2, 64, 8, 8])).shape)
        [2, 64, 8, 8]
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7,
                 spatial_order: Sequence[str] = ("max", "mean"), bn_momentum: float = 0.99,
                 data_format: str = "NCHW"):
        super().__init__()
        _check_layer_args("CBAM", channels, reduction, data_format)
        if isinstance(spatial_kernel, bool) or not isinstance(spatial_kernel, int) or spatial_kernel < 1 \
                or spatial_kernel % 2 == 0:
            raise ValueError(f"CBAM needs an odd positive spatial_kernel (the paper uses 7), got {spatial_kernel!r}.")
        spatial_order = tuple(spatial_order)
        if sorted(spatial_order) != ["max", "mean"]:
            raise ValueError(f"CBAM needs spatial_order as ('max', 'mean') or ('mean', 'max'), got {spatial_order!r}.")
        if isinstance(bn_momentum, bool) or not isinstance(bn_momentum, (int, float)) or not 0 <= bn_momentum < 1:
            raise ValueError(f"CBAM needs bn_momentum in [0, 1) (Paddle's convention; official 0.99), "
                             f"got {bn_momentum!r}.")
        self.spatial_order, self.bn_momentum = spatial_order, float(bn_momentum)
        hidden = max(1, channels // reduction)
        self.channels, self.reduction, self.spatial_kernel = channels, reduction, spatial_kernel
        self.data_format = data_format
        self._channel_axis = 1 if data_format == "NCHW" else 3
        self.avg_pool = nn.AdaptiveAvgPool2D(1, data_format=data_format)
        self.mlp = nn.Sequential(
            nn.Conv2D(channels, hidden, 1, data_format=data_format),
            nn.ReLU(),
            nn.Conv2D(hidden, channels, 1, data_format=data_format),
        )
        self.spatial_conv = nn.Conv2D(
            2, 1, spatial_kernel, padding=spatial_kernel // 2, bias_attr=False, data_format=data_format
        )
        self.spatial_bn = nn.BatchNorm2D(1, momentum=self.bn_momentum, data_format=data_format)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x * F.sigmoid(self.mlp(self.avg_pool(x)) + self.mlp(_global_max(x, self.data_format)))
        pooled = {"max": _channel_max(x, self.data_format),
                  "mean": x.mean(axis=self._channel_axis, keepdim=True)}
        maps = paddle.concat([pooled[name] for name in self.spatial_order], axis=self._channel_axis)
        return x * F.sigmoid(self.spatial_bn(self.spatial_conv(maps)))

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, reduction={self.reduction}, "
                f"spatial_kernel={self.spatial_kernel}, spatial_order={self.spatial_order}, "
                f"bn_momentum={self.bn_momentum}, data_format={self.data_format}")


# Paddle's CPU gradient of a max reduction (``x.max(axis=...)``) is orders of magnitude slower than that
# of max pooling (64 s against 0.03 s for the spatial max of a [128, 16, 32, 32] tensor, 1 s against
# 0.03 s for the channel max), which made a CBAM ResNet-20 epoch take hours. Pooling gives the same
# values, and the same gradient wherever the maximum is unique.
def _global_max(x: paddle.Tensor, data_format: str) -> paddle.Tensor:
    """Max over the spatial axes, kept as size-1 axes."""
    if data_format == "NCHW":
        return F.adaptive_max_pool2d(x, 1)
    return F.adaptive_max_pool2d(x.transpose([0, 3, 1, 2]), 1).transpose([0, 2, 3, 1])


def _channel_max(x: paddle.Tensor, data_format: str) -> paddle.Tensor:
    """Max over the channel axis, kept as a size-1 axis."""
    if data_format == "NCHW":
        n, c, h, w = x.shape
        # channels as the rows of one [C, H*W] image, pooled by a C x 1 window
        return F.max_pool2d(x.reshape([n, 1, c, h * w]), kernel_size=(c, 1), stride=(c, 1)).reshape([n, 1, h, w])
    n, h, w, c = x.shape
    return F.adaptive_max_pool1d(x.reshape([n, h * w, c]), 1).reshape([n, h, w, 1])


def _identity(channels: Optional[int] = None) -> nn.Layer:
    """``"none"``: no attention. Takes the channel count like every entry, and nothing else."""
    return nn.Identity()


_REGISTRY: Dict[str, Callable[..., nn.Layer]] = {}


def register_attention(name: str) -> Callable[[Callable[..., nn.Layer]], Callable[..., nn.Layer]]:
    """Decorator that adds an attention layer (or a function returning one) to the registry.

    The constructor must take the channel count as its first positional argument; other options must be
    keyword arguments.

    Args:
        name (str): Lower-case name to build it with, e.g. ``create_attention(name, channels)``.

    Examples:
        >>> import paddle
        >>> from simam_paddle import create_attention
        >>> from simam_paddle.layers import register_attention
        >>> @register_attention("scale2")
        ... class Scale2(paddle.nn.Layer):
        ...     def __init__(self, channels):
        ...         super().__init__()
        ...     def forward(self, x):
        ...         return 2 * x
        >>> list(create_attention("scale2", 8)(paddle.ones([1, 8, 2, 2])).shape)
        [1, 8, 2, 2]
        >>> unregister_attention("scale2")  # leave the registry as it was
    """
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"Attention names are non-empty lower-case strings, got {name!r}.")

    def decorator(factory: Callable[..., nn.Layer]) -> Callable[..., nn.Layer]:
        if name in _REGISTRY:
            raise ValueError(f"Attention {name!r} is already registered; registered: {available_attentions()}.")
        _REGISTRY[name] = factory
        return factory

    return decorator


register_attention("simam")(SimAM)
register_attention("se")(SEModule)
register_attention("cbam")(CBAM)
register_attention("none")(_identity)
_BUILT_IN = frozenset(_REGISTRY)


def unregister_attention(name: str) -> None:
    """Remove an attention added with :func:`register_attention`; the built-in ones stay.

    Args:
        name (str): the name it was registered under.

    Examples:
        >>> from simam_paddle.layers import register_attention, unregister_attention, available_attentions
        >>> _ = register_attention("twice")(lambda channels: paddle.nn.Identity())
        >>> unregister_attention("twice"); "twice" in available_attentions()
        False
    """
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is built in and cannot be removed; built-in attentions = {sorted(_BUILT_IN)}.")
    if name not in _REGISTRY:
        raise ValueError(f"Attention {name!r} is not registered; registered: {available_attentions()}.")
    del _REGISTRY[name]


def available_attentions() -> List[str]:
    """Sorted names that :func:`create_attention` accepts.

    Examples:
        >>> from simam_paddle import available_attentions
        >>> [n for n in available_attentions() if n in ("cbam", "none", "se", "simam")]
        ['cbam', 'none', 'se', 'simam']
    """
    return sorted(_REGISTRY)


def _keyword_options(factory: Callable[..., nn.Layer]) -> Optional[List[str]]:
    """Keyword options a factory accepts after the channel count, or None if it takes ``**kwargs``."""
    params = list(inspect.signature(factory).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def create_attention(name: Optional[str], channels: Optional[int], **kwargs) -> nn.Layer:
    """Build a registered attention layer by name.

    Rule: every registered layer takes the channel count of the feature map first (SimAM and ``"none"``
    accept and ignore it); any other option is passed by keyword, e.g. ``e_lambda`` for SimAM,
    ``reduction`` for SE and CBAM. An option the layer does not take is an error, never silently dropped.

    Args:
        name (str|None): One of :func:`available_attentions` (case-insensitive); ``None`` means ``"none"``.
        channels (int|None): Channel count of the input feature map.
        **kwargs: Options of that layer.

    Returns:
        paddle.nn.Layer: A layer mapping a tensor to one of the same shape.

    Examples:
        >>> import paddle
        >>> from simam_paddle import create_attention
        >>> list(create_attention("se", 32, reduction=8)(paddle.randn([1, 32, 4, 4])).shape)
        [1, 32, 4, 4]
    """
    key = "none" if name is None else name
    if not isinstance(key, str) or key.lower() not in _REGISTRY:
        raise ValueError(f"Unknown attention {name!r}; available attentions = {available_attentions()} (or None).")
    key = key.lower()
    factory = _REGISTRY[key]
    accepted = _keyword_options(factory)
    if accepted is not None:
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(f"Attention {key!r} got unexpected options {unknown}; it accepts {accepted}.")
    return factory(channels, **kwargs)
