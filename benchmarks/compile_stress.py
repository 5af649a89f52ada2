"""The compiled (oneDNN) path under stress: many runs trained one after another in one process.

Issue 27, item 5: no intermittent compile failure in a process that trains several runs, and if one
happens, the run's record says so. Each run here is a real ``train_run`` (CIFAR ResNet-20 with one of
the four attentions in turn, tiny random images, ``onednn=True``); after each run the script reads what
the run recorded (``history.csv``'s ``onednn_convs`` / ``paddle_convs`` per epoch) and compares it with
what should have run (every convolution on oneDNN but those given a 1 x 1 map, on Paddle's kernel), and reads
the process's resident memory. A compile failure either stops the run with ``OneDNNCompileError`` (counted as
such) or shows as other counts (counted as "mixed": the fault the record exists to catch).

    python benchmarks/compile_stress.py [--runs 12] [--epochs 2] [--images 64]

Prints one row per run and a summary line; exits 1 if any run mixed kernels or failed to compile.
"""
import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simam_paddle.engine.acceleration import OneDNNCompileError, onednn_default  # noqa: E402
from simam_paddle.engine.history import read_history  # noqa: E402
from simam_paddle.experiments import build_network, train_run  # noqa: E402

ATTENTIONS = ("none", "simam", "se", "cbam")


def write_split(root: Path, images: int, classes: int = 4, size: int = 32) -> None:
    """A split folder of random PNGs: ``train/`` and ``eval/``, ``images`` per part, ``classes`` classes."""
    rng = np.random.default_rng(0)
    for part in ("train", "eval"):
        for i in range(images):
            folder = root / part / f"class_{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def resident_mib() -> float:
    """This process's resident memory (``VmRSS`` of /proc/self/status), MiB; nan where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def convolutions(attention: str) -> tuple:
    """The (oneDNN, Paddle) convolutions a run should record: those given a 1 x 1 map (SE's and CBAM's channel
    MLPs) run on Paddle's kernel."""
    import paddle

    network = build_network({"model": "cifar_resnet20", "attention": attention, "num_classes": 4})
    convs, one_pixel = [m for m in network.sublayers() if isinstance(m, paddle.nn.Conv2D)], set()
    for conv in convs:
        conv.register_forward_pre_hook(lambda layer, inputs: one_pixel.add(id(layer))
                                       if inputs[0].shape[2:] == [1, 1] else None)
    with paddle.no_grad():
        network(paddle.rand([1, 3, 32, 32]))
    return len(convs) - len(one_pixel), len(one_pixel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=64, help="training (and eval) images per run")
    parser.add_argument("--clear-executor-cache", action="store_true",
                        help="call paddle.base.core.clear_executor_cache() after each run (what it frees)")
    args = parser.parse_args()
    if not onednn_default():
        print("this Paddle has no oneDNN path (Paddle 2.x or a build without oneDNN); nothing to stress")
        return 0

    rows, failures, mixed = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "split"
        write_split(split, args.images)
        start_mib = resident_mib()
        for i in range(args.runs):
            attention = ATTENTIONS[i % len(ATTENTIONS)]
            expected = convolutions(attention)
            output = Path(tmp) / f"run{i:02d}_{attention}"
            began = time.perf_counter()
            try:
                train_run(str(split), str(output), verbose=0, model="cifar_resnet20", attention=attention,
                          epochs=args.epochs, image_size=32, batch_size=32, seed=i, onednn=True, device="cpu")
                history = read_history(str(output))
                kernels = sorted({(int(r["onednn_convs"]), int(r["paddle_convs"])) for r in history})
                state = "ok" if kernels == [expected] else "MIXED"
            except OneDNNCompileError as err:
                kernels, state = [], f"COMPILE FAILED: {err}"
            failures += state.startswith("COMPILE")
            mixed += state == "MIXED"
            gc.collect()
            if args.clear_executor_cache:
                import paddle

                paddle.base.core.clear_executor_cache()
            rows.append((i, attention, sum(expected), kernels, state, time.perf_counter() - began, resident_mib()))
            print("| {} | {} | {} | {} | {} | {:.1f} | {:.0f} |".format(*rows[-1]), flush=True)
    cleared = ", executor cache cleared after each run" if args.clear_executor_cache else ""
    print(f"\n{args.runs} runs of {args.epochs} epochs in one process{cleared}: "
          f"{failures} compile failures, {mixed} runs on mixed kernels; resident memory {start_mib:.0f} MiB "
          f"before the first run, {rows[-1][-1]:.0f} MiB after the last "
          f"(+{(rows[-1][-1] - rows[0][-1]) / max(1, len(rows) - 1):.0f} MiB a run after the first)")
    return 1 if failures or mixed else 0


if __name__ == "__main__":
    print("| run | attention | convolutions | (oneDNN, Paddle) per epoch | state | s | RSS MiB |")
    print("|---:|---|---:|---|---|---:|---:|")
    sys.exit(main())
