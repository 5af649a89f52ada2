"""SimAM: a simple, parameter-free attention module.

Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021 (http://proceedings.mlr.press/v139/yang21o.html,
official code https://github.com/ZjjConan/SimAM).

Per sample and channel, over all ``n`` spatial positions (the official formula)::

    mu = mean(x)
    d  = (x - mu) ** 2
    v  = sum(d) / (n - 1)
    y  = x * sigmoid(d / (4 * (v + e_lambda)) + 0.5)

Where the formula comes from: for a target neuron ``t`` and the other ``M - 1`` neurons
``x_i`` of its channel, the paper's energy
``e_t(w, b) = 1/(M-1) sum_i (-1 - (w x_i + b))^2 + (1 - (w t + b))^2 + lambda w^2``
has the closed-form minimum ``e_t* = 4 (sigma^2 + lambda) / ((t - mu)^2 + 2 sigma^2 + 2 lambda)``,
with ``mu``, ``sigma^2`` the mean and (biased) variance of the *other* neurons. (Some write-ups,
e.g. the seed notes, print ``mu^2`` for ``sigma^2`` in the numerator; that is a typo, see the
tests.) Hence ``1 / e_t* = (t - mu)^2 / (4 (sigma^2 + lambda)) + 1/2``, which is the sigmoid's
argument above. The code, like the official one, approximates the leave-one-out statistics by
statistics over all ``n`` positions (``v`` with ``n - 1`` in the denominator), so each map needs
one mean and one sum instead of ``n`` of each; the difference is ``O(1/n)``.

Beyond the official code:

- Any spatial rank, channels first or last (``data_format``).
- A 1x1 map (``n == 1``) has no spread to measure; ``v`` is defined as 0 there (instead of 0/0),
  so the output is ``x * sigmoid(0.5)`` and gradients stay finite.
- float16/bfloat16 input: statistics in float32, output in the input dtype.
- Training keeps only the input for backward (an analytic backward in a ``PyLayer``) instead of
  the four or five full-size intermediates autograd keeps for the plain formula.
- ``impl="fused"``: the same computation as one compiled operator (``fused.py``, ``csrc/``),
  several times faster; ``impl="auto"`` uses it when it builds and loads here.
"""
import math
import numbers
from typing import Callable, Dict, List, Optional, Tuple, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer

from . import fused as _fused  # importing it never builds or loads the operator

__all__ = ["simam", "simam_weights", "SimAM"]

# data_format -> (rank, channel axis); spatial axes are the rest after the batch axis.
_DATA_FORMATS: Dict[str, Tuple[int, int]] = {
    "NCL": (3, 1),
    "NCHW": (4, 1),
    "NCDHW": (5, 1),
    "NLC": (3, 2),
    "NHWC": (4, 3),
    "NDHWC": (5, 4),
}
_LOW_PRECISION = (paddle.float16, paddle.bfloat16)


def _spatial_axes(x: paddle.Tensor, data_format: str) -> List[int]:
    """Validate ``x`` against ``data_format`` and return the axes SimAM reduces over."""
    if data_format not in _DATA_FORMATS:
        raise ValueError(
            f"Unknown data_format {data_format!r}; expected one of {sorted(_DATA_FORMATS)}."
        )
    ndim = len(x.shape)
    if ndim < 3:
        raise ValueError(
            f"SimAM expects a batched feature map with at least 3 dims, (N, C, L), (N, C, H, W) or "
            f"(N, C, D, H, W) (or channels last), got a {ndim}-D tensor of shape {list(x.shape)}."
        )
    rank, channel_axis = _DATA_FORMATS[data_format]
    if ndim != rank:
        matching = [f for f, (r, _) in _DATA_FORMATS.items() if r == ndim]
        hint = f"use one of {matching}" if matching else "SimAM supports 3-D to 5-D input"
        raise ValueError(
            f"data_format {data_format!r} expects a {rank}-D input ({', '.join(data_format)}), "
            f"got a {ndim}-D tensor of shape {list(x.shape)}; for {ndim}-D input {hint}."
        )
    return [a for a in range(1, ndim) if a != channel_axis]


def _check_lambda(e_lambda: float) -> float:
    # lambda > 0 keeps the denominator positive on constant maps (v == 0), where 0/0 would be NaN.
    if not isinstance(e_lambda, numbers.Real) or not (0 < e_lambda < math.inf):
        raise ValueError(
            f"e_lambda must be a positive finite number (default 1e-4), got {e_lambda!r}."
        )
    return float(e_lambda)


