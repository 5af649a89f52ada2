"""Caltech101 (Fei-Fei, Fergus and Perona, 2004), the data of the notebook this project reproduces.

Three sources, one result: ``DST/<class>/<file>`` class folders, ready for :func:`split_dataset`.

* **The embedded Caltech-16** (``data/caltech16/`` in the repository, 1,817 JPEGs, the original bytes): the
  16 largest object classes with fewer than 400 images (see :data:`CALTECH16_CLASSES`).
* **A local copy**: the official ``caltech-101.zip``, the ``101_ObjectCategories.tar.gz`` inside it, or an
  unpacked ``101_ObjectCategories/`` folder.
* **A download** of the official archive from CaltechDATA (:data:`CALTECH101_URL`), resumable, with a progress
  bar, checked against its published MD5 before it is opened.

Whatever the source, every image is checked against the committed per-file manifest (the SHA-256 of each of the
8,677 object images, ``resources/caltech101_sha256sums.txt.gz``) before anything is written, and an archive entry
that would land outside its folder, a link or a device file stops the whole job: nothing is written (the
destination is built in a temporary folder and renamed into place).

Caltech101 is published under CC BY 4.0 (:data:`CALTECH101_CITATION`).
"""
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from PIL import Image

from .._io import progress_bar
from .images import read_regular_file
from .trees import write_tree

__all__ = [
    "CALTECH101_URL", "CALTECH101_MD5", "CALTECH101_CITATION", "CALTECH16_CLASSES", "CaltechError",
    "CaltechSummary", "caltech101_manifest", "caltech101_classes", "embedded_caltech16", "download_file",
    "make_caltech101",
]

PathLike = Union[str, os.PathLike]

CALTECH101_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1"
"""The official archive on CaltechDATA (record mzrjq-6wc02, doi:10.22002/D1.20086), about 137 MB."""
CALTECH101_MD5 = "3138e1922a9193bfa496528edbbc45d0"
"""The MD5 of ``caltech-101.zip`` as CaltechDATA publishes it."""
CALTECH101_CITATION = (
    "Li, F.-F., Andreeto, M., Ranzato, M. A., & Perona, P. (2022). Caltech 101 (Version 1.0) [Data set]. "
    "CaltechDATA. https://doi.org/10.22002/D1.20086. Licence: CC BY 4.0. Images first published in "
    "L. Fei-Fei, R. Fergus and P. Perona, Learning generative visual models from few training examples, "
    "CVPR 2004 Workshop on Generative-Model Based Vision."
)
CALTECH16_CLASSES = (
    "Leopards", "bonsai", "brain", "buddha", "butterfly", "car_side", "chandelier", "grand_piano",
    "hawksbill", "helicopter", "kangaroo", "ketch", "menorah", "starfish", "trilobite", "watch",
)
"""The embedded subset: the 16 largest Caltech101 object classes with fewer than 400 images, ties by name.

The cap leaves out airplanes (800), Motorbikes (798), Faces (435) and Faces_easy (435), which would be two thirds
of a 16-class set; ``BACKGROUND_Google`` is not an object class. 1,817 images; split every 5th image to eval,
1,447 train and 370 eval (the notebook's Caltech-16: 1,440 and 384).
"""
_EMBEDDED = Path(__file__).resolve().parents[2] / "data" / "caltech16"
_MANIFEST = Path(__file__).resolve().parent / "resources" / "caltech101_sha256sums.txt.gz"
_TOP = "101_ObjectCategories"
_NESTED = "101_ObjectCategories.tar.gz"
_MAX_IMAGE_BYTES = 16 << 20  # the largest Caltech101 image is under 1 MB
_CHUNK = 1 << 20


class CaltechError(ValueError):
    """Caltech101 could not be made: the message names the problem and the fix; nothing was written."""


