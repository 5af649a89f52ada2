"""Split a folder of class folders (or a zip of one) into ``train/`` and ``eval/`` folders, safely.

The notebook's rule, made deterministic: per class, the valid images in sorted name order; the
image at index ``i`` goes to ``DST/eval/<class>/`` if ``i % eval_every == 0``, else to
``DST/train/<class>/``. Spaces in file names become underscores, as in the notebook.

What the split guarantees, since it may run on someone's only copy of a data set:

- The source is only read: files are opened read-only and copied byte for byte; a zip is read
  member by member in memory (never ``extractall``), and entries with an absolute path, a ``..``
  component or a symbolic link are never written (destinations are built from the class and
  file name only). Symbolic links in a source folder (to files or folders) are skipped and
  listed, never followed.
- Every image of SRC that decodes (fully, once, with Pillow) is written exactly once. Names that
  collide after the space rule, or differ only in case or in Unicode normalisation (NFC ``é``
  and NFD ``e`` + accent, which macOS merges), get ``_1``, ``_2``, ... suffixes; a name that
  needed no change keeps it. A decodable image whose suffix is not an image suffix gets its
  format's suffix appended (``scan.dat`` -> ``scan.dat.png``) so datasets find it. Files that are
  not images or do not decode are skipped and reported with the reason.
- ``DST/split_manifest.csv`` lists every file the split wrote (source, destination, class, split,
  sha256, bytes). A re-run rewrites exactly those files: unchanged files are not touched (same
  mtime), files no longer produced are removed, and any other file in DST (or a listed file that
  was edited since) makes the split refuse without changing anything.
- Images are written to a short temporary ``.<random>.split-partial`` file (so any legal file
  name fits), fsynced and renamed into place, so a crash leaves no half file; leftover
  ``.*.split-partial`` files are the split's own and a re-run deletes them. Files get the
  permissions a plain write would (``0o666`` less the umask).
- Nothing is written through a symbolic link: a DST holding links (``DST/train`` pointing
  elsewhere) is refused, and each folder under DST is checked again just before writing.
- The manifest is written (and fsynced) before the images, listing old and new files, so an
  interrupted run never leaves files it did not record.

Which folders are classes (the class-folder rule):

1. Start at SRC's top. While the current folder holds exactly one folder, and that folder holds
   no image file directly but holds folders (``Images/`` in ``Images/cat/1.jpg``), step into it: that is a
   wrapper, not a class. The folder where this stops is the *class root*.
2. Each direct sub-folder of the class root is a class, even an empty one (zeros and a warning).
3. Only files directly in a class folder are read. Files deeper down (``cat/extra/3.jpg``) are
   skipped and listed, never made a class of their own; files outside any class folder (a
   ``LICENSE.txt`` next to ``Images/``) are skipped and listed too. Both get a warning.
4. If no class folder or no usable image is left, the split raises ``ValueError`` listing what
   was skipped and why, and writes nothing.

Hidden names (``.DS_Store``, ``._*`` and other dot files, ``__MACOSX``, ``Thumbs.db``) are
ignored in SRC without being listed; ``.DS_Store``, ``Thumbs.db`` and ``desktop.ini`` in DST are
tolerated and left alone.
"""
import contextlib
import csv
import errno
import hashlib
import io
import os
import re
import stat
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from PIL import Image

from .._io import atomic_write_bytes, fsync_folder, progress_bar, read_text
from .images import IMAGE_EXTENSIONS, image_error_reason, is_hidden, is_image_name, read_regular_file

__all__ = ["split_dataset", "SplitReport", "SkippedFile", "MANIFEST_NAME"]

MANIFEST_NAME = "split_manifest.csv"
_MANIFEST_FIELDS = ["source", "destination", "class", "split", "sha256", "bytes"]
_PARTIAL_SUFFIX = ".split-partial"
_TOLERATED_IN_DST = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
# Larger members are skipped rather than read into memory (zip bombs, stray videos).
_MAX_FILE_BYTES = 512 * 1024 * 1024
_PROGRESS_MIN_FILES = 100
_MAX_NAME_BYTES = 255
_PREFERRED_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp"}


@dataclass(frozen=True)
class SkippedFile:
    """A file of SRC that was not copied, and why."""

    source: str
    reason: str


