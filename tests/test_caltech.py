"""Caltech101: the embedded subset against its manifest, and make-data from archives, folders and a local server.

The downloads are served by an HTTP server on 127.0.0.1 started inside the tests (with Range support, as
CaltechDATA has), so nothing leaves the machine.
"""
import gzip
import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from simam_paddle.cli import main
from simam_paddle.data.caltech import (
    CALTECH16_CLASSES,
    CaltechError,
    caltech101_classes,
    caltech101_manifest,
    download_file,
    embedded_caltech16,
    make_caltech101,
)

EMBEDDED = Path(__file__).resolve().parents[1] / "data" / "caltech16"
SMALL = "buddha"  # 85 images, the smallest embedded class


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- the embedded subset


def test_embedded_subset_matches_its_manifest_file_by_file():
    lines = (EMBEDDED / "SHA256SUMS").read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in lines)
    images = [name for name in _files(EMBEDDED) if name not in ("SHA256SUMS", "README.md")]
    assert sorted(listed) == images  # no file missing, none unlisted
    for name in images:
        assert _sha256(EMBEDDED / name) == listed[name], name
    full = caltech101_manifest()
    assert {name: full[name] for name in listed} == listed  # the same bytes as the whole data set's manifest
    assert len(images) == 1817
    assert sum(p.stat().st_size for p in EMBEDDED.rglob("*")) < 30e6


def test_embedded_classes_follow_the_stated_rule():
    counts = Counter(name.split("/")[0] for name in caltech101_manifest())
    assert len(counts) == 101 and sum(counts.values()) == 8677 and "BACKGROUND_Google" not in counts
    ranked = sorted((c for c, n in counts.items() if n < 400), key=lambda c: (-counts[c], c))
    assert sorted(ranked[:16]) == sorted(CALTECH16_CLASSES)
    assert sorted(p.name for p in EMBEDDED.iterdir() if p.is_dir()) == sorted(CALTECH16_CLASSES)
    for name in CALTECH16_CLASSES:
        assert len(list((EMBEDDED / name).iterdir())) == counts[name]
    assert "Faces_easy" not in CALTECH16_CLASSES and "Faces" not in CALTECH16_CLASSES


def test_embedded_images_are_jpegs_and_git_treats_them_as_binary():
    attributes = (Path(__file__).resolve().parents[1] / ".gitattributes").read_text()
    assert "*.jpg binary" in attributes
    with Image.open(EMBEDDED / "Leopards" / "image_0001.jpg") as image:
        assert image.format == "JPEG" and min(image.size) > 100


def test_classes_argument():
    assert caltech101_classes("caltech16") == list(CALTECH16_CLASSES)
    assert len(caltech101_classes("all")) == 101
    with pytest.raises(CaltechError, match="did you mean Leopards"):
        caltech101_classes("Leopard")
    with pytest.raises(CaltechError, match="none given"):
        caltech101_classes("")


def test_make_from_the_embedded_copy_is_the_original_bytes_and_reruns_verify(tmp_path):
    dst = tmp_path / "c"
    summary = make_caltech101(dst, classes=f"{SMALL},watch", progress=False)
    assert summary.created and summary.source == "embedded" and summary.counts == {SMALL: 85, "watch": 239}
    for name in _files(dst):
        assert (dst / name).read_bytes() == (EMBEDDED / name).read_bytes()
    again = make_caltech101(dst, classes=f"{SMALL},watch", progress=False)
    assert not again.created
    (dst / "watch" / "image_0001.jpg").write_bytes(b"edited")
    with pytest.raises(FileExistsError, match="differs"):
        make_caltech101(dst, classes=f"{SMALL},watch", progress=False)


# ---------------------------------------------------------------- archives


