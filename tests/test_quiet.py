"""Quiet by default: no Paddle chatter on import, export or training; SIMAM_PADDLE_VERBOSE=1 shows it."""
import os
import re
import warnings

import paddle
import pytest

from simam_paddle._paddle import is_paddle2
from simam_paddle._quiet import VERBOSE_ENV, quiet_native_logs, training_warning_filters
from simam_paddle.config import TrainConfig
from simam_paddle.engine.training import resolve_config, train
from subprocesses import run_python

GLOG_LINE = re.compile(r"^[IW]\d{4} ", flags=re.M)


def python(code, verbose=False, args=()):
    return run_python(code, *args, env={"SIMAM_PADDLE_FUSED": "0", VERBOSE_ENV: "1" if verbose else None})


def test_import_prints_nothing():
    done = python("import simam_paddle.layers")
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""
    # Verbose keeps what Paddle itself prints on import: Paddle 3's "No ccache found" warning (2.6 prints none).
    bare = python("import paddle").stderr
    assert "No ccache found" in bare or is_paddle2()
    verbose = python("import simam_paddle.layers", verbose=True).stderr
    assert all(line in verbose for line in bare.splitlines())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch run of the smallest zoo model on a tiny split of flat-colour images."""
    import numpy as np
    from PIL import Image

    from simam_paddle.experiments.runs import train_run

    root = tmp_path_factory.mktemp("quiet")
    for part in ("train", "eval"):
        for label, colour in enumerate([(250, 0, 0), (0, 0, 250)]):
            folder = root / "split" / part / str(label)
            folder.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((32, 32, 3), colour, "uint8")).save(folder / f"{i}.png")
    train_run(str(root / "split"), str(root / "run"), model="cifar_resnet20", image_size=32, epochs=1,
              batch_size=4, device="cpu", verbose=0)
    return str(root / "run")


def cli(*args, verbose=False):
    return python("import sys; from simam_paddle.cli import main; sys.exit(main(sys.argv[1:]))", verbose,
                  args)


def test_export_prints_no_glog_lines(run, tmp_path):
    quiet = cli("export", run, "--output", str(tmp_path / "quiet"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith("exported "), quiet.stderr
    verbose = cli("export", run, "--output", str(tmp_path / "verbose"), verbose=True)
    assert verbose.returncode == 0 and GLOG_LINE.search(verbose.stderr), verbose.stderr  # Paddle does log


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_print_nothing_to_stderr(run, tmp_path, command):
    # A fresh process whose first Paddle import is the command's own (predict's module once imported
    # Paddle itself, before the package could quiet it: the ccache warning and glog lines showed).
    if command == "predict":
        done = cli("predict", run, os.path.join(os.path.dirname(run), "split", "eval"))
        assert len(done.stdout.splitlines()) == 4, done.stdout  # a line per evaluation image
    else:
        done = cli("evaluate", run, "--output", str(tmp_path))
        assert done.stdout.startswith("acc "), done.stdout
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_quiet_native_logs_keeps_other_stderr(capfd):
    with quiet_native_logs():
        os.write(2, b"I1123 19:15:43.334529  6992 pir_interpreter.cc:1606] New Executor is Running ...\n")
        os.write(2, b"E1123 19:15:43.334529  6992 x.cc:1] a real error\nplain\n")
    assert capfd.readouterr().err == "E1123 19:15:43.334529  6992 x.cc:1] a real error\nplain\n"


def test_training_filters_hide_only_their_messages(monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    bn = paddle.nn.BatchNorm2D(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with training_warning_filters():
            bn(paddle.rand([2, 2, 3, 3]))
            warnings.warn("another warning")
    assert [str(w.message) for w in caught] == ["another warning"]
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with training_warning_filters():
            bn(paddle.rand([2, 2, 3, 3]))
    assert any("always track global mean" in str(w.message) for w in caught)


def test_training_names_its_device_once(tmp_path, capsys):
    """A network without convolutions: nothing is said about oneDNN (tests/test_acceleration.py has the rest)."""
    data = paddle.io.TensorDataset([paddle.rand([8, 4]), paddle.randint(0, 2, [8, 1])])
    config = resolve_config(TrainConfig(epochs=2, batch_size=4, weight_decay=1e-4, device="cpu"))
    train(paddle.nn.Linear(4, 2), data, data, config=config, output_dir=str(tmp_path / "run"), verbose=2)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("training on ")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert lines == [f"training on cpu with {cores} thread{'s' if cores != 1 else ''}"], out
    assert out.index("training on") < out.index("Epoch 1/2")


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_verbose_switch(monkeypatch, value, expected):
    from simam_paddle._quiet import is_verbose

    monkeypatch.setenv(VERBOSE_ENV, value)
    assert is_verbose() is expected


@pytest.mark.skipif(is_paddle2(), reason="oneDNN convolutions need Paddle 3")
def test_onednn_compile_prints_nothing():
    """Compiling convolutions warns about 'place' in Paddle 3.3 (and logged "input provided by inputs has no use"
    while each program read its layer's parameters)."""
    code = ("from simam_paddle.engine.acceleration import onednn_available, onednn_convolutions\n"
            "import paddle\n"
            "net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.ReLU())\n"
            "with onednn_convolutions(net) as n:\n"
            "    net(paddle.rand([2, 3, 8, 8])).mean().backward()\n"
            "print(n, onednn_available())\n")
    quiet = python(code)
    assert quiet.returncode == 0, quiet.stderr
    if quiet.stdout.split() != ["1", "True"]:
        pytest.skip(f"this Paddle build has no oneDNN: {quiet.stdout!r}")
    assert quiet.stderr == ""
    verbose = python(code, verbose=True)
    # (the shared programs take every input they are given, so "input provided by inputs has no use" is gone)
    assert "Tensor do not have 'place' interface" in verbose.stderr, verbose.stderr


@pytest.mark.parametrize("install", [False, True])
def test_a_data_loader_half_built_by_an_interrupt_is_collected_without_a_traceback(install):
    """Ctrl-C inside DataLoader.__iter__ leaves an iterator whose __del__ fails ('_shutdown'); after an interrupt
    the command line drops that traceback, and only that one."""
    code = ("import gc, sys\n"
            "from simam_paddle._quiet import drop_interrupted_loader_noise\n"
            "from paddle.io.dataloader import dataloader_iter as d\n"
            f"if {install}: drop_interrupted_loader_noise()\n"
            "half_built = d._DataLoaderIterSingleProcess.__new__(d._DataLoaderIterSingleProcess)\n"
            "del half_built; gc.collect()\n"
            "class Other:\n"
            "    def __del__(self): raise AttributeError('not a data loader')\n"
            "other = Other(); del other; gc.collect()\n")
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert ("_shutdown" in done.stderr) is not install, done.stderr
    assert "not a data loader" in done.stderr, done.stderr  # every other unraisable still reaches stderr
