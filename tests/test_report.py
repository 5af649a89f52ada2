import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simam_paddle.cli import main
from simam_paddle.experiments.report import aggregate_runs, format_markdown_table, summarize_runs
from simam_paddle.plots import plot_mean_curves

HISTORY = ["epoch", "loss", "acc", "eval_loss", "eval_acc", "lr", "time"]


def fake_run(root, name, attention, seed, eval_accs, times=None, data="/somewhere/digits_split", epochs=None,
             **config):
    """A run folder as `train` leaves it, written by hand: config.json and history.csv."""
    run = root / name
    run.mkdir(parents=True)
    times = times or [10.0] * len(eval_accs)
    full = {"model": "towernet", "attention": attention, "seed": seed, "data": data,
            "epochs": epochs or len(eval_accs), "image_size": 128, "batch_size": 32, "lr": 0.01,
            "weight_decay": 2e-4, "momentum": 0.9, "num_classes": 10, "train_samples": 500, "eval_samples": 364,
            "paddle_version": "3.3.1", **config}
    (run / "config.json").write_text(json.dumps(full))
    with open(run / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HISTORY)
        for i, (acc, t) in enumerate(zip(eval_accs, times), start=1):
            writer.writerow([i, 2.0 / i, 0.5, 1.0 / i, "" if acc is None else acc, 0.01, t])
    return str(run)


@pytest.fixture
def ablation(tmp_path):
    accs = {
        ("none", 0): [0.5, 0.7, 0.65], ("none", 1): [0.6, 0.62, 0.8], ("none", 2): [0.55, 0.75, 0.7],
        ("simam", 0): [0.6, 0.9, 0.9], ("simam", 1): [0.7, 0.8, 0.85], ("simam", 2): [0.9, 0.6, 0.7],
    }
    for (attention, seed), values in accs.items():
        fake_run(tmp_path, f"towernet_{attention}_seed{seed}", attention, seed, values,
                 times=[10.0 + seed, 12.0, 14.0 + seed])
    return tmp_path, accs


def test_summarize_reads_best_accuracy_epoch_and_time(ablation):
    root, accs = ablation
    rows = summarize_runs(str(root), count_parameters=False)
    assert [r["name"] for r in rows] == sorted(os.listdir(root))
    for row in rows:
        values = accs[(row["attention"], row["seed"])]
        assert row["best_eval_acc"] == pytest.approx(max(values))
        assert row["best_epoch"] == int(np.argmax(values)) + 1  # the first epoch that reached the best
        assert row["final_eval_acc"] == pytest.approx(values[-1])
        assert row["time_per_epoch"] == pytest.approx(np.mean([10.0 + row["seed"], 12.0, 14.0 + row["seed"]]))
        assert row["epochs"] == 3 and row["finished"]
        assert row["data"] == "digits_split" and row["params"] is None


def test_summarize_counts_parameters_of_the_built_model(tmp_path):
    import paddle

    from simam_paddle.models.zoo import build_model

    none = fake_run(tmp_path, "a", "none", 0, [0.5])
    se = fake_run(tmp_path, "b", "se", 0, [0.5])
    published = fake_run(tmp_path, "c", None, 0, [0.5])
    paddle.seed(5)
    rows = summarize_runs([none, se, published])
    after = paddle.rand([4]).numpy()
    paddle.seed(5)
    # counting builds models, but must not move the caller's random stream
    np.testing.assert_array_equal(after, paddle.rand([4]).numpy())
    expected = {a: sum(int(np.prod(p.shape)) for p in build_model("towernet", 10, attention=a).parameters()
                       if not p.stop_gradient)
                for a in ("none", "se")}
    assert rows[0]["params"] == expected["none"]
    assert rows[1]["params"] == expected["se"] > expected["none"]
    # attention None is TowerNet as published, with SimAM, which has no parameters
    assert rows[2]["attention"] == "simam" and rows[2]["params"] == expected["none"]


