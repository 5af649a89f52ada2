"""An attention ablation (simam_paddle/experiments/ablation.py): runs, per-attention options, summary."""
import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from simam_paddle.engine.history import HISTORY_COLUMNS, read_history
from simam_paddle.experiments import runs as runs_module
from simam_paddle.experiments.ablation import run_ablation

# Best eval accuracy each fake run reaches, by (attention, seed).
BEST = {("none", 0): 0.5, ("none", 1): 0.7, ("se", 0): 0.6, ("se", 1): 0.6, ("simam", 0): 0.8, ("simam", 1): 0.9}


@pytest.fixture
def fake_training(monkeypatch):
    """complete_run replaced by one that writes the run folder `train` would, without training."""
    calls = []

    def complete_run(data, output, verbose=1, **settings):
        calls.append((os.path.basename(output), settings))
        os.makedirs(output, exist_ok=True)
        config = {"data": data, "epochs": 2, "image_size": 32, "batch_size": 4, "lr": 0.01, "weight_decay": 2e-4,
                  "momentum": 0.9, "num_classes": 2, "classes": ["a", "b"], "train_samples": 8, "eval_samples": 4,
                  "paddle_version": "3.3.1", **settings}
        with open(os.path.join(output, "config.json"), "w") as f:
            json.dump(config, f)
        best = BEST[(settings["attention"], settings["seed"])]
        with open(os.path.join(output, "history.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(HISTORY_COLUMNS)
            writer.writerow([1, 1.0, 0.5, 1.0, best / 2, 0.01, 3.0])
            writer.writerow([2, 0.5, 0.6, 0.8, best, 0.005, 5.0])
        return config

    monkeypatch.setattr(runs_module, "complete_run", complete_run)
    return calls


def test_every_attention_and_seed_runs_once_seed_by_seed_with_its_own_options(tmp_path, fake_training):
    result = run_ablation("split", str(tmp_path), attentions=["none", "se", "simam"], seeds=[0, 1], verbose=0,
                          epochs=2, e_lambda=0.1, reduction=4)
    names = [name for name, _ in fake_training]
    assert names == ["towernet_none_seed0", "towernet_se_seed0", "towernet_simam_seed0",
                     "towernet_none_seed1", "towernet_se_seed1", "towernet_simam_seed1"]
    options = {name: settings for name, settings in fake_training}
    # e_lambda is SimAM's option and reduction SE's: each reaches only the layer that takes it.
    assert "e_lambda" not in options["towernet_none_seed0"] and "reduction" not in options["towernet_none_seed0"]
    assert options["towernet_se_seed1"]["reduction"] == 4 and "e_lambda" not in options["towernet_se_seed1"]
    assert options["towernet_simam_seed0"]["e_lambda"] == 0.1 and "reduction" not in options["towernet_simam_seed0"]
    assert all(s["epochs"] == 2 and s["model"] == "towernet" for s in options.values())

    groups = {g["attention"]: g for g in result["groups"]}
    assert list(groups) == ["none", "se", "simam"]
    for attention, group in groups.items():
        scores = [BEST[(attention, s)] for s in (0, 1)]
        assert group["n"] == 2
        assert group["best_eval_acc_mean"] == pytest.approx(np.mean(scores))
    assert groups["simam"]["best_eval_acc_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    summary = (tmp_path / "summary.md").read_text()
    assert summary == result["summary"]
    assert "| simam | 2 | 85.00 ± 7.07 |" in summary.replace("| towernet ", "").replace("| split ", "")
    assert "| towernet_none_seed1 |" in summary
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert result["files"] == [str(tmp_path / "summary.md"), str(tmp_path / "curves.png")]


@pytest.mark.parametrize("kwargs, match", [
    (dict(attentions=["simam", "bogus"]), r"unknown attention \['bogus'\]"),
    (dict(attentions=["simam", "simam"]), "distinct names"),
    (dict(attentions=[]), "at least one"),
    (dict(seeds=[0, 0]), "distinct integers"),
    (dict(seeds=[0.5]), "distinct integers"),
    (dict(attention="se"), "set per run"),
    (dict(seed=3), "set per run"),
])
def test_bad_choices_are_refused_before_anything_runs(tmp_path, fake_training, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_ablation("split", str(tmp_path / "out"), verbose=0, **kwargs)
    assert fake_training == [] and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ablation_command_trains_every_run_once_and_writes_the_summary(tmp_path, capsys):
    from simam_paddle.cli import main

    rng = np.random.RandomState(0)
    for part, count in (("train", 2), ("eval", 1)):
        for c, value in (("dark", 40), ("light", 220)):
            os.makedirs(tmp_path / "split" / part / c)
            for i in range(count):
                pixels = np.clip(value + rng.randn(16, 16, 3) * 10, 0, 255).astype("uint8")
                Image.fromarray(pixels).save(tmp_path / "split" / part / c / f"{i}.png")
    out = tmp_path / "ablation"
    args = ["ablation", "--data", str(tmp_path / "split"), "--output", str(out), "--attentions", "none", "simam",
            "--seeds", "0", "1", "--epochs", "1", "--image-size", "128", "--batch-size", "4", "--quiet"]
    assert main(args) == 0
    names = sorted(d for d in os.listdir(out) if os.path.isdir(out / d))
    assert names == ["towernet_none_seed0", "towernet_none_seed1", "towernet_simam_seed0", "towernet_simam_seed1"]
    configs = {n: json.loads((out / n / "config.json").read_text()) for n in names}
    assert {(c["attention"], c["seed"], c["epochs"], c["image_size"]) for c in configs.values()} == {
        (a, s, 1, 128) for a in ("none", "simam") for s in (0, 1)}
    summary = (out / "summary.md").read_text()
    for name in names:
        best = read_history(out / name)[0]["eval_acc"]
        assert f"| {name} |" in summary and f"{100 * best:.2f}" in summary
    assert (out / "curves.png").stat().st_size > 0

    # Re-running trains nothing (the histories stay one epoch long); other settings are refused.
    stamps = {n: os.path.getmtime(out / n / "history.csv") for n in names}
    assert main(args) == 0
    assert stamps == {n: os.path.getmtime(out / n / "history.csv") for n in names}
    capsys.readouterr()
    assert main([*args[:-1], "--lr", "0.5"]) == 2
    assert "lr: run has 0.01, given 0.5" in capsys.readouterr().err
    assert main([*args[:5], "--attentions", "simam", "bogus"]) == 2
    assert "unknown attention ['bogus']" in capsys.readouterr().err


