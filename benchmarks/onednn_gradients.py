"""How far a network's gradients under oneDNN convolutions are from Paddle's own kernels.

For each network and seed: :func:`simam_paddle.engine.acceleration.onednn_gradient_error` (one
random batch, cross-entropy on random labels; the worst parameter's relative gradient difference and
that of all gradients as one vector) and, as the scale of float32 rounding, the same measures between
Paddle's float32 kernels and a float64 copy of the network. Prints a markdown table. This is why ``train`` keeps Paddle's kernels
unless ``onednn=True``.

    python benchmarks/onednn_gradients.py
    python benchmarks/onednn_gradients.py --models cifar_resnet20:simam@32x16 --seeds 0 1 2 3
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from simam_paddle.engine.acceleration import (  # noqa: E402
    onednn_available, onednn_gradient_error, relative_gradient_difference)
from simam_paddle.engine.training import select_device  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

DEFAULT_MODELS = ["cifar_resnet20:none@32x16", "cifar_resnet20:se@32x16", "cifar_resnet20:cbam@32x16",
                  "cifar_resnet20:simam@32x16", "towernet:none@128x8", "towernet:simam@128x8"]


def float64_error(network: paddle.nn.Layer, shape, seed: int):
    """(worst, overall) relative gradient difference of Paddle's float32 kernels against a float64 copy."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal(shape)
    state = {k: v.clone() for k, v in network.state_dict().items()}
    grads = []
    for dtype in ("float32", "float64"):
        copy = build_model(*network._spec)  # same architecture; the weights set below
        copy.train()
        copy.set_state_dict(state)
        copy.to(dtype=dtype)
        out = copy(paddle.to_tensor(x.astype(dtype)))
        labels = paddle.to_tensor(np.random.default_rng(seed + 1).integers(0, out.shape[1], [shape[0], 1]))
        paddle.nn.functional.cross_entropy(out, labels).backward()
        grads.append({n: p.grad.numpy().astype("float64") for n, p in copy.named_parameters() if p.grad is not None})
    single, double = grads
    return tuple(relative_gradient_difference(double, single, measure) for measure in ("worst", "overall"))


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
          "| Paddle float32 vs float64: worst | overall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
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
            rounding = float64_error(network, batch_shape, seed)
            print(f"| {model} | {size} | {batch} | {seed} | {worst:.1e} | {overall:.1e} | {rounding[0]:.1e} "
                  f"| {rounding[1]:.1e} |", flush=True)


if __name__ == "__main__":
    main()
