import json
import os
import shutil
import zlib

import numpy as np
import paddle
import pytest
from PIL import Image


from simam_paddle._paddle import is_paddle2  # noqa: E402
from simam_paddle.engine.history import read_history  # noqa: E402
from simam_paddle.cli import build_parser, main  # noqa: E402
from simam_paddle.engine.acceleration import onednn_default  # noqa: E402
from simam_paddle.experiments.runs import evaluate_run, load_run  # noqa: E402

# mobilenet_v2 is the zoo's fastest model at a tiny size; TowerNet needs >= 127 px.
FAST = ["--model", "mobilenet_v2", "--image-size", "32", "--batch-size", "4", "--lr", "0.05"]
CLASSES = ["circle", "square", "stripe"]


def draw(kind, seed):
    rng = np.random.RandomState(seed)
    img = (rng.rand(32, 32, 3) * 60).astype("uint8")
    if kind == "circle":
        yy, xx = np.mgrid[:32, :32]
        img[(yy - 16) ** 2 + (xx - 16) ** 2 < 100] = 250
    elif kind == "square":
        img[8:24, 8:24] = 250
    else:
        img[:, ::4] = 250
    return Image.fromarray(img)


def make_split(root, classes=CLASSES, train=6, eval_=3):
    for part, count in (("train", train), ("eval", eval_)):
        for c in classes:
            os.makedirs(root / part / c)
            for i in range(count):
                # crc32, not hash(): str hashes change with every process, and so would the images
                draw(c, zlib.crc32(f"{part}/{c}/{i}".encode()) % 1000).save(root / part / c / f"{i}.png")
    return str(root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small CLI training shared by the tests that only read its run folder."""
    root = tmp_path_factory.mktemp("cli")
    split = make_split(root / "split")
    run = str(root / "run")
    assert main(["train", "--data", split, "--output", run, "--epochs", "2", "--quiet", *FAST]) == 0
    return split, run


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and "warnings.warn" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_train_writes_config_history_best_model_and_logs(trained):
    split, run = trained
    config = json.load(open(os.path.join(run, "config.json")))
    for key, value in {"model": "mobilenet_v2", "attention": "none", "num_classes": 3, "image_size": 32,
                       "classes": CLASSES, "epochs": 2, "batch_size": 4, "lr": 0.05, "weight_decay": 1e-4,
                       "momentum": 0.9, "seed": 0, "data": os.path.abspath(split), "train_samples": 18,
                       "eval_samples": 9}.items():
        assert config[key] == value, key
    rows = read_history(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r[k] is not None for r in rows for k in ("loss", "acc", "eval_loss", "eval_acc", "lr", "time"))
    # 18 images / batch 4 = 5 steps per epoch; epoch 2 starts at step 5 of 10
    assert rows[0]["lr"] == pytest.approx(0.05)
    assert rows[1]["lr"] == pytest.approx(0.05 * 0.5 * (1 + np.cos(np.pi * 5 / 10)))
    assert os.path.isfile(os.path.join(run, "best_model.pdparams"))
    assert os.listdir(os.path.join(run, "visualdl"))


def test_evaluate_reproduces_the_best_epoch(trained, capsys):
    _, run = trained
    assert main(["evaluate", run]) == 0
    out = capsys.readouterr().out
    printed = float(out.split("acc ", 1)[1].split()[0])
    rows = read_history(run)
    best = max(r["eval_acc"] for r in rows)
    assert printed == pytest.approx(best, abs=1e-4)
    result = evaluate_run(run)
    assert result["acc"] == pytest.approx(best, abs=1e-9)
    # The same logits as in training, not only the same count of right answers: the mean loss of the
    # best epoch (the first with the best accuracy, whose weights are best_model.pdparams) to float32
    # rounding. Evaluated on other kernels than it trained with, the network's logits differ by more.
    best_row = next(r for r in rows if r["eval_acc"] == best)
    assert result["loss"] == pytest.approx(best_row["eval_loss"], rel=1e-5, abs=1e-6)
    assert result["onednn"] == (bool(json.load(open(os.path.join(run, "config.json")))["onednn"])
                                and onednn_default())
    cm = np.loadtxt(os.path.join(run, "confusion_matrix.csv"), delimiter=",", skiprows=1, usecols=(1, 2, 3))
    assert cm.sum() == 9 and np.trace(cm) / 9 == pytest.approx(best)
    for name in CLASSES:
        assert name in out
    assert os.path.getsize(os.path.join(run, "confusion_matrix.png")) > 0


def test_evaluating_other_data_keeps_the_runs_own_confusion_matrix(trained, tmp_path):
    """evaluate --data OTHER wrote its matrix over RUN/confusion_matrix.csv; it goes to RUN/evaluations/OTHER."""
    import shutil

    split, original = trained
    run = str(tmp_path / "run")
    shutil.copytree(original, run)
    assert main(["evaluate", run]) == 0
    own = open(os.path.join(run, "confusion_matrix.csv"), "rb").read()
    other = str(tmp_path / "other")
    shutil.copytree(os.path.join(split, "eval"), other)
    os.remove(os.path.join(other, CLASSES[0], sorted(os.listdir(os.path.join(other, CLASSES[0])))[0]))  # other data
    assert main(["evaluate", run, "--data", other]) == 0
    assert open(os.path.join(run, "confusion_matrix.csv"), "rb").read() == own
    cm = np.loadtxt(os.path.join(run, "evaluations", "other", "confusion_matrix.csv"), delimiter=",", skiprows=1,
                    usecols=(1, 2, 3))
    assert cm.sum() == 8 and cm[0].sum() == 2
    assert os.path.isfile(os.path.join(run, "evaluations", "other", "confusion_matrix.png"))


@pytest.mark.parametrize("command", [["evaluate", "RUN"], ["predict", "RUN", "photo.jpg"]])
def test_evaluate_and_predict_take_the_runs_kernels_unless_told(command):
    parser = build_parser()
    assert parser.parse_args(command).onednn is None
    assert parser.parse_args(command + ["--no-onednn"]).onednn is False
    assert parser.parse_args(command + ["--onednn"]).onednn is True


def test_evaluate_on_other_kernels_than_the_runs(trained, tmp_path):
    _, run = trained
    result = evaluate_run(run, onednn=False, output=str(tmp_path))
    assert result["onednn"] is False and result["confusion_matrix"].sum() == 9


def test_export_gives_the_dygraph_logits(trained, tmp_path, capsys):
    _, run = trained
    out = str(tmp_path / "export")
    assert main(["export", run, "--output", out]) == 0
    # Paddle 3 writes its program as JSON; 2.6 as protobuf, with a parameter-name file beside the weights.
    formats = {3: ["model.json", "model.pdiparams"], 2: ["model.pdiparams", "model.pdiparams.info", "model.pdmodel"]}
    assert sorted(os.listdir(out)) == formats[2 if is_paddle2() else 3]
    network, _ = load_run(run)
    x = paddle.to_tensor(np.random.RandomState(5).randn(3, 3, 32, 32).astype("float32"))
    loaded = paddle.jit.load(os.path.join(out, "model"))
    loaded.eval()
    np.testing.assert_allclose(loaded(x).numpy(), network(x).numpy(), rtol=1e-5, atol=1e-5)


def test_export_to_a_file_names_the_problem_and_leaves_the_file(trained, tmp_path, capsys):
    _, run = trained
    blocker = tmp_path / "model.bin"
    blocker.write_bytes(b"keep")
    assert main(["export", run, "--output", str(blocker)]) == 2
    line = error_line(capsys)
    assert "--output" in line and "is a file" in line and "folder" in line
    assert blocker.read_bytes() == b"keep"


def test_plot(trained, tmp_path):
    _, run = trained
    path = str(tmp_path / "curves.png")
    assert main(["plot", run, run, "--labels", "a", "b", "--output", path]) == 0
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_resume_of_a_finished_run_changes_nothing_and_refuses_other_settings(trained, capsys):
    _, run = trained
    before = open(os.path.join(run, "history.csv")).read()
    assert main(["train", "--output", run, "--resume", "--quiet"]) == 0
    assert open(os.path.join(run, "history.csv")).read() == before
    capsys.readouterr()
    assert main(["train", "--output", run, "--resume", "--epochs", "5"]) == 2
    assert "epochs: run has 2, given 5" in error_line(capsys)


@pytest.mark.parametrize("args,expected", [
    (["--data", "{tmp}/missing"], "does not exist"),
    (["--data", "{split}", "--model", "resnet5"], "available models"),
    (["--data", "{noeval}"], "no eval/"),
    (["--data", "{split}", "--model", "towernet", "--image-size", "32"], "127"),
    (["--data", "{split}", "--output", "{run}"], "already holds a run"),
    ([], "--data SPLIT is required"),
    (["--data", "{split}", "--epochs", "0"], "--epochs 0: must be a positive integer"),
    (["--data", "{split}", "--attention", "simam", "--e-lambda", "-1"], "--e-lambda -1.0: must be a finite number > 0"),
])
def test_train_errors(trained, tmp_path, capsys, args, expected):
    split, run = trained
    noeval = tmp_path / "noeval"
    os.makedirs(noeval / "train" / "a")
    fmt = {"tmp": str(tmp_path), "split": split, "noeval": str(noeval), "run": run}
    argv = ["train", "--output", str(tmp_path / "new"), "--epochs", "1"]
    argv += [a.format(**fmt) for a in args]
    assert main(argv) == 2
    assert expected in error_line(capsys)


def test_evaluate_errors(trained, tmp_path, capsys):
    split, run = trained
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "does not exist" in error_line(capsys)
    # a checkpoint from another model
    other = tmp_path / "other"
    shutil.copytree(run, other)
    paddle.save(paddle.nn.Linear(3, 3).state_dict(), str(other / "best_model.pdparams"))
    assert main(["evaluate", str(other)]) == 2
    assert "does not fit model 'mobilenet_v2'" in error_line(capsys)
    # data with another number of classes
    two = make_split(tmp_path / "two", classes=["circle", "square"], train=1, eval_=1)
    assert main(["evaluate", run, "--data", two]) == 2
    assert "num_classes=3" in error_line(capsys)


def test_export_and_plot_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--output", str(tmp_path / "e")]) == 2
    assert "does not exist" in error_line(capsys)
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "history" in error_line(capsys)


def test_demo_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--quick", "--output", str(blocker)]) == 2
    error_line(capsys)


@pytest.mark.slow
def test_demo_end_to_end_with_tiny_settings(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    from simam_paddle.experiments import demo

    monkeypatch.setitem(demo.DEMO_SETTINGS, "quick", dict(epochs=1, image_size=128, batch_size=8, lr=0.01,
                                                           train_per_class=1, eval_per_class=1))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--quiet"]) == 0
    for name in ("curves.png", "attention.png", "summary.md", "towernet_simam/best_model.pdparams",
                 "towernet_none/history.csv"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    assert "| simam |" in summary and "| none |" in summary
    assert json.load(open(out / "towernet_none" / "config.json"))["attention"] == "none"
    from simam_paddle.layers.simam import SimAM

    def simam_layers(run):
        return sum(isinstance(layer, SimAM) for layer in load_run(str(out / run))[0].sublayers())

    assert simam_layers("towernet_none") == 0 and simam_layers("towernet_simam") > 0
    # running again trains nothing
    mtime = os.path.getmtime(out / "towernet_simam" / "history.csv")
    assert main(["demo", "--quick", "--output", str(out), "--quiet"]) == 0
    assert os.path.getmtime(out / "towernet_simam" / "history.csv") == mtime


@pytest.fixture
def read_only(tmp_path):
    """A folder this process cannot write into (as root, chmod does not stop writes: use /sys/kernel)."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        yield str(folder)
        folder.chmod(0o755)
        return
    folder = "/sys/kernel"
    try:
        open(os.path.join(folder, "probe.json"), "w").close()
    except OSError:
        yield folder
        return
    pytest.skip("no read-only folder to test with")


def test_unwritable_folders_are_one_line_errors(trained, read_only, capsys):
    split, run = trained
    for argv in (["train", "--data", split, "--output", os.path.join(read_only, "run"), "--epochs", "1", *FAST],
                 ["train", "--data", split, "--output", read_only, "--epochs", "1", *FAST],
                 ["evaluate", run, "--output", read_only],
                 ["export", run, "--output", os.path.join(read_only, "export")],
                 ["export", run, "--output", read_only],
                 ["plot", run, "--output", os.path.join(read_only, "curves.png")],
                 ["make-data", "digits", os.path.join(read_only, "digits")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert read_only in error_line(capsys), argv


def test_broken_run_files_are_one_line_errors(trained, tmp_path, capsys):
    _, run = trained
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    open(broken / "best_model.pdparams", "wb").close()
    for argv in (["evaluate", str(broken)], ["export", str(broken), "--output", str(tmp_path / "e")]):
        assert main(argv) == 2
        line = error_line(capsys)
        assert str(broken / "best_model.pdparams") in line and "empty" in line
    config = json.load(open(os.path.join(run, "config.json")))
    for name, content in (("missing", {k: v for k, v in config.items() if k != "classes"}),
                          ("wrong type", {**config, "num_classes": "three"})):
        (broken / "config.json").write_text(json.dumps(content))
        for argv in (["evaluate", str(broken)], ["train", "--output", str(broken), "--resume"]):
            assert main(argv) == 2, name
            assert str(broken / "config.json") in error_line(capsys), name


def test_bad_numbers_are_refused_before_anything_is_written(trained, tmp_path, capsys):
    split, run = trained
    new = tmp_path / "new"
    for flag, value in (("--num-workers", "-1"), ("--lr", "nan"), ("--momentum", "1"), ("--weight-decay", "-1")):
        assert main(["train", "--data", split, "--output", str(new), "--epochs", "1", *FAST, flag, value]) == 2
        assert flag in error_line(capsys)
        assert not new.exists()
    for value in ("-1", "0"):
        assert main(["evaluate", run, "--batch-size", value]) == 2
        assert "batch size" in error_line(capsys)


def test_a_zip_given_to_train_says_how_to_split_it(tmp_path, capsys):
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    assert main(["train", "--data", str(archive), "--output", str(tmp_path / "run"), *FAST]) == 2
    assert f"python -m simam_paddle split {archive}" in error_line(capsys)


def test_a_second_train_says_how_to_resume_in_flags(trained, capsys):
    split, run = trained
    assert main(["train", "--data", split, "--output", run, "--epochs", "2", *FAST]) == 2
    line = error_line(capsys)
    assert "pass --resume to continue it" in line and "resume=True" not in line


def _commands(parser):
    """{command name: its subparser} of the CLI's parser."""
    return next(a for a in parser._actions if a.dest == "command").choices


def _option_help(command):
    """{flag: help text} of a command's options, as argparse has them."""
    from simam_paddle.cli import build_parser

    sub = _commands(build_parser())[command]
    return {a.option_strings[0]: a.help for a in sub._actions if a.option_strings}


@pytest.mark.parametrize("command", ["train", "ablation"])
def test_training_options_and_their_help_defaults_come_from_train_config(command):
    import dataclasses

    from simam_paddle.config import TRAIN_DEFAULTS, TrainConfig, per_run_settings

    helps = _option_help(command)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if command == "ablation" and field.name in per_run_settings() and field.name != "model":
            assert flag not in helps  # set per run: --attentions, --seeds
            continue
        default = TRAIN_DEFAULTS[field.name]  # the field's default, or the notebook recipe's
        words = field.metadata["default_help"] or (("on" if default else "off")
                                                  if isinstance(default, bool) else str(default))
        assert helps[flag].endswith(f"(default: {words})"), (flag, helps[flag])


@pytest.mark.parametrize("command", ["train", "ablation"])
def test_a_setting_the_recipes_fill_in_names_each_recipes_default_in_its_help(command, monkeypatch):
    """--epochs, --batch-size, --lr, --weight-decay default to the recipe's: the help gives every recipe's value
    (it said 100 epochs and lr 0.01 under --recipe official-cifar, which trains 164 epochs from 0.1)."""
    from simam_paddle.config import RECIPES

    helps = _option_help(command)
    for name, recipe in RECIPES.items():
        for setting, value in recipe.defaults.items():
            assert f"{value:g} ({name})" in helps["--" + setting.replace("_", "-")], (setting, name)
    assert "164 (official-cifar)" in helps["--epochs"] and "0.1 (official-cifar)" in helps["--lr"]


def test_every_help_page_renders_as_written():
    """argparse %-formats option help but not descriptions: a literal '%%' must not reach the reader."""
    from simam_paddle.cli import build_parser

    parser = build_parser()
    pages = {"simam_paddle": parser.format_help()}
    pages.update((name, sub.format_help()) for name, sub in _commands(parser).items())
    assert len(pages) > 5
    for name, text in pages.items():
        assert "%%" not in text and "%(" not in text, (name, text)


def test_unset_options_are_not_given():
    from simam_paddle.cli import build_parser

    args = build_parser().parse_args(["train", "--output", "x"])
    assert all(getattr(args, name) is None for name in ("epochs", "attention", "cache", "lr", "device"))


def test_optimizer_adam_reaches_the_trainer_and_config_json(trained, tmp_path, monkeypatch):
    from simam_paddle.engine import training

    seen = []
    real_train = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: seen.append(k["config"].optimizer) or real_train(*a, **k))
    run = str(tmp_path / "run")
    assert main(["train", "--data", trained[0], "--output", run, "--epochs", "1", "--quiet", "--optimizer", "adam",
                 "--lr", "0.001", *FAST]) == 0
    assert json.load(open(os.path.join(run, "config.json")))["optimizer"] == "adam"
    assert seen == ["adam"]
    with pytest.raises(SystemExit):
        main(["train", "--data", trained[0], "--output", str(tmp_path / "other"), "--optimizer", "sgd", *FAST])
    assert not os.path.exists(tmp_path / "other")


def test_no_onednn_reaches_the_trainer_and_a_resume_may_switch_it(trained, tmp_path, monkeypatch):
    """``--no-onednn`` is stored in config.json and passed to ``engine.training.train``; being a
    resumable setting, a resumed run may turn it back on."""
    from simam_paddle.engine import training

    seen = []
    real_train = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: seen.append(k["config"].onednn) or real_train(*a, **k))
    run = str(tmp_path / "run")
    assert main(["train", "--data", trained[0], "--output", run, "--epochs", "1", "--quiet", "--no-onednn",
                 *FAST]) == 0
    assert json.load(open(os.path.join(run, "config.json")))["onednn"] is False
    assert main(["train", "--output", run, "--resume", "--quiet", "--onednn"]) == 0
    assert json.load(open(os.path.join(run, "config.json")))["onednn"] is True
    assert seen == [False, True]
