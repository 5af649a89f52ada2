"""Forward+backward time and memory of SimAM: this implementation vs the plain formula vs ReLU.

Usage::

    python benchmarks/bench_simam.py [--repeats 10] [--layers 20] [--shapes 32,256,16,16 ...]

For each float32 shape and each variant

- ``simam``: ``simam_paddle.simam`` (the default impl: analytic backward, saves only the input),
- ``plain``: the official formula written with Paddle ops, differentiated by autograd,
- ``relu``: ``F.relu``, the floor an element-wise layer can approach,

it prints:

- ``fwd+bwd ms``: median wall time of one layer's forward plus backward (``paddle.grad`` with a
  fixed upstream gradient) over ``--repeats`` runs after two warm-up runs.
- ``held/layer``: bytes the autograd graph keeps alive per layer between forward and backward,
  in units of one activation (the tensor's size). Measured on a chain of ``--layers`` layers as
  (allocated after forward - allocated before) / layers / activation bytes, using Paddle's own
  allocator statistics (``host_memory_stat_*`` on CPU, ``device_memory_stat_*`` on GPU), which count
  exactly the bytes Paddle hands out, independent of the OS and of other processes. It includes
  each layer's output, which the next layer (or the caller) holds; ReLU's saved output *is* that
  output, so ReLU reads 1.0.
- ``peak MiB``: the allocator's peak during forward+backward of that chain, minus what was
  allocated before (input and upstream gradient): the training-memory number that matters.

Timings on a shared machine are noisy; compare variants within one run.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import paddle
import paddle.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simam_paddle import simam  # noqa: E402
from simam_paddle.layers.simam import _simam_plain  # noqa: E402

VARIANTS = {"simam": simam, "plain": _simam_plain, "relu": F.relu}
DEFAULT_SHAPES = ["32,256,16,16", "8,64,56,56", "16,128,28,28"]


def _memory_stats():
    """(current, peak, reset_peak) allocator statistics for the current device."""
    core = paddle.base.core
    device = paddle.get_device()
    if device.startswith("gpu"):
        dev_id = int(device.split(":")[1]) if ":" in device else 0
        return (
            lambda: core.device_memory_stat_current_value("Allocated", dev_id),
            lambda: core.device_memory_stat_peak_value("Allocated", dev_id),
            lambda: core.device_memory_stat_reset_peak_value("Allocated", dev_id),
        )
    return (
        lambda: core.host_memory_stat_current_value("Allocated", 0),
        lambda: core.host_memory_stat_peak_value("Allocated", 0),
        lambda: core.host_memory_stat_reset_peak_value("Allocated", 0),
    )


def _sync():
    if paddle.get_device().startswith("gpu"):
        paddle.device.synchronize()


def time_one_layer(fn, shape, repeats):
    """(median, min) wall time in ms of one forward+backward, after two warm-up runs."""
    x = paddle.randn(shape)
    x.stop_gradient = False
    g = paddle.randn(shape)
    times = []
    for i in range(repeats + 2):
        _sync()
        start = time.perf_counter()
        (grad,) = paddle.grad(fn(x), x, g)
        _sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
        del grad
    return 1e3 * statistics.median(times), 1e3 * min(times)


def memory_of_chain(fn, shape, layers):
    current, peak, reset_peak = _memory_stats()
    x = paddle.randn(shape)
    x.stop_gradient = False
    g = paddle.randn(shape)
    act_bytes = x.numel().item() * 4
    base = current()
    reset_peak()
    y = x
    for _ in range(layers):
        y = fn(y)
    held = (current() - base) / layers / act_bytes
    (grad,) = paddle.grad(y, x, g)
    del y, grad
    return held, (peak() - base) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES,
                        help="comma-separated shapes, e.g. 32,256,16,16")
    args = parser.parse_args(argv)
    print(f"paddle {paddle.__version__} on {paddle.get_device()}, float32, "
          f"median of {args.repeats}, memory over a {args.layers}-layer chain")
    header = f"{'shape':<18} {'variant':<7} {'fwd+bwd ms':>11} {'held/layer':>11} {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    for text in args.shapes:
        shape = [int(s) for s in text.split(",")]
        for name, fn in VARIANTS.items():
            ms, _ = time_one_layer(fn, shape, args.repeats)
            held, peak = memory_of_chain(fn, shape, args.layers)
            print(f"{str(tuple(shape)):<18} {name:<7} {ms:>11.2f} {held:>11.2f} {peak:>9.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
