"""Same results with and without oneDNN convolutions: one short seeded ``train`` run each, eval accuracy side by side.

    python benchmarks/onednn_accuracy.py --data SPLIT --model cifar_resnet20 --attention simam --image-size 32 --epochs 2
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from simam_paddle.config import TrainConfig  # noqa: E402
from simam_paddle.data.dataset import ImageFolderDataset, eval_transforms, train_transforms  # noqa: E402
from simam_paddle.engine.history import read_history  # noqa: E402
from simam_paddle.engine.device import seed_everything  # noqa: E402
from simam_paddle.engine.training import resolve_config, train  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="split folder with train/ and eval/")
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--attention", default=None)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = args.image_size
    train_data = ImageFolderDataset(os.path.join(args.data, "train"), train_transforms(size), image_size=size)
    eval_data = ImageFolderDataset(os.path.join(args.data, "eval"), eval_transforms(size), image_size=size)
    print("| onednn | epoch | loss | eval_loss | eval_acc | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for onednn in (False, True):
        seed_everything(args.seed)
        network = build_model(args.model, len(train_data.classes), attention=args.attention)
        run = tempfile.mkdtemp(prefix="onednn_accuracy_")
        start = time.perf_counter()
        # The weight decay this script always used (1e-4), not the model's own.
        config = resolve_config(TrainConfig(model=args.model, attention=args.attention, epochs=args.epochs,
                                            batch_size=args.batch_size, lr=args.lr, seed=args.seed, device="cpu",
                                            weight_decay=1e-4, onednn=onednn))
        train(network, train_data, eval_data, config=config, output_dir=run, verbose=0)
        seconds = time.perf_counter() - start
        for row in read_history(run):
            print(f"| {onednn} | {row['epoch']} | {row['loss']:.4f} | {row['eval_loss']:.4f} | {row['eval_acc']:.4f} "
                  f"| {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