@dataclass(frozen=True)
class CaltechSummary:
    """What :func:`make_caltech101` left on disk.

    Attributes:
        root (Path): the class folders' parent.
        created (bool): True if this call wrote them, False if they were already complete.
        counts (dict): images per class.
        source (str): where the images came from (``"embedded"``, a path or the URL).
        image_size (int|None): the side the images were resized to, or None for the original JPEGs.
    """

    root: Path
    created: bool
    counts: Dict[str, int]
    source: str
    image_size: Optional[int] = None

    def total(self) -> int:
        """The number of images."""
        return sum(self.counts.values())

    def format(self) -> str:
        """A one-line account and the per-class counts."""
        state = "created" if self.created else "already complete, nothing written"
        size = "original JPEGs" if self.image_size is None else f"{self.image_size}x{self.image_size} PNGs"
        lines = [f"{self.root} ({state}): Caltech101, {len(self.counts)} classes, {self.total()} images, "
                 f"{size}, from {self.source}, each checked against the committed SHA-256 manifest"]
        lines += [f"  {name:<20}{count:>5}" for name, count in self.counts.items()]
        return "\n".join(lines)

    __str__ = format


@lru_cache(maxsize=1)
def caltech101_manifest() -> Dict[str, str]:
    """The SHA-256 of each Caltech101 object image, ``{"<class>/<file>": hex}`` (8,677 images, 101 classes).

    Examples:
        >>> manifest = caltech101_manifest()
        >>> len(manifest), len({name.split("/")[0] for name in manifest})
        (8677, 101)
    """
    manifest = {}
    with gzip.open(_MANIFEST, "rt", encoding="utf-8") as lines:
        for line in lines:
            digest, name = line.rstrip("\n").split("  ", 1)
            manifest[name] = digest
    return manifest


def caltech101_classes(classes: Union[str, Sequence[str]] = "caltech16") -> List[str]:
    """The class names ``classes`` means: ``"caltech16"``, ``"all"`` (101 classes), or names (a list or "a,b").

    Examples:
        >>> len(caltech101_classes("all")), caltech101_classes("caltech16")[:2]
        (101, ['Leopards', 'bonsai'])
        >>> caltech101_classes("Faces,watch")
        ['Faces', 'watch']
    """
    known = sorted({name.split("/")[0] for name in caltech101_manifest()})
    if isinstance(classes, str):
        if classes == "caltech16":
            return list(CALTECH16_CLASSES)
        if classes == "all":
            return known
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    names = list(dict.fromkeys(classes))
    unknown = [c for c in names if c not in known]
    if unknown or not names:
        import difflib

        hints = [f"{c!r} (did you mean {', '.join(difflib.get_close_matches(c, known, 2)) or 'nothing close'}?)"
                 for c in unknown]
        raise CaltechError(f"unknown Caltech101 class {'; '.join(hints) or '(none given)'}; give 'caltech16', "
                           f"'all' or names of the 101 classes: {', '.join(known)}")
    return names


def embedded_caltech16() -> Path:
    """The embedded Caltech-16 folder (``data/caltech16`` of the repository).

    Raises:
        FileNotFoundError: the package runs outside its repository (an installed wheel), where the subset
            is not shipped; the message says how to make it.

    Examples:
        >>> sorted(p.name for p in embedded_caltech16().iterdir() if p.is_dir())[:3]
        ['Leopards', 'bonsai', 'brain']
    """
    if not (_EMBEDDED / "SHA256SUMS").is_file():
        raise FileNotFoundError(
            f"the embedded Caltech-16 is not here ({_EMBEDDED}): it ships with the repository, not the wheel. "
            "Make it with: python -m simam_paddle make-data caltech101 DST --from caltech-101.zip "
            f"(or without --from to download {CALTECH101_URL})")
    return _EMBEDDED


