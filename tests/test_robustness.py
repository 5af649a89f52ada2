"""evaluate_robustness and `robustness`: accuracies checked by evaluating corrupted copies written as files."""
import json

import numpy as np
import pytest
from PIL import Image

from simam_paddle.cli import main
from simam_paddle.data.corruptions import corrupt
from simam_paddle.experiments.report import robustness_runs, write_report
from simam_paddle.experiments.robustness import evaluate_robustness, read_robustness
from simam_paddle.experiments.runs import evaluate_run

from trained_runs import colour_ablation


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    return colour_ablation(tmp_path_factory.mktemp("robustness"), seeds=(0, 1))


def test_each_rows_accuracy_is_that_of_evaluate_on_the_corrupted_images_written_as_files(ablation, tmp_path):
    split, runs = ablation
    result = evaluate_robustness(runs, corruptions=["gaussian_noise", "occlusion"], severities=[2, 5], seed=4)
    assert len(result["rows"]) == 4 * (1 + 2 * 2)
    eval_files = sorted((split / "eval").glob("*/*.png"))
    for corruption, severity in [("gaussian_noise", 5), ("occlusion", 2)]:
        folder = tmp_path / f"{corruption}{severity}"
        for index, path in enumerate(eval_files):  # the dataset's order: classes, then file names
            target = folder / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.asarray(Image.open(path).convert("RGB"))
            Image.fromarray(corrupt(pixels, corruption, severity, seed=4, index=index)).save(target)
        for run in sorted(runs.iterdir()):
            expected = evaluate_run(str(run), data=str(folder), output=str(tmp_path / "cm"), onednn=False)["acc"]
            row, = [r for r in result["rows"] if r["run"] == run.name and r["corruption"] == corruption
                    and r["severity"] == severity]
            assert row["acc"] == pytest.approx(expected) and row["total"] == len(eval_files)
    for run in sorted(runs.iterdir()):
        clean, = [r for r in result["rows"] if r["run"] == run.name and r["corruption"] == "clean"]
        assert clean["acc"] == pytest.approx(evaluate_run(str(run), output=str(tmp_path / "cm"))["acc"])


def test_the_command_writes_table_and_record_and_report_renders_them(ablation, tmp_path, capsys):
    split, runs = ablation
    out = tmp_path / "out"
    assert main(["robustness", str(runs), "--output", str(out), "--corruptions", "jpeg", "contrast",
                 "--severities", "1", "3", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| cifar_resnet20 | none | 2 |" in printed and "mean corrupted" in printed
    rows = read_robustness(out)
    assert {(r["corruption"], r["severity"]) for r in rows} == {("clean", 0), ("jpeg", 1), ("jpeg", 3),
                                                                ("contrast", 1), ("contrast", 3)}
    record = json.loads((out / "robustness.json").read_text())
    assert record["corruptions"] == {"jpeg": [25, 18, 15, 10, 7], "contrast": [0.4, 0.3, 0.2, 0.1, 0.05]}
    assert record["images"] == 9 and set(record["runs"]) == {p.name for p in runs.iterdir()}
    assert all(isinstance(r["onednn_convs"], int) for r in record["runs"].values())
    # The report of the ablation folder renders the table when robustness.csv sits there.
    for name in ("robustness.csv", "robustness.json"):
        (runs / name).write_bytes((out / name).read_bytes())
    report = write_report(runs, output=tmp_path / "report", figure=True)
    assert "**Robustness to corrupted images.**" in report["summary"]
    assert (tmp_path / "report" / "robustness.png").stat().st_size > 0
    per_run = {r["run"]: r for r in robustness_runs(rows)}
    for run in per_run.values():
        corrupted = [r["acc"] for r in rows if r["run"] == run["run"] and r["corruption"] != "clean"]
        assert run["mean_corruption_acc"] == pytest.approx(np.mean(corrupted))
    none0 = per_run["cifar_resnet20_none_seed0"]
    assert f"{100 * none0['clean']:.1f}" in report["summary"]


def test_bad_options_and_mismatched_runs_are_refused(ablation, tmp_path):
    split, runs = ablation
    with pytest.raises(ValueError, match=r"unknown corruption\(s\) \['fog'\]; available corruptions"):
        evaluate_robustness(runs, corruptions=["fog"])
    with pytest.raises(ValueError, match=r"severities must be some of \[1, 2, 3, 4, 5\]"):
        evaluate_robustness(runs, severities=[0])
    other = tmp_path / "other" / "blue"
    other.mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(other / "0.png")
    with pytest.raises(ValueError, match="holds classes"):
        evaluate_robustness(runs, data=str(tmp_path / "other"))
    assert main(["robustness", str(runs), "--output", str(tmp_path / "x"), "--severities", "7"]) == 2


def test_runs_trained_on_other_images_with_the_same_names_are_refused(ablation, tmp_path):
    """Each run's own evaluation data must be the same images: a run of another split whose files carry the same
    names was scored on the first run's images (only the names were compared); a byte-equal copy is fine."""
    import shutil

    split, runs = ablation
    first, second = sorted(runs.iterdir())[:2]
    copies = {}
    for name, change in (("copy", False), ("changed", True)):
        shutil.copytree(split, tmp_path / name)
        if change:
            image = sorted((tmp_path / name / "eval").glob("*/*.png"))[0]
            Image.new("RGB", Image.open(image).size, (255, 255, 255)).save(image)
        run = tmp_path / f"{name}_runs" / second.name
        shutil.copytree(second, run)
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "data": str(tmp_path / name)}))
        copies[name] = run
    result = evaluate_robustness([str(first), str(copies["copy"])], corruptions=["jpeg"], severities=[1])
    assert len(result["rows"]) == 2 * 2
    with pytest.raises(ValueError, match="images themselves differ"):
        evaluate_robustness([str(first), str(copies["changed"])], corruptions=["jpeg"], severities=[1])


