"""What can go wrong with a path given by the user, said in one line naming the path.

Reading: a missing file, a folder where a file is expected. Writing: a folder that is not
a folder (a file in the way), one without write permission, a full or read-only disk. The
operating system's errors become `EpicArError`s naming the path the user gave (not a
temporary name), with the system's reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from epic_ar.errors import EpicArError


class UnwritablePathError(EpicArError, OSError):
    """Writing a path failed for a reason outside the program (permissions, full disk, a
    file where a folder should be). Also an `OSError`, so that code skipping places it
    cannot write (caches) keeps doing so; `errno` is the system's error number."""


def os_reason(exc: OSError) -> str:
    """The system's reason without the path ("No space left on device")."""
    return exc.strerror or str(exc) or type(exc).__name__


def require_file(path: Path, what: str = "file", *, missing: str = "no such file") -> None:
    """Raise an EpicArError unless `path` is an existing file: "PATH: is a folder, not a
    {what}", or "PATH: {missing}" (saying which ancestor is a file, if one is)."""
    if path.is_file():
        return
    if path.is_dir():
        raise EpicArError(f"{path}: is a folder, not a {what}")
    blocking = _first_existing(path.parent)
    if blocking is not None and not blocking.is_dir():
        raise EpicArError(f"{path}: {missing} ({blocking} is a file, not a folder)")
    raise EpicArError(f"{path}: {missing}")


def _first_existing(path: Path) -> Path | None:
    """`path` or its nearest ancestor that exists (None: none does, e.g. a bad drive)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return None


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (made first if missing), or None when they
    seemingly can (a full disk only shows when writing)."""
    existing = _first_existing(folder)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        # EROFS: a read-only mount denies writing even to root
        return f"no permission to write in {existing}"
    return None


def check_folder_writable(target: Path, folder: Path) -> None:
    """Raise an UnwritablePathError naming `target` when nothing can be created in `folder`."""
    problem = folder_problem(folder)
    if problem is not None:
        raise UnwritablePathError(f"{target}: cannot write: {problem}")


def make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing ancestors; returns those created, innermost first
    (for `remove_empty_folders` when the write they were made for fails)."""
    created = [f for f in (folder, *folder.parents) if not os.path.lexists(f)]
    folder.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove `folders` (innermost first) where they are still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _concerns(filename: object, target: Path, scratch: Path | None) -> bool:
    """Whether an OSError about `filename` is about writing `target` (or `scratch`, the
    temporary file or folder standing in for it)."""
    if filename is None:  # write() and fsync() errors (a full disk) name no file
        return True
    name = Path(os.fsdecode(filename))  # type: ignore[arg-type]
    if name == target or name in target.parents or target in name.parents:
        return True
    if name.parent == target.parent and name.name.startswith(f".{target.name}."):
        return True  # the temporary file being created beside `target` (mkstemp's name)
    return scratch is not None and (name == scratch or scratch in name.parents)


@contextlib.contextmanager
def named_write_errors(target: Path, scratch: Path | None = None) -> Iterator[None]:
    """Turn an OSError raised while writing `target` (through `scratch`, its temporary
    stand-in) into an UnwritablePathError naming `target` and the reason. OSErrors about
    other files (an input that vanished) pass through unchanged."""
    try:
        yield
    except UnwritablePathError:
        raise
    except OSError as exc:
        if not _concerns(exc.filename, target, scratch):
            raise
        where = ""
        if exc.filename is not None and Path(os.fsdecode(exc.filename)) in target.parents:
            where = f" in {os.fsdecode(exc.filename)}"
        error = UnwritablePathError(f"{target}: cannot write{where} ({os_reason(exc)})")
        error.errno = exc.errno
        raise error from None
