"""Load the objects stored in a results file, whatever its serialisation, without running code.

Three serialisations occur in practice, recognised by their first bytes, not their suffix:

- a torch zip file (`torch.save`, torch >= 1.6): a zip archive with `<name>/data.pkl`;
- a legacy torch file (`torch.save(..., _use_new_zipfile_serialization=False)`);
- a plain pickle (the original project's `test.py` writes these, named `.pt`).

Files holding only numpy arrays and builtins (which is what `epic-ar` and the original tools
write) are read with the restricted unpickler, without importing torch. Files holding torch
tensors go through `torch.load(weights_only=True)` with the numpy globals allow-listed
(`epic_ar.fileio.torch_files.load_torch_file`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from epic_ar.errors import EpicArError
from epic_ar.fileio.kinds import LEGACY_TORCH_MAGIC, ZIP_MAGIC
from epic_ar.fileio.paths import require_file
from epic_ar.fileio.safe_pickle import (
    InvalidPickleError,
    PersistentIdError,
    RefusedGlobalError,
    restricted_pickle_load,
)
from epic_ar.fileio.torch_files import TorchFileKind, load_torch_file

TORCH_RESULTS = TorchFileKind(
    unreadable="unreadable torch file",
    corrupted="corrupted torch file",
    allowed="only tensors, numpy arrays, dtypes and builtin containers/scalars may appear "
    "in this file",
)


def load_data_file(path: Path) -> Any:
    """Return the object stored in `path` (torch zip, legacy torch or plain pickle).

    Raises:
        EpicArError: missing file, unknown or corrupted content, or a global outside the
            allow-list (in which case nothing from the file was executed).
    """
    require_file(path, "results file")
    with path.open("rb") as file:
        head = file.read(len(LEGACY_TORCH_MAGIC))
    if not head:
        raise EpicArError(f"{path}: empty file (0 bytes), not a results file")
    if head.startswith(ZIP_MAGIC):
        loaded = _load_torch_zip(path)
    elif head == LEGACY_TORCH_MAGIC:
        loaded = load_torch_file(path, TORCH_RESULTS)
    else:
        with path.open("rb") as file:
            try:
                loaded = restricted_pickle_load(file, source=str(path))
            except InvalidPickleError as exc:
                detail = str(exc).removeprefix(f"{path}: not a valid pickle ")
                raise EpicArError(
                    f"{path}: neither a torch file nor a valid pickle {detail}"
                ) from None
    if loaded is None or (isinstance(loaded, (bytes, bytearray, str)) and not loaded):
        raise EpicArError(f"{path}: holds no data (an empty {type(loaded).__name__}), not results")
    return loaded


def _load_torch_zip(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1 or pickles[0].count("/") != 1:
                raise EpicArError(f"{path}: a zip file, but not one written by torch.save")
            with archive.open(pickles[0]) as file:
                return restricted_pickle_load(file, source=str(path))
    except PersistentIdError:
        # The pickle points at tensor storages: only torch can rebuild those.
        return load_torch_file(path, TORCH_RESULTS)
    except RefusedGlobalError as exc:
        if exc.global_name.startswith("torch."):  # tensors: torch applies its own allow-list
            return load_torch_file(path, TORCH_RESULTS)
        raise
    except EpicArError:
        raise
    except Exception as exc:  # zipfile fails in many ways on a corrupted archive
        raise EpicArError(f"{path}: corrupted zip/torch file ({exc})") from None
