"""Faster CPU training: Paddle's oneDNN convolution kernels, reached through ``paddle.jit.to_static``.

Paddle 3.x dygraph runs ``conv2d`` and its gradient on the CPU as im2col plus one small GEMM per
image, whatever ``FLAGS_use_mkldnn`` / ``FLAGS_use_onednn`` say: in dygraph those flags select no
oneDNN kernel (``ONEDNN_VERBOSE=1`` prints no primitive). A static program run while
``FLAGS_use_mkldnn`` is set does place ``conv2d``, ``conv2d_grad`` (backward data and weights) on
oneDNN's JIT kernels, the ones PyTorch uses on the CPU. Convolutions are 95% of a ResNet-20
training step here, so :func:`onednn_convolutions` runs each ``nn.Conv2D`` alone as a static
program (one per kind of convolution, shared by every layer and network of the process, with the weights as
inputs) and leaves everything else (BatchNorm, SimAM's fused op, hooks, the loss, the optimizer)
in dygraph. Compiling the whole network instead is slower for training (oneDNN's BatchNorm
backward and the reorders between ops cost more than they save) and crashes Paddle 3.3.1 when a
program ends in ``conv2d``, ``matmul`` or ``pool2d`` (``dst_tensor shall be defined`` or a
segfault in ``run_program``), which is why each compiled convolution ends in a copy (``assign``).

A convolution's forward hooks run in dygraph on the compiled program's output, as any next layer
would, so a convolution with a forward post-hook (the model zoo puts SimAM on ResNet's ``conv2`` that
way) runs on oneDNN too. Such convolutions were once left on Paddle's kernels after a float64 check
of ResNet-20 + SimAM found gradients about 1% off; that was the whole-network effect described below,
not the hook. On batches without it, ResNet-20 + SimAM's gradients with all 21 convolutions on oneDNN
are within 4e-6 of float64, as with Paddle's own kernels (3e-6); one compiled convolution feeding SimAM
(fused operator, PyLayer or plain formula, by hook or not) is within 2e-7, as Paddle's kernels
(``benchmarks/onednn_hooks.py``, tests/test_acceleration.py).
State-dict keys and the layer classes seen outside the ``with`` block are unchanged.

A whole network's gradients are another matter: with Paddle 3.3.1 they can differ from those of
Paddle's kernels by up to 1e-2 for the worst parameter (3e-3 for all gradients as one vector) on some
batches, far beyond one float32 rounding. Paddle's own float32 kernels differ from a float64 copy of
the network by as much on other batches (``benchmarks/onednn_gradients.py``), which points to the
networks' sensitivity to any change of rounding: each such difference comes with a ReLU input
within rounding of 0, or a max-pooling tie, that the two kernels decide differently (also TowerNet
with SimAM on one batch, 3e-2 for all gradients, where Paddle's float32 is within 3e-6 of float64:
a tie in a 3x3 pooling of a 2x2 map; docs/PERFORMANCE.md). Trained to the end, three seeds each of
ResNet-20 and TowerNet reach the same accuracy on both kernel sets (paired differences 0.00 and +0.09
points, docs/RESULTS.md), so ``train`` uses oneDNN convolutions wherever Paddle can
(:func:`onednn_default`) and Paddle's kernels when told (``onednn=False``, ``--no-onednn``).
:func:`onednn_gradient_error` measures the difference for a network and batch shape.
"""
import contextlib
import warnings
from typing import Dict, Iterator, List, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .._paddle import is_paddle2
from .._quiet import compile_log_filters

__all__ = ["onednn_available", "onednn_default", "onednn_convolutions", "onednn_gradient_error", "gradient_check_batch",
           "relative_gradient_difference", "convolution_kernels", "OneDNNCompileError", "COMPILE_ATTEMPTS"]

COMPILE_ATTEMPTS = 3
"""How often :func:`onednn_convolutions` tries to compile before it stops with :class:`OneDNNCompileError`."""


class OneDNNCompileError(RuntimeError):
    """oneDNN convolutions asked for could not be compiled, after :data:`COMPILE_ATTEMPTS` tries.

    Raised instead of running on other kernels than asked for, so that no run silently mixes kernel sets.
    """

_MEASURES = ("worst", "overall")


def onednn_available() -> bool:
    """Whether this Paddle build has oneDNN kernels (the official CPU wheels do).

    Examples:
        >>> isinstance(onednn_available(), bool)
        True
    """
    core = paddle.base.core
    check = getattr(core, "is_compiled_with_onednn", None) or getattr(core, "is_compiled_with_mkldnn", None)
    return bool(check and check())