def make_caltech101(dst: PathLike, classes: Union[str, Sequence[str]] = "caltech16",
                    source: Optional[PathLike] = None, image_size: Optional[int] = None,
                    url: Optional[str] = None, checksum: Optional[str] = None,
                    download_dir: Optional[PathLike] = None, progress: Optional[bool] = None) -> CaltechSummary:
    """Write Caltech101 class folders ``dst/<class>/<file>``, every image checked against the committed manifest.

    The source is ``source`` if given (``caltech-101.zip``, ``101_ObjectCategories.tar.gz`` or an unpacked
    folder), else the archive at ``url`` if given, else the embedded Caltech-16 when it holds every class asked
    for, else the official archive. A download goes to ``download_dir`` (resumable: an interrupted download
    continues where it stopped) and is checked against ``checksum`` before it is opened. ``dst`` is written atomically; run again on a finished ``dst``, it
    only verifies; a ``dst`` holding anything else is refused, never cleaned.

    Args:
        dst (str|PathLike): the folder to create (new or empty).
        classes (str|Sequence[str], optional): ``"caltech16"``, ``"all"`` or class names. Default: "caltech16".
        source (str|PathLike, optional): a local archive or folder. Default: None.
        image_size (int, optional): resize every image to this square side (PNG, bicubic, RGB), e.g. 32 for
            a CIFAR-like Caltech-101. Default: None, the original JPEG bytes.
        url (str, optional): download from here (with ``checksum``). Default: None, :data:`CALTECH101_URL`
            where the embedded copy does not suffice.
        checksum (str, optional): ``"md5:<hex>"`` or ``"sha256:<hex>"`` of the archive at ``url``. Default: None,
            the official archive's MD5 (:data:`CALTECH101_MD5`); required with ``url``.
        download_dir (str|PathLike, optional): where the downloaded archive is kept. Default: ``dst``'s parent.
        progress (bool, optional): progress bars; None shows them in a terminal or notebook. Default: None.

    Returns:
        CaltechSummary: the root, whether it was written now, the per-class counts and the source.

    Raises:
        CaltechError: an unknown class, an archive or folder that is not Caltech101 (a file whose SHA-256
            differs from the manifest, missing files), an unsafe archive entry, a wrong checksum.
        OSError: offline, no space left, an unreadable source (the message names the file and the fix).

    Examples:
        >>> import tempfile
        >>> summary = make_caltech101(tempfile.mkdtemp() + "/c2", classes="watch,Leopards", progress=False)
        >>> summary.total(), summary.source
        (439, 'embedded')
    """
    names = caltech101_classes(classes)
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8):
        raise CaltechError(f"image_size must be an integer >= 8 or None (the original JPEGs), got {image_size!r}")
    manifest = caltech101_manifest()
    wanted = {name: digest for name, digest in manifest.items() if name.split("/")[0] in names}
    if url is not None and checksum is None:
        raise CaltechError(f"url={url!r} needs checksum='md5:<hex>' or 'sha256:<hex>': a download is checked "
                           "before it is used")
    if source is None and url is None and set(names) <= set(CALTECH16_CLASSES):
        source, label = embedded_caltech16(), "embedded"
    elif source is None:
        if url is None:
            url, checksum = CALTECH101_URL, "md5:" + CALTECH101_MD5
        folder = Path(download_dir) if download_dir is not None else Path(dst).resolve().parent
        source = download_file(url, folder / _archive_name(url), checksum=checksum, progress=progress)
        label = url
    else:
        source, label = Path(source), str(source)
        if not source.exists():
            raise FileNotFoundError(f"source {source} does not exist; give caltech-101.zip, "
                                    f"101_ObjectCategories.tar.gz or an unpacked {_TOP}/ folder")
    images = _verified_images(Path(source), wanted, progress)
    out_names = sorted(_output_name(name, image_size) for name in wanted)

    def files() -> Iterator[Tuple[str, bytes]]:
        for name, data in sorted(images.items()):
            yield _output_name(name, image_size), data if image_size is None else _resized_png(data, image_size)

    created = write_tree(Path(dst), out_names, files)
    counts = {c: sum(1 for name in wanted if name.split("/")[0] == c) for c in sorted(names)}
    return CaltechSummary(Path(dst), created, counts, label, image_size)


# ---------------------------------------------------------------- download


