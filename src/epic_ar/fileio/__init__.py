"""File helpers shared by every layer: atomic writes, path errors in one line, loaders that
never run code (pickles, torch files), the one rule for state dict key prefixes, and the
lists that messages show."""

from epic_ar.fileio.atomic import atomic_write_dir, atomic_write_path, check_can_write
from epic_ar.fileio.messages import listed
from epic_ar.fileio.paths import UnwritablePathError, named_write_errors, require_file
from epic_ar.fileio.safe_pickle import (
    NUMPY_GLOBALS,
    RefusedGlobalError,
    restricted_pickle_load,
)
from epic_ar.fileio.state_dicts import strip_key_prefixes
from epic_ar.fileio.torch_files import TorchFileKind, load_torch_file

__all__ = [
    "NUMPY_GLOBALS",
    "RefusedGlobalError",
    "TorchFileKind",
    "UnwritablePathError",
    "atomic_write_dir",
    "atomic_write_path",
    "check_can_write",
    "listed",
    "load_torch_file",
    "named_write_errors",
    "require_file",
    "restricted_pickle_load",
    "strip_key_prefixes",
]
