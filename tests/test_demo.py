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


def test_explain_and_robustness_run_on_the_demos_runs_and_embedded_data(tiny_demo, tmp_path, capsys):
    """The README's commands after the demo: Grad-CAM and robustness of its two runs on the embedded Caltech-16."""
    from simam_paddle.cli import main
    from simam_paddle.experiments.robustness import read_robustness

    output, _ = tiny_demo
    runs = [os.path.join(output, "towernet_none"), os.path.join(output, "towernet_simam")]
    leopard = os.path.join(output, "data", "caltech16_split", "eval", "Leopards", "image_0001.jpg")
    assert main(["explain", runs[0], leopard, "--compare", runs[1], "--class-of-folder",
                 "--output", str(tmp_path / "gradcam.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1] for line in lines[:2]] == ["none", "simam"]
    assert all("map of Leopards at b5.0" in line for line in lines[:2])
    assert main(["robustness", *runs, "--output", str(tmp_path / "robustness"), "--corruptions", "occlusion",
                 "--severities", "5", "--quiet"]) == 0
    rows = read_robustness(tmp_path / "robustness")
    assert {(r["run"], r["corruption"], r["total"]) for r in rows} == {
        (name, corruption, 16) for name in ("towernet_none", "towernet_simam") for corruption in ("clean", "occlusion")}
