"""Reading weights from a state dict file or a checkpoint, and initialising a whole model
from one (`+model.weights`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from epic_ar.errors import EpicArError
from epic_ar.fileio.messages import listed
from epic_ar.fileio.state_dicts import strip_key_prefixes
from epic_ar.fileio.torch_files import TorchFileKind, load_torch_file
from epic_ar.models.checkpoint import load_state_dict_strictly
from epic_ar.models.checkpoint_file import read_checkpoint

# Backbone weights (`model.pretrained`): torchvision's and the TSM authors' files, or a
# local one; read without the checkpoint allow-list
WEIGHTS_FILE = TorchFileKind(
    unreadable="not a readable weights file",
    allowed="a weights file may hold tensors, numpy arrays and plain containers only "
    "(nothing it names was run)",
)


def read_model_state(path: Path, *, checkpoint: bool = True) -> dict[str, torch.Tensor]:
    """The model weights in `path`: a checkpoint's `state_dict` or a plain state dict (as
    `torch.save(model.state_dict())` writes), `model.`/`module.` prefixes removed
    (`strip_key_prefixes`).

    checkpoint: read `path` as a checkpoint (`read_checkpoint`: its allow-list and its
        messages); False: as a weights file of tensors and plain containers only
        (`WEIGHTS_FILE`), as `model.pretrained` names.

    Raises:
        EpicArError: an unreadable file, or one holding no state dict of tensors.
    """
    loaded: Any
    if checkpoint:
        loaded = read_checkpoint(path)
        no_state = "neither a state dict nor a checkpoint with a 'state_dict'"
    else:
        loaded = load_torch_file(path, WEIGHTS_FILE)
        no_state = "holds no state dict of tensors"
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise EpicArError(f"{path}: {no_state}")
    return strip_key_prefixes(loaded)


def load_model_weights(model: torch.nn.Module, path: Path, *, strict: bool = True) -> str:
    """Load the weights in `path` into `model`.

    Strict: every key must match in name and shape (else EpicArError naming the keys).
    Not strict: loads the keys that match and returns a report of the others ("" if none).
    """
    state = read_model_state(path)
    if strict:
        load_state_dict_strictly(model, state, str(path))
        return ""
    expected = model.state_dict()
    fitting = {
        key: value
        for key, value in state.items()
        if key in expected and expected[key].shape == value.shape
    }
    model.load_state_dict(fitting, strict=False)
    missing = sorted(set(expected) - set(fitting))
    ignored = sorted(set(state) - set(fitting))
    if not missing and not ignored:
        return ""
    parts = [f"loaded {len(fitting)} of {len(expected)} tensors from {path}"]
    if missing:
        parts.append(f"left as initialised: {listed(missing)}")
    if ignored:
        parts.append(f"not used (unknown or other shape): {listed(ignored)}")
    return "; ".join(parts)
