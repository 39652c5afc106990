"""Write a file or folder completely or not at all: a temporary one beside it, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from epic_ar.errors import EpicArError, Parameter
from epic_ar.fileio.paths import (
    check_folder_writable,
    make_folders,
    named_write_errors,
    remove_empty_folders,
)

FORCE = Parameter("force", "force=True")  # a command names its flag instead


def check_can_write(path: Path, *, force: bool) -> None:
    """Refuse early (before any work) when `path` exists and `force` is not set, or when
    its folder cannot be written (a file in the way, no permission)."""
    if path.is_dir():
        raise EpicArError(f"{path}: is a directory; give a file name to write")
    if path.exists() and not force:
        raise EpicArError(f"{path}: already exists; pass ", FORCE, " to overwrite it")
    check_folder_writable(path, path.parent)


def _umask_permissions(path: Path, mode: int) -> None:
    # mkstemp/mkdtemp create owner-only files; give the usual umask permissions instead.
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(mode & ~umask)


@contextlib.contextmanager
def atomic_write_path(path: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` when the block succeeds.

    The temp file lives in the same folder so the final `os.replace` is atomic. If the
    block raises (or the process dies), `path` is untouched and the temp file is removed
    (or, after a hard kill, left behind under a `.tmp` name that no reader looks for).
    An OSError while writing (no permission, full or read-only disk) becomes an
    `UnwritablePathError` naming `path`.
    """
    check_can_write(path, force=force)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        with named_write_errors(path):
            created = make_folders(path.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
        tmp = Path(tmp_name)
        with named_write_errors(path, tmp):
            yield tmp
            if not force and path.exists():
                raise EpicArError(
                    f"{path}: appeared while writing; pass ", FORCE, " to overwrite it"
                )
            _umask_permissions(tmp, 0o666)
            tmp.replace(path)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if not path.exists():
            remove_empty_folders(created)


@contextlib.contextmanager
def atomic_write_dir(path: Path, *, force: bool) -> Iterator[Path]:
    """Yield a new empty folder next to `path`; it becomes `path` when the block succeeds.

    An existing `path` is replaced only with `force` (and only once the new folder is
    complete). If the block raises, the new folder is removed and `path` is untouched.
    OSErrors while writing become `UnwritablePathError`s naming `path`.
    """
    if path.exists() and not path.is_dir():
        raise EpicArError(f"{path}: exists and is not a folder")
    if path.exists() and not force:
        raise EpicArError(f"{path}: already exists; pass ", FORCE, " to replace it")
    check_folder_writable(path, path.parent)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        with named_write_errors(path):
            created = make_folders(path.parent)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        with named_write_errors(path, tmp):
            yield tmp
            _umask_permissions(tmp, 0o777)
            if path.exists():
                if not force:
                    raise EpicArError(
                        f"{path}: appeared while writing; pass ", FORCE, " to replace it"
                    )
                old = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
                )
                path.replace(old / path.name)
                tmp.replace(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.replace(path)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not path.exists():
            remove_empty_folders(created)
