"""Indexes of large files (tar archives, videos), built once and kept on disk.

An index is a `.npy` file next to the file it indexes, or, when that folder is not
writable, in `$XDG_CACHE_HOME/epic-ar/<kind>` (default `~/.cache/epic-ar/<kind>`). Its
first row holds the indexed file's (size, mtime in ns), so that an index of a file that
changed since is not used. Indexes are loaded memory-mapped: DataLoader workers share them
through the page cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path


def default_cache_dir(kind: str) -> Path:
    """Where indexes of `kind` (e.g. "tar-index") go when a file's folder is read-only."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "epic-ar" / kind


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, mtime in ns) of `path`: what an index of it records."""
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def index_locations(source: Path, suffix: str, kind: str, cache_dir: Path | None) -> list[Path]:
    """Where the index of `source` may be, in order: `SOURCE<suffix>` beside it, then the
    cache folder (`cache_dir` alone when given)."""
    key = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:16]
    cached_name = f"{source.stem}-{key}{suffix}"
    if cache_dir is not None:
        return [cache_dir / cached_name]
    return [source.with_name(source.name + suffix), default_cache_dir(kind) / cached_name]


def _load_if_current(
    path: Path, source: Path, valid: Callable[[np.ndarray], bool]
) -> np.ndarray | None:
    try:
        index: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):  # unreadable, truncated or empty: build again
        return None
    stamp = index.reshape(-1)[:2] if index.size >= 2 else None
    if stamp is None or not valid(index) or tuple(stamp.tolist()) != file_stamp(source):
        return None
    return index


def load_index(
    source: Path,
    locations: list[Path],
    valid: Callable[[np.ndarray], bool],
) -> np.ndarray | None:
    """The first current index of `source` found at `locations` (memory-mapped), or None.
    `valid` checks an index's shape; its first two values must be `file_stamp(source)`."""
    for path in locations:
        index = _load_if_current(path, source, valid)
        if index is not None:
            return index
    return None


def save_index(
    source: Path,
    index: np.ndarray,
    locations: list[Path],
    valid: Callable[[np.ndarray], bool],
) -> np.ndarray:
    """`index` saved at the first writable location (atomically) and loaded back
    memory-mapped; `index` itself when no location is writable."""
    for path in locations:
        try:
            with atomic_write_path(path, force=True) as tmp, tmp.open("wb") as out:
                np.save(out, index)
        except (OSError, EpicArError):
            continue  # a read-only folder, or a folder in the way: try the next place
        loaded = _load_if_current(path, source, valid)
        if loaded is not None:
            return loaded
    return index  # nowhere writable: keep it in memory
