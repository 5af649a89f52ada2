"""Run folders: locking, settings checked before anything is written, restartable and broken runs."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from PIL import Image

from simam_paddle.engine.history import RunFileError, read_history
from simam_paddle.engine.acceleration import onednn_default
from simam_paddle.experiments.runs import complete_run, evaluate_run, load_config, load_run, run_kernels, train_run
from subprocesses import start_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# cifar_resnet20 at 32 px is the zoo's cheapest model; two classes of four images keep an epoch short.
FAST = dict(model="cifar_resnet20", image_size=32, batch_size=4, epochs=1, verbose=0)
FAST_ARGS = ["--model", "cifar_resnet20", "--image-size", "32", "--batch-size", "4", "--quiet"]


def make_split(root, classes=("a", "b"), train=4, eval_=2):
    rng = np.random.RandomState(0)
    for part, count in (("train", train), ("eval", eval_)):
        for c in classes:
            os.makedirs(root / part / c)
            for i in range(count):
                Image.fromarray((rng.rand(32, 32, 3) * 255).astype("uint8")).save(root / part / c / f"{i}.png")
    return str(root)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A split and a one-epoch run in it, copied by the tests that break its files."""
    root = tmp_path_factory.mktemp("runs")
    split = make_split(root / "split")
    train_run(split, str(root / "run"), **FAST)
    return split, str(root / "run")


