"""Write a file completely or not at all: a temp file in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from epic_ar.errors import EpicArError


def check_can_write(path: Path, *, force: bool) -> None:
    """Refuse early (before any work) when `path` exists and `force` is not set."""
    if path.is_dir():
        raise EpicArError(f"{path}: is a directory; give a file name to write")
    if path.exists() and not force:
        raise EpicArError(f"{path}: already exists; pass --force to overwrite it")


@contextlib.contextmanager
def atomic_write_path(path: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` when the block succeeds.

    The temp file lives in the same folder so the final `os.replace` is atomic. If the
    block raises (or the process dies), `path` is untouched and the temp file is removed
    (or, after a hard kill, left behind under a `.tmp` name that no reader looks for).
    """
    check_can_write(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not force and path.exists():
            raise EpicArError(f"{path}: appeared while writing; pass --force to overwrite it")
        # mkstemp creates files readable by the owner only; give the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
