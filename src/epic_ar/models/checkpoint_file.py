"""Reading Lightning checkpoints without running code they name.

Torch's weights-only loader (`epic_ar.fileio.torch_files.load_torch_file`) reads them with
a short allow-list: plain containers, and the stand-ins for the OmegaConf 2.0 classes the
published checkpoints pickle their config as (`epic_ar.compat.omegaconf_pickles`), from
which the config is rebuilt as plain dicts and lists. Nothing else the file names is
imported.
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path
from typing import Any

from epic_ar.compat.omegaconf_pickles import OMEGACONF_GLOBALS, plain_config
from epic_ar.errors import EpicArError
from epic_ar.fileio import kinds
from epic_ar.fileio.paths import require_file
from epic_ar.fileio.torch_files import (
    TRUST,
    TorchFileKind,
    load_torch_file,
    trusted_load_warning,
)

CHECKPOINT = TorchFileKind(
    unreadable="not a readable checkpoint",
    allowed="the file names a class or function outside the checkpoint allow-list "
    "(nothing it names was run)",
    trust_parameter=TRUST,
    name_early_end=True,
)
# Besides tensors and numpy data: what Lightning and its loops pickle
_CHECKPOINT_GLOBALS: list[Any] = [
    *OMEGACONF_GLOBALS,
    dict,
    list,
    int,
    collections.Counter,
    collections.defaultdict,
    collections.OrderedDict,
]


def read_checkpoint(path: Path, *, trust: bool = False) -> dict[str, Any]:
    """The checkpoint's top-level dict, tensors on the CPU, OmegaConf containers as plain
    dicts/lists. With `trust`, a plain (code-running) `torch.load` is used instead, with a
    `TrustedLoadWarning`.

    Raises:
        EpicArError: unreadable file, or one naming a global outside the allow-list.
    """
    require_file(path, "checkpoint file", missing="no such checkpoint file")
    if trust:
        warnings.warn(trusted_load_warning(path), stacklevel=2)
    try:
        loaded = load_torch_file(path, CHECKPOINT, extra_globals=_CHECKPOINT_GLOBALS, trust=trust)
    except EpicArError as exc:
        kinds.refuse_other_kind(path, kinds.CHECKPOINT, exc)  # annotations, ONNX, ...: say so
        raise
    if not isinstance(loaded, dict):
        raise EpicArError(f"{path}: not a Lightning checkpoint (top level is not a dict)")
    return {key: plain_config(value) for key, value in loaded.items()}