def _tar_gz(members, top="101_ObjectCategories") -> bytes:
    """A tar.gz of ``{name: bytes}`` under ``top/``; a value that is a TarInfo is added as it is."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                tf.addfile(data)
                continue
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _official_zip(tar_gz: bytes) -> bytes:
    """The layout of CaltechDATA's caltech-101.zip: caltech-101/101_ObjectCategories.tar.gz and more."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("caltech-101/101_ObjectCategories.tar.gz", tar_gz)
        zf.writestr("caltech-101/show_annotation.m", b"% not an image\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def small_members():
    return {name: (EMBEDDED / name).read_bytes() for name in _files(EMBEDDED) if name.startswith(SMALL + "/")}


def test_make_from_the_official_zip_layout_and_from_a_folder(tmp_path, small_members):
    archive = tmp_path / "caltech-101.zip"
    archive.write_bytes(_official_zip(_tar_gz(small_members)))
    summary = make_caltech101(tmp_path / "z", classes=SMALL, source=archive, progress=False)
    assert summary.counts == {SMALL: 85}
    assert {n: (tmp_path / "z" / n).read_bytes() for n in _files(tmp_path / "z")} == small_members
    folder = tmp_path / "unpacked" / "101_ObjectCategories"
    for name, data in small_members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    make_caltech101(tmp_path / "f", classes=SMALL, source=tmp_path / "unpacked", progress=False)
    assert _files(tmp_path / "f") == sorted(small_members)


def test_resized_copy_is_square_rgb_png(tmp_path, small_members):
    archive = tmp_path / "c.tar.gz"
    archive.write_bytes(_tar_gz(small_members))
    make_caltech101(tmp_path / "s", classes=SMALL, source=archive, image_size=32, progress=False)
    files = _files(tmp_path / "s")
    assert len(files) == 85 and all(f.endswith(".png") for f in files)
    with Image.open(tmp_path / "s" / files[0]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
        with Image.open(io.BytesIO(small_members[files[0][:-4] + ".jpg"])) as original:
            # the mean colour survives the downscale (a wrong image or a channel swap would not)
            small, big = image.resize((1, 1), Image.BOX).getpixel((0, 0)), original.convert("RGB").resize(
                (1, 1), Image.BOX).getpixel((0, 0))
            assert max(abs(a - b) for a, b in zip(small, big)) <= 6


def _refused(tmp_path, archive_bytes, match, name="bad.tar.gz"):
    tmp_path = tmp_path / name.replace(".", "_")
    tmp_path.mkdir()
    archive = tmp_path / name
    archive.write_bytes(archive_bytes)
    dst = tmp_path / "out"
    with pytest.raises(CaltechError, match=match):
        make_caltech101(dst, classes=SMALL, source=archive, progress=False)
    assert not dst.exists()
    assert not [p for p in tmp_path.iterdir() if p.name not in (name,)]  # nothing written beside it either


def test_an_entry_escaping_its_folder_is_refused(tmp_path, small_members):
    members = dict(small_members)
    members["../../evil.jpg"] = b"x"
    _refused(tmp_path, _tar_gz(members), "escapes its folder")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("/etc/evil.jpg", b"x")
    _refused(tmp_path, zipped.getvalue(), "escapes its folder", name="bad.zip")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_links_and_device_files_in_an_archive_are_refused(tmp_path, small_members, kind):
    members = dict(small_members)
    info = tarfile.TarInfo(f"101_ObjectCategories/{SMALL}/image_9999.jpg")
    info.type = kind
    info.linkname = "/etc/passwd"
    members["special"] = info
    _refused(tmp_path, _tar_gz(members), "link or device file")


def test_a_truncated_archive_is_refused(tmp_path, small_members):
    data = _tar_gz(small_members)
    _refused(tmp_path, data[: len(data) // 2], "truncated or corrupt")


def test_an_image_that_differs_from_the_manifest_is_refused(tmp_path, small_members):
    members = dict(small_members)
    name = sorted(members)[3]
    members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])
    _refused(tmp_path, _tar_gz(members), "differs from the committed Caltech101 manifest")


def test_an_archive_missing_images_is_refused(tmp_path, small_members):
    members = dict(sorted(small_members.items())[:-2])
    _refused(tmp_path, _tar_gz(members), "lacks 2 of the 85 images")


def test_a_folder_with_a_link_is_refused(tmp_path, small_members):
    folder = tmp_path / "101_ObjectCategories" / SMALL
    folder.mkdir(parents=True)
    for name, data in small_members.items():
        (tmp_path / "101_ObjectCategories" / name).write_bytes(data)
    target = folder / "image_0001.jpg"
    target.rename(tmp_path / "elsewhere.jpg")
    target.symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(CaltechError, match="link or special file"):
        make_caltech101(tmp_path / "out", classes=SMALL, source=tmp_path / "101_ObjectCategories", progress=False)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- downloads from a local server


class _Server:
    """An HTTP server on 127.0.0.1 serving ``files`` with Range support; it logs each request's Range header."""

    def __init__(self, files):
        self.files, self.ranges = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = outer.files.get(self.path.split("?")[0])
                if data is None:
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range")
                outer.ranges.append(wanted)
                start = int(wanted[len("bytes="):].rstrip("-")) if wanted else 0
                self.send_response(206 if wanted else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(small_members):
    archive = _official_zip(_tar_gz(small_members))
    srv = _Server({"/caltech-101.zip": archive})
    srv.archive = archive
    yield srv
    srv.close()


def test_download_checked_and_used(tmp_path, server):
    md5 = hashlib.md5(server.archive).hexdigest()
    summary = make_caltech101(tmp_path / "d", classes=SMALL, url=server.url + "/caltech-101.zip?download=1",
                              checksum=f"md5:{md5}", progress=False)
    assert summary.counts == {SMALL: 85} and (tmp_path / "caltech-101.zip").read_bytes() == server.archive
    assert server.ranges == [None]


def test_download_resumes_a_partial_file(tmp_path, server):
    half = len(server.archive) // 2
    (tmp_path / "caltech-101.zip.part").write_bytes(server.archive[:half])
    sha = hashlib.sha256(server.archive).hexdigest()
    path = download_file(server.url + "/caltech-101.zip", tmp_path / "caltech-101.zip", checksum=f"sha256:{sha}",
                         progress=False)
    assert server.ranges == [f"bytes={half}-"]
    assert path.read_bytes() == server.archive and not (tmp_path / "caltech-101.zip.part").exists()


def test_download_with_a_wrong_checksum_is_refused_and_removed(tmp_path, server):
    with pytest.raises(CaltechError, match="wrong checksum"):
        make_caltech101(tmp_path / "d", classes=SMALL, url=server.url + "/caltech-101.zip",
                        checksum="md5:" + "0" * 32, progress=False)
    assert sorted(os.listdir(tmp_path)) == []  # neither the archive nor a partial one, nor DST


def test_offline_is_one_clear_line(tmp_path, capsys):
    srv = _Server({})
    url = srv.url + "/caltech-101.zip"
    srv.close()  # nothing listens there now
    code = main(["make-data", "caltech101", str(tmp_path / "d"), "--classes", "Faces", "--url", url,
                 "--checksum", "md5:" + "0" * 32])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "offline?" in err and "--from FILE" in err


def test_cli_downloads_from_a_url_and_splits_next(tmp_path, server, capsys):
    sha = hashlib.sha256(server.archive).hexdigest()
    code = main(["make-data", "caltech101", str(tmp_path / "d"), "--classes", SMALL, "--url",
                 server.url + "/caltech-101.zip", "--checksum", f"sha256:{sha}", "--download-dir",
                 str(tmp_path / "dl")])
    out = capsys.readouterr().out
    assert code == 0 and "85 images" in out and "split" in out
    assert _files(tmp_path / "d") == sorted(n for n in _files(EMBEDDED) if n.startswith(SMALL + "/"))
    assert main(["make-data", "caltech101", str(tmp_path / "e"), "--url", server.url]) == 2
    assert "--url needs --checksum" in capsys.readouterr().err
    assert main(["make-data", "digits", str(tmp_path / "g"), "--classes", "all"]) == 2


def test_manifest_is_gzip_of_sha256sum_lines():
    path = Path(__file__).resolve().parents[1] / "simam_paddle" / "data" / "resources" / "caltech101_sha256sums.txt.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert len(lines) == 8677 and all(len(line.split("  ")[0]) == 64 for line in lines)
    assert embedded_caltech16() == EMBEDDED
