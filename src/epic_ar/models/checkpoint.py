"""Published (and our own) checkpoints: the stored config, translated, and the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from epic_ar.compat.lightning_config import current_config
from epic_ar.data.sampling import default_snippet_length
from epic_ar.errors import EpicArError
from epic_ar.fileio import kinds
from epic_ar.fileio.messages import listed
from epic_ar.fileio.state_dicts import checked_state_dict, strip_key_prefixes
from epic_ar.modality import config_modality
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.models.config import model_config_from_dict
from epic_ar.models.video_model import InputSpec, VideoModel, build_model


def input_spec(config: dict[str, Any], source: str = "config") -> InputSpec:
    """What the model of a run config (plain dicts) takes: its modality ("RGB"/"Flow" in
    the config) and `data.frame_count` / `data.segment_length`, defaults where absent.

    Raises:
        EpicArError: a modality other than "RGB"/"Flow", a `data` that is not a mapping, or
            a count that is not an integer >= 1; the message starts with `source` (where
            the config came from, e.g. the checkpoint file), then names the key.
    """
    modality = config_modality(config.get("modality"), f"{source}: modality")
    data = config.get("data", {})
    if not isinstance(data, dict):
        raise EpicArError(f"{source}: data: {data!r} is not a mapping")
    # as the run configs take them: segment_length null means the modality's default
    segment_length = data.get("segment_length")
    return InputSpec(
        modality,
        frame_count=_count(data.get("frame_count", 8), "data.frame_count", source),
        segment_length=default_snippet_length(modality)
        if segment_length is None
        else _count(segment_length, "data.segment_length", source),
    )


def _count(value: object, key: str, source: str) -> int:
    """`value` if it is an integer >= 1 (not a bool), else an error naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EpicArError(f"{source}: {key}: {value!r} is not an integer >= 1")
    return value


def load_state_dict_strictly(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str
) -> None:
    """Load `state` into `model`; any missing, unexpected or mis-shaped key, or a value that
    is not a tensor, is an error that names the keys (and `source`, where `state` came
    from)."""
    state = checked_state_dict(state, source)
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
        error = EpicArError(f"{path}: no model config under 'hyper_parameters'")
        kinds.refuse_other_kind(path, kinds.CHECKPOINT, error)  # e.g. a results file: say so
        raise error
    config = current_config(stored, str(path))
    model_config = model_config_from_dict(config["model"], f"{path}: model")
    model = build_model(model_config, input_spec(config, str(path)))
    state_dict = loaded.get("state_dict")
    if not isinstance(state_dict, dict):
        raise EpicArError(f"{path}: no 'state_dict'")
    state = checked_state_dict(state_dict, str(path))
    load_state_dict_strictly(model, strip_key_prefixes(state), str(path))
    return model.eval(), config