def test_the_commands_help_lists_every_corruption(capsys):
    from simam_paddle.data.corruptions import available_corruptions

    with pytest.raises(SystemExit):
        main(["robustness", "--help"])
    assert f"({', '.join(available_corruptions())})" in " ".join(capsys.readouterr().out.split())


def test_an_interrupted_evaluation_goes_on_where_it_stopped(ablation, tmp_path):
    split, runs = ablation
    options = dict(corruptions=["brightness", "rotation"], severities=[1, 4], seed=2)
    calls = []

    def stop_after_two(line):
        calls.append(line)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_robustness(runs, output=tmp_path / "out", progress=stop_after_two, **options)
    assert not (tmp_path / "out" / "robustness.csv").exists()
    again = []
    result = evaluate_robustness(runs, output=tmp_path / "out", progress=again.append, **options)
    assert [line.split(":")[0] for line in again] == ["brightness 4", "rotation 1", "rotation 4"]
    fresh = evaluate_robustness(runs, **options)
    assert result["rows"] == fresh["rows"]
    assert read_robustness(tmp_path / "out") == [{**r, "acc": pytest.approx(r["acc"], abs=1e-6)} for r in fresh["rows"]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["robustness.csv", "robustness.json"]


def test_runs_whose_folder_names_repeat_are_refused_not_merged_into_one_row(ablation, tmp_path):
    # robustness.csv names a run by its folder name: two runs of that name (the same ablation under two parents,
    # say two learning rates) gave rows that report pooled into one run, its clean accuracy the last one's.
    split, runs = ablation
    import shutil

    for parent in ("lr0.1", "lr0.01"):
        shutil.copytree(runs / "cifar_resnet20_none_seed0", tmp_path / parent / "cifar_resnet20_none_seed0")
    given = [str(tmp_path / "lr0.1"), str(tmp_path / "lr0.01")]
    with pytest.raises(ValueError, match=r"lr0\.1/cifar_resnet20_none_seed0, .*lr0\.01/cifar_resnet20_none_seed0 "
                       r"share the folder name 'cifar_resnet20_none_seed0'.*rename"):
        evaluate_robustness(given, corruptions=["jpeg"], severities=[1])
    with pytest.raises(ValueError, match="more than once"):
        evaluate_robustness([str(runs / "cifar_resnet20_none_seed0")] * 2, corruptions=["jpeg"], severities=[1])
    rows = [{"run": "r", "model": "m", "attention": "none", "seed": 0, "corruption": c, "severity": s, "acc": a}
            for c, s, a in [("clean", 0, .9), ("jpeg", 1, .8), ("clean", 0, .1), ("jpeg", 1, .1)]]
    with pytest.raises(ValueError, match=r"run 'r' has more than one row for clean 0"):
        robustness_runs(rows)


def _biased_weights(run, class_index):
    """Overwrite ``run``'s best weights so that it predicts ``class_index`` for every image."""
    import paddle

    from simam_paddle.experiments.runs import load_run

    network, _ = load_run(str(run))
    state = network.state_dict()
    bias = [key for key in state if key.endswith("bias")][-1]  # the classifier's
    values = np.zeros(state[bias].shape, "float32")
    values[class_index] = 1e4
    state[bias] = paddle.to_tensor(values)
    paddle.save(state, str(run / "best_model.pdparams"))


def test_an_interrupted_evaluation_is_not_continued_with_weights_changed_since(ablation, tmp_path):
    # An ablation still training when robustness was interrupted has new best weights when it is run again: the
    # rows of the finished conditions came from the old weights, the rest from the new ones.
    import shutil

    split, runs = ablation
    data = tmp_path / "skewed"
    for name, count in (("blue", 5), ("green", 1), ("red", 1)):
        (data / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (32, 32), (10 * i, 0, 0)).save(data / name / f"{i}.png")
    run = tmp_path / "runs" / "cifar_resnet20_none_seed0"
    shutil.copytree(runs / "cifar_resnet20_none_seed0", run)
    _biased_weights(run, 2)  # red: 1 of 7

    def stop(line):
        raise KeyboardInterrupt

    options = dict(output=tmp_path / "out", corruptions=["jpeg"], severities=[1], data=str(data))
    with pytest.raises(KeyboardInterrupt):
        evaluate_robustness(str(run), progress=stop, **options)
    _biased_weights(run, 0)  # blue: 5 of 7
    rows = evaluate_robustness(str(run), **options)["rows"]
    assert [(r["corruption"], r["correct"], r["total"]) for r in rows] == [("clean", 5, 7), ("jpeg", 5, 7)]