def onednn_default() -> bool:
    """Whether ``train`` runs the convolutions on oneDNN kernels when not told: on a Paddle 3.x with oneDNN.

    Paddle 2.6 trains to other losses on them and refuses them (see :func:`onednn_convolutions`); on a
    GPU they are never used, whatever this says.

    Examples:
        >>> onednn_default() == (onednn_available() and not is_paddle2())
        True
    """
    return onednn_available() and not is_paddle2()


class _ChannelBias(paddle.autograd.PyLayer):
    """``x + bias`` over the channels of an NCHW tensor, and its gradient, as matrix products.

    Paddle 3.3.1's broadcast ``add`` and its gradient are slow on the CPU: for a [32, 64, 64, 64]
    tensor, 88 ms forward and 117 ms backward on two threads, against 41 and 22 ms for the same sum as
    ``addmm`` (a rank-1 update) and the bias gradient as a matrix-vector product
    (``benchmarks/bench_bias.py``, docs/PERFORMANCE.md). The sum is the same to the bit, the input's
    gradient passes through unchanged, and the bias gradient differs by summation order only.
    """

    @staticmethod
    def forward(ctx, x: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
        n, c, h, w = x.shape
        ctx.shape = (n, c, h * w)
        rows = paddle.tile(bias.reshape([1, c]), [n, 1]).reshape([n * c, 1])  # one row per (image, channel)
        out = paddle.addmm(x.reshape([n * c, h * w]), rows, paddle.ones([1, h * w], dtype=x.dtype))
        return out.reshape([n, c, h, w])

    @staticmethod
    def backward(ctx, grad: paddle.Tensor):
        n, c, hw = ctx.shape
        per_image = paddle.matmul(grad.reshape([n, c, hw]), paddle.ones([hw, 1], dtype=grad.dtype))
        return grad, per_image.reshape([n, c]).sum(axis=0)


class _OneDNNConv2D(nn.Conv2D):
    """``nn.Conv2D`` whose convolution runs as a compiled static program (oneDNN kernels).

    The programs take the weight (and bias) as inputs and are shared by every convolution of the same
    shape and hyperparameters (:func:`_new_programs`, kept in ``_PROGRAMS``), in this network and in any later one: a process
    that trains many runs compiles each kind of convolution once and keeps memory flat (a program per
    layer kept ~30 MiB per ResNet-20 at batch 32 for the life of the process, ``benchmarks/compile_stress.py``).
    Each program ends in a copy (``assign``), so that it does not end in ``conv2d`` (see the module
    docstring). A bias is added outside the program while gradients are recorded (:class:`_ChannelBias`):
    oneDNN's gradient of the broadcast bias add (``add_grad``) took longer than the convolution's own
    gradient, which kept TowerNet (every convolution with a bias) from gaining (docs/PERFORMANCE.md).
    Without gradients (evaluation) the compiled program adds it.
    """

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if x.shape[2] == 1 and x.shape[3] == 1:
            # A 1 x 1 map (SE's and CBAM's channel MLPs, TowerNet's last block at 128 px) is a small matrix product
            # that Paddle's own kernel does faster than a oneDNN program: 0.6 against 10.8 ms for CBAM's 4 -> 16
            # expansion at batch 128, 5 against 15 ms for 832 -> 384 at batch 32 (docs/PERFORMANCE.md).
            self._paddle_calls = self.__dict__.get("_paddle_calls", 0) + 1  # read by convolution_kernels
            return nn.Conv2D.forward(self, x)
        self._onednn_calls = self.__dict__.get("_onednn_calls", 0) + 1
        if self.bias is not None and paddle.is_grad_enabled():
            return _ChannelBias.apply(self._convolution(x, self.weight), self.bias)
        if self.bias is None:
            return self._convolution(x, self.weight)
        return self._convolution_and_bias(x, self.weight, self.bias)


_COMPILED = ("_convolution", "_convolution_and_bias")

# Programs by convolution kind (see _convolution_kind), shared by every layer and network of the process; a kind
# is kept only once its programs have run (_compile_now).
_PROGRAMS: Dict[tuple, Dict[str, object]] = {}


def _convolution_kind(conv: nn.Conv2D) -> tuple:
    """What a convolution's program depends on: shapes of input channels and weight, the hyperparameters."""
    padding = conv._padding if isinstance(conv._padding, str) else _frozen(conv._padding)
    return (conv._in_channels, tuple(conv.weight.shape), _frozen(conv._stride), padding, _frozen(conv._dilation),
            conv._groups, conv.bias is not None)


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def _new_programs(conv: nn.Conv2D) -> Dict[str, object]:
    """The programs for ``conv``'s kind: ``_convolution(x, weight)`` and, with a bias,
    ``_convolution_and_bias(x, weight, bias)``, each a ``paddle.jit.to_static`` function (not compiled yet)."""
    stride, padding, dilation, groups = conv._stride, conv._padding, conv._dilation, conv._groups

    def _convolution(x, weight):
        return paddle.assign(F.conv2d(x, weight, None, stride=stride, padding=padding, dilation=dilation,
                                      groups=groups))

    def _convolution_and_bias(x, weight, bias):
        return paddle.assign(F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                                      groups=groups))

    # Batch, height and width left open: one program per kind for every batch and image size.
    image = paddle.static.InputSpec(shape=[None, conv._in_channels, None, None], dtype="float32")
    weight = paddle.static.InputSpec(shape=list(conv.weight.shape), dtype="float32")
    programs = {"_convolution": paddle.jit.to_static(_convolution, input_spec=[image, weight], full_graph=True)}
    if conv.bias is not None:
        bias = paddle.static.InputSpec(shape=list(conv.bias.shape), dtype="float32")
        programs["_convolution_and_bias"] = paddle.jit.to_static(
            _convolution_and_bias, input_spec=[image, weight, bias], full_graph=True)
    return programs