def _dof(x: paddle.Tensor, axes: List[int]) -> Union[int, paddle.Tensor]:
    """``max(n - 1, 1)`` for the ``n`` positions per map: the variance's denominator.

    Clamping at 1 makes ``v = 0`` on a 1x1 map (where ``sum(d) == 0``) instead of 0/0. Returns a
    Python int when the spatial size is static, else (traced with unknown sizes) a tensor.
    """
    dims = [x.shape[a] for a in axes]
    if all(isinstance(s, int) and s >= 0 for s in dims):
        n = 1
        for s in dims:
            n *= s
        return max(n - 1, 1)
    shape = paddle.shape(x)
    n = paddle.prod(paddle.stack([shape[a] for a in axes])).astype(x.dtype)
    return paddle.clip(n - 1, min=1.0)


def _float32(x: paddle.Tensor) -> paddle.Tensor:
    # float16/bfloat16 statistics overflow or lose too much on large maps; compute in float32.
    return x.astype("float32") if x.dtype in _LOW_PRECISION else x


def _weights_plain(x: paddle.Tensor, axes: List[int], e_lambda: float) -> paddle.Tensor:
    """The sigmoid term, composed of differentiable Paddle ops (autograd-friendly, traceable)."""
    if _pooled_statistics(x, axes):
        return _weights_pooled(x, e_lambda)
    dof = _dof(x, axes)
    d = (x - x.mean(axis=axes, keepdim=True)).pow(2)
    v = d.sum(axis=axes, keepdim=True) / dof
    return F.sigmoid(d / (4 * (v + e_lambda)) + 0.5)


def _pooled_statistics(x: paddle.Tensor, axes: List[int]) -> bool:
    """Whether a traced NCHW map of known size takes its means as global average pooling.

    Paddle 3.3's inference predictor keeps ``mean`` over H and W off oneDNN (it prints
    ``ReduceMeanCheckIfOneDNNSupport`` for each) and changes layouts around it; ``pool2d`` runs on oneDNN, and
    so do ``multiply`` (``pow`` does not) and a division of the small statistics only. Exported ResNet-20 +
    SimAM evaluates about 2.4x as fast that way (``benchmarks/bench_inference_simam.py``, docs/PERFORMANCE.md);
    eager code keeps the reductions (the same values to float32 rounding).
    """
    return (not paddle.in_dynamic_mode() and len(x.shape) == 4 and list(axes) == [2, 3]
            and all(isinstance(s, int) and s > 0 for s in x.shape[2:]))


def _weights_pooled(x: paddle.Tensor, e_lambda: float) -> paddle.Tensor:
    """:func:`_weights_plain` for a traced NCHW map with the means as ``adaptive_avg_pool2d(., 1)``."""
    n = x.shape[2] * x.shape[3]
    c = x - F.adaptive_avg_pool2d(x, 1)
    d = c * c  # not pow: the predictor runs multiply on oneDNN
    v = F.adaptive_avg_pool2d(d, 1) * (n / _dof(x, [2, 3]))  # sum(d) / dof
    return F.sigmoid(d * (0.25 / (v + e_lambda)) + 0.5)  # divides the [N, C, 1, 1] statistics only


def _plain(x: paddle.Tensor, axes: List[int], e_lambda: float) -> paddle.Tensor:
    x32 = _float32(x)
    return (x32 * _weights_plain(x32, axes, e_lambda)).astype(x.dtype)


def _simam_plain(
    x: paddle.Tensor, e_lambda: float = 1e-4, data_format: str = "NCHW"
) -> paddle.Tensor:
    """SimAM as the plain formula: autograd keeps its intermediates. For export and comparison."""
    return _plain(x, _spatial_axes(x, data_format), _check_lambda(e_lambda))


def _squared_deviation(x: paddle.Tensor, axes: List[int], dof: int, e_lambda: float):
    """Centred input ``c``, its square ``d`` and ``1 / (4 (v + lambda))`` per map."""
    c = x - x.mean(axis=axes, keepdim=True)
    d = paddle.square(c)
    inv_denom = 1.0 / (4.0 * (d.sum(axis=axes, keepdim=True) / dof + e_lambda))
    return c, d, inv_denom


