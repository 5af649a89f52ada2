"""Reading a run's history.csv (simam_paddle/engine/history.py)."""
import pytest

from simam_paddle.engine.history import HISTORY_COLUMNS, RunFileError, read_history


def test_rows_hold_numbers_an_integer_epoch_and_none_for_empty_cells(tmp_path):
    (tmp_path / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1,0.5,0.25,,,0.01,1.5,20,1\n2,0.4,0.5,0.6,0.75,0.005,1.25,20,1\n")
    rows = read_history(str(tmp_path))
    assert rows == read_history(str(tmp_path / "history.csv"))
    assert rows[0] == {"epoch": 1, "loss": 0.5, "acc": 0.25, "eval_loss": None, "eval_acc": None, "lr": 0.01,
                       "time": 1.5, "onednn_convs": 20, "paddle_convs": 1}
    assert isinstance(rows[1]["epoch"], int) and rows[1]["eval_acc"] == 0.75


def test_errors_name_the_file_and_the_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="history.csv"):
        read_history(str(tmp_path))
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n1,0.5\n2,oops\n")
    with pytest.raises(RunFileError, match=r"history.csv, line 3: '2,oops'"):
        read_history(str(tmp_path))
    path.write_text("when,loss\n1,0.5\n")
    with pytest.raises(RunFileError, match="history.csv has no epoch column"):
        read_history(str(tmp_path))