@contextlib.contextmanager
def onednn_convolutions(network: nn.Layer, enabled: bool = True) -> Iterator[int]:
    """While active, every ``nn.Conv2D`` of ``network`` runs on oneDNN kernels (forward and backward).

    Each convolution is compiled alone with ``paddle.jit.to_static`` and ``FLAGS_use_mkldnn`` is set;
    both are undone on exit. A convolution's forward hooks run as before, on the compiled program's
    output. Subclasses of ``nn.Conv2D`` (their forward may do more), those padding other than with
    zeros and channels-last ones (``NHWC``: Paddle 3.3.1's oneDNN program returns them channels-first) are left
    alone, as is everything on a GPU or on a Paddle without oneDNN (nothing is changed then). The forward
    pass and each convolution's gradients agree with Paddle's own kernels within float32 rounding; a
    whole network's gradients may not (see the module docstring and :func:`onednn_gradient_error`).

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
    convs = _usable_convolutions(network) if enabled else []
    if not convs:
        yield 0
        return
    if is_paddle2():
        # Measured on Paddle 2.6.2: the second training step's loss differs by up to 12 % from
        # Paddle's own kernels (tests/test_acceleration.py), so the path is refused there.
        raise RuntimeError(
            f"oneDNN convolutions need PaddlePaddle 3.x; on {paddle.__version__} they train to other losses "
            "than Paddle's own kernels. Train without them (onednn=False, the default; --no-onednn)."
        )
    previous_flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": True})
    try:
        for attempt in range(1, COMPILE_ATTEMPTS + 1):
            try:
                with compile_log_filters():
                    _compile_all(convs)
                break
            except Exception as error:  # Paddle's compiler, not the caller's code: try again, then stop
                _restore(convs)
                if attempt == COMPILE_ATTEMPTS:
                    raise OneDNNCompileError(
                        f"oneDNN convolutions could not be compiled ({type(error).__name__}: {error}), "
                        f"{COMPILE_ATTEMPTS} tries; stopped rather than run on other kernels than asked for. Run "
                        "the same command again, or train on Paddle's own kernels (onednn=False, --no-onednn)"
                    ) from error
                warnings.warn(f"oneDNN convolutions could not be compiled ({type(error).__name__}: {error}); "
                              f"trying again ({attempt + 1} of {COMPILE_ATTEMPTS})", RuntimeWarning, stacklevel=3)
        yield len(convs)
    finally:
        _restore(convs)
        paddle.set_flags({"FLAGS_use_mkldnn": previous_flag})


def convolution_kernels(network: nn.Layer, reset: bool = True) -> Tuple[int, int]:
    """How many of ``network``'s convolution layers ran on oneDNN kernels, and how many on Paddle's, since the
    last call (or since :func:`onednn_convolutions` began).

    A convolution counts as oneDNN's when its compiled program ran while ``FLAGS_use_mkldnn`` was set and it
    never ran on Paddle's kernel in between (which a switched convolution does for a 1 x 1 map); every other
    ``nn.Conv2D`` (a GPU's, one left out by :func:`onednn_convolutions`, one under ``onednn=False``) counts as
    Paddle's. What a run's ``history.csv`` records per epoch (``onednn_convs``, ``paddle_convs``).

    Args:
        network (paddle.nn.Layer): the model.
        reset (bool, optional): start counting afresh after this call. Default: True.

    Returns:
        tuple[int, int]: ``(onednn, paddle)`` convolution layers.

    Examples:
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3), paddle.nn.ReLU(), paddle.nn.Conv2D(8, 4, 3))
        >>> with onednn_convolutions(net):
        ...     _ = net(paddle.rand([1, 3, 9, 9]))
        ...     counts = convolution_kernels(net)
        >>> counts == ((2, 0) if onednn_default() else (0, 2))
        True
    """
    convs = [m for m in network.sublayers(include_self=True) if isinstance(m, nn.Conv2D)]
    flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    ran = 0
    for conv in convs:
        calls = conv.__dict__
        on_onednn = calls.get("_onednn_calls", 0) > 0 and not calls.get("_paddle_calls")
        if type(conv) is _OneDNNConv2D and flag and on_onednn:
            ran += 1
        if reset:
            calls.pop("_onednn_calls", None)
            calls.pop("_paddle_calls", None)
    return ran, len(convs) - ran


def _compile_all(convs: List[nn.Conv2D]) -> None:
    for conv in convs:
        conv.__class__ = _OneDNNConv2D
        kind = _convolution_kind(conv)
        if kind in _PROGRAMS:
            conv.__dict__.update(_PROGRAMS[kind])  # the instance's look-up, removed again by _restore
        else:  # a new kind: kept once it has compiled, so a failed compile is made afresh by the next try
            programs = _new_programs(conv)
            conv.__dict__.update(programs)
            _compile_now(conv)
            _PROGRAMS[kind] = programs


def _compile_now(conv: nn.Conv2D) -> None:
    """Run the compiled programs once on a tiny batch, so that compiling fails here, not inside training.

    ``paddle.jit.to_static`` translates lazily, on the first call; with Paddle 3.3.1 that
    translation has failed once inside a training run (``Function: forward doesn't exist in the Module
    transformed from AST``, docs/PERFORMANCE.md). Done once per kind of convolution and process."""
    shape = [1, conv._in_channels] + [max(1, d * (k - 1) + 1) for k, d in zip(conv._kernel_size, conv._dilation)]
    # The training program with gradients on: made under no_grad, this call changed ResNet-20's second
    # training step (loss 0.7 % off Paddle's kernels, measured once); tests/test_acceleration.py checks
    # the steps as it is.
    x = paddle.zeros(shape, dtype="float32")
    # The programs, not forward or __call__: the convolution's hooks see only the run's calls (a hook may record
    # what it sees), and forward would take a 1 x 1 map (a 1 x 1 kernel's compile shape) to Paddle's kernel.
    conv._convolution(x, conv.weight)  # an input without gradient, as the network's first convolution sees
    # Paddle keeps one program per input gradient state: every later convolution sees an input with
    # gradient, which would otherwise be translated again at the first training step.
    x.stop_gradient = False
    conv._convolution(x, conv.weight)
    if conv.bias is not None:  # the evaluation program (bias inside) is a program of its own
        with paddle.no_grad():
            conv._convolution_and_bias(x, conv.weight, conv.bias)


def _restore(convs: List[nn.Conv2D]) -> None:
    for conv in convs:
        for name in (*_COMPILED, "_onednn_calls", "_paddle_calls"):
            conv.__dict__.pop(name, None)
        conv.__class__ = nn.Conv2D


def _usable_convolutions(network: nn.Layer) -> List[nn.Conv2D]:
    if not (onednn_available() and paddle.device.get_device() == "cpu"):
        return []
    return [m for m in network.sublayers(include_self=True)
            if type(m) is nn.Conv2D and m._padding_mode == "zeros" and m._data_format == "NCHW"]


def gradient_check_batch(input_shape: List[int], seed: int) -> Tuple[np.random.Generator, np.ndarray]:
    """The random float32 batch :func:`onednn_gradient_error` feeds for ``seed``, and the generator after
    drawing it (which then draws the labels), so that other probes can look at the same batch.

    Examples:
        >>> generator, batch = gradient_check_batch([2, 3, 4, 4], seed=0)
        >>> batch.shape, batch.dtype
        ((2, 3, 4, 4), dtype('float32'))
    """
    generator = np.random.default_rng(seed)
    return generator, generator.standard_normal(input_shape).astype("float32")


def onednn_gradient_error(network: nn.Layer, input_shape: List[int], seed: int = 0, measure: str = "worst") -> float:
    """How far the gradients of ``network`` under :func:`onednn_convolutions` are from Paddle's kernels.

    One forward and backward pass each way on the same random batch (inputs from ``seed``; the
    cross-entropy loss on random labels for a network with ``[batch, classes]`` output, a random
    projection of the output otherwise), in the network's current mode; per parameter, the norm of the
    difference over the norm of Paddle's gradient, the largest of them. Parameters whose gradient is negligible
    (below 1e-4 of the largest, such as the bias of a convolution followed by BatchNorm, which is 0 up
    to rounding) are left out. The network's weights, BatchNorm statistics, gradients and Paddle's
    random state are as before afterwards. 0.0 where :func:`onednn_convolutions` changes nothing
    (a GPU, no oneDNN, no plain convolution).

    Args:
        network (paddle.nn.Layer): the model.
        input_shape (list[int]): the batch shape to test, e.g. ``[16, 3, 32, 32]``.
        seed (int, optional): seed of the random batch. Default: 0.
        measure (str, optional): "worst": the largest relative difference of one parameter's
            gradient (sensitive to parameters whose gradient float32 rounding already moves, such as a
            BatchNorm scale on a nearly constant channel); "overall": the relative difference of all
            gradients taken as one vector. Default: "worst".

    Returns:
        float: the largest relative gradient difference.

    Examples:
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3), paddle.nn.ReLU(), paddle.nn.Conv2D(8, 4, 3))
        >>> onednn_gradient_error(net, [2, 3, 12, 12]) < 1e-4
        True
    """
    _check_measure(measure)
    if not _usable_convolutions(network):
        return 0.0
    rng_state = paddle.get_rng_state()
    state = {k: v.clone() for k, v in network.state_dict().items()}
    params = [(name, p) for name, p in network.named_parameters() if not p.stop_gradient]
    saved_grads = {name: None if p.grad is None else p.grad.clone() for name, p in params}
    generator, batch = gradient_check_batch(input_shape, seed)
    x = paddle.to_tensor(batch)
    upstream = None
    grads = []
    try:
        for enabled in (False, True):
            network.set_state_dict(state)
            for _, p in params:
                p.clear_gradient(set_to_zero=False)
            paddle.set_rng_state(rng_state)  # the same dropout masks both times
            with onednn_convolutions(network, enabled):
                out = network(x)
                if upstream is None:  # a classifier's loss on random labels; a random projection otherwise
                    upstream = (paddle.to_tensor(generator.integers(0, out.shape[1], [out.shape[0], 1]))
                                if len(out.shape) == 2 else
                                paddle.to_tensor(generator.standard_normal(out.shape).astype("float32")))
                loss = (paddle.nn.functional.cross_entropy(out, upstream) if upstream.dtype == paddle.int64
                        else (out * upstream).sum())
                loss.backward()
            grads.append({name: p.grad.numpy().copy() for name, p in params if p.grad is not None})
    finally:
        network.set_state_dict(state)
        for name, p in params:
            p.grad = saved_grads[name]  # None where there was none
        paddle.set_rng_state(rng_state)
    reference, onednn = grads
    return relative_gradient_difference(reference, onednn, measure)


def _check_measure(measure: str) -> None:
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")


def relative_gradient_difference(reference: Dict[str, np.ndarray], other: Dict[str, np.ndarray],
                                 measure: str = "worst") -> float:
    """How far the gradients ``other`` are from ``reference``, relative to ``reference``.

    Args:
        reference (dict[str, ndarray]): gradient per parameter name, the one measured against.
        other (dict[str, ndarray]): gradient per parameter name; names missing here are left out.
        measure (str, optional): "worst": the largest ``|other - reference| / |reference|`` of one
            parameter, leaving out parameters whose reference gradient is below 1e-4 of the largest;
            "overall": the same ratio for all gradients taken as one vector. Default: "worst".

    Returns:
        float: the relative difference (0.0 when nothing is compared).

    Examples:
        >>> ref = {"w": np.array([3.0, 4.0]), "b": np.array([1e-9])}
        >>> relative_gradient_difference(ref, {"w": np.array([3.0, 4.5]), "b": np.array([1.0])})  # b is left out
        0.1
        >>> round(relative_gradient_difference(ref, {"w": np.array([3.0, 4.5]), "b": np.array([0.0])}, "overall"), 4)
        0.1
    """
    _check_measure(measure)
    names = [name for name in reference if name in other]
    if measure == "overall":
        difference = np.sqrt(sum(float(np.sum((other[n] - reference[n]) ** 2)) for n in names))
        return float(difference / max(np.sqrt(sum(float(np.sum(reference[n] ** 2)) for n in names)), 1e-30))
    norms = {name: float(np.linalg.norm(reference[name])) for name in reference}
    largest = max(norms.values(), default=0.0)
    errors = [float(np.linalg.norm(other[name] - reference[name])) / norms[name] for name in names
              if norms[name] > 1e-4 * largest]
    return max(errors, default=0.0)
