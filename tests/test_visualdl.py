"""VisualDL records of a run, read back with VisualDL's own reader: one file, every step once, a run name."""
import os

import paddle
import pytest

pytest.importorskip("visualdl")
from visualdl import LogReader, LogWriter  # noqa: E402

from simam_paddle.engine.callbacks import VISUALDL_FILE, make_visualdl  # noqa: E402
from simam_paddle.engine.history import read_history  # noqa: E402
from simam_paddle.config import TrainConfig  # noqa: E402
from simam_paddle.engine.training import resolve_config, train  # noqa: E402


def config(epochs):
    return resolve_config(TrainConfig(epochs=epochs, batch_size=4, weight_decay=1e-4, device="cpu"))

STEPS = 2  # batches per epoch: 8 samples, batch size 4


def data():
    paddle.seed(0)
    return paddle.io.TensorDataset([paddle.rand([8, 4]), paddle.randint(0, 2, [8, 1])])


def scalars(reader, run, tag):
    """(step, value) of ``tag`` of run ``run`` as the VisualDL server serves them from ``reader``."""
    from visualdl.server import lib

    return [(step, value) for _, step, value in lib.get_scalar(reader, run, tag)]


def test_a_resumed_run_shows_every_epoch_once(tmp_path):
    run = str(tmp_path / "towernet_none_seed1")
    log_dir = os.path.join(run, "visualdl")
    ds = data()
    train(paddle.nn.Linear(4, 2), ds, ds, config=config(epochs=2), output_dir=run, verbose=0)
    assert os.listdir(log_dir) == [VISUALDL_FILE]
    # A run stopped in epoch 3 after its first batch, by an older version writing its own file.
    stray = LogWriter(log_dir, file_name="vdlrecords.1000000000.log")
    stray.add_scalar(tag="eval/acc", value=0.0, step=3)
    stray.add_scalar(tag="train/loss", value=99.0, step=2 * STEPS + 1)
    stray.close()

    train(paddle.nn.Linear(4, 2), ds, ds, config=config(epochs=4), output_dir=run, verbose=0, resume=True)
    assert os.listdir(log_dir) == [VISUALDL_FILE]
    epochs = [row["epoch"] for row in read_history(run)]
    assert epochs == [1, 2, 3, 4]
    name = "towernet_none_seed1"  # the run's display name: its folder's
    reader = LogReader(logdir=str(tmp_path))  # as `visualdl --logdir` the folder of runs
    steps = {tag: [step for step, _ in scalars(reader, name, tag)]
             for tag in ("eval/acc", "eval/loss", "train/lr", "train/loss")}
    assert steps == {"eval/acc": epochs, "eval/loss": epochs, "train/lr": epochs,
                     "train/loss": list(range(1, 4 * STEPS + 1))}
    assert 99.0 not in [value for _, value in scalars(reader, name, "train/loss")]


def test_runs_are_named_after_their_folder(tmp_path):
    assert make_visualdl(str(tmp_path / "towernet_none_seed0" / "visualdl")).display_name == "towernet_none_seed0"
    assert make_visualdl(str(tmp_path / "logs"), display_name="mine").display_name == "mine"
