"""Gradients of convolutions with a forward hook (SimAM on ResNet's ``conv2``) on oneDNN, against float64.

Such convolutions were once left on Paddle's kernels because a float64 check of ResNet-20 + SimAM had
found gradients about 1 % off with SimAM's PyLayer fed from a compiled convolution. Two checks, each
against a float64 copy on Paddle's kernels (relative norm of the difference):

1. The smallest case: one convolution, compiled (:func:`onednn_convolutions`) or not, SimAM applied by a
   forward post-hook or by a call after it, as the fused operator, the PyLayer (``impl="paddle"``), the
   plain formula, or the PyLayer on a clone; loss ``sum(y * g)``; the output and the input and weight
   gradients.
2. CIFAR ResNet-20 + SimAM, cross-entropy on random labels, per seed (:func:`gradient_check_batch`):
   Paddle's float32 kernels, oneDNN with the 9 hooked convolutions left on Paddle's kernels (as before),
   and all 21 on oneDNN; the worst parameter's relative difference and that of all gradients as one vector.
   Batches of 8 or more can carry a ReLU input within rounding of 0, where any two kernel sets differ by up
   to 1e-2 (see ``simam_paddle.engine.acceleration``); the Paddle float32 column shows where that happens.

    python benchmarks/onednn_hooks.py
    python benchmarks/onednn_hooks.py --batch 8 --seeds 0 1
"""
import argparse
import contextlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from simam_paddle.engine import acceleration  # noqa: E402
from simam_paddle.engine.acceleration import (  # noqa: E402
    gradient_check_batch, onednn_available, onednn_convolutions, relative_gradient_difference)
from simam_paddle.engine.device import select_device  # noqa: E402
from simam_paddle.layers.simam import _simam_plain, simam  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

import numpy as np  # noqa: E402,I100
import paddle  # noqa: E402,I100

SIMAM = {
    "fused": lambda t: simam(t, impl="fused"),
    "PyLayer": lambda t: simam(t, impl="paddle"),
    "plain formula": _simam_plain,
    "PyLayer on a clone": lambda t: simam(t.clone(), impl="paddle"),
}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def one_convolution(attention, hooked: bool, dtype: str, onednn: bool):
    """Output, input gradient and weight gradient of ``sum(simam(conv(x)) * g)``, all as float64."""
    rng = np.random.default_rng(0)
    x_np, w_np, g_np = rng.standard_normal([4, 8, 8, 8]), 0.2 * rng.standard_normal([8, 8, 3, 3]), \
        rng.standard_normal([4, 8, 8, 8])
    conv = paddle.nn.Conv2D(8, 8, 3, padding=1, bias_attr=False)
    conv.to(dtype=dtype)
    conv.weight.set_value(w_np.astype(dtype))
    if hooked:
        conv.register_forward_post_hook(lambda layer, inputs, output: attention(output))
    x = paddle.to_tensor(x_np.astype(dtype), stop_gradient=False)
    with onednn_convolutions(conv, onednn) as switched:
        y = conv(x) if hooked else attention(conv(x))
        (y * paddle.to_tensor(g_np.astype(dtype))).sum().backward()
    if onednn and switched != 1:
        raise RuntimeError(f"the convolution did not switch to oneDNN (switched={switched})")
    return [t.numpy().astype("float64") for t in (y, x.grad, conv.weight.grad)]


@contextlib.contextmanager
def hooked_convolutions_left_out():
    """:func:`onednn_convolutions` as it was: convolutions with a forward post-hook stay on Paddle's kernels."""
    usable = acceleration._usable_convolutions
    acceleration._usable_convolutions = lambda network: [m for m in usable(network) if not m._forward_post_hooks]
    try:
        yield
    finally:
        acceleration._usable_convolutions = usable


def resnet20_gradients(state, batch: np.ndarray, labels: np.ndarray, dtype: str, onednn: bool):
    network = build_model("cifar_resnet20", 10, attention="simam")
    network.to(dtype=dtype)
    network.set_state_dict({k: v.astype(dtype) for k, v in state.items()})
    network.train()
    with onednn_convolutions(network, onednn) as switched:
        out = network(paddle.to_tensor(batch.astype(dtype)))
        paddle.nn.functional.cross_entropy(out, paddle.to_tensor(labels)).backward()
    return switched, {k: p.grad.numpy().astype("float64") for k, p in network.named_parameters()
                      if not p.stop_gradient}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2, help="ResNet-20 batch size")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3], help="weight and batch seeds")
    args = parser.parse_args()
    if not onednn_available():
        sys.exit("this Paddle has no oneDNN kernels; nothing to compare")
    select_device("cpu")
    print(f"Paddle {paddle.__version__}; relative difference from float64 on Paddle's kernels\n")
    print("| SimAM | applied | kernels | output | input gradient | weight gradient |")
    print("|---|---|---|---:|---:|---:|")
    for name, attention in SIMAM.items():
        for hooked in (True, False):
            reference = one_convolution(attention, hooked, "float64", onednn=False)
            for onednn in (False, True):
                errors = [_relative(a, b) for a, b in zip(one_convolution(attention, hooked, "float32", onednn),
                                                          reference)]
                print(f"| {name} | {'post-hook' if hooked else 'after the call'} | "
                      f"{'oneDNN' if onednn else 'Paddle'} | " + " | ".join(f"{e:.1e}" for e in errors) + " |",
                      flush=True)
    print(f"\nCIFAR ResNet-20 + SimAM (fused operator), batch {args.batch}, 32 px: worst / overall\n")
    print("| seed | Paddle float32 | oneDNN, 12 convolutions (hooked ones left out) | oneDNN, all 21 |")
    print("|---:|---:|---:|---:|")
    for seed in args.seeds:
        paddle.seed(seed)
        state = {k: v.numpy() for k, v in build_model("cifar_resnet20", 10, attention="simam").state_dict().items()}
        generator, batch = gradient_check_batch([args.batch, 3, 32, 32], seed)
        labels = generator.integers(0, 10, [args.batch, 1])
        _, reference = resnet20_gradients(state, batch, labels, "float64", onednn=False)
        cells = []
        for onednn, layout in ((False, contextlib.nullcontext()), (True, hooked_convolutions_left_out()),
                               (True, contextlib.nullcontext())):
            with layout:
                switched, grads = resnet20_gradients(state, batch, labels, "float32", onednn)
            cells.append(f"{relative_gradient_difference(reference, grads):.1e} / "
                         f"{relative_gradient_difference(reference, grads, 'overall'):.1e}"
                         + (f" ({switched} on oneDNN)" if onednn else ""))
        print(f"| {seed} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
