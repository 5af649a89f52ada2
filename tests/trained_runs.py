"""A small ablation trained once per test session: noisy flat-colour images, CIFAR ResNet-20, none and SimAM."""
import numpy as np
from PIL import Image

from simam_paddle.experiments.runs import train_run

COLOURS = {"blue": (0, 0, 250), "green": (0, 250, 0), "red": (250, 0, 0)}


def colour_ablation(root, attentions=("none", "simam"), seeds=(0,), images_per_class=3):
    """``root/split/{train,eval}/<colour>/*.png`` and one 2-epoch run per attention and seed in
    ``root/runs/cifar_resnet20_<attention>_seed<seed>``; returns the split and the runs folder."""
    rng = np.random.RandomState(0)
    for part in ("train", "eval"):
        for name, colour in COLOURS.items():
            folder = root / "split" / part / name
            folder.mkdir(parents=True)
            for i in range(images_per_class):
                pixels = np.clip(np.array(colour) + rng.randint(-60, 60, (32, 32, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    for seed in seeds:
        for attention in attentions:
            train_run(str(root / "split"), str(root / "runs" / f"cifar_resnet20_{attention}_seed{seed}"),
                      model="cifar_resnet20", attention=attention, image_size=32, epochs=2, batch_size=4,
                      seed=seed, device="cpu", verbose=0)
    return root / "split", root / "runs"