def copy_run(finished, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(finished[1], run)
    return run


def one_error_line(stderr):
    lines = [ln for ln in stderr.splitlines()
             if ln.strip() and "Warning" not in ln and "warnings.warn" not in ln]
    assert "Traceback" not in stderr and len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.slow
def test_a_second_train_on_a_busy_run_folder_fails_at_once_and_a_killed_run_does_not_block(finished, tmp_path):
    split, _ = finished
    run = str(tmp_path / "run")
    first = start_cli("train", "--data", split, "--output", run, "--epochs", "400", *FAST_ARGS)
    try:
        deadline = time.time() + 120
        while not (os.path.isfile(os.path.join(run, "last.json")) and first.poll() is None):
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline, "the first run finished no epoch in 2 minutes"
            time.sleep(0.2)
        for args in (["--data", split], ["--resume"]):
            second = start_cli("train", "--output", run, "--epochs", "400", *args, *FAST_ARGS)
            _, stderr = second.communicate(timeout=120)
            assert second.returncode != 0
            line = one_error_line(stderr)
            assert run in line and "in use" in line, line
        assert first.poll() is None, "the first run ended before the second was refused"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    epochs = [r["epoch"] for r in read_history(run)]
    assert epochs == list(range(1, len(epochs) + 1))
    # The killed run's lock died with it: the folder is usable again (here: it says to resume).
    again = start_cli("train", "--data", split, "--output", run, "--epochs", "400", *FAST_ARGS)
    _, stderr = again.communicate(timeout=120)
    assert again.returncode != 0 and "--resume" in one_error_line(stderr)


def test_the_lock_is_held_for_the_run_and_released_after(finished, tmp_path):
    from simam_paddle.experiments.runs import lock_run_folder

    run = str(tmp_path / "run")
    with lock_run_folder(run):
        with pytest.raises(OSError, match="in use"):
            with lock_run_folder(run):
                pass
    with lock_run_folder(run):  # released on exit
        pass


def test_resume_refuses_weights_that_do_not_fit_the_network(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    paddle.save(paddle.nn.Linear(3, 3).state_dict(), os.path.join(run, "last.pdparams"))
    with pytest.raises(ValueError, match=r"last.pdparams does not fit .*e.g. "):
        train_run(None, run, resume=True, verbose=0)


@pytest.mark.parametrize("setting,value,expected", [
    ("lr", float("nan"), "lr="),
    ("lr", 0.0, "lr="),
    ("momentum", 1.0, "momentum="),
    ("weight_decay", -1e-4, "weight_decay="),
    ("weight_decay", float("inf"), "weight_decay="),
    ("num_workers", -1, "num_workers="),
    ("epochs", 0, "epochs="),
    ("batch_size", 2.5, "batch_size="),
    ("train_per_class", 0, "train_per_class="),
    ("e_lambda", -1.0, "e_lambda="),
    ("device", "gpu", "gpu"),
    ("optimizer", "sgd", "optimizer='sgd': must be one of momentum, adam"),
])
def test_bad_settings_are_refused_before_anything_is_written(finished, tmp_path, setting, value, expected):
    if setting == "device" and paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        pytest.skip("this machine has a GPU")
    settings = {**FAST, setting: value}
    if setting == "e_lambda":
        settings["attention"] = "simam"
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=expected):
        train_run(finished[0], str(run), **settings)
    assert not run.exists()


def test_resume_checks_the_settings_it_may_change(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    before = open(os.path.join(run, "config.json")).read()
    with pytest.raises(ValueError, match="num_workers=-1: must be an integer >= 0"):
        train_run(None, run, resume=True, num_workers=-1, verbose=0)
    assert open(os.path.join(run, "config.json")).read() == before


def stuck(finished, tmp_path):
    """A run folder as a crash in the first epoch leaves it: config.json (and maybe a best model), no epoch."""
    run = copy_run(finished, tmp_path)
    for name in ("last.json", "last.pdparams", "last.pdopt", "history.csv"):
        os.remove(os.path.join(run, name))
    return run


def test_a_run_that_finished_no_epoch_starts_over(finished, tmp_path, capsys):
    run = stuck(finished, tmp_path)
    with pytest.raises(FileNotFoundError, match="no epoch finished.*without resume=True"):
        train_run(None, run, resume=True, verbose=0)
    train_run(finished[0], run, **{**FAST, "verbose": 1})
    assert "starting it over" in capsys.readouterr().out
    assert [r["epoch"] for r in read_history(run)] == [1]
    # complete_run (demo, ablation) starts it over as well instead of refusing
    for name in ("last.json", "history.csv"):
        os.remove(os.path.join(run, name))
    complete_run(finished[0], run, **FAST)
    assert [r["epoch"] for r in read_history(run)] == [1]


def test_a_run_with_finished_epochs_says_how_to_resume(finished, tmp_path):
    with pytest.raises(FileExistsError, match="pass resume=True") as err:
        train_run(finished[0], finished[1], **FAST)
    assert "--" not in str(err.value)  # a library error names the argument, not the command-line flag


@pytest.mark.parametrize("name,content,expected", [
    ("config.json", "{not json", "config.json.*not valid JSON"),
    ("config.json", "[1, 2]", "config.json.*object"),
    ("config.json", json.dumps({"model": "cifar_resnet20"}), "config.json.*missing.*num_classes"),
    ("config.json", None, "config.json.*image_size.*'big'"),
    ("last.json", "", "last.json.*not valid JSON"),
    ("last.json", json.dumps({"epoch": "two"}), "last.json.*epoch.*'two'"),
    ("history.csv", "epoch,loss,acc,eval_loss,eval_acc,lr,time\n1,0.5,0.5,0.5,0.5,0.01,1\njunk\n",
     "history.csv.*line 3"),
])
def test_broken_run_files_are_named(finished, tmp_path, name, content, expected):
    run = copy_run(finished, tmp_path)
    path = os.path.join(run, name)
    if content is None:  # a value of the wrong type
        config = json.load(open(path))
        config["image_size"] = "big"
        content = json.dumps(config)
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(RunFileError, match=expected) as info:
        if name == "history.csv":
            read_history(run)
        else:
            train_run(None, run, resume=True, verbose=0)
    assert path in str(info.value)


def test_an_empty_or_truncated_checkpoint_is_named(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    path = os.path.join(run, "best_model.pdparams")
    open(path, "wb").close()
    with pytest.raises(RunFileError, match="best_model.pdparams.*empty"):
        load_run(run)
    with open(path, "wb") as f:
        f.write(b"\x80\x04junk")
    with pytest.raises(RunFileError, match="best_model.pdparams"):
        evaluate_run(run)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5])
def test_evaluate_refuses_a_non_positive_batch_size(finished, batch_size):
    with pytest.raises(ValueError, match="batch size"):
        evaluate_run(finished[1], batch_size=batch_size)


def test_a_zip_is_not_a_split_folder(tmp_path):
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(ValueError, match=r"split folder.*split_dataset\('.*x.zip', SPLIT\).*data=SPLIT"):
        train_run(str(archive), str(tmp_path / "run"), **FAST)
    assert not (tmp_path / "run").exists()


def test_settings_in_config_are_checked_like_given_ones(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    path = os.path.join(run, "config.json")
    config = json.load(open(path))
    config["lr"] = math.nan
    with open(path, "w") as f:
        json.dump(config, f)
    with pytest.raises(RunFileError, match="config.json.*lr"):
        load_config(run)


@pytest.mark.slow
def test_two_processes_under_the_launcher_write_one_run(finished, tmp_path):
    # Data parallelism on CPU: two trainer processes, one run folder written by rank 0 alone.
    split, _ = finished
    entry = tmp_path / "entry.py"
    entry.write_text("import sys\nfrom simam_paddle.cli import main\nsys.exit(main())\n")
    # Paddle's own INFO lines tell that both trainers joined; the package keeps them quiet unless asked.
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "GLOG_minloglevel": "0"}
    run = str(tmp_path / "run")

    def launch(*args):
        proc = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                               "--log_dir", str(tmp_path / "log"), str(entry), "train", "--output", run,
                               "--epochs", "2", "--device", "cpu", *FAST_ARGS, *args],
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
        logs = "".join(p.read_text() for p in sorted((tmp_path / "log").glob("workerlog.*")))
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:] + logs[-3000:]
        return logs

    logs = launch("--data", split)
    assert logs.count("Successfully connected") == 2  # two trainers joined one job
    assert [r["epoch"] for r in read_history(run)] == [1, 2]
    assert sorted(os.listdir(run)) == [".lock", "best_model.pdparams", "config.json", "history.csv",
                                       "last.json", "last.pdopt", "last.pdparams", "visualdl"]
    assert len(os.listdir(os.path.join(run, "visualdl"))) == 1  # one log writer, rank 0's
    # Interrupted after epoch 1 (as last.json then says): resuming under the launcher redoes epoch 2 once.
    with open(os.path.join(run, "last.json")) as f:
        state = json.load(f)
    with open(os.path.join(run, "last.json"), "w") as f:
        json.dump({**state, "epoch": 1}, f)
    launch("--resume")
    assert [r["epoch"] for r in read_history(run)] == [1, 2]


