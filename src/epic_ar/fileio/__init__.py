"""File helpers shared by every layer: atomic writes and loaders that never run code."""

from epic_ar.fileio.atomic import atomic_write_path, check_can_write
from epic_ar.fileio.safe_pickle import (
    NUMPY_GLOBALS,
    RefusedGlobalError,
    restricted_pickle_load,
)

__all__ = [
    "NUMPY_GLOBALS",
    "RefusedGlobalError",
    "atomic_write_path",
    "check_can_write",
    "restricted_pickle_load",
]
