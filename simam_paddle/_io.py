"""Writing files so that a crash never leaves half of one, reading text files, and the rank check of a distributed launch.

Every text file the package reads (a run's ``config.json``, ``last.json`` and ``history.csv``, the
split's manifest, a class list, a report's Markdown) goes through :func:`read_text`, so a UTF-16 or
binary file is an error that names it, not a bare ``UnicodeDecodeError``.

One writer serves every module that writes a file another step reads back (checkpoints, ``config.json``,
``summary.md``, the split's images and manifest, the embedded digits):

- the bytes go to a new temporary file in the destination's folder (``os.replace`` is atomic only
  within one file system) with a short random name, ``.<12 hex digits><suffix>``, so a destination
  with any legal name, even one of 255 bytes, fits;
- the temporary file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: it is always new, never a
  file or link someone put there, and gets mode ``0o666`` less the umask, as a plain ``open()``;
- file and folder are fsynced, then ``os.replace`` renames the file over the destination. A link
  at the destination is replaced itself, never written through;
- on any error the temporary file is removed and the old destination is untouched.

Imports no Paddle and no layer of the package.
"""
import contextlib
import os
import secrets
import sys
from typing import Iterable, Optional, Union

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_folder", "is_main_process", "progress_bar", "read_text",
           "NotTextError", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".partial"
"""Suffix of the writer's temporary files (``.<random>.partial``); callers may give their own."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write_bytes(data: bytes, path: PathLike, *, suffix: str = TEMP_SUFFIX, sync_folder: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place (see the module docstring).

    Creates missing parent folders. The old ``path``, if any, stays intact until the new one is
    complete on disk.

    Args:
        data (bytes): the file's content.
        path (str|PathLike): the destination file.
        suffix (str, optional): suffix of the temporary file, so that a caller can recognise its own
            leftovers. Default: ".partial".
        sync_folder (bool, optional): fsync the folder after the rename. A caller writing many files
            passes False and calls :func:`fsync_folder` once per folder when done. Default: True.

    Examples:
        >>> import tempfile; folder = tempfile.mkdtemp()
        >>> atomic_write_bytes(b"abc", os.path.join(folder, "a.bin"))
        >>> open(os.path.join(folder, "a.bin"), "rb").read(), os.listdir(folder)
        (b'abc', ['a.bin'])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    while True:
        tmp = os.path.join(folder, f".{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a link itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_folder:
        fsync_folder(folder)


def atomic_write_text(text: str, path: PathLike, *, suffix: str = TEMP_SUFFIX, sync_folder: bool = True) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8 (line ends written as given).

    Examples:
        >>> import tempfile; path = os.path.join(tempfile.mkdtemp(), "notes.md")
        >>> atomic_write_text("# été\\n", path)
        >>> open(path, encoding="utf-8").read()
        '# été\\n'
    """
    atomic_write_bytes(text.encode("utf-8"), path, suffix=suffix, sync_folder=sync_folder)


class NotTextError(ValueError):
    """A file read as text that is not UTF-8 text; the message names the file and what it seems to be."""


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_text(path: PathLike, what: str = "a text file", newline: Optional[str] = None) -> str:
    """The text of ``path``, decoded as UTF-8 (a leading byte-order mark is dropped).

    Args:
        path (str|PathLike): the file.
        what (str, optional): what the file should be, for the error message (``"the run's config.json"``).
            Default: "a text file".
        newline (str, optional): None turns ``\\r\\n`` and ``\\r`` into ``\\n``, as ``open()`` does; ``""``
            keeps line ends as written, for the ``csv`` module. Default: None.

    Raises:
        NotTextError: the bytes are not UTF-8 (a UTF-16 file, a binary file); the message names the file.
        OSError: the file cannot be read.

    Examples:
        >>> import tempfile; path = os.path.join(tempfile.mkdtemp(), "classes.txt")
        >>> atomic_write_bytes("cat\\r\\ndog\\n".encode("utf-16"), path)
        >>> read_text(path, "a class list")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        simam_paddle._io.NotTextError: .../classes.txt is not UTF-8 text, as a class list must be: it is UTF-16 ...
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if data.startswith(_UTF16_BOMS):
            seems = "it is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        else:
            seems = (f"byte 0x{data[err.start]:02x} at offset {err.start} is not UTF-8 (a binary file, or another "
                     "encoding); give a UTF-8 text file")
        raise NotTextError(f"{os.fspath(path)} is not UTF-8 text, as {what} must be: {seems}") from None
    return text if newline is not None else text.replace("\r\n", "\n").replace("\r", "\n")


def fsync_folder(folder: PathLike) -> None:
    """Make the names in ``folder`` (a rename into it) durable; skipped on Windows, where folders
    cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | _O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def is_main_process() -> bool:
    """Whether this process has global rank 0 (always true outside a distributed launch).

    Reads the launcher's environment (``PADDLE_TRAINER_ID``, which ``paddle.distributed.ParallelEnv``
    reads too) at each call rather than a cached value, and imports no Paddle.

    Examples:
        >>> is_main_process()
        True
    """
    return int(os.getenv("PADDLE_TRAINER_ID", "0")) == 0


def progress_bar(iterable: Optional[Iterable] = None, *, total: Optional[int], desc: str,
                 progress: Optional[bool] = None, min_total: int = 0, **options):
    """A tqdm progress bar on stderr, shown when ``progress`` is True, or, when it is None, in a terminal or a
    Jupyter kernel for at least ``min_total`` items; otherwise a disabled bar that still iterates.

    Args:
        iterable (iterable, optional): what to iterate; None for a bar updated by hand. Default: None.
        total (int|None): the number of items (or bytes), None if unknown.
        desc (str): the bar's label.
        progress (bool, optional): force the bar on or off. Default: None (decide as above).
        min_total (int, optional): with ``progress=None``, no bar below this total. Default: 0.
        **options: more tqdm arguments (``unit``, ``initial``, ``unit_scale``).

    Examples:
        >>> sum(progress_bar(range(3), total=3, desc="count", progress=False))
        3
    """
    from tqdm import tqdm

    if progress is None:
        interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
        progress = interactive and (total is None or total >= min_total)
    return tqdm(iterable, total=total, desc=desc, disable=not progress, **options)