def test_aggregate_mean_and_sample_std_match_numpy(ablation):
    root, accs = ablation
    groups = aggregate_runs(summarize_runs(str(root), count_parameters=False))
    assert [(g["data"], g["model"], g["attention"]) for g in groups] == [
        ("digits_split", "towernet", "none"), ("digits_split", "towernet", "simam")]
    for group in groups:
        best = [max(accs[(group["attention"], s)]) for s in (0, 1, 2)]
        assert group["n"] == 3 and sorted(group["seeds"]) == [0, 1, 2]
        assert group["best_eval_acc_mean"] == pytest.approx(np.mean(best))
        assert group["best_eval_acc_std"] == pytest.approx(np.std(best, ddof=1))
        assert group["best_eval_acc_min"] == pytest.approx(min(best))
        assert group["time_per_epoch"] == pytest.approx(np.mean([np.mean([10 + s, 12, 14 + s]) for s in (0, 1, 2)]))
        assert group["unfinished"] == 0


def test_aggregate_single_run_has_no_std_and_counts_unfinished(tmp_path):
    run = fake_run(tmp_path, "r", "simam", 0, [0.4, 0.6], epochs=5)
    (group,) = aggregate_runs(summarize_runs([run], count_parameters=False))
    assert group["n"] == 1 and group["best_eval_acc_std"] is None
    assert group["unfinished"] == 1 and group["epochs"] == 5
    assert "(1 unfinished)" in format_markdown_table([group])


def test_aggregate_refuses_to_average_different_settings(tmp_path):
    a = fake_run(tmp_path, "a", "simam", 0, [0.5])
    b = fake_run(tmp_path, "b", "simam", 1, [0.6], image_size=256)
    rows = summarize_runs([a, b], count_parameters=False)
    with pytest.raises(ValueError, match="image_size.*add 'image_size' to `by`"):
        aggregate_runs(rows)
    assert len(aggregate_runs(rows, by=("data", "model", "attention", "image_size"))) == 2
    with pytest.raises(ValueError, match="cannot group by \\['learning_rate'\\]"):
        aggregate_runs(rows, by=("learning_rate",))



@pytest.mark.parametrize("setting", ["e_lambda", "train_per_class", "init_from", "optimizer"])
def test_every_setting_that_changes_training_must_agree_in_a_group(tmp_path, setting):
    # The list comes from TrainConfig: settings a resume may not change, and not set per run.
    from simam_paddle.experiments.config import compared_settings

    assert setting in compared_settings()
    a = fake_run(tmp_path, "a", "simam", 0, [0.5])
    b = fake_run(tmp_path, "b", "simam", 1, [0.6], **{setting: {"init_from": "/runs/x", "optimizer": "adam"}.get(setting, 1)})
    with pytest.raises(ValueError, match=f"differ in {setting}"):
        aggregate_runs(summarize_runs([a, b], count_parameters=False))


def test_settings_a_resume_may_change_do_not_split_a_group(tmp_path):
    a = fake_run(tmp_path, "a", "simam", 0, [0.5], device="gpu", num_workers=4)
    b = fake_run(tmp_path, "b", "simam", 1, [0.6], device="cpu", num_workers=0)
    assert len(aggregate_runs(summarize_runs([a, b], count_parameters=False))) == 1


def test_runs_without_any_evaluation_are_left_out_of_the_mean(tmp_path):
    a = fake_run(tmp_path, "a", "se", 0, [None, None])
    b = fake_run(tmp_path, "b", "se", 1, [0.3, 0.4])
    rows = summarize_runs([a, b], count_parameters=False)
    assert rows[0]["best_eval_acc"] is None
    (group,) = aggregate_runs(rows)
    assert group["n"] == 1 and group["best_eval_acc_mean"] == pytest.approx(0.4)


def test_markdown_table_shows_percent_mean_and_std(ablation):
    root, accs = ablation
    rows = summarize_runs(str(root), count_parameters=False)
    groups = aggregate_runs(rows)
    lines = format_markdown_table(groups).splitlines()
    assert len(lines) == 2 + len(groups)
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|")
    best = [max(accs[("simam", s)]) for s in (0, 1, 2)]
    assert f"{100 * np.mean(best):.2f} ± {100 * np.std(best, ddof=1):.2f}" in lines[3]
    run_lines = format_markdown_table(rows, columns=["name", "best_eval_acc"]).splitlines()
    assert run_lines[0] == "| run | best eval acc (%) |"
    assert run_lines[2] == f"| {rows[0]['name']} | {100 * rows[0]['best_eval_acc']:.2f} |"


