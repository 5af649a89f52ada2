"""How far a network's gradients under oneDNN convolutions are from Paddle's own kernels.

For each network and seed: :func:`simam_paddle.engine.acceleration.onednn_gradient_error` (one
random batch, cross-entropy on random labels; the worst parameter's relative gradient difference and
that of all gradients as one vector) and, as the scale of float32 rounding, the same measures between
Paddle's float32 kernels and a float64 copy of the network. Prints a markdown table. Whether such
differences change what a network learns is a question for seeded training runs (docs/RESULTS.md: they
did not, over three seeds each of ResNet-20 and TowerNet).

"ReLU signs / max-pool winners changed" counts where the two forward passes took another branch
of a piecewise function: ReLU inputs on the other side of 0, and max-pooling windows (with a positive
maximum; an all-zero window after a ReLU passes no gradient whichever element wins) whose winner
differs. A value within float32 rounding of a ReLU's kink, or two values of a pooling window that
close, can go either way with other kernels; the gradient then flows through another element, a
difference of order one for that element from a rounding difference of 1e-7.

    python benchmarks/onednn_gradients.py
    python benchmarks/onednn_gradients.py --models cifar_resnet20:simam@32x16 --seeds 0 1 2 3
"""
import argparse
import contextlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

from simam_paddle.engine.acceleration import (  # noqa: E402
    gradient_check_batch, onednn_available, onednn_convolutions, onednn_gradient_error, relative_gradient_difference)
from simam_paddle.engine.device import select_device  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

DEFAULT_MODELS = ["cifar_resnet20:none@32x16", "cifar_resnet20:se@32x16", "cifar_resnet20:cbam@32x16",
                  "cifar_resnet20:simam@32x16", "towernet:none@128x8", "towernet:simam@128x8"]


def float64_error(network: paddle.nn.Layer, shape, seed: int):
    """(worst, overall) relative gradient difference of Paddle's float32 kernels against a float64 copy,
    and the ReLU signs and max-pooling winners that differ between the two (see :func:`changed_decisions`)."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal(shape)
    state = {k: v.clone() for k, v in network.state_dict().items()}
    grads, passes = [], []
    for dtype in ("float32", "float64"):
        copy = build_model(*network._spec)  # same architecture; the weights set below
        copy.train()
        copy.set_state_dict(state)
        copy.to(dtype=dtype)
        with decisions(copy) as seen:
            out = copy(paddle.to_tensor(x.astype(dtype)))
        passes.append(seen)
        labels = paddle.to_tensor(np.random.default_rng(seed + 1).integers(0, out.shape[1], [shape[0], 1]))
        paddle.nn.functional.cross_entropy(out, labels).backward()
        grads.append({n: p.grad.numpy().astype("float64") for n, p in copy.named_parameters() if p.grad is not None})
    single, double = grads
    return (*(relative_gradient_difference(double, single, measure) for measure in ("worst", "overall")),
            *changed_decisions(*passes))


def onednn_decision_changes(network: paddle.nn.Layer, shape, seed: int):
    """ReLU signs and max-pooling winners that differ with and without oneDNN convolutions, on the batch
    :func:`onednn_gradient_error` uses for ``seed``: (ReLU inputs whose sign differs, max-pool windows
    whose winner differs)."""
    x = paddle.to_tensor(gradient_check_batch(shape, seed)[1])
    state = {k: v.clone() for k, v in network.state_dict().items()}
    passes = []
    for enabled in (False, True):
        network.set_state_dict(state)
        with paddle.no_grad(), onednn_convolutions(network, enabled), decisions(network) as seen:
            network(x)
        passes.append(seen)
    network.set_state_dict(state)  # BatchNorm statistics as before
    return changed_decisions(*passes)


@contextlib.contextmanager
def decisions(network: paddle.nn.Layer):
    """Records the piecewise choices of one forward pass: every ReLU's input (``F.relu``, which
    ``nn.ReLU`` calls too) and, per ``nn.MaxPool2D`` call, its input and each window's winner."""
    seen = {"relu": [], "pool": []}
    relu = F.relu

    def recording_relu(x, *args, **kwargs):
        seen["relu"].append(x.numpy())
        return relu(x, *args, **kwargs)

    def record_pool(layer, inputs, output):
        x = inputs[0]
        _, mask = F.max_pool2d(x, layer.ksize, layer.stride, layer.padding, return_mask=True,
                               ceil_mode=layer.ceil_mode)
        seen["pool"].append((x.numpy(), mask.numpy()))

    hooks = [m.register_forward_post_hook(record_pool) for m in network.sublayers() if isinstance(m, nn.MaxPool2D)]
    F.relu = recording_relu
    try:
        yield seen
    finally:
        F.relu = relu
        for hook in hooks:
            hook.remove()


def changed_decisions(first, second):
    """(ReLU inputs on the other side of 0, max-pool windows with a positive maximum whose winner differs):
    where the two passes took another branch of a piecewise function, so that the gradient flows elsewhere."""
    signs = sum(int(((a > 0) != (b > 0)).sum()) for a, b in zip(first["relu"], second["relu"]))
    winners = 0
    for (x, mask_a), (_, mask_b) in zip(first["pool"], second["pool"]):
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        best = np.take_along_axis(flat, mask_a.reshape(*flat.shape[:2], -1), axis=2)
        winners += int(((mask_a.reshape(best.shape) != mask_b.reshape(best.shape)) & (best > 0)).sum())
    return signs, winners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="model:attention@size x batch")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="weight and batch seeds")
    args = parser.parse_args()
    if not onednn_available():
        sys.exit("this Paddle has no oneDNN kernels; nothing to compare")
    select_device("cpu")
    print(f"Paddle {paddle.__version__}; worst relative gradient difference per network and seed\n")
    print("| network | image px | batch | seed | oneDNN vs Paddle float32: worst | overall "
          "| ReLU signs / max-pool winners changed | Paddle float32 vs float64: worst | overall "
          "| ReLU signs / max-pool winners changed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.models:
        model, _, shape = spec.partition("@")
        name, _, attention = model.partition(":")
        size, batch = (int(v) for v in shape.split("x"))
        for seed in args.seeds:
            paddle.seed(seed)
            network = build_model(name, 10, attention=attention or None)
            network._spec = (name, 10, attention or None)
            network.train()
            batch_shape = [batch, 3, size, size]
            worst = onednn_gradient_error(network, batch_shape, seed=seed)
            overall = onednn_gradient_error(network, batch_shape, seed=seed, measure="overall")
            changes = onednn_decision_changes(network, batch_shape, seed)
            rounding = float64_error(network, batch_shape, seed)
            print(f"| {model} | {size} | {batch} | {seed} | {worst:.1e} | {overall:.1e} | {_decisions(*changes)} "
                  f"| {rounding[0]:.1e} | {rounding[1]:.1e} | {_decisions(*rounding[2:])} |", flush=True)


def _decisions(signs: int, winners: int) -> str:
    return f"{signs} / {winners}"


if __name__ == "__main__":
    main()