def download_file(url: str, path: PathLike, checksum: Optional[str] = None,
                  progress: Optional[bool] = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``path``, resuming a partial ``path.part``, and check ``checksum`` before renaming.

    A finished ``path`` whose checksum matches is not downloaded again; one that does not match is refused
    (delete it, or pass the right checksum), never overwritten.

    Args:
        url (str): http(s) or file URL.
        path (str|PathLike): the destination file.
        checksum (str, optional): ``"md5:<hex>"`` or ``"sha256:<hex>"``. Default: None (no check).
        progress (bool, optional): a tqdm progress bar; None shows it in a terminal or notebook. Default: None.
        timeout (float, optional): seconds to wait for the server. Default: 60.

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    algorithm, expected = _parse_checksum(checksum)
    if path.is_file():
        _check_digest(path, algorithm, expected, "the archive already there")
        return path
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise OSError(f"cannot download {url}: HTTP {err.code} {err.reason}; download it by hand from "
                          "https://data.caltech.edu/records/mzrjq-6wc02 and pass --from FILE") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise OSError(f"cannot download {url} ({reason}): offline? Download caltech-101.zip on a machine "
                      "with internet from https://data.caltech.edu/records/mzrjq-6wc02 and pass --from FILE") from None
    if response is not None:
        with response:
            _receive(response, part, have, url, progress)
    _check_digest(part, algorithm, expected, f"the download of {url}", remove=part)
    os.replace(part, path)
    return path


def _receive(response, part: Path, have: int, url: str, progress: Optional[bool]) -> None:
    resumed = have and response.status == 206
    if not resumed:
        have = 0  # the server sent the whole file
    length = response.headers.get("Content-Length")
    total = have + int(length) if length is not None else None
    if total is not None:
        free = shutil.disk_usage(part.parent).free
        if total - have > free:
            raise OSError(f"no space for {url}: it needs {(total - have) / 1e6:.0f} MB more in {part.parent}, "
                          f"{free / 1e6:.0f} MB are free; free some space or pass --download-dir")
    bar = progress_bar(total=total, desc=f"downloading {part.name[:-5]}", progress=progress, initial=have, unit="B",
                       unit_scale=True)
    try:
        with open(part, "ab" if resumed else "wb") as out:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
    except OSError as err:
        if err.errno == 28:  # ENOSPC
            raise OSError(f"no space left writing {part}; free some space (or pass --download-dir) and run "
                          "the same command again: the download resumes") from None
        raise
    finally:
        bar.close()
    size = part.stat().st_size
    if total is not None and size < total:
        raise OSError(f"the download of {url} stopped at {size} of {total} bytes; run the same command "
                      "again to resume it")


def _parse_checksum(checksum: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    if checksum is None:
        return None, None
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not expected or any(c not in "0123456789abcdef" for c in expected.lower()):
        raise CaltechError(f"checksum {checksum!r} is not understood; give md5:<hex> or sha256:<hex>")
    return algorithm, expected.lower()


def _check_digest(path: Path, algorithm, expected, what: str, remove: Optional[Path] = None) -> None:
    if algorithm is None:
        return
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        if remove is not None:
            os.remove(remove)  # our own partial download: the next run starts over instead of resuming garbage
            fix = "it was removed; run the same command again to download it afresh"
        else:
            fix = f"delete {path} (or pass its own checksum) and run again"
        raise CaltechError(f"{what} has the wrong checksum ({algorithm} {digest.hexdigest()}, expected "
                           f"{expected}): a corrupt or different file; {fix}")


def _archive_name(url: str) -> str:
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    return name or "caltech-101.zip"


# ---------------------------------------------------------------- reading a source


def _verified_images(source: Path, wanted: Dict[str, str], progress: Optional[bool]) -> Dict[str, bytes]:
    """The bytes of every ``wanted`` image in ``source``, each matching its manifest digest."""
    found: Dict[str, bytes] = {}
    try:
        for parts, read in _entries(source):
            name = _manifest_name(parts)
            if name in wanted and name not in found:
                data = read()
                if hashlib.sha256(data).hexdigest() != wanted[name]:
                    raise CaltechError(
                        f"{source}: {'/'.join(parts)} differs from the committed Caltech101 manifest (SHA-256): "
                        "the source is corrupt or not the official Caltech101; get it again from "
                        "https://data.caltech.edu/records/mzrjq-6wc02. Nothing was written")
                found[name] = data
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise CaltechError(f"{source} is truncated or corrupt ({type(err).__name__}: {err}); download it again "
                           "(or pass a complete copy). Nothing was written") from None
    missing = sorted(set(wanted) - set(found))
    if missing:
        classes = sorted({name.split("/")[0] for name in missing})
        raise CaltechError(
            f"{source} lacks {len(missing)} of the {len(wanted)} images asked for (e.g. {', '.join(missing[:3])}; "
            f"classes {', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}): a truncated archive or "
            f"another data set; give the complete caltech-101.zip or {_TOP}/ folder. Nothing was written")
    return found


def _manifest_name(parts: Tuple[str, ...]) -> Optional[str]:
    """``"<class>/<file>"`` for ``.../101_ObjectCategories/<class>/<file>`` or a bare ``<class>/<file>``."""
    if len(parts) >= 3 and parts[-3] == _TOP:
        return f"{parts[-2]}/{parts[-1]}"
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    return None


def _entries(source: Path) -> Iterator[Tuple[Tuple[str, ...], Callable[[], bytes]]]:
    """``(parts, read)`` for each regular file of a folder, zip or tar (a nested tar.gz inside a zip too)."""
    if source.is_dir():
        yield from _folder_entries(source)
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            yield from _zip_entries(zf, str(source))
    else:
        with open(source, "rb") as f:
            yield from _tar_entries(f, str(source))


def _safe_parts(name: str, where: str) -> Tuple[str, ...]:
    name = name.replace("\\", "/")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise CaltechError(f"{where}: the entry {name!r} escapes its folder (path traversal); the archive is "
                           "refused and nothing was written. Use the official caltech-101.zip")
    return parts


def _zip_entries(zf: zipfile.ZipFile, where: str):
    for info in zf.infolist():
        parts = _safe_parts(info.filename, where)
        mode = (info.external_attr >> 16) & 0o170000
        if info.is_dir():
            continue
        if mode not in (0, stat.S_IFREG):
            raise CaltechError(f"{where}: the entry {info.filename!r} is a link or device file, not an image; "
                               "the archive is refused and nothing was written")
        if parts and parts[-1] == _NESTED:
            with zf.open(info) as nested:
                yield from _tar_entries(nested, f"{where}:{info.filename}")
        elif info.file_size <= _MAX_IMAGE_BYTES:
            yield parts, (lambda info=info: zf.read(info))


def _tar_entries(fileobj: BinaryIO, where: str):
    with tarfile.open(fileobj=fileobj, mode="r|*") as tf:
        for member in tf:
            parts = _safe_parts(member.name, where)
            if member.isdir():
                continue
            if not member.isfile():
                raise CaltechError(f"{where}: the entry {member.name!r} is a link or device file, not an image; "
                                   "the archive is refused and nothing was written")
            if parts and parts[-1] == _NESTED:
                yield from _tar_entries(tf.extractfile(member), f"{where}:{member.name}")
            elif member.size <= _MAX_IMAGE_BYTES:
                data = tf.extractfile(member).read()  # a stream: read now, before the next member
                yield parts, (lambda data=data: data)


def _folder_entries(root: Path):
    for folder, subfolders, files in os.walk(root):  # os.walk does not follow links to folders
        subfolders.sort()
        for name in sorted(files):
            path = Path(folder) / name
            parts = path.relative_to(root).parts
            if _manifest_name(parts) is None:
                continue
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                raise CaltechError(f"{path} is a link or special file, not an image; replace it with the file "
                                   "itself. Nothing was written")
            yield parts, (lambda path=path: read_regular_file(path, follow_links=False, max_bytes=_MAX_IMAGE_BYTES))


# ---------------------------------------------------------------- writing


def _output_name(name: str, image_size: Optional[int]) -> str:
    return name if image_size is None else str(PurePosixPath(name).with_suffix(".png"))


def _resized_png(data: bytes, size: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB").resize((size, size), Image.BICUBIC)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()
