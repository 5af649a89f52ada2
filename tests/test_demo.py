"""The demo (simam_paddle/experiments/demo.py), with settings shrunk so that it trains in seconds."""
import os

import pytest

from simam_paddle.engine.history import read_history
from simam_paddle.experiments import demo

TINY = dict(epochs=1, image_size=128, batch_size=10, lr=0.01, train_per_class=1, eval_per_class=1)


@pytest.fixture
def tiny_demo(monkeypatch, tmp_path_factory):
    monkeypatch.setitem(demo.DEMO_SETTINGS, "quick", TINY)
    output = tmp_path_factory.mktemp("demo")
    return str(output), demo.run_demo(str(output), quick=True, verbose=0)


def test_demo_trains_both_variants_alike_and_reports_them(tiny_demo):
    output, result = tiny_demo
    assert sorted(result["runs"]) == ["none", "simam"]
    assert os.path.isfile(os.path.join(output, "data", "caltech16_split", "split_manifest.csv"))
    assert result["summary"].startswith("# Demo: TowerNet with and without SimAM on Caltech-16 (quick)")
    for attention, run in result["runs"].items():
        rows = read_history(os.path.join(output, f"towernet_{attention}"))
        assert len(rows) == run["epochs"] == 1
        assert run["best_eval_acc"] == rows[0]["eval_acc"] and run["best_epoch"] == 1
        assert run["seconds"] == pytest.approx(rows[0]["time"])
        # The summary's table is report.format_markdown_table's: accuracies in percent.
        assert f"| {attention} | {100 * run['best_eval_acc']:.2f} | 1 |" in result["summary"]
    assert "Same seed and settings: epochs=1, image_size=128" in result["summary"]
    assert open(os.path.join(output, "summary.md"), encoding="utf-8").read() == result["summary"]
    names = sorted(os.path.basename(f) for f in result["files"])
    assert names == ["attention.png", "curves.png", "summary.md"]
    for path in result["files"]:
        assert os.path.getsize(path) > 0


def test_a_second_demo_trains_nothing(tiny_demo):
    output, first = tiny_demo
    history = os.path.join(output, "towernet_simam", "history.csv")
    stamp = os.path.getmtime(history)
    again = demo.run_demo(output, quick=True, verbose=0)
    assert os.path.getmtime(history) == stamp
    assert again["runs"] == first["runs"]
