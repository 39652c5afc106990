"""File helpers shared by every layer: atomic writes, path errors in one line, and loaders
that never run code."""

from epic_ar.fileio.atomic import atomic_write_dir, atomic_write_path, check_can_write
from epic_ar.fileio.paths import UnwritablePathError, named_write_errors, require_file
from epic_ar.fileio.safe_pickle import (
    NUMPY_GLOBALS,
    RefusedGlobalError,
    restricted_pickle_load,
)

__all__ = [
    "NUMPY_GLOBALS",
    "RefusedGlobalError",
    "UnwritablePathError",
    "atomic_write_dir",
    "atomic_write_path",
    "check_can_write",
    "named_write_errors",
    "require_file",
    "restricted_pickle_load",
]
