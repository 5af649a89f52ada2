"""Ctrl-C and SIGTERM during `train`: one line, the shell's exit code, a run folder that resumes."""
import re
import signal
import time

import pytest

from simam_paddle.engine.history import read_history
from simam_paddle.data.digits import make_digits_dataset
from simam_paddle.data.split import split_dataset
from subprocesses import start_cli

pytest.importorskip("sklearn")

TINY = ["--model", "cifar_resnet20", "--image-size", "32", "--train-per-class", "5", "--eval-per-class", "2",
        "--batch-size", "10", "--quiet"]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    make_digits_dataset(root / "digits")
    split_dataset(root / "digits", root / "split", progress=False)
    return str(root / "split")


def cli(*args):
    return start_cli(*args, env={"PYTHONUNBUFFERED": "1", "SIMAM_PADDLE_FUSED": "0", "SIMAM_PADDLE_VERBOSE": None})


def interrupt_after(proc, line_start, signum, timeout=120):
    """Send ``signum`` once stdout shows a line starting with ``line_start``; return (stdout, stderr)."""
    seen = []
    deadline = time.time() + timeout
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(line_start):
            proc.send_signal(signum)
            break
        assert time.time() < deadline, "".join(seen)
    out, err = proc.communicate(timeout=timeout)
    return "".join(seen) + out, err


def epoch_headers(stdout):
    """(hapi's 'Epoch K/N' header, the following 'epoch K: lr' line's K) pairs."""
    return re.findall(r"^Epoch (\d+)/(\d+)\nepoch (\d+): lr", stdout, flags=re.M)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_prints_one_line_and_resumes(split, tmp_path, signum, code):
    run = str(tmp_path / "run")
    proc = cli("train", "--data", split, "--output", run, "--epochs", "4", *TINY)
    # "Epoch 2/4" is printed once epoch 1 and its checkpoint are written.
    out, err = interrupt_after(proc, "Epoch 2/4", signum)
    assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert re.fullmatch(rf"interrupted in epoch [23]; continue with: python -m simam_paddle train "
                        rf"--output {re.escape(run)} --resume", lines[0]), err
    assert "Traceback" not in out + err and "FatalError" not in out + err
    if signum == signal.SIGTERM:  # resuming is the same after either signal; once is enough
        return

    proc = cli("train", "--output", run, "--resume", "--quiet")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert [row["epoch"] for row in read_history(run)] == [1, 2, 3, 4]
    headers = epoch_headers(out)
    assert headers and headers[-1] == ("4", "4", "4"), out
    assert all(shown == lr_epoch and total == "4" for shown, total, lr_epoch in headers), out