class _SimAMFunction(PyLayer):
    """SimAM with an analytic backward that saves only the input.

    With ``c = x - mu``, ``D = 4 (v + lambda)``, ``s = sigmoid(c^2 / D + 1/2)``, ``y = x s`` and
    upstream gradient ``g``, let ``q = g x s (1 - s) c``. Then (mu and v depend on every x_j)::

        dL/dx = g s + (2 / D) (q - mean(q)) - c * 8 sum(q c) / ((n - 1) D^2)

    The third term is ``2 c dL/dS`` for ``S = sum(c^2)``; its mean-subtraction through ``mu``
    vanishes because ``mean(c) == 0``.
    """

    @staticmethod
    def forward(ctx, x, axes, dof, e_lambda):
        ctx.save_for_backward(x)
        ctx.axes, ctx.dof, ctx.e_lambda = axes, dof, e_lambda
        x32 = _float32(x)
        _, d, inv_denom = _squared_deviation(x32, axes, dof, e_lambda)
        # No autograd inside a PyLayer, so every full-size step reuses d's buffer.
        w = d.multiply_(inv_denom).scale_(1.0, 0.5).sigmoid_()
        return w.multiply_(x32).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensor()
        axes, dof = ctx.axes, ctx.dof
        x32, g = _float32(x), _float32(grad)
        c, d, inv_denom = _squared_deviation(x32, axes, dof, ctx.e_lambda)
        s = d.multiply_(inv_denom).scale_(1.0, 0.5).sigmoid_()
        q = (1.0 - s).multiply_(s).multiply_(g).multiply_(x32).multiply_(c)
        grad_x = s.multiply_(g)
        two_inv = 2.0 * inv_denom
        coef = 8.0 * inv_denom.square() * (q * c).sum(axis=axes, keepdim=True) / dof
        shift = two_inv * q.mean(axis=axes, keepdim=True)
        q.multiply_(two_inv).subtract_(shift).subtract_(c.multiply_(coef))
        return grad_x.add_(q).astype(grad.dtype)


def _simam_paddle(x: paddle.Tensor, axes: List[int], e_lambda: float) -> paddle.Tensor:
    if not paddle.in_dynamic_mode():
        # Traced (to_static / jit.save): an eager PyLayer cannot be traced (Paddle 3.3 raises
        # "At least one output of `PyLayer.forward` is a `Tensor`"), so record the plain formula.
        return _plain(x, axes, e_lambda)
    return _SimAMFunction.apply(x, axes, _dof(x, axes), e_lambda)


def _simam_fused(x: paddle.Tensor, axes: List[int], e_lambda: float) -> paddle.Tensor:
    if not paddle.in_dynamic_mode():
        # Traced: a saved model that called the compiled op would need this library to load;
        # record the plain formula, which any Paddle runtime runs.
        return _plain(x, axes, e_lambda)
    try:
        return _fused._run(x, e_lambda, channels_last=len(x.shape) - 1 not in axes)
    except _fused.FusedBuildError as exc:
        raise RuntimeError(
            f"impl='fused' is unavailable here: {exc}. "
            "impl='auto' falls back to 'paddle' by itself."
        ) from exc


# impl name -> function(x, spatial_axes, e_lambda). Adding an implementation is one entry here
# (and, if it should be the default somewhere, a line in _resolve_impl).
_IMPLS: Dict[str, Callable[[paddle.Tensor, List[int], float], paddle.Tensor]] = {
    "paddle": _simam_paddle,
    "fused": _simam_fused,
}


def _resolve_impl(
    impl: str, x: paddle.Tensor
) -> Callable[[paddle.Tensor, List[int], float], paddle.Tensor]:
    if impl == "auto":
        # The fused op when it builds and loads (eager mode only, see _simam_fused), else Paddle.
        impl = "fused" if paddle.in_dynamic_mode() and _fused._auto_usable(x) else "paddle"
    if impl not in _IMPLS:
        raise ValueError(
            f"Unknown SimAM impl {impl!r}; expected 'auto' or one of {sorted(_IMPLS)}."
        )
    return _IMPLS[impl]


