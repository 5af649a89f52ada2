"""Faster CPU training: Paddle's oneDNN convolution kernels, reached through ``paddle.jit.to_static``.

Paddle 3.x dygraph runs ``conv2d`` and its gradient on the CPU as im2col plus one small GEMM per
image, whatever ``FLAGS_use_mkldnn`` / ``FLAGS_use_onednn`` say: in dygraph those flags select no
oneDNN kernel (``ONEDNN_VERBOSE=1`` prints no primitive). A static program run while
``FLAGS_use_mkldnn`` is set does place ``conv2d``, ``conv2d_grad`` (backward data and weights) on
oneDNN's JIT kernels, the ones PyTorch uses on the CPU. Convolutions are 95% of a ResNet-20
training step here, so :func:`onednn_convolutions` compiles each ``nn.Conv2D`` alone to a static
program and leaves everything else (BatchNorm, SimAM's fused op, hooks, the loss, the optimizer)
in dygraph. Compiling the whole network instead is slower for training (oneDNN's BatchNorm
backward and the reorders between ops cost more than they save) and crashes Paddle 3.3.1 when a
program ends in ``conv2d``, ``matmul`` or ``pool2d`` (``dst_tensor shall be defined`` or a
segfault in ``run_program``), which is why each compiled convolution ends in a copy (``assign``).

A convolution with a forward post-hook (the model zoo puts SimAM on ResNet's ``conv2`` that way)
stays on Paddle's kernels: with SimAM's PyLayer fed straight from a compiled convolution, Paddle
3.3.1 returned gradients about 1% off (measured against float64 on ResNet-20), while every other
layout matched to float32 rounding (relative error ~3e-6, as Paddle's own kernels).
State-dict keys and the layer classes seen outside the ``with`` block are unchanged.
"""
import contextlib
from typing import Iterator, List

import paddle
import paddle.nn as nn

__all__ = ["onednn_available", "onednn_convolutions"]


def onednn_available() -> bool:
    """Whether this Paddle build has oneDNN kernels (the official CPU wheels do).

    Examples:
        >>> isinstance(onednn_available(), bool)
        True
    """
    core = paddle.base.core
    check = getattr(core, "is_compiled_with_onednn", None) or getattr(core, "is_compiled_with_mkldnn", None)
    return bool(check and check())


class _OneDNNConv2D(nn.Conv2D):
    """``nn.Conv2D`` whose output is copied once, so that a static program does not end in conv2d."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.assign(nn.Conv2D.forward(self, x))


def _input_spec(conv: nn.Conv2D) -> List[paddle.static.InputSpec]:
    # Batch, height and width left open: one program per conv for every batch and image size.
    channels = conv._in_channels
    shape = [None, None, None, channels] if conv._data_format == "NHWC" else [None, channels, None, None]
    return [paddle.static.InputSpec(shape=shape, dtype="float32")]


@contextlib.contextmanager
def onednn_convolutions(network: nn.Layer, enabled: bool = True) -> Iterator[int]:
    """While active, every ``nn.Conv2D`` of ``network`` runs on oneDNN kernels (forward and backward).

    Each convolution is compiled alone with ``paddle.jit.to_static`` and ``FLAGS_use_mkldnn`` is set;
    both are undone on exit. Subclasses of ``nn.Conv2D`` (their forward may do more) and convolutions
    with forward post-hooks (see the module docstring) are left alone,
    as is everything on a GPU or on a Paddle without oneDNN (nothing is changed then). The results
    are those of Paddle's own kernels within float32 rounding.

    Args:
        network (paddle.nn.Layer): the model; changed in place while the block runs.
        enabled (bool, optional): False makes this a no-op, e.g. for a ``--no-onednn`` switch. Default: True.

    Yields:
        int: the number of convolutions switched (0 when disabled or not applicable).

    Examples:
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3), paddle.nn.ReLU())
        >>> with onednn_convolutions(net) as switched:
        ...     out = net(paddle.rand([2, 3, 8, 8]))
        >>> switched, list(out.shape)
        (1, [2, 8, 6, 6])
    """
    usable = enabled and onednn_available() and paddle.device.get_device() == "cpu"
    convs = [m for m in network.sublayers(include_self=True)
             if type(m) is nn.Conv2D and not m._forward_post_hooks] if usable else []
    if not convs:
        yield 0
        return
    previous_flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": True})
    try:
        for conv in convs:
            conv.__class__ = _OneDNNConv2D
            paddle.jit.to_static(conv, input_spec=_input_spec(conv), full_graph=True)
        yield len(convs)
    finally:
        for conv in convs:
            conv.__dict__.pop("forward", None)  # to_static put the compiled forward on the instance
            conv.__dict__.get("_original_funcs", {}).pop("forward", None)
            conv.__class__ = nn.Conv2D
        paddle.set_flags({"FLAGS_use_mkldnn": previous_flag})