def test_config_json_stores_the_attention_weight_decay_and_kernels_it_resolved(finished, tmp_path):
    from simam_paddle.engine.acceleration import onednn_available
    from simam_paddle._paddle import is_paddle2

    config = json.load(open(os.path.join(finished[1], "config.json")))
    assert config["attention"] == "none" and config["weight_decay"] == 1e-4  # cifar_resnet20 as published
    assert config["onednn"] is (onednn_available() and not is_paddle2())  # not given: on where Paddle can
    run = str(tmp_path / "towernet")
    with pytest.raises(ValueError, match="image_size=32 does not fit model 'towernet': it needs at least 127"):
        train_run(finished[0], run, model="towernet", image_size=32, epochs=1, verbose=0)
    assert not os.path.exists(run)


def test_towernet_config_json_says_simam(tmp_path):
    split = make_split(tmp_path / "split", train=1, eval_=1)
    run = str(tmp_path / "run")
    returned = train_run(split, run, model="towernet", image_size=127, batch_size=2, epochs=1, verbose=0)
    written = json.load(open(os.path.join(run, "config.json")))
    assert returned["attention"] == written["attention"] == "simam" and written["weight_decay"] == 2e-4


def old_config(finished, tmp_path, **changes):
    """A copy of the finished run whose config.json is as an older version wrote it."""
    run = copy_run(finished, tmp_path)
    path = os.path.join(run, "config.json")
    config = {**json.load(open(path)), **changes}
    with open(path, "w") as f:
        json.dump(config, f)
    return run


def test_an_old_config_with_attention_null_loads_resumes_and_reports(finished, tmp_path):
    from simam_paddle.experiments.report import summarize_runs

    run = old_config(finished, tmp_path, attention=None, e_lambda=None, reduction=None, init_from=None)
    assert load_config(run)["attention"] == "none"
    assert summarize_runs([run])[0]["attention"] == "none"
    network, config = load_run(run)
    assert config["attention"] == "none"
    complete_run(finished[0], run, **{**FAST, "attention": "none"})  # finished: same settings, nothing to do
    with pytest.raises(ValueError, match="attention: run has 'none', given 'simam'"):
        train_run(None, run, resume=True, attention="simam", verbose=0)
    before = read_history(run)
    train_run(None, run, resume=True, attention="NONE", verbose=0)  # finished: resuming trains nothing
    assert read_history(run) == before
    assert json.load(open(os.path.join(run, "config.json")))["attention"] == "none"