@dataclass
class SplitReport:
    """What :func:`split_dataset` did.

    Attributes:
        dst (Path): the destination folder.
        manifest (Path): ``dst / "split_manifest.csv"``.
        counts (dict): ``{class: {"train": n, "eval": n}}`` for every class folder of SRC, in
            sorted order (classes without a valid image have zeros).
        skipped (list[SkippedFile]): files of SRC not copied, with the reason.
        written (int): files written by this run. unchanged (int): files already right.
        removed (int): files of an earlier split removed because SRC no longer produces them.
        warnings (list[str]): classes that end up missing from ``train/`` or ``eval/``, files
            outside a class folder or below one, very large images.
    """

    dst: Path
    manifest: Path
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    skipped: List[SkippedFile] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    warnings: List[str] = field(default_factory=list)

    @property
    def num_train(self) -> int:
        return sum(c["train"] for c in self.counts.values())

    @property
    def num_eval(self) -> int:
        return sum(c["eval"] for c in self.counts.values())

    def summary(self) -> str:
        """The per-class table: class, train, eval, total, with a total row."""
        width = max([len("class"), len("total")] + [len(name) for name in self.counts])
        lines = [f"{'class':<{width}}  {'train':>7}  {'eval':>7}  {'total':>7}"]
        for name, c in self.counts.items():
            lines.append(f"{name:<{width}}  {c['train']:>7}  {c['eval']:>7}  {c['train'] + c['eval']:>7}")
        train, evals = self.num_train, self.num_eval
        lines.append(f"{'total':<{width}}  {train:>7}  {evals:>7}  {train + evals:>7}")
        return "\n".join(lines)


@dataclass
class _Candidate:
    class_name: str
    name: str
    source: str
    read: Callable[[], bytes]
    sha256: str = ""
    size: int = 0
    format: str = ""


# ---------------------------------------------------------------- reading SRC


