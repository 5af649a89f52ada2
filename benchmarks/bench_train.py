"""Training throughput (images/s) of TowerNet with each attention and of the baselines.

One training step = forward, cross-entropy, backward, Momentum update (the recipe of
``simam_paddle.training``), on random images of one size, after warm-up steps. On CPU all cores
are used (``select_device``). Prints a markdown table.

    python benchmarks/bench_train.py --image-size 128 --batch-size 16 --steps 5
    python benchmarks/bench_train.py --image-size 256 --batch-size 32 --steps 20 --models towernet:simam
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from simam_paddle.engine.training import make_optimizer, seed_everything, select_device  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

DEFAULT_MODELS = ["towernet:none", "towernet:se", "towernet:simam", "mobilenet_v2", "resnet50", "vgg19"]


def measure(spec: str, image_size: int, batch_size: int, steps: int, warmup: int, num_classes: int) -> dict:
    name, _, attention = spec.partition(":")
    seed_everything(0)
    network = build_model(name, num_classes, attention=attention or None)
    network.train()
    optimizer = make_optimizer(network.parameters(), 0.01, epochs=1, steps_per_epoch=warmup + steps)
    x = paddle.randn([batch_size, 3, image_size, image_size])
    y = paddle.to_tensor(np.random.RandomState(0).randint(0, num_classes, [batch_size, 1]).astype("int64"))

    def step():
        loss = paddle.nn.functional.cross_entropy(network(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return loss

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step())  # float() waits for the device
        times.append(time.perf_counter() - start)
    params = sum(int(np.prod(p.shape)) for p in network.parameters())
    median = float(np.median(times))
    return {"model": spec, "params_m": params / 1e6, "step_s": median, "images_s": batch_size / median}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help="model[:attention] specs (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = select_device(args.device)
    print(f"device {device}, paddle {paddle.__version__}, cpu cores {os.cpu_count()}, "
          f"image {args.image_size}x{args.image_size}, batch {args.batch_size}, median of {args.steps} steps\n")
    print("| model | params (M) | s/step | images/s |")
    print("|---|---:|---:|---:|")
    for spec in args.models:
        r = measure(spec, args.image_size, args.batch_size, args.steps, args.warmup, args.num_classes)
        print(f"| {r['model']} | {r['params_m']:.2f} | {r['step_s']:.3f} | {r['images_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