def test_an_old_config_without_optimizer_trained_with_momentum(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    path = os.path.join(run, "config.json")
    config = json.load(open(path))
    assert config["optimizer"] == "momentum"  # written by train_run
    del config["optimizer"]
    with open(path, "w") as f:
        json.dump(config, f)
    assert load_config(run)["optimizer"] == "momentum"
    before = read_history(run)
    train_run(None, run, resume=True, optimizer="momentum", verbose=0)  # finished: nothing to do, no refusal
    assert read_history(run) == before
    with pytest.raises(ValueError, match="optimizer: run has 'momentum', given 'adam'"):
        train_run(None, run, resume=True, optimizer="adam", verbose=0)


def test_config_json_names_data_inside_the_working_folder_relatively_and_resumes_there(tmp_path, monkeypatch):
    """Committed run folders carry no absolute path of the machine that ran them."""
    work = tmp_path / "work"
    make_split(work / "data" / "split", train=1, eval_=1)
    monkeypatch.chdir(work)
    run = "runs/r"
    train_run(str(work / "data" / "split"), run, **FAST)
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["data"] == "data/split"
    assert str(tmp_path) not in json.dumps(config)
    # the same data given relatively or absolutely is the same run; other data is refused
    complete_run("data/split", run, **FAST)
    complete_run(str(work / "data" / "split"), run, **FAST)
    with pytest.raises(ValueError, match="differs from the run's data 'data/split'"):
        train_run(str(tmp_path), run, resume=True, verbose=0)
    # a folder moved with its data resumes from the new working folder
    shutil.move(str(work), str(tmp_path / "moved"))
    monkeypatch.chdir(tmp_path / "moved")
    config = train_run(None, run, resume=True, verbose=0, **{k: v for k, v in FAST.items() if k != "verbose"})
    assert config["data"] == "data/split"
    # data outside the working folder is stored absolutely (nothing relative to a guess)
    outside = make_split(tmp_path / "outside", train=1, eval_=1)
    assert load_config(train_run(outside, "runs/o", **FAST) and "runs/o")["data"] == os.path.abspath(outside)


@pytest.mark.parametrize("config, onednn, switched", [
    ({"onednn": True}, None, 1),  # the run's own kernels
    ({"onednn": False}, None, 0),
    ({}, None, 0),  # config.json written before the setting: Paddle's kernels, as it trained
    ({"onednn": True}, False, 0),  # told otherwise
    ({"onednn": False}, True, 1),
])
def test_run_kernels_are_those_the_run_trained_with_unless_told(config, onednn, switched):
    if switched and not onednn_default():
        pytest.skip("oneDNN convolutions need Paddle 3.x with oneDNN")
    paddle.set_device("cpu")
    network = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.ReLU())
    with run_kernels(network, config, onednn) as count:
        assert count == switched
        assert (type(network[0]) is not paddle.nn.Conv2D) == bool(switched)  # compiled while active
    assert type(network[0]) is paddle.nn.Conv2D


def test_run_kernels_refuse_a_value_that_is_not_a_switch():
    with pytest.raises(ValueError, match="onednn='yes': must be true or false"):
        run_kernels(paddle.nn.Conv2D(3, 4, 3), {"onednn": True}, "yes")


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_lock_that_is_a_link_or_a_fifo_is_refused_and_its_target_untouched(tmp_path, kind):
    from simam_paddle.engine.history import RunFileError
    from simam_paddle.experiments.runs import lock_run_folder

    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("do not truncate me\n")
    if kind == "link":
        (run / ".lock").symlink_to(target)
    else:
        os.mkfifo(run / ".lock")
    with pytest.raises(RunFileError, match="is a link|not a plain file"):
        with lock_run_folder(str(run)):
            pass
    assert target.read_text() == "do not truncate me\n"


def test_evaluate_on_a_read_only_run_folder_prints_the_numbers_then_one_error_line(finished, monkeypatch, capsys):
    from simam_paddle.cli import main
    from simam_paddle.engine import evaluation

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(evaluation, "save_confusion_matrix_csv", read_only)
    split, run = finished
    assert main(["evaluate", run]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("acc ") and "class" in out and "wrote" not in out
    assert err.count("\n") == 1 and "could not write the confusion matrix" in err and "--output DIR" in err
