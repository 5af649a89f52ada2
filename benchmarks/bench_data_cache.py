"""Images/s of ImageFolderDataset with and without the in-memory cache, epoch 1 vs epoch 2.

Writes Caltech-sized JPEGs (300x200, noise on colour gradients) to a temporary folder, then
reads them through ``paddle.io.DataLoader`` at 256x256 with the training pipeline. Target: the
second cached epoch at least 2x the images/s of decoding every file every epoch.

    python benchmarks/bench_data_cache.py [--images 200] [--size 256] [--num-workers 0]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simam_paddle import ImageFolderDataset, eval_transforms, train_transforms  # noqa: E402


def write_jpegs(root: Path, count: int, classes: int = 4, width: int = 300, height: int = 200) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height + 1) / 2
        base = np.stack([ramp, 1 - ramp, np.full_like(ramp, rng.uniform())], axis=-1) * 255
        pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)


def images_per_second(dataset, batch_size: int, num_workers: int, loader=None):
    loader = loader or paddle.io.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    start = time.perf_counter()
    seen = sum(x.shape[0] for x, _ in loader)
    return seen / (time.perf_counter() - start), loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), args.images)
        for name, make in (("train", train_transforms), ("eval", eval_transforms)):
            for cache in (False, True):
                best = [0.0, 0.0]
                for _ in range(args.repeats):
                    ds = ImageFolderDataset(tmp, make(args.size), cache=cache, image_size=args.size)
                    # Workers must outlive the epoch for their caches to serve the next one.
                    loader = paddle.io.DataLoader(ds, batch_size=args.batch_size, shuffle=True,
                                                  num_workers=args.num_workers,
                                                  persistent_workers=args.num_workers > 0)
                    for epoch in range(2):
                        rate, _ = images_per_second(ds, args.batch_size, args.num_workers, loader)
                        best[epoch] = max(best[epoch], rate)
                rows.append((name, "cache" if cache else "decode", *best))

    print(f"{args.images} JPEGs 300x200 -> {args.size}x{args.size}, batch {args.batch_size}, "
          f"num_workers={args.num_workers}, best of {args.repeats}")
    print(f"{'pipeline':<9} {'mode':<7} {'epoch 1 img/s':>14} {'epoch 2 img/s':>14}")
    for name, mode, first, second in rows:
        print(f"{name:<9} {mode:<7} {first:>14.1f} {second:>14.1f}")
    for name in ("train", "eval"):
        decode = next(r for r in rows if r[0] == name and r[1] == "decode")
        cached = next(r for r in rows if r[0] == name and r[1] == "cache")
        ratio = cached[3] / decode[3]
        verdict = "met" if ratio >= 2 else "NOT met"
        print(f"{name}: cached epoch 2 / decode epoch 2 = {ratio:.2f}x (target >= 2x: {verdict})")


if __name__ == "__main__":
    main()
