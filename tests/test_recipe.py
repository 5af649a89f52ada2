"""The official SimAM CIFAR recipe as an option (--recipe official-cifar): schedule, augmentation, normalisation."""
import json

import numpy as np
import pytest
from PIL import Image

from simam_paddle.cli import main
from simam_paddle.data.dataset import cifar_train_transforms, compute_mean_std
from simam_paddle.engine.history import read_history
from simam_paddle.engine.training import OfficialStepDecay
from simam_paddle.experiments.runs import train_run

from test_runs import make_split


def _official_lr(epoch, base=0.1):
    """main_cifar.py's adjust_learning_rate: lr * 0.1 ** (epoch >= 81) * 0.1 ** (epoch >= 122), 0-based epochs."""
    return base * 0.1 ** (epoch >= 81) * 0.1 ** (epoch >= 122)


def test_step_schedule_is_the_official_one_at_every_step():
    steps = 3
    sched = OfficialStepDecay(0.1, epochs=164, steps_per_epoch=steps)
    for epoch in range(164):
        for _ in range(steps):
            assert sched.get_lr() == pytest.approx(_official_lr(epoch), rel=1e-9), epoch
            sched.step()


def test_pad_crop_flip_gives_one_of_the_official_crops():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    padded = np.pad(pixels, ((4, 4), (4, 4), (0, 0)))
    crops = [padded[y:y + 8, x:x + 8] for y in range(9) for x in range(9)]
    candidates = [c for crop in crops for c in (crop, crop[:, ::-1])]
    transform = cifar_train_transforms(8, mean=(0, 0, 0), std=(1, 1, 1))
    seen = set()
    for _ in range(60):
        out = np.rint(transform(Image.fromarray(pixels)).transpose(1, 2, 0) * 255).astype(np.uint8)
        matches = [i for i, c in enumerate(candidates) if np.array_equal(out, c)]
        assert matches, "not a padded crop (or its mirror) of the image"
        seen.add(matches[0])
    assert len(seen) > 20  # random, not one fixed crop


def test_a_run_with_the_recipe_takes_its_defaults_schedule_and_the_training_images_statistics(tmp_path):
    split = make_split(tmp_path / "split")
    config = train_run(split, str(tmp_path / "run"), model="cifar_resnet20", image_size=32, batch_size=4, epochs=4,
                       recipe="official-cifar", verbose=0)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored == config
    assert (config["lr"], config["weight_decay"], config["momentum"]) == (0.1, 5e-4, 0.9)
    assert (config["epochs"], config["batch_size"]) == (4, 4)  # given settings win over the recipe's
    # the training images' statistics, from numpy over the PNGs themselves
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.float64) / 255
                       for p in sorted((tmp_path / "split" / "train").rglob("*.png"))])
    np.testing.assert_allclose(config["normalize"]["mean"], pixels.mean(axis=(0, 1, 2)), atol=1e-7)
    np.testing.assert_allclose(config["normalize"]["std"], pixels.std(axis=(0, 1, 2)), atol=1e-7)
    # 4 epochs: the drops at round(4 * 81/164) = 2 and round(4 * 122/164) = 3
    assert [r["lr"] for r in read_history(tmp_path / "run")] == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_the_recipe_from_the_command_line_and_a_wrong_name(tmp_path, capsys):
    split = make_split(tmp_path / "split")
    assert main(["train", "--data", split, "--output", str(tmp_path / "r"), "--model", "cifar_resnet20",
                 "--image-size", "32", "--batch-size", "4", "--epochs", "1", "--recipe", "official-cifar",
                 "--quiet"]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["recipe"] == "official-cifar" and config["lr"] == 0.1 and config["epochs"] == 1
    mean, _ = compute_mean_std(tmp_path / "split" / "train", 32)
    np.testing.assert_allclose(config["normalize"]["mean"], mean, atol=1e-7)
    with pytest.raises(SystemExit):
        main(["train", "--data", split, "--output", str(tmp_path / "x"), "--recipe", "cifar"])
    assert "official-cifar" in capsys.readouterr().err


def test_predict_and_evaluate_normalise_as_the_run_did(tmp_path):
    import paddle

    from simam_paddle.experiments.runs import evaluate_run
    from simam_paddle.experiments.prediction import predict_images
    from simam_paddle.experiments.runs import load_run, run_kernels

    split = make_split(tmp_path / "split")
    run = str(tmp_path / "run")
    train_run(split, run, model="cifar_resnet20", image_size=32, batch_size=4, epochs=1, recipe="official-cifar",
              verbose=0)
    network, config = load_run(run)
    image = sorted((tmp_path / "split" / "eval").rglob("*.png"))[0]
    mean, std = np.array(config["normalize"]["mean"]), np.array(config["normalize"]["std"])
    pixels = (np.asarray(Image.open(image), dtype=np.float32) / 255 - mean) / std  # numpy, not the package
    with run_kernels(network, config), paddle.no_grad():
        logits = network(paddle.to_tensor(pixels.transpose(2, 0, 1)[None].astype("float32"))).numpy()[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    row = predict_images(run, [image], top_k=2)[0]
    assert row.probs == pytest.approx(sorted(probs, reverse=True), rel=1e-4)
    assert evaluate_run(run)["acc"] == read_history(run)[-1]["eval_acc"]