def _fold(name: str) -> str:
    """The key under which case-insensitive, normalisation-insensitive file systems compare names."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _listing(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _is_symlink_mode(external_attr: int) -> bool:
    return (external_attr >> 16) & 0o170000 == 0o120000


def _zip_items(zf: zipfile.ZipFile, skipped: List[SkippedFile]):
    """Yield ``(parts, read)`` for the safe, visible entries of a zip (``read`` is None for a folder); list the rest."""
    for info in zf.infolist():
        raw = info.filename
        name = raw.replace("\\", "/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            if not info.is_dir():
                skipped.append(SkippedFile(raw, "unsafe path in the zip: it would land outside the destination"))
            continue
        if not parts or any(is_hidden(p) for p in parts):
            continue
        if info.is_dir():
            yield tuple(parts), None
        elif _is_symlink_mode(info.external_attr):
            skipped.append(SkippedFile(raw, "symbolic link in the zip (links are never written)"))
        elif info.file_size > _MAX_FILE_BYTES:
            skipped.append(SkippedFile(raw, f"larger than {_MAX_FILE_BYTES} bytes ({info.file_size})"))
        else:
            yield tuple(parts), (lambda info=info: zf.read(info))


def _folder_items(root: Path, skipped: List[SkippedFile]):
    """Yield ``(parts, read)`` for the visible files and folders (``read`` None) under ``root``; list the rest."""

    def visit(folder: Path, parts: Tuple[str, ...]):
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if is_hidden(entry.name):
                    continue
                here = parts + (entry.name,)
                path = Path(entry.path)
                if entry.is_symlink():
                    what = "folder" if entry.is_dir() else "file"
                    skipped.append(SkippedFile("/".join(here), f"symbolic link to a {what} (links are never "
                                                               "followed; put the file itself in the source)"))
                elif entry.is_dir(follow_symlinks=False):
                    yield here, None
                    yield from visit(path, here)
                elif not entry.is_file(follow_symlinks=False):
                    skipped.append(SkippedFile("/".join(here), "not a regular file"))
                elif entry.stat(follow_symlinks=False).st_size > _MAX_FILE_BYTES:
                    skipped.append(SkippedFile("/".join(here), f"larger than {_MAX_FILE_BYTES} bytes"))
                else:
                    # No links followed: a file swapped for a link after the scan is refused instead of read.
                    yield here, (lambda path=path: read_regular_file(path, follow_links=False))

    yield from visit(root, ())


def _class_root(folders: set, image_folders: set) -> Tuple[str, ...]:
    """Step 1 of the class-folder rule (module docstring): look through single wrapper folders."""

    def subfolders(prefix):
        return [f for f in folders if len(f) == len(prefix) + 1 and f[: len(prefix)] == prefix]

    root: Tuple[str, ...] = ()
    while True:
        subs = subfolders(root)
        if len(subs) != 1 or subs[0] in image_folders or not subfolders(subs[0]):
            return root
        root = subs[0]


def _candidates(items, skipped: List[SkippedFile], notes: List[str]) -> Tuple[List[str], List[_Candidate]]:
    """Turn ``(parts, read)`` items into class names and per-file candidates by the class-folder rule."""
    items = list(items)
    files = [(parts, read) for parts, read in items if read is not None]
    folders = {parts for parts, read in items if read is None}
    folders |= {parts[:k] for parts, _ in files for k in range(1, len(parts))}
    root = _class_root(folders, {parts[:-1] for parts, _ in files if is_image_name(parts[-1])})
    depth = len(root)
    classes = sorted(f[depth] for f in folders if len(f) == depth + 1 and f[:depth] == root)
    where = "/".join(root) + "/" if root else ""
    outside, below, candidates = [], [], []
    for parts, read in files:
        source = "/".join(parts)
        if parts[:depth] != root or len(parts) == depth + 1:
            outside.append(source)
            skipped.append(SkippedFile(source, "not inside a class folder"))
        elif len(parts) > depth + 2:
            below.append(source)
            skipped.append(SkippedFile(source, f"inside a sub-folder of class {parts[depth]!r}; only files directly "
                                               "in a class folder are read"))
        else:
            candidates.append(_Candidate(parts[depth], parts[-1], source, read))
    if classes and outside:
        notes.append(f"ignored {len(outside)} file(s) not inside a class folder ({where}<class>/): "
                     f"{_listing(outside)}")
    if below:
        notes.append(f"skipped {len(below)} file(s) in sub-folders of class folders (only files directly in "
                     f"{where}<class>/ are read): {_listing(below)}")
    by_key: Dict[str, str] = {}
    for name in classes:
        other = by_key.setdefault(_fold(name), name)
        if other != name:
            raise ValueError(f"class folders {other!r} and {name!r} differ only in case or Unicode normalisation; on "
                             "Windows and macOS they would merge into one folder. Rename one of them.")
    return classes, candidates


def _decode(candidate: _Candidate, skipped: List[SkippedFile], notes: List[str]) -> bool:
    try:
        data = candidate.read()
    except (OSError, zipfile.BadZipFile, RuntimeError) as err:
        skipped.append(SkippedFile(candidate.source, f"cannot be read ({type(err).__name__}: {err})"))
        return False
    limit = Image.MAX_IMAGE_PIXELS
    try:
        # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; we say it in our words.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                pixels = image.width * image.height
                image.load()
                candidate.format = image.format or ""
    except Exception as err:  # Pillow raises many types for broken files; all mean "not usable"
        skipped.append(SkippedFile(candidate.source, image_error_reason(err)))
        return False
    if limit and pixels > limit:
        notes.append(f"{candidate.source} is very large ({pixels} pixels, above Pillow's limit of {limit}); "
                     "it is kept, but every epoch decodes it in full")
    candidate.sha256 = hashlib.sha256(data).hexdigest()
    candidate.size = len(data)
    return True


# ---------------------------------------------------------------- naming and assignment


def _format_suffix(fmt: str) -> str:
    if fmt in _PREFERRED_SUFFIX:
        return _PREFERRED_SUFFIX[fmt]
    known = sorted(ext for ext, f in Image.registered_extensions().items() if f == fmt)
    return known[0] if known else "." + fmt.lower()


def _fit(stem: str, tail: str) -> str:
    """``stem + tail``, with ``stem`` shortened so the name stays within 255 bytes (the usual limit)."""
    while len((stem + tail).encode("utf-8")) > _MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return stem + tail


def _wanted_name(candidate: _Candidate) -> str:
    name = candidate.name.replace(" ", "_")
    if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
        name = _fit(name, _format_suffix(candidate.format))
    return name


def _assign_names(candidates: Sequence[_Candidate]) -> List[str]:
    """Destination names for one class, unique even on case- or normalisation-insensitive file systems."""
    wanted = [_wanted_name(c) for c in candidates]
    names: List[Optional[str]] = [None] * len(candidates)
    taken = set()
    # A name that needs no change keeps it, so `a_b.jpg` never moves because of `a b.jpg`.
    for i, c in enumerate(candidates):
        if wanted[i] == c.name and _fold(wanted[i]) not in taken:
            taken.add(_fold(wanted[i]))
            names[i] = wanted[i]
    for i in range(len(candidates)):
        if names[i] is None:
            stem, ext = os.path.splitext(wanted[i])
            name, k = wanted[i], 1
            while _fold(name) in taken:
                name, k = _fit(stem, f"_{k}{ext}"), k + 1
            taken.add(_fold(name))
            names[i] = name
    return names


# ---------------------------------------------------------------- DST bookkeeping


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> List[Dict[str, str]]:
    try:
        reader = csv.DictReader(io.StringIO(read_text(path, "a split manifest", newline=""), newline=""))
        if reader.fieldnames != _MANIFEST_FIELDS:
            raise ValueError(f"columns {reader.fieldnames}")
        return list(reader)
    except (ValueError, csv.Error) as err:  # NotTextError is a ValueError naming the file and its encoding
        raise ValueError(f"{path} is not a manifest written by split_dataset ({err}); expected the columns "
                         f"{_MANIFEST_FIELDS}. Split into a new folder instead.") from err


def _write_manifest(dst: Path, rows: Sequence[Dict[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    path = dst / MANIFEST_NAME
    if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
        return  # an unchanged re-run leaves even the manifest's mtime alone
    atomic_write_bytes(data, dst / MANIFEST_NAME, suffix=_PARTIAL_SUFFIX)


def _folder_for_writing(root: Path, parts: Sequence[str]) -> Path:
    """``root / parts``, created folder by folder; refuses any component that is a link or not a folder."""
    folder = root
    for part in parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        mode = os.lstat(folder).st_mode
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            raise FileExistsError(f"{folder} is {what}; the split never writes through links or over files it did "
                                  "not write. Remove it, or split into a new folder.")
    return folder


def _write_atomic(dst: Path, rel: str, data: bytes) -> None:
    """Write ``dst / rel`` (a POSIX path) without following any link under ``dst``; the caller fsyncs its folder."""
    *parents, name = rel.split("/")
    atomic_write_bytes(data, _folder_for_writing(dst, parents) / name, suffix=_PARTIAL_SUFFIX, sync_folder=False)


def _list_files(dst: Path) -> List[str]:
    return sorted(Path(folder, name).relative_to(dst).as_posix()
                  for folder, _, names in os.walk(dst) for name in names)


def _find_links(dst: Path) -> List[str]:
    links = []
    for folder, dirs, names in os.walk(dst):  # os.walk lists links to folders but does not enter them
        paths = (Path(folder, name) for name in dirs + names)
        links.extend(path.relative_to(dst).as_posix() for path in paths if path.is_symlink())
    return sorted(links)


def _check_destination(dst: Path) -> Tuple[List[Dict[str, str]], Dict[str, str]]:
    """Old manifest rows and ``{existing file: sha256}``; refuse a DST with files the split did not write."""
    if not dst.exists():
        return [], {}
    if not dst.is_dir():
        raise NotADirectoryError(f"destination {dst} exists and is not a folder")
    manifest = dst / MANIFEST_NAME
    if os.path.lexists(manifest) and not stat.S_ISREG(os.lstat(manifest).st_mode):
        what = "a symbolic link" if manifest.is_symlink() else "a folder" if manifest.is_dir() else "not a file"
        raise FileExistsError(f"{manifest} is {what}, not the manifest file split_dataset writes. Move it out of "
                              f"{dst}, or split into a new folder.")
    links = _find_links(dst)
    if links:
        raise FileExistsError(f"destination {dst} holds {len(links)} symbolic link(s) ({_listing(links, 5)}); the "
                              "split never writes through links. Remove them, or split into a new folder.")
    rows = _read_manifest(manifest) if manifest.is_file() else []
    recorded: Dict[str, set] = {}
    for row in rows:
        recorded.setdefault(row["destination"], set()).add(row["sha256"])
    foreign, edited, existing = [], [], {}
    for rel in _list_files(dst):
        name = rel.rsplit("/", 1)[-1]
        if rel == MANIFEST_NAME or name in _TOLERATED_IN_DST:
            continue
        if name.startswith(".") and name.endswith(_PARTIAL_SUFFIX):
            continue
        if rel not in recorded:
            foreign.append(rel)
            continue
        existing[rel] = _sha256_file(dst / rel)
        if existing[rel] not in recorded[rel]:
            edited.append(rel)
    if foreign or edited:
        problems = []
        if foreign:
            problems.append(f"{len(foreign)} file(s) that split_dataset did not write (e.g. {', '.join(foreign[:5])})")
        if edited:
            problems.append(f"{len(edited)} file(s) changed since the split wrote them (e.g. {', '.join(edited[:5])})")
        raise FileExistsError(f"destination {dst} holds {' and '.join(problems)}. Nothing was changed. Split into a "
                              "new or empty folder, or move those files out of the destination first.")
    return rows, existing


def _remove_partials(dst: Path) -> None:
    for rel in _list_files(dst):
        name = rel.rsplit("/", 1)[-1]
        if name.startswith(".") and name.endswith(_PARTIAL_SUFFIX):
            (dst / rel).unlink()


def _remove_stale(dst: Path, stale: Sequence[str]) -> None:
    folders = set()
    for rel in stale:
        (dst / rel).unlink()
        folders.update(parent for parent in (dst / rel).parents if parent != dst and dst in parent.parents)
    # Only folders that held the split's own files, deepest first, and only if now empty.
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _progress(iterable, total: int, desc: str, progress: Optional[bool]):
    return progress_bar(iterable, total=total, desc=desc, progress=progress, min_total=_PROGRESS_MIN_FILES, unit="file")


# ---------------------------------------------------------------- the split


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def split_dataset(src: Union[str, os.PathLike], dst: Union[str, os.PathLike], eval_every: int = 5,
                  progress: Optional[bool] = None) -> SplitReport:
    """Split a folder of class folders, or a zip of one, into ``dst/train`` and ``dst/eval``.

    Per class, the valid images in sorted name order: index ``i`` goes to ``eval`` when
    ``i % eval_every == 0``, otherwise to ``train``. See the module docstring for the guarantees
    (source only read, every decodable image exactly once, safe re-runs, manifest).

    Args:
        src (str|PathLike): a folder of class folders (``cat/1.jpg``), or a ``.zip`` of one. Which
            folders are classes follows the class-folder rule of the module docstring: single
            wrapper folders (``Images/`` in ``Images/cat/1.jpg``) are looked through; files outside
            a class folder or in its sub-folders are skipped, listed and warned about.
        dst (str|PathLike): destination folder; created if missing. It must be empty or hold only
            an earlier split's files.
        eval_every (int, optional): every ``eval_every``-th image of a class goes to ``eval``.
            Must be at least 2. Default: 5 (the notebook's 80/20 split).
        progress (bool, optional): show a tqdm progress bar. ``None`` shows it when SRC has at
            least 100 files and stderr is a terminal or a Jupyter kernel. Default: None.

    Returns:
        SplitReport: per-class counts, skipped files with reasons, manifest path.

    Raises:
        FileNotFoundError: SRC does not exist.
        ValueError: SRC is neither a folder nor a zip, has no class folder or no usable image (the
            message lists the skipped files), or ``eval_every < 2``.
        FileExistsError: DST holds files the split did not write, symbolic links, or a folder
            named ``split_manifest.csv`` (nothing is changed).
        PermissionError: DST cannot be written (read-only folder or file system).

    Examples:
        >>> report = split_dataset("Images.zip", "work/split")  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        class       train     eval    total
        airplanes      80       20      100
        total          80       20      100
    """
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 2:
        raise ValueError(f"eval_every must be an integer >= 2 (every eval_every-th image goes to eval), "
                         f"got {eval_every!r}")
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"source {src} does not exist; pass a folder of class folders or a .zip of one")
    if src.is_dir() and _overlaps(src, dst):
        raise ValueError(f"source {src} and destination {dst} overlap; the destination must lie outside the source")
    if src.is_file() and not zipfile.is_zipfile(src):
        raise ValueError(f"source {src} is a file but not a zip; pass a folder of class folders or a .zip of one")

    old_rows, existing = _check_destination(dst)
    report = SplitReport(dst=dst, manifest=dst / MANIFEST_NAME)
    with (zipfile.ZipFile(src) if src.is_file() else contextlib.nullcontext()) as zf:
        items = _zip_items(zf, report.skipped) if zf is not None else _folder_items(src, report.skipped)
        classes, candidates = _candidates(items, report.skipped, report.warnings)
        if not classes:
            raise ValueError(f"source {src} holds no class folder; expected <class>/<image> entries such as cat/1.jpg "
                             f"(optionally under one top folder like Images/). {_skipped_line(report.skipped)}")
        valid = [c for c in _progress(candidates, len(candidates), "decode", progress)
                 if _decode(c, report.skipped, report.warnings)]
        if not valid:
            raise ValueError(f"source {src} has no usable image in its class folders ({', '.join(classes[:10])}); "
                             f"nothing was written. {_skipped_line(report.skipped)}")

        plan: List[Tuple[_Candidate, Dict[str, str]]] = []
        for class_name in classes:
            members = sorted((c for c in valid if c.class_name == class_name), key=lambda c: c.name)
            report.counts[class_name] = {"train": 0, "eval": 0}
            for i, (c, name) in enumerate(zip(members, _assign_names(members))):
                split = "eval" if i % eval_every == 0 else "train"
                report.counts[class_name][split] += 1
                row = {"source": c.source, "destination": f"{split}/{class_name}/{name}", "class": class_name,
                       "split": split, "sha256": c.sha256, "bytes": str(c.size)}
                plan.append((c, row))
        try:
            _write_split(dst, plan, old_rows, existing, report, progress)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise PermissionError(f"cannot write in destination {dst}: {err.strerror} ({err.filename}). Choose a "
                                  "folder you can write to, or change its permissions.") from err
    for name, c in report.counts.items():
        if not c["train"] + c["eval"]:
            report.warnings.append(f"class {name!r} has no valid image; it is missing from train/ and eval/")
        for split in ("train", "eval"):
            if c["train"] + c["eval"] and not c[split]:
                report.warnings.append(f"class {name!r} has no {split} image ({c['train'] + c['eval']} valid in all); "
                                       f"{split}/ will have fewer classes than the other split")
    return report


def _skipped_line(skipped: Sequence[SkippedFile]) -> str:
    if not skipped:
        return "No file was found."
    return f"Skipped {len(skipped)} file(s): " + _listing([f"{s.source} ({s.reason})" for s in skipped])


def _write_split(dst: Path, plan, old_rows, existing, report: SplitReport, progress: Optional[bool]) -> None:
    # Record old and new files before writing any, so an interrupted run leaves no unlisted file.
    new_rows = [row for _, row in plan]
    dst.mkdir(parents=True, exist_ok=True)
    _remove_partials(dst)
    seen = {tuple(r.values()) for r in old_rows}
    journal = old_rows + [r for r in new_rows if tuple(r.values()) not in seen]
    _write_manifest(dst, journal)
    written_to = set()
    for c, row in _progress(plan, len(plan), "copy", progress):
        if existing.get(row["destination"]) == row["sha256"]:
            report.unchanged += 1
            continue
        data = c.read()
        if hashlib.sha256(data).hexdigest() != c.sha256:
            raise RuntimeError(f"{c.source} changed while the split was running; run the split again")
        _write_atomic(dst, row["destination"], data)
        written_to.add((dst / row["destination"]).parent)
        report.written += 1
    for folder in sorted(written_to):
        fsync_folder(folder)
    planned = {row["destination"] for row in new_rows}
    stale = [rel for rel in existing if rel not in planned]
    _remove_stale(dst, stale)
    report.removed = len(stale)
    _write_manifest(dst, new_rows)
