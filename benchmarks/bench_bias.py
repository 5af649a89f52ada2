"""A convolution's bias on the CPU: Paddle's broadcast ``add`` against the oneDNN path's ``_ChannelBias``.

``x + bias.reshape([1, C, 1, 1])`` and its gradient (what ``nn.Conv2D`` does after the convolution, on
Paddle's kernels) against :class:`simam_paddle.engine.acceleration._ChannelBias` (the sum as one
``addmm``, the bias gradient as one matrix-vector product), forward and backward timed apart, median of
the timed repeats, on the shapes of TowerNet's convolutions at 128 px with batch 32. The two results are
checked against each other (forward equal, bias gradients within float32 rounding). Prints a markdown
table (ms).

    python benchmarks/bench_bias.py
    python benchmarks/bench_bias.py --threads 1 --repeats 5
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# The package before Paddle: its first import of Paddle hides the ccache warning and glog's chatter.
from simam_paddle.engine.acceleration import _ChannelBias  # noqa: E402
from simam_paddle.engine.device import select_device  # noqa: E402

import numpy as np  # noqa: E402,I100
import paddle  # noqa: E402,I100

SHAPES = [[32, 64, 64, 64], [32, 128, 32, 32], [32, 256, 8, 8]]


def _broadcast(x, bias):
    return x + bias.reshape([1, -1, 1, 1])


def _channel_bias(x, bias):
    return _ChannelBias.apply(x, bias)


def time_ms(add, shape, repeats):
    """Median forward and backward milliseconds of ``add`` on a random ``shape``, and its results."""
    rng = np.random.default_rng(0)
    x = paddle.to_tensor(rng.standard_normal(shape, dtype=np.float32), stop_gradient=False)
    bias = paddle.to_tensor(rng.standard_normal(shape[1], dtype=np.float32), stop_gradient=False)
    grad = paddle.to_tensor(rng.standard_normal(shape, dtype=np.float32))
    forward, backward = [], []
    for _ in range(repeats + 1):  # the first repeat warms up
        x.clear_gradient()
        bias.clear_gradient()
        start = time.perf_counter()
        out = add(x, bias)
        out.numpy()[0, 0, 0, 0]  # force the result
        middle = time.perf_counter()
        out.backward(grad)
        bias.grad.numpy()
        forward.append(middle - start)
        backward.append(time.perf_counter() - middle)
    return (1e3 * float(np.median(forward[1:])), 1e3 * float(np.median(backward[1:])),
            out.numpy(), bias.grad.numpy(), x.grad.numpy())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every available core)")
    args = parser.parse_args(argv)
    select_device("cpu", num_threads=args.threads)
    from simam_paddle._paddle import num_threads

    print(f"paddle {paddle.__version__}, {num_threads()} threads, median of {args.repeats} repeats, ms")
    print()
    print("| shape | add forward | add backward | _ChannelBias forward | _ChannelBias backward | backward speed-up "
          "| bias gradient, relative difference |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in SHAPES:
        f0, b0, out0, g0, gx0 = time_ms(_broadcast, shape, args.repeats)
        f1, b1, out1, g1, gx1 = time_ms(_channel_bias, shape, args.repeats)
        assert np.array_equal(out0, out1) and np.array_equal(gx0, gx1), "the two sums differ"
        rel = float(np.abs(g1 - g0).max() / np.abs(g0).max())
        print(f"| {shape} | {f0:.1f} | {b0:.1f} | {f1:.1f} | {b1:.1f} | {b0 / b1:.0f}x | {rel:.1e} |")


if __name__ == "__main__":
    main()
