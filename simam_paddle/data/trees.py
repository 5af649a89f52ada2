"""Writing a folder of files as one step: built in a temporary sibling folder, fsynced, renamed into place.

Used by the data sets the package writes (the digits, Caltech101): a destination that already holds exactly the
same files is only verified, and one holding anything else is refused, never cleaned.
"""
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Callable, Iterable, List, Sequence, Tuple

from .._io import atomic_write_bytes, fsync_folder

__all__ = ["write_tree"]


def write_tree(
    dst: Path, names: Sequence[str], files: Callable[[], Iterable[Tuple[str, bytes]]]
) -> bool:
    """Write ``files()`` (relative POSIX path, bytes) under ``dst`` atomically; True if written.

    A ``dst`` that already holds exactly ``names`` with the same bytes is left alone (False).
    Anything else in a non-empty ``dst`` is refused: these folders may sit next to a user's only
    copy of their data, so nothing is ever deleted but our own temporary folder.
    """
    if dst.exists() and not dst.is_dir():
        raise NotADirectoryError(f"{dst} is a file; give a folder that does not exist yet or is empty")
    if dst.is_dir() and any(dst.iterdir()):
        _verify_tree(dst, names, files)
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_folder(dst.parent)
    try:
        if dst.is_dir():
            os.chmod(tmp, stat.S_IMODE(dst.stat().st_mode))  # the empty folder it replaces keeps its mode
        folders = {tmp}
        for name, data in files():
            # Every file and folder is on disk before the tree is renamed into place.
            atomic_write_bytes(data, tmp / name, sync_folder=False)
            folders.add((tmp / name).parent)
        for folder in sorted(folders, key=lambda f: -len(f.parts)):
            fsync_folder(folder)
        if dst.is_dir():
            dst.rmdir()  # empty, checked above; rename cannot replace a folder on every OS
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_folder(dst.parent)
    return True


def _make_temp_folder(parent: Path) -> Path:
    """A new folder in ``parent`` with the mode a plain ``mkdir`` gives (``mkdtemp`` would make it owner-only)."""
    while True:
        tmp = parent / f".digits-tmp-{secrets.token_hex(6)}"
        try:
            os.mkdir(tmp)
            return tmp
        except FileExistsError:
            continue


def _verify_tree(dst: Path, names: Sequence[str], files: Callable[[], Iterable[Tuple[str, bytes]]]) -> None:
    expected = set(names)
    expected_dirs = {str(Path(n).parent.as_posix()) for n in names} - {"."}
    expected_dirs |= {p.as_posix() for d in list(expected_dirs) for p in Path(d).parents if str(p) != "."}
    present = {p.relative_to(dst).as_posix(): p.is_dir() for p in dst.rglob("*")}
    foreign = sorted(n for n, is_dir in present.items() if n not in (expected_dirs if is_dir else expected))
    missing = sorted(expected - {n for n, is_dir in present.items() if not is_dir})
    if foreign or missing:
        problems = []
        if foreign:
            problems.append(f"{len(foreign)} unexpected entries (e.g. {_sample(foreign)})")
        if missing:
            problems.append(f"{len(missing)} missing files (e.g. {_sample(missing)})")
        raise FileExistsError(
            f"{dst} is not empty and is not this data set: {'; '.join(problems)}. Nothing was changed; "
            "give a new or empty folder (this function never deletes anything)."
        )
    for name, data in files():
        if (dst / name).read_bytes() != data:
            raise FileExistsError(
                f"{dst} holds this layout but {name} differs from what these arguments produce "
                "(made with other options, or edited). Nothing was changed; give a new or empty folder."
            )


def _sample(names: List[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