def simam(
    x: paddle.Tensor, e_lambda: float = 1e-4, data_format: str = "NCHW", impl: str = "auto"
) -> paddle.Tensor:
    """Apply SimAM, the parameter-free 3-D attention, to a feature map.

    ``y = x * sigmoid(d / (4 * (v + e_lambda)) + 0.5)`` with ``d = (x - mean)^2`` and
    ``v = sum(d) / (n - 1)`` per sample and channel over the ``n`` spatial positions
    (``v = 0`` when ``n == 1``). float16/bfloat16 input is computed in float32 and returned in
    its own dtype. For training, only ``x`` is kept for backward. When traced
    (``paddle.jit.to_static``, ``paddle.jit.save``) the plain formula is recorded instead, because
    an eager ``PyLayer`` cannot be traced and a compiled operator would tie the saved model to
    this library; exported models compute the same values.

    Args:
        x (Tensor): Feature map of rank 3, 4 or 5, laid out as ``data_format`` says.
        e_lambda (float, optional): The energy's regulariser lambda, > 0. Default: 1e-4.
        data_format (str, optional): One of ``"NCL"``, ``"NCHW"``, ``"NCDHW"`` (channels first)
            or ``"NLC"``, ``"NHWC"``, ``"NDHWC"`` (channels last); must match ``x``'s rank.
            Default: ``"NCHW"``.
        impl (str, optional): Implementation: ``"paddle"`` (Paddle ops with an analytic
            backward), ``"fused"`` (one compiled operator, built on first use, see
            :mod:`simam_paddle.layers.fused`) or ``"auto"``: ``"fused"`` when it builds and loads,
            else ``"paddle"`` with one warning saying why (environment variable
            ``SIMAM_PADDLE_FUSED=0`` skips the build). Default: ``"auto"``.

    Returns:
        Tensor: Same shape and dtype as ``x``.

    Examples:
        >>> import paddle
        >>> from simam_paddle import simam
        >>> y = simam(paddle.randn([2, 8, 16, 16]))
        >>> list(y.shape)
        [2, 8, 16, 16]
    """
    axes = _spatial_axes(x, data_format)
    e_lambda = _check_lambda(e_lambda)
    return _resolve_impl(impl, x)(x, axes, e_lambda)


def simam_weights(
    x: paddle.Tensor, e_lambda: float = 1e-4, data_format: str = "NCHW"
) -> paddle.Tensor:
    """The SimAM attention weights ``sigmoid(d / (4 * (v + e_lambda)) + 0.5)``, in (0.62, 1).

    ``simam(x) == x * simam_weights(x)``; useful for plotting attention maps. Arguments as in
    :func:`simam`.

    Args:
        x (Tensor): Feature map of rank 3, 4 or 5, laid out as ``data_format`` says.
        e_lambda (float, optional): The energy's regulariser lambda, > 0. Default: 1e-4.
        data_format (str, optional): As in :func:`simam`. Default: ``"NCHW"``.

    Returns:
        Tensor: Same shape and dtype as ``x``.

    Examples:
        >>> import paddle
        >>> from simam_paddle.layers import simam_weights
        >>> w = simam_weights(paddle.randn([2, 8, 16, 16]))
        >>> list(w.shape)
        [2, 8, 16, 16]
    """
    axes = _spatial_axes(x, data_format)
    e_lambda = _check_lambda(e_lambda)
    return _weights_plain(_float32(x), axes, e_lambda).astype(x.dtype)


class SimAM(nn.Layer):
    """SimAM as a layer, with no parameters; see :func:`simam`.

    Args:
        channels (int, optional): Accepted and ignored, so SimAM fits an attention factory that
            passes the channel count first. Default: None.
        e_lambda (float, optional): The energy's regulariser lambda, > 0. Default: 1e-4.
        data_format (str, optional): As in :func:`simam`. Default: ``"NCHW"``.

    Examples:
        >>> import paddle
        >>> from simam_paddle import SimAM
        >>> layer = SimAM(64)
        >>> list(layer(paddle.randn([2, 64, 8, 8])).shape)
        [2, 64, 8, 8]
    """

    def __init__(
        self, channels: Optional[int] = None, e_lambda: float = 1e-4, data_format: str = "NCHW"
    ):
        super().__init__()
        if data_format not in _DATA_FORMATS:
            raise ValueError(
                f"Unknown data_format {data_format!r}; expected one of {sorted(_DATA_FORMATS)}."
            )
        self.e_lambda = _check_lambda(e_lambda)
        self.data_format = data_format

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return simam(x, self.e_lambda, self.data_format)

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}, data_format={self.data_format}"
