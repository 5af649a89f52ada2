import csv
import hashlib
import io
import os
import shutil
import stat
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import simam_paddle
from simam_paddle.data import split as split_module
from simam_paddle import split_dataset
from simam_paddle.cli import main


def _image_bytes(seed, mode="RGB", fmt="JPEG", size=(6, 5)):
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def _truncated_jpeg():
    data = _image_bytes(99, size=(64, 64))
    return data[: len(data) // 2]


def _source_files():
    """relative path -> bytes, and the set of paths that are valid images."""
    files = {
        "cat/a b.jpg": _image_bytes(1),
        "cat/a_b.jpg": _image_bytes(2),
        "cat/gray.jpg": _image_bytes(3, "L"),
        "cat/rgba.png": _image_bytes(4, "RGBA", "PNG"),
        "cat/cmyk.jpg": _image_bytes(5, "CMYK"),
        "cat/palette.png": _image_bytes(6, "P", "PNG"),
        "cat/deep.png": _image_bytes(7, "I;16", "PNG"),
        "cat/truncated.jpg": _truncated_jpeg(),
        "cat/notes.txt": b"not an image\n",
        "cat/fake.jpg": b"plain text with a .jpg name",
        "cat/scan.dat": _image_bytes(8, fmt="PNG"),
        "cat/X.jpg": _image_bytes(9),
        "cat/x.jpg": _image_bytes(10),
        "cat/.DS_Store": b"\x00\x01",
        "cat/._a b.jpg": b"\x00\x05\x16\x07",
        "dog/1.jpg": _image_bytes(11),
        "dog/2.jpg": _image_bytes(12),
        "dog/sub/3.jpg": _image_bytes(13),
        "readme.txt": b"top-level file",
    }
    files.update({f"dog/img {i:02d}.jpg": _image_bytes(100 + i) for i in range(12)})
    invalid = {"cat/truncated.jpg", "cat/notes.txt", "cat/fake.jpg", "dog/sub/3.jpg", "readme.txt"}
    hidden = {"cat/.DS_Store", "cat/._a b.jpg"}
    valid = set(files) - invalid - hidden
    return files, valid


def _write_tree(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "__MACOSX" / "cat").mkdir(parents=True)
    (root / "__MACOSX" / "cat" / "._a_b.jpg").write_bytes(b"\x00")


def _tree(root):
    """relative path -> (sha256, mtime_ns, mode) of every file under root."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            st = path.stat()
            out[path.relative_to(root).as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns,
                                                      st.st_mode)
    return out


def _sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def source(tmp_path):
    files, valid = _source_files()
    src = tmp_path / "src"
    _write_tree(src, files)
    return src, files, valid


def _images_in(dst):
    return {rel: sha for rel, (sha, _, _) in _tree(dst).items() if rel != split_module.MANIFEST_NAME}


def test_every_decodable_image_appears_exactly_once(source, tmp_path):
    src, files, valid = source
    split_dataset(src, tmp_path / "dst")
    written = _images_in(tmp_path / "dst")
    assert Counter(written.values()) == Counter(_sha(files[rel]) for rel in valid)
    assert all(rel.split("/")[0] in ("train", "eval") and rel.count("/") == 2 for rel in written)


def test_every_nth_valid_image_in_sorted_order_goes_to_eval(source, tmp_path):
    src, files, valid = source
    report = split_dataset(src, tmp_path / "dst", eval_every=5)
    by_hash = {sha: rel for rel, sha in _images_in(tmp_path / "dst").items()}
    for cls in ("cat", "dog"):
        names = sorted(rel.split("/", 1)[1] for rel in valid if rel.startswith(cls + "/"))
        for i, name in enumerate(names):
            expected = "eval" if i % 5 == 0 else "train"
            dest = by_hash[_sha(files[f"{cls}/{name}"])]
            assert dest.startswith(f"{expected}/{cls}/"), (name, dest)
        assert report.counts[cls] == {"eval": len(names[::5]), "train": len(names) - len(names[::5])}


def test_spaces_become_underscores_and_collisions_are_told_apart(source, tmp_path):
    src, files, _ = source
    split_dataset(src, tmp_path / "dst")
    written = _images_in(tmp_path / "dst")
    names = {rel.rsplit("/", 1)[1]: sha for rel, sha in written.items() if "/cat/" in rel}
    # The file that needed no renaming keeps its name and content; the renamed one gets a suffix.
    assert names["a_b.jpg"] == _sha(files["cat/a_b.jpg"])
    assert names["a_b_1.jpg"] == _sha(files["cat/a b.jpg"])
    # Names differing only in case would merge on macOS/Windows.
    assert {names["X.jpg"], names["x_1.jpg"]} == {_sha(files["cat/X.jpg"]), _sha(files["cat/x.jpg"])}
    # A decodable image with a non-image suffix gets its format's suffix.
    assert names["scan.dat.png"] == _sha(files["cat/scan.dat"])
    assert not any(" " in rel for rel in written)
    dog = sorted(rel.rsplit("/", 1)[1] for rel in written if "/dog/" in rel)
    assert dog == sorted(["1.jpg", "2.jpg"] + [f"img_{i:02d}.jpg" for i in range(12)])


def test_skipped_files_are_listed_with_reasons(source, tmp_path):
    src, _, _ = source
    report = split_dataset(src, tmp_path / "dst")
    reasons = {s.source: s.reason for s in report.skipped}
    assert set(reasons) == {"cat/truncated.jpg", "cat/notes.txt", "cat/fake.jpg", "dog/sub/3.jpg", "readme.txt"}
    assert reasons["cat/truncated.jpg"].startswith("does not decode")
    assert reasons["cat/notes.txt"].startswith("not an image")
    assert reasons["cat/fake.jpg"].startswith("not an image")
    assert "sub-folder" in reasons["dog/sub/3.jpg"]
    assert "class folder" in reasons["readme.txt"]


def test_hidden_files_are_ignored(source, tmp_path):
    src, _, _ = source
    report = split_dataset(src, tmp_path / "dst")
    assert report.counts.keys() == {"cat", "dog"}  # no __MACOSX class
    assert not any(".DS_Store" in s.source or "._" in s.source for s in report.skipped)
    assert not any(Path(rel).name.startswith(".") for rel in _images_in(tmp_path / "dst"))


def test_source_is_byte_for_byte_unchanged(source, tmp_path):
    src, _, _ = source
    before = _tree(src)
    split_dataset(src, tmp_path / "dst")
    split_dataset(src, tmp_path / "dst")
    assert _tree(src) == before


def test_manifest_records_every_written_file(source, tmp_path):
    src, files, _ = source
    dst = tmp_path / "dst"
    report = split_dataset(src, dst)
    assert report.manifest == dst / "split_manifest.csv"
    with open(report.manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["destination"] for r in rows} == set(_images_in(dst))
    for row in rows:
        data = (dst / row["destination"]).read_bytes()
        assert data == files[row["source"]]
        assert row["sha256"] == _sha(data) and int(row["bytes"]) == len(data)
        assert row["destination"].split("/")[:2] == [row["split"], row["class"]]


def test_second_run_changes_nothing(source, tmp_path):
    src, _, _ = source
    dst = tmp_path / "dst"
    first = split_dataset(src, dst)
    before = _tree(dst)
    second = split_dataset(src, dst)
    assert _tree(dst) == before  # same files, hashes and mtimes
    assert second.written == 0 and second.unchanged == first.written and second.removed == 0
    assert second.counts == first.counts


def test_rerun_after_source_changes_equals_a_fresh_split(source, tmp_path):
    src, files, _ = source
    dst = tmp_path / "dst"
    split_dataset(src, dst)
    (src / "dog" / "img 03.jpg").unlink()  # shifts every later dog image between splits
    (src / "dog" / "img 99.jpg").write_bytes(_image_bytes(555))
    shutil.rmtree(src / "cat")  # a whole class disappears
    report = split_dataset(src, dst)
    split_dataset(src, tmp_path / "fresh")
    assert _images_in(dst) == _images_in(tmp_path / "fresh")
    assert not (dst / "train" / "cat").exists() and not (dst / "eval" / "cat").exists()
    assert report.removed > 0
    assert (dst / "split_manifest.csv").read_bytes() == (tmp_path / "fresh" / "split_manifest.csv").read_bytes()


@pytest.mark.parametrize("where", ["train/dog/mine.jpg", "notes.txt"])
def test_foreign_file_in_destination_is_refused_and_kept(source, tmp_path, where):
    src, _, _ = source
    dst = tmp_path / "dst"
    split_dataset(src, dst)
    (dst / where).write_bytes(b"mine")
    before = _tree(dst)
    with pytest.raises(FileExistsError, match="did not write") as err:
        split_dataset(src, dst)
    assert where in str(err.value)
    assert _tree(dst) == before


def test_destination_with_files_but_no_manifest_is_refused(source, tmp_path):
    src, _, _ = source
    dst = tmp_path / "dst"
    (dst / "eval").mkdir(parents=True)
    (dst / "eval" / "old.jpg").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="eval/old.jpg"):
        split_dataset(src, dst)
    assert (dst / "eval" / "old.jpg").read_bytes() == b"precious"
    assert not (dst / "split_manifest.csv").exists()


def test_edited_output_file_is_refused(source, tmp_path):
    src, _, _ = source
    dst = tmp_path / "dst"
    split_dataset(src, dst)
    edited = dst / "eval" / "dog" / "1.jpg"
    edited.write_bytes(b"retouched by hand")
    with pytest.raises(FileExistsError, match="changed since"):
        split_dataset(src, dst)
    assert edited.read_bytes() == b"retouched by hand"


def test_interrupted_run_leaves_no_unlisted_file_and_rerun_recovers(source, tmp_path, monkeypatch):
    src, _, _ = source
    dst = tmp_path / "dst"
    real_write = split_module._write_atomic
    calls = []

    def crash_after_three(root, rel, data):
        if len(calls) == 3:
            # What a kill mid-write leaves: a partial temp file next to the target.
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).with_name(".0123456789ab.split-partial").write_bytes(data[:10])
            raise KeyboardInterrupt
        calls.append(rel)
        real_write(root, rel, data)

    monkeypatch.setattr(split_module, "_write_atomic", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        split_dataset(src, dst)
    monkeypatch.setattr(split_module, "_write_atomic", real_write)
    split_dataset(src, dst)
    split_dataset(src, tmp_path / "fresh")
    assert _tree(dst).keys() == _tree(tmp_path / "fresh").keys()
    assert _images_in(dst) == _images_in(tmp_path / "fresh")


def _zip_with_traversal(path, files, evil_name):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Images/", b"")
        for rel, data in files.items():
            zf.writestr("Images/" + rel, data)
        zf.writestr(f"../{evil_name}", _image_bytes(1))
        zf.writestr(f"Images/cat/../../../{evil_name}", _image_bytes(2))
        zf.writestr(f"/tmp/{evil_name}", _image_bytes(3))
        link = zipfile.ZipInfo("Images/cat/link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")


def test_zip_source_looks_through_top_folder_and_never_writes_outside(source, tmp_path):
    _, files, valid = source
    evil = f"simam_evil_{os.getpid()}.jpg"
    archive = tmp_path / "Images.zip"
    _zip_with_traversal(archive, files, evil)
    zip_bytes = archive.read_bytes()
    work = tmp_path / "work"
    dst = work / "a" / "dst"
    report = split_dataset(archive, dst)

    assert archive.read_bytes() == zip_bytes
    assert not list(tmp_path.rglob(evil)) and not Path("/tmp", evil).exists()
    assert Counter(_images_in(dst).values()) == Counter(_sha(files[rel]) for rel in valid)
    unsafe = {s.source: s.reason for s in report.skipped}
    assert "unsafe path" in unsafe[f"../{evil}"]
    assert "unsafe path" in unsafe[f"Images/cat/../../../{evil}"]
    assert "unsafe path" in unsafe[f"/tmp/{evil}"]
    assert "link" in unsafe["Images/cat/link.jpg"]
    # Same content as splitting the extracted folder.
    split_dataset(tmp_path / "src", tmp_path / "from_folder")
    assert _images_in(dst) == _images_in(tmp_path / "from_folder")


def test_cli_prints_summary_and_skipped(source, tmp_path, capsys):
    src, _, _ = source
    assert main(["split", str(src), str(tmp_path / "dst"), "--eval-every", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["class", "train", "eval", "total"]
    dog = next(line.split() for line in lines if line.startswith("dog"))
    assert dog == ["dog", "10", "4", "14"]  # 14 valid dog images, every 4th to eval: 0, 4, 8, 12
    assert any(line.strip().startswith("cat/truncated.jpg: does not decode") for line in lines)
    assert main(["split", str(src), str(src / "cat")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "overlap" in err[0]


def test_bad_arguments_raise_clear_errors(source, tmp_path):
    src, _, _ = source
    with pytest.raises(ValueError, match="eval_every"):
        split_dataset(src, tmp_path / "dst", eval_every=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        split_dataset(tmp_path / "missing", tmp_path / "dst")
    with pytest.raises(ValueError, match="not a zip"):
        split_dataset(src / "readme.txt", tmp_path / "dst")
    with pytest.raises(ValueError, match="overlap"):
        split_dataset(src, src / "split")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(_image_bytes(1))
    with pytest.raises(ValueError, match="no class folder"):
        split_dataset(tmp_path / "flat", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


def test_progress_bar_only_when_asked_or_large(source, tmp_path, capsys):
    src, _, _ = source
    split_dataset(src, tmp_path / "quiet")  # few files, not a terminal: no bar
    assert capsys.readouterr().err == ""
    split_dataset(src, tmp_path / "loud", progress=True)
    err = capsys.readouterr().err
    assert "decode" in err and "copy" in err


# ---------------------------------------------------------------- reliability (issue 14)


def _image_tree(root, names, seed=0):
    for i, rel in enumerate(names):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_image_bytes(seed + i))


def _zip_of(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    return path


@pytest.mark.parametrize("link", ["train", "eval/cat"])
def test_linked_folder_inside_destination_is_refused(tmp_path, link):
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(6)])
    outside.mkdir()
    (dst / link).parent.mkdir(parents=True, exist_ok=True)
    (dst / link).symlink_to(outside, target_is_directory=True)
    with pytest.raises(FileExistsError, match="link") as err:
        split_dataset(src, dst)
    assert link in str(err.value) and "\n" not in str(err.value)
    assert not list(outside.iterdir())
    assert not (dst / split_module.MANIFEST_NAME).exists()


def test_writing_never_follows_a_link_made_after_the_check(tmp_path):
    dst, outside = tmp_path / "dst", tmp_path / "outside"
    outside.mkdir()
    dst.mkdir()
    (dst / "train").symlink_to(outside, target_is_directory=True)
    with pytest.raises(FileExistsError, match="link"):
        split_module._write_atomic(dst, "train/cat/1.jpg", b"data")
    assert not list(outside.iterdir())


def test_file_link_in_source_is_skipped(tmp_path):
    src, outside = tmp_path / "src", tmp_path / "outside"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(3)])
    _image_tree(outside, ["secret.jpg"], seed=50)
    (src / "cat" / "link.jpg").symlink_to(outside / "secret.jpg")
    report = split_dataset(src, tmp_path / "dst")
    reasons = {s.source: s.reason for s in report.skipped}
    assert "link" in reasons["cat/link.jpg"]
    assert _sha((outside / "secret.jpg").read_bytes()) not in _images_in(tmp_path / "dst").values()
    assert report.num_train + report.num_eval == 3


def test_images_below_a_class_folder_are_skipped_not_made_a_class(tmp_path):
    files = {"cat/1.jpg": _image_bytes(1), "cat/2.jpg": _image_bytes(2), "cat/extra/3.jpg": _image_bytes(3)}
    report = split_dataset(_zip_of(tmp_path / "cat.zip", files), tmp_path / "dst")
    assert report.counts == {"cat": {"train": 1, "eval": 1}}
    assert "sub-folder" in {s.source: s.reason for s in report.skipped}["cat/extra/3.jpg"]
    assert any("cat/extra/3.jpg" in w for w in report.warnings)


def test_top_folder_with_a_stray_file_beside_it_is_looked_through(tmp_path):
    files = {f"Images/{c}/{i}.jpg": _image_bytes(10 * k + i) for k, c in enumerate(["cat", "dog"]) for i in range(3)}
    files["LICENSE.txt"] = b"CC-BY"
    files["Images/README.md"] = b"about"
    report = split_dataset(_zip_of(tmp_path / "Images.zip", files), tmp_path / "dst")
    assert report.counts == {"cat": {"train": 2, "eval": 1}, "dog": {"train": 2, "eval": 1}}
    assert {s.source for s in report.skipped} == {"LICENSE.txt", "Images/README.md"}
    assert any("LICENSE.txt" in w and "class folder" in w for w in report.warnings)


def test_single_class_under_a_top_folder_keeps_its_name(tmp_path):
    files = {f"Images/cat/{i}.jpg": _image_bytes(i) for i in range(3)}
    report = split_dataset(_zip_of(tmp_path / "Images.zip", files), tmp_path / "dst")
    assert list(report.counts) == ["cat"]


def test_nothing_usable_raises_with_the_skipped_list(tmp_path):
    files = {"LICENSE.txt": b"CC-BY", "a.jpg": _image_bytes(1)}
    with pytest.raises(ValueError, match="no class folder") as err:
        split_dataset(_zip_of(tmp_path / "flat.zip", files), tmp_path / "dst")
    assert "LICENSE.txt" in str(err.value) and "a.jpg" in str(err.value)
    files = {"cat/1.jpg": _truncated_jpeg(), "cat/2.jpg": b"text"}
    with pytest.raises(ValueError, match="no usable image") as err:
        split_dataset(_zip_of(tmp_path / "broken.zip", files), tmp_path / "dst")
    assert "cat/1.jpg" in str(err.value) and "cat/2.jpg" in str(err.value)
    assert not (tmp_path / "dst").exists()


def test_empty_class_folder_is_counted_as_zeros_with_a_warning(tmp_path):
    src = tmp_path / "src"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(3)])
    (src / "empty").mkdir()
    report = split_dataset(src, tmp_path / "dst")
    assert report.counts == {"cat": {"train": 2, "eval": 1}, "empty": {"train": 0, "eval": 0}}
    assert any("'empty'" in w for w in report.warnings)


def test_longest_legal_file_name_is_split(tmp_path):
    src = tmp_path / "src"
    long_name = "a" * 246 + ".jpg"  # 250 bytes; most file systems allow 255
    _image_tree(src, [f"cat/{long_name}", "cat/b.jpg"])
    split_dataset(src, tmp_path / "dst")
    assert (tmp_path / "dst" / "eval" / "cat" / long_name).is_file()
    assert not [p for p in (tmp_path / "dst").rglob("*") if p.name.endswith(".split-partial")]


def test_written_files_get_the_usual_permissions(tmp_path):
    src = tmp_path / "src"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(3)])
    old = os.umask(0o027)
    try:
        split_dataset(src, tmp_path / "dst")
    finally:
        os.umask(old)
    modes = {rel: stat.S_IMODE(mode) for rel, (_, _, mode) in _tree(tmp_path / "dst").items()}
    assert set(modes.values()) == {0o640}, modes


def test_names_equal_after_unicode_normalisation_are_told_apart(tmp_path):
    import unicodedata

    src = tmp_path / "src"
    nfc, nfd = unicodedata.normalize("NFC", "caf\u00e9.jpg"), unicodedata.normalize("NFD", "caf\u00e9.jpg")
    _image_tree(src, [f"cat/{nfc}", f"cat/{nfd}"])
    if len(list((src / "cat").iterdir())) != 2:
        pytest.skip("this file system merges NFC and NFD names")
    split_dataset(src, tmp_path / "dst")
    names = [p.name for p in (tmp_path / "dst").rglob("*.jpg")]
    folded = {unicodedata.normalize("NFC", n).casefold() for n in names}
    assert len(names) == len(folded) == 2
    (src / "cat").rename(src / unicodedata.normalize("NFC", "\u00e9t\u00e9"))
    _image_tree(src, [unicodedata.normalize("NFD", "\u00e9t\u00e9") + "/1.jpg"])
    with pytest.raises(ValueError, match="differ only in case or Unicode"):
        split_dataset(src, tmp_path / "dst2")


def test_huge_image_gets_one_line_of_our_own(tmp_path, monkeypatch):
    import warnings

    src = tmp_path / "src"
    _image_tree(src, ["cat/0.jpg", "cat/1.jpg"])
    (src / "cat" / "big.png").write_bytes(_image_bytes(7, fmt="PNG", size=(40, 30)))  # 1200 px
    (src / "cat" / "bomb.png").write_bytes(_image_bytes(8, fmt="PNG", size=(50, 50)))  # 2500 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = split_dataset(src, tmp_path / "dst")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert any("cat/big.png" in w and "1200 pixels" in w for w in report.warnings)
    assert report.counts["cat"]["train"] + report.counts["cat"]["eval"] == 3
    reason = {s.source: s.reason for s in report.skipped}["cat/bomb.png"]
    assert "2500 pixels" in reason and "DecompressionBomb" not in reason


def test_manifest_path_taken_by_a_folder_is_a_one_line_error(tmp_path, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(3)])
    (dst / split_module.MANIFEST_NAME).mkdir(parents=True)
    with pytest.raises(FileExistsError, match="split_manifest.csv"):
        split_dataset(src, dst)
    assert main(["split", str(src), str(dst)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(dst / split_module.MANIFEST_NAME) in err[0]


def _refuse_writes_under(monkeypatch, root):
    """What a read-only DST does (tests may run as root, which chmod does not stop)."""
    real_open, real_mkdir = os.open, os.mkdir
    root = str(root)

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    def fake_open(path, flags, *args, **kwargs):
        if str(path).startswith(root) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            denied(path)
        return real_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if str(path).startswith(root):
            denied(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


@pytest.mark.parametrize("exists", [True, False])
def test_read_only_destination_is_a_one_line_error(tmp_path, monkeypatch, exists):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(3)])
    if exists:
        dst.mkdir()
    _refuse_writes_under(monkeypatch, dst)
    with pytest.raises(PermissionError, match="cannot write") as err:
        split_dataset(src, dst)
    assert str(dst) in str(err.value) and "\n" not in str(err.value)


def test_a_utf16_manifest_is_named_not_a_bare_decode_error(tmp_path, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image_tree(src, [f"cat/{i}.jpg" for i in range(3)])
    split_dataset(src, dst)
    manifest = dst / split_module.MANIFEST_NAME
    manifest.write_bytes(manifest.read_text(encoding="utf-8").encode("utf-16"))  # saved again by a spreadsheet
    assert main(["split", str(src), str(dst)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {manifest} is not a manifest written by split_dataset "
                                               f"({manifest} is not UTF-8 text"), err
