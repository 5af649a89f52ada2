"""Speed and training memory of the fused SimAM operator vs the Paddle implementations and ReLU.

Usage::

    python benchmarks/bench_fused.py [--repeats 20] [--threads N] [--layers 20]

Time: median and fastest wall time of one layer's forward plus backward (``paddle.grad`` with a fixed
upstream gradient), float32, after warm-up, with Paddle's CPU thread count set to ``--threads``
(default: all cores) through ``paddle.base.core.set_num_threads``, which the fused operator
follows. ``x relu`` and ``plain/this`` are ratios of medians. Variants on the same tensor:

- ``fused``: ``simam(x, impl="fused")``, the compiled operator (built on first use),
- ``paddle``: ``simam(x, impl="paddle")``, Paddle ops with an analytic backward (PyLayer),
- ``plain``: the official formula in Paddle ops, differentiated by autograd,
- ``relu``: ``F.relu``, the floor an element-wise layer can approach,
- channels last (NHWC) also ``fused-T``: transpose to NCHW, fused op, transpose back, to compare
  the operator's native channels-last kernel with the transposing alternative.

Memory: a chain of ``--layers`` SimAM layers trained one step (forward, backward) at
``--memory-shape``, each variant in a fresh subprocess. ``rss MiB``: the process's resident-set
high-water mark during the step minus its resident set before (Linux ``VmHWM``, reset through
``/proc/self/clear_refs``; ``resource.getrusage`` elsewhere); ``alloc MiB``: Paddle's own
allocator peak over the step. Both exclude the input and the upstream gradient.

The machine may be shared: compare variants within one run, and rerun when it is quiet.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = ["32,256,16,16", "8,64,56,56"]

MEMORY_CHILD = """
import json, resource, sys
import paddle
from simam_paddle import simam
from simam_paddle.layers.simam import _simam_plain
impl, layers, shape = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
fn = _simam_plain if impl == "plain" else (lambda t: simam(t, impl=impl))
core = paddle.base.core

def rss_kib(field):
    # Linux: current (VmRSS) and high-water (VmHWM) resident set; ru_maxrss elsewhere.
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def reset_rss_peak():
    try:  # "5" resets VmHWM to the current RSS (Linux >= 4.0), so the import's peak is not counted
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

def step(x, g):
    y = x
    for _ in range(layers):
        y = fn(y)
    (grad,) = paddle.grad(y, x, g)
    return grad

small = paddle.randn([2, 3, 4, 4]); small.stop_gradient = False
step(small, paddle.randn([2, 3, 4, 4]))  # loads the operator, warms Paddle up
x = paddle.randn(shape); x.stop_gradient = False
g = paddle.randn(shape)
reset_rss_peak()
rss0 = rss_kib("VmRSS")
alloc0 = core.host_memory_stat_current_value("Allocated", 0)
core.host_memory_stat_reset_peak_value("Allocated", 0)
step(x, g)
rss1 = rss_kib("VmHWM")
alloc1 = core.host_memory_stat_peak_value("Allocated", 0)
print(json.dumps({"rss": (rss1 - rss0) / 1024, "alloc": (alloc1 - alloc0) / 2**20}))
"""


def timing_table(shapes, repeats):
    import paddle.nn.functional as F

    from bench_simam import time_one_layer  # this script's folder is on sys.path
    from simam_paddle import simam
    from simam_paddle.layers.simam import _simam_plain

    def fused_transposed(x):
        y = simam(x.transpose([0, 3, 1, 2]), impl="fused")
        return y.transpose([0, 2, 3, 1])

    rows = []
    for text in shapes:
        n, c, h, w = (int(s) for s in text.split(","))
        layouts = [("NCHW", [n, c, h, w]), ("NHWC", [n, h, w, c])]
        for fmt, shape in layouts:
            variants = {
                "fused": lambda x, f=fmt: simam(x, data_format=f, impl="fused"),
                "paddle": lambda x, f=fmt: simam(x, data_format=f, impl="paddle"),
                "plain": lambda x, f=fmt: _simam_plain(x, data_format=f),
                "relu": F.relu,
            }
            if fmt == "NHWC":
                variants["fused-T"] = fused_transposed
            ms = {name: time_one_layer(fn, shape, repeats) for name, fn in variants.items()}
            for name, (median, fastest) in ms.items():
                rows.append((f"{tuple(shape)} {fmt}", name, median, fastest,
                             median / ms["relu"][0], ms["plain"][0] / median))
    return rows


def memory_table(layers, shape):
    rows = {}
    for impl in ("fused", "paddle", "plain"):
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, impl, str(layers), shape], cwd=ROOT,
            capture_output=True, text=True, env={**os.environ, "SIMAM_PADDLE_FUSED": "1"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory run for {impl} failed:\n{proc.stderr[-2000:]}")
        rows[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--shapes", nargs="+", default=SHAPES, help="N,C,H,W (also run as NHWC)")
    parser.add_argument("--memory-shape", default="8,64,56,56")
    args = parser.parse_args(argv)

    import paddle

    from simam_paddle._paddle import num_threads
    from simam_paddle.layers import fused

    paddle.base.core.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # memory subprocesses: same setting
    start = time.perf_counter()
    if not fused.fused_available():
        raise RuntimeError(f"the fused operator is unavailable: {fused.fused_unavailable_reason()}")
    print(f"paddle {paddle.__version__}, {paddle.get_device()}, {args.threads} threads "
          f"(fused op reports {num_threads()}), float32, median of {args.repeats}; "
          f"operator ready in {time.perf_counter() - start:.1f} s")
    header = (f"{'shape':<24} {'variant':<8} {'median ms':>10} {'min ms':>8} {'x relu':>7} "
              f"{'plain/this':>11}")
    print(header)
    print("-" * len(header))
    for shape, name, median, fastest, vs_relu, speedup in timing_table(args.shapes, args.repeats):
        print(f"{shape:<24} {name:<8} {median:>10.2f} {fastest:>8.2f} {vs_relu:>7.2f} "
              f"{speedup:>11.2f}", flush=True)

    print(f"\ntraining step of {args.layers} SimAM layers at {args.memory_shape} (fresh processes)")
    header = (f"{'variant':<8} {'rss MiB':>9} {'rss / plain':>12} {'alloc MiB':>10} "
              f"{'alloc / plain':>14}")
    print(header)
    print("-" * len(header))
    memory = memory_table(args.layers, args.memory_shape)
    for name, m in memory.items():
        print(f"{name:<8} {m['rss']:>9.1f} {m['rss'] / memory['plain']['rss']:>12.3f} "
              f"{m['alloc']:>10.1f} {m['alloc'] / memory['plain']['alloc']:>14.3f}")


if __name__ == "__main__":
    main()
