"""Published (and our own) checkpoints: the stored config, translated, and the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from epic_ar.compat.lightning_config import current_config
from epic_ar.data.sampling import default_snippet_length
from epic_ar.errors import EpicArError
from epic_ar.fileio.messages import listed
from epic_ar.fileio.state_dicts import strip_key_prefixes
from epic_ar.modality import config_modality
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.models.config import model_config_from_dict
from epic_ar.models.video_model import InputSpec, VideoModel, build_model


def input_spec(config: dict[str, Any]) -> InputSpec:
    """What the model of a run config (plain dicts) takes: its modality ("RGB"/"Flow" in
    the config) and `data.frame_count` / `data.segment_length`, defaults where absent."""
    modality = config_modality(config.get("modality"), "config: modality")
    data = config.get("data", {})
    return InputSpec(
        modality,
        frame_count=int(data.get("frame_count", 8)),
        segment_length=int(data.get("segment_length", default_snippet_length(modality))),
    )


def load_state_dict_strictly(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str
) -> None:
    """Load `state` into `model`; any missing, unexpected or mis-shaped key is an error
    that names the keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{key} {list(state[key].shape)} (model: {list(expected[key].shape)})"
        for key in set(state) & set(expected)
        if state[key].shape != expected[key].shape
    )
    problems = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", wrong_shape),
    ):
        if keys:
            problems.append(f"{label} keys: {listed(keys)}")
    if problems:
        raise EpicArError(f"{source}: weights do not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def load_checkpoint(path: str | Path, *, trust: bool = False) -> tuple[VideoModel, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as and load its weights strictly.

    Returns `(model, config)`: the model in eval mode, on the CPU; the run config (plain
    dicts) in today's schema (see `epic_ar.compat.lightning_config.current_config`).
    Published checkpoints keep their stored preprocessing (e.g. RGB `std` equal to `mean`,
    which their weights depend on). The state dict's `model.` prefixes are stripped
    (`strip_key_prefixes`).
    """
    path = Path(path)
    loaded = read_checkpoint(path, trust=trust)
    stored = loaded.get("hyper_parameters")
    if not isinstance(stored, dict) or "model" not in stored:
        raise EpicArError(f"{path}: no model config under 'hyper_parameters'")
    config = current_config(stored)
    model_config = model_config_from_dict(dict(config["model"]), f"{path}: model")
    model = build_model(model_config, input_spec(config))
    state_dict = loaded.get("state_dict")
    if not isinstance(state_dict, dict):
        raise EpicArError(f"{path}: no 'state_dict'")
    load_state_dict_strictly(model, strip_key_prefixes(state_dict), str(path))
    return model.eval(), config
