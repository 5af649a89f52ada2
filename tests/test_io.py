"""The one atomic writer (simam_paddle/_io.py) and the rank check."""
import os
import sys

import pytest

from simam_paddle import _io
from simam_paddle._io import NotTextError, atomic_write_bytes, atomic_write_text, is_main_process, read_text


def test_writes_the_bytes_and_leaves_nothing_else(tmp_path):
    atomic_write_bytes(b"\x00\x01abc", tmp_path / "sub" / "a.bin")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01abc"
    assert os.listdir(tmp_path / "sub") == ["a.bin"]


def test_text_is_utf8_with_line_ends_as_given(tmp_path):
    atomic_write_text("é\nx\r\n", tmp_path / "t.md")
    assert (tmp_path / "t.md").read_bytes() == "é\nx\r\n".encode("utf-8")


def test_files_get_the_permissions_of_a_plain_write(tmp_path):
    atomic_write_text("x", str(tmp_path / "atomic.txt"))
    (tmp_path / "plain.txt").write_text("x")
    assert os.stat(tmp_path / "atomic.txt").st_mode == os.stat(tmp_path / "plain.txt").st_mode


def test_a_crash_before_the_rename_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text("old")

    def power_cut(fd):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text("new", path)
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["config.json"]


def test_the_file_is_on_disk_before_it_is_renamed_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    atomic_write_bytes(b"x", tmp_path / "a")
    expected = ["fsync", "replace", "fsync"] if sys.platform != "win32" else ["fsync", "replace"]
    assert events == expected
    events.clear()
    atomic_write_bytes(b"x", tmp_path / "b", sync_folder=False)
    assert events == ["fsync", "replace"]


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_a_link_at_the_destination_is_replaced_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "summary.md"
    link.symlink_to(victim)
    atomic_write_text("report", link)
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "report"


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_a_taken_temporary_name_is_never_written_through(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(_io.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".aaaaaaaaaaaa.partial").symlink_to(victim)  # planted where the first name would go
    atomic_write_text("new", tmp_path / "a.txt")
    assert victim.read_text() == "precious"
    assert (tmp_path / "a.txt").read_text() == "new"


def test_any_legal_file_name_fits_and_the_suffix_names_the_temporary_file(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: seen.append(os.path.basename(a)) or real_replace(a, b))
    long_name = "x" * 251 + ".png"  # 255 bytes, the limit of most file systems
    atomic_write_bytes(b"png", tmp_path / long_name, suffix=".split-partial")
    assert (tmp_path / long_name).read_bytes() == b"png"
    assert seen[0].startswith(".") and seen[0].endswith(".split-partial") and len(seen[0]) < 40


def test_is_main_process_reads_the_launchers_rank_at_each_call(monkeypatch):
    monkeypatch.delenv("PADDLE_TRAINER_ID", raising=False)
    assert is_main_process()
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    assert not is_main_process()
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    assert is_main_process()


@pytest.mark.parametrize("data, seems", [("a,b\r\n".encode("utf-16"), "it is UTF-16"),
                                         (b"\x89PNG\r\n\x1a\n\x00", "byte 0x89 at offset 0 is not UTF-8")])
def test_text_that_is_not_utf8_is_named(tmp_path, data, seems):
    path = tmp_path / "classes.txt"
    path.write_bytes(data)
    with pytest.raises(NotTextError, match=f"^{path} is not UTF-8 text, as a class list must be: {seems}"):
        read_text(path, "a class list")
    assert issubclass(NotTextError, ValueError)  # the command line's one-line errors


def test_text_reads_utf8_with_or_without_a_byte_order_mark(tmp_path):
    (tmp_path / "a.csv").write_bytes("\ufeffé,x\r\ny\rz\n".encode("utf-8"))
    assert read_text(tmp_path / "a.csv") == "é,x\ny\nz\n"  # line ends as open() reads them
    assert read_text(tmp_path / "a.csv", newline="") == "é,x\r\ny\rz\n"  # as written, for the csv module
