"""Reading a run's history.csv (simam_paddle/engine/history.py)."""
import pytest

from simam_paddle.engine.history import HISTORY_COLUMNS, RunFileError, read_history, read_run_json


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


@pytest.mark.parametrize("name", ["history.csv", "config.json"])
def test_a_utf16_or_binary_run_file_is_named(tmp_path, name):
    path = tmp_path / name
    for data in ("epoch,loss\n1,0.5\n".encode("utf-16"), b"\x00\xff\xfe\x89 binary"):
        path.write_bytes(data)
        with pytest.raises(RunFileError, match=f"^{path} is not UTF-8 text"):
            read_history(str(path)) if name == "history.csv" else read_run_json(str(path), "write it again")
