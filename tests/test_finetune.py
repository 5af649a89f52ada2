"""Fine-tuning from another run (experiments/finetune.py, ``train --init-from``): a new head, refusals."""
import json
import os

import numpy as np
import paddle
import pytest
from PIL import Image

from simam_paddle.cli import main

from official_fixtures import DATA, error_line


def _split(root, classes=("a", "b", "c"), per_class=2):
    rng = np.random.RandomState(0)
    for part in ("train", "eval"):
        for c in classes:
            os.makedirs(root / part / c)
            for i in range(per_class):
                Image.fromarray((rng.rand(32, 32, 3) * 255).astype("uint8")).save(root / part / c / f"{i}.png")
    return str(root)


def test_train_init_from_a_converted_run_gets_a_new_head(tmp_path, capsys):
    source, run = str(tmp_path / "official"), str(tmp_path / "finetuned")
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "simam", "--output", source]) == 0
    split = _split(tmp_path / "split")
    capsys.readouterr()
    # A negligible lr: the loaded weights stay as they were, so the test sees that they were loaded.
    assert main(["train", "--data", split, "--output", run, "--init-from", source, "--epochs", "1",
                 "--batch-size", "3", "--lr", "1e-12", "--quiet"]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if "new classifier head" in line]
    assert len(heads) == 1 and "3 classes (the run had 10)" in heads[0]
    config = json.load(open(os.path.join(run, "config.json")))
    assert (config["model"], config["attention"], config["e_lambda"], config["image_size"]) == \
        ("cifar_resnet20", "simam", 0.1, 32)
    assert config["init_from"] == os.path.abspath(source) and config["num_classes"] == 3
    new = paddle.load(os.path.join(run, "best_model.pdparams"))
    old = paddle.load(os.path.join(source, "best_model.pdparams"))
    np.testing.assert_allclose(new["layer3.2.conv2.weight"].numpy(), old["layer3.2.conv2.weight"].numpy(), rtol=1e-5)
    assert list(new["linear.weight"].shape) == [64, 3]


def test_init_from_refuses_a_run_of_another_attention(tmp_path, capsys):
    source = str(tmp_path / "official")
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "se", "--output", source]) == 0
    split = _split(tmp_path / "split")
    assert main(["train", "--data", split, "--output", str(tmp_path / "run"), "--init-from", source,
                 "--attention", "cbam", "--epochs", "1", "--quiet"]) == 2
    assert "does not fit this model" in error_line(capsys)


def test_a_converted_run_is_never_started_over(tmp_path, capsys):
    """A convert-official folder has config.json and best_model.pdparams but no last.json, like a run that finished no
    epoch; training into it (by mistake, or as its own --init-from) must not delete the converted weights."""
    from simam_paddle.experiments import complete_run

    source = str(tmp_path / "official")
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "simam", "--output", source]) == 0
    weights = os.path.join(source, "best_model.pdparams")
    saved = paddle.load(weights)
    split = _split(tmp_path / "split")
    capsys.readouterr()
    for extra in ([], ["--init-from", source]):
        assert main(["train", "--data", split, "--output", source, *extra, "--epochs", "1", "--batch-size", "3",
                     "--quiet"]) == 2
        line = error_line(capsys)
        assert "convert" in line and "another" in line
    try:
        complete_run(split, source, verbose=0, epochs=1, batch_size=3)
    except FileExistsError as err:
        assert "convert" in str(err)
    else:
        raise AssertionError("complete_run trained into a converted run")
    assert sorted(os.listdir(source)) in (["best_model.pdparams", "config.json"],
                                         [".lock", "best_model.pdparams", "config.json"])
    kept = paddle.load(weights)
    for key, value in saved.items():
        np.testing.assert_array_equal(kept[key].numpy(), value.numpy())
    assert "converted_from" in json.load(open(os.path.join(source, "config.json")))


def test_a_run_fine_tuned_from_a_relative_folder_is_found_again(tmp_path, monkeypatch):
    """config.json stores init_from as an absolute path; complete_run (what an ablation or the demo re-runs) and a
    resume given the same relative --init-from must see the same setting, not refuse the run as another."""
    from simam_paddle.experiments import complete_run, train_run

    monkeypatch.chdir(tmp_path)
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "simam", "--output", "official"]) == 0
    _split(tmp_path / "split")
    settings = dict(init_from="official", epochs=1, batch_size=3, lr=1e-12)
    config = complete_run("split", "run", verbose=0, **settings)
    assert config["init_from"] == str(tmp_path / "official")
    assert complete_run("split", "run", verbose=0, **settings)["init_from"] == config["init_from"]  # finished
    train_run(None, "run", resume=True, verbose=0, **{**settings, "epochs": 1})  # nothing left, nothing refused
    with pytest.raises(ValueError, match="init_from: run has"):
        complete_run("split", "run", verbose=0, **{**settings, "init_from": "split"})