def test_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no run folders"):
        summarize_runs(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        summarize_runs(str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        summarize_runs([str(tmp_path)])
    with pytest.raises(ValueError, match="at least one"):
        aggregate_runs([])


def test_mean_curves_plot_the_mean_over_seeds(ablation):
    root, accs = ablation
    groups = aggregate_runs(summarize_runs(str(root), count_parameters=False))
    fig = plot_mean_curves(groups, output=root / "curves.png", title="t")
    ax_loss, ax_acc = fig.axes
    lines = {line.get_label(): line for line in ax_acc.get_lines()}
    assert sorted(lines) == ["none (n=3)", "simam (n=3)"]
    expected = np.mean([accs[("simam", s)] for s in (0, 1, 2)], axis=0)
    np.testing.assert_allclose(lines["simam (n=3)"].get_ydata(), expected)
    from matplotlib.colors import to_hex  # each group in its network's colour, as in plot_curves

    assert to_hex(lines["simam (n=3)"].get_color()) == to_hex("tab:green")
    assert to_hex(lines["none (n=3)"].get_color()) == to_hex("tab:blue")
    with Image.open(root / "curves.png") as image:
        assert image.size == (1000, 400)


EXAMPLE = Path(__file__).parent / "data" / "results_example"


def test_report_rebuilds_the_committed_summary_byte_for_byte(tmp_path):
    from simam_paddle.cli import main

    assert main(["report", str(EXAMPLE), "--output", str(tmp_path), "--no-figure"]) == 0
    expected = (EXAMPLE.parent / "results_example_summary.md").read_bytes()
    assert (tmp_path / "summary.md").read_bytes() == expected
    assert not (EXAMPLE / "summary.md").exists()  # --output keeps the results folder as it was


@pytest.mark.parametrize("metric,pick", [("best_eval_acc", max), ("final_eval_acc", lambda accs: accs[-1])])
def test_paired_differences_match_an_independent_t_interval(metric, pick):
    from scipy import stats

    from simam_paddle.experiments.report import paired_differences

    best = {}
    for run in sorted(EXAMPLE.iterdir()):
        if not run.is_dir():
            continue
        with open(run / "history.csv", newline="") as f:
            best[run.name] = pick([float(r["eval_acc"]) for r in csv.DictReader(f)])
    diffs = np.array([best[f"cifar_resnet20_simam_seed{s}"] - best[f"cifar_resnet20_none_seed{s}"] for s in range(3)])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)

    [got] = paired_differences(summarize_runs(str(EXAMPLE), count_parameters=False), metric=metric)
    assert got["attention"] == "simam" and got["n"] == 3 and got["wins"] == int((diffs > 0).sum())
    np.testing.assert_allclose([got["diff_mean"], got["ci_low"], got["ci_high"]],
                               [diffs.mean(), diffs.mean() - half, diffs.mean() + half], rtol=1e-12)


def test_a_finished_run_is_skipped_on_another_machine(tmp_path):
    # A committed run holds no weights and names its data by a path of the machine that made it;
    # complete_run must skip it when its history is complete, whatever --data is here.
    import shutil

    from simam_paddle.experiments.runs import complete_run

    run = tmp_path / "cifar_resnet20_none_seed0"
    shutil.copytree(EXAMPLE / run.name, run)
    before = (run / "history.csv").read_bytes()
    config = complete_run(str(tmp_path / "no_such_split"), str(run), model="cifar_resnet20", attention="none",
                          seed=0, epochs=4)
    assert config["epochs"] == 4 and (run / "history.csv").read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv"]


def test_report_update_rewrites_only_its_block(tmp_path, capsys):
    from simam_paddle.cli import main

    doc = tmp_path / "RESULTS.md"
    before, after = "# Results\n\nprose before\n\n", "\n\nprose after, <!-- end report --> quoted\n"
    doc.write_text(f"{before}<!-- report {EXAMPLE} -->\nstale table\n<!-- end report -->{after}", encoding="utf-8")
    assert main(["report", str(EXAMPLE), "--output", str(tmp_path / "out"), "--no-figure", "--update", str(doc)]) == 0
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    body = summary.split("\n", 2)[2]  # the summary without its title line and the blank line after it
    assert doc.read_text(encoding="utf-8") == f"{before}<!-- report {EXAMPLE} -->\n{body}<!-- end report -->{after}"
    # a current block is left alone, file and modification time
    stamp = os.stat(doc).st_mtime_ns
    assert main(["report", str(EXAMPLE), "--output", str(tmp_path / "out"), "--no-figure", "--update", str(doc)]) == 0
    assert os.stat(doc).st_mtime_ns == stamp
    capsys.readouterr()
    other = tmp_path / "OTHER.md"
    other.write_text("<!-- report docs/results/x -->\n<!-- end report -->\n", encoding="utf-8")
    assert main(["report", str(EXAMPLE), "--output", str(tmp_path / "o2"), "--no-figure", "--update", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"no line '<!-- report {EXAMPLE} -->' or '<!-- groups {EXAMPLE} -->'" in err
    assert "blocks there: <!-- report docs/results/x -->" in err
    assert not (tmp_path / "o2").exists()  # refused before anything was written


RESULTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "results"


def _experiments():
    return sorted(p.name for p in RESULTS_DIR.iterdir() if p.is_dir()) if RESULTS_DIR.is_dir() else []


@pytest.mark.parametrize("experiment", _experiments())
def test_committed_results_rebuild_their_summary_and_results_md_byte_for_byte(experiment, tmp_path, monkeypatch):
    """docs/results/<experiment>/summary.md and its blocks in docs/RESULTS.md and the README are what
    `report` makes of the committed histories now: rerunning `python -m simam_paddle report
    docs/results/<experiment> --update docs/RESULTS.md` (and `--update README.md`) changes nothing."""
    from simam_paddle.experiments.report import write_report

    root = RESULTS_DIR.parents[1]
    monkeypatch.chdir(root)
    assert f"<!-- report docs/results/{experiment} -->" in (root / "docs" / "RESULTS.md").read_text(encoding="utf-8")
    for document in ("docs/RESULTS.md", "README.md"):
        copy = tmp_path / os.path.basename(document)
        copy.write_bytes((root / document).read_bytes())
        if f" docs/results/{experiment} -->" not in copy.read_text(encoding="utf-8"):
            continue  # the README shows some experiments only
        result = write_report(f"docs/results/{experiment}", output=tmp_path / "out", figure=False, update=copy)
        assert copy.read_bytes() == (root / document).read_bytes(), document
    summary = (tmp_path / "out" / "summary.md").read_bytes()
    assert summary == (RESULTS_DIR / experiment / "summary.md").read_bytes()
    assert all(row["finished"] for row in result["rows"]), "a committed run is unfinished"


def test_report_update_fills_a_groups_block_with_the_table_of_means(tmp_path):
    from simam_paddle.experiments.report import aggregate_runs, write_report

    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n<!-- groups {EXAMPLE} -->\nold\n<!-- end groups -->\noutro\n", encoding="utf-8")
    write_report(str(EXAMPLE), output=tmp_path / "out", figure=False, update=doc)
    table = format_markdown_table(aggregate_runs(summarize_runs(str(EXAMPLE))))
    assert doc.read_text(encoding="utf-8") == f"intro\n<!-- groups {EXAMPLE} -->\n{table}\n<!-- end groups -->\noutro\n"
    assert "93.67 ± 4.17" in table  # the committed example's none group (tests/data/results_example_summary.md)


def test_report_lists_the_baseline_first(tmp_path):
    from simam_paddle.experiments.report import write_report

    result = write_report(str(EXAMPLE), output=tmp_path, figure=False, baseline="simam")
    assert [g["attention"] for g in result["groups"]] == ["simam", "none"]  # none's folders sort first
    assert [r["attention"] for r in result["rows"]][:3] == ["simam"] * 3


@pytest.mark.parametrize("attentions, says", [
    (["none"], "(no run of another attention shares a seed with `none` yet)"),
    (["simam"], "(no `none` runs to pair)"),
])
def test_report_says_why_nothing_is_paired(tmp_path, attentions, says):
    from simam_paddle.experiments.report import write_report

    for seed, attention in enumerate(attentions):
        fake_run(tmp_path / "runs", f"towernet_{attention}_seed{seed}", attention, seed, [0.5, 0.6])
    summary = write_report(str(tmp_path / "runs"), output=tmp_path / "out", figure=False)["summary"]
    assert summary.count(says) == 2  # best and final accuracy


def test_the_summary_names_adam_and_its_beta1_and_old_runs_momentum(tmp_path):
    from simam_paddle.experiments.report import write_report

    for seed in (0, 1):
        fake_run(tmp_path / "adam", f"towernet_none_seed{seed}", "none", seed, [0.5, 0.6], optimizer="adam", lr=1e-4)
        fake_run(tmp_path / "old", f"towernet_none_seed{seed}", "none", seed, [0.5, 0.6])  # no optimizer key
    summary = write_report(str(tmp_path / "adam"), output=tmp_path / "a", figure=False)["summary"]
    assert "batch 32, Adam, lr 0.0001 (cosine to 0), beta1 0.9, weight decay 0.0002, Paddle 3.3.1." in summary
    summary = write_report(str(tmp_path / "old"), output=tmp_path / "b", figure=False)["summary"]
    assert "batch 32, lr 0.01 (cosine to 0), momentum 0.9, weight decay 0.0002, Paddle 3.3.1." in summary


def test_a_baselines_folder_says_which_model_used_which_optimizer(tmp_path):
    """Models trained with different recipes in one folder (the notebook's baselines): the settings line
    claims only what every run shares and names each model's own optimizer and learning rate."""
    from simam_paddle.experiments.report import write_report

    fake_run(tmp_path / "runs", "resnet50_none_seed0", "none", 0, [0.5, 0.6], model="resnet50")
    fake_run(tmp_path / "runs", "mobilenet_v2_none_seed0", "none", 0, [0.5, 0.7], model="mobilenet_v2")
    fake_run(tmp_path / "runs", "vgg19_none_seed0", "none", 0, [0.3, 0.4], model="vgg19", optimizer="adam",
             lr=1e-4, momentum=0.5)
    summary = write_report(str(tmp_path / "runs"), output=tmp_path / "out", figure=False)["summary"]
    lines = summary.splitlines()
    assert lines[0] == "# mobilenet_v2, resnet50, vgg19 on digits_split: none"
    shared = next(line for line in lines if line.startswith("Same settings for every run:"))
    assert "lr" not in shared and "momentum" not in shared and "beta1" not in shared
    assert "128 px, 2 epochs, batch 32, weight decay 0.0002, Paddle 3.3.1." in shared
    assert ("Settings that differ by model: mobilenet_v2, resnet50: lr 0.01 (cosine to 0), momentum 0.9; "
            "vgg19: Adam, lr 0.0001 (cosine to 0), beta1 0.5.") in lines


def test_runs_of_another_framework_say_so_and_never_average_with_the_packages(tmp_path):
    from simam_paddle.experiments.report import write_report

    mirror = {"framework": "pytorch 2.11.0 (tools/torch_towernet.py)", "device": "NVIDIA H200", "paddle_version": None}
    for seed in (0, 1):
        fake_run(tmp_path / "gpu", f"towernet_none_seed{seed}", "none", seed, [0.5, 0.6], **mirror)
    summary = write_report(str(tmp_path / "gpu"), output=tmp_path / "out", figure=False)["summary"]
    assert "momentum 0.9, weight decay 0.0002, pytorch 2.11.0 (tools/torch_towernet.py), on NVIDIA H200." in summary
    assert "Paddle" not in summary.split("\n\n")[1]

    fake_run(tmp_path / "mixed", "towernet_none_seed0", "none", 0, [0.5, 0.6], **mirror)
    fake_run(tmp_path / "mixed", "towernet_none_seed1", "none", 1, [0.5, 0.6])
    with pytest.raises(ValueError, match="framework"):
        aggregate_runs(summarize_runs(str(tmp_path / "mixed")))


def test_report_reads_a_history_without_evaluation_and_a_converted_run(tmp_path):
    import csv as _csv
    import json as _json

    from simam_paddle.experiments.report import summarize_runs

    base = {"model": "cifar_resnet20", "attention": "none", "epochs": 2, "image_size": 32, "batch_size": 4,
            "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "seed": 0, "num_classes": 2, "classes": ["a", "b"],
            "train_samples": 8, "eval_samples": 4, "paddle_version": "3.3.1"}
    plain = tmp_path / "runs" / "no_eval"
    plain.mkdir(parents=True)
    (plain / "config.json").write_text(_json.dumps({**base, "data": "split"}))
    with open(plain / "history.csv", "w", newline="") as f:
        writer = _csv.writer(f)
        writer.writerow(["epoch", "loss", "acc"])
        writer.writerows([[1, 0.9, 0.5], [2, 0.7, 0.6]])
    converted = tmp_path / "runs" / "converted"
    converted.mkdir()
    (converted / "config.json").write_text(_json.dumps({**base, "data": None, "converted_from": "model.pth"}))
    rows = {r["name"]: r for r in summarize_runs(str(tmp_path / "runs"), count_parameters=False)}
    assert rows["no_eval"]["best_eval_acc"] is None and rows["no_eval"]["epochs"] == 2
    assert rows["no_eval"]["time_per_epoch"] is None
    assert rows["converted"]["data"] == "(converted)" and rows["converted"]["epochs"] == 0


def test_nan_accuracies_are_skipped_and_a_huge_num_classes_is_counted_without_building(tmp_path, capsys):
    fake_run(tmp_path, "diverged", "simam", 0, [float("nan"), 0.4, float("nan")])
    fake_run(tmp_path, "no_score", "none", 0, [float("nan"), float("nan")])
    fake_run(tmp_path, "claims", "simam", 1, [0.5, 0.6], num_classes=10**12)
    fake_run(tmp_path, "ten", "simam", 2, [0.5, 0.6])
    rows = {row["name"]: row for row in summarize_runs(str(tmp_path))}
    assert (rows["diverged"]["best_eval_acc"], rows["diverged"]["best_epoch"]) == (0.4, 2)
    assert rows["diverged"]["final_eval_acc"] is None
    assert rows["no_score"]["best_eval_acc"] is rows["no_score"]["best_epoch"] is rows["no_score"]["final_eval_acc"] is None
    # the classifier is linear in num_classes: counted, never built (10**12 classes would not fit in memory)
    ten = rows["ten"]["params"]
    per_class = 257  # TowerNet's 256 features -> one logit and its bias
    assert rows["claims"]["params"] == ten + per_class * (10**12 - 10)
    for name in ("diverged", "no_score", "claims"):
        assert main(["report", str(tmp_path / name)]) == 0
        captured = capsys.readouterr()
        assert "| nan" not in captured.out and "nan |" not in captured.out and "Traceback" not in captured.err


def test_two_runs_of_one_attention_and_seed_are_refused_not_paired_by_whichever_came_last(tmp_path):
    # A re-run kept next to the first (towernet_simam_seed0_rerun): pairing by seed used only one of the two,
    # so the difference to none was -10 points or +20 depending on the folder names.
    from simam_paddle.experiments.report import paired_differences, write_report

    fake_run(tmp_path, "towernet_none_seed0", "none", 0, [0.5, 0.6])
    fake_run(tmp_path, "towernet_simam_seed0", "simam", 0, [0.7, 0.8])
    fake_run(tmp_path, "towernet_simam_seed0_rerun", "simam", 0, [0.4, 0.5])
    with pytest.raises(ValueError, match=r"towernet_simam_seed0, towernet_simam_seed0_rerun .*seed 0"):
        write_report(str(tmp_path), figure=False)
    assert not (tmp_path / "summary.md").exists()
    with pytest.raises(ValueError, match="seed 0"):
        paired_differences(summarize_runs(str(tmp_path), count_parameters=False))
