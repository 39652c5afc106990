"""Initialising a whole model from a state dict file or a checkpoint (`+model.weights`)."""

from __future__ import annotations

from pathlib import Path

import torch

from epic_ar.errors import EpicArError
from epic_ar.fileio.messages import listed
from epic_ar.fileio.state_dicts import strip_key_prefixes
from epic_ar.models.checkpoint import load_state_dict_strictly
from epic_ar.models.checkpoint_file import read_checkpoint


def read_model_state(path: Path) -> dict[str, torch.Tensor]:
    """The model weights in `path`: a checkpoint's `state_dict` or a plain state dict (as
    `torch.save(model.state_dict())` writes), `model.`/`module.` prefixes removed
    (`strip_key_prefixes`)."""
    loaded = read_checkpoint(path)
    state = loaded.get("state_dict", loaded)
    if not isinstance(state, dict) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        raise EpicArError(f"{path}: neither a state dict nor a checkpoint with a 'state_dict'")
    return strip_key_prefixes(state)


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
