"""Published (and our own) checkpoints: the stored config, translated, and the model."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import torch

from epic_ar.errors import EpicArError
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.models.config import model_config_from_dict
from epic_ar.models.video_model import InputSpec, Modality, VideoModel, build_model

_STATE_PREFIX = "model."  # the Lightning wrapper's attribute name
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
# Lightning 0.9 trainer keys → Lightning 2 (None: dropped)
_TRAINER_KEYS: dict[str, str | None] = {
    "row_log_interval": "log_every_n_steps",
    "log_save_interval": None,
    "terminate_on_nan": None,
    "weights_summary": None,
    "distributed_backend": "strategy",
    "gpus": "devices",
}
# Lightning 0.9/1.x took these distributed backends as `accelerator`; Lightning 2 as `strategy`
_OLD_BACKENDS = ("dp", "ddp", "ddp2", "ddp_spawn", "ddp_cpu", "horovod")


def resolve_interpolations(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """A copy with `${a.b.c}` references to other config values replaced (recursively);
    resolvers such as `${env:...}` and missing keys are refused, naming the key."""

    def lookup(reference: str, seen: tuple[str, ...]) -> Any:
        if ":" in reference or reference in seen:
            raise EpicArError(f"{source}: cannot resolve '${{{reference}}}'")
        value: Any = config
        for part in reference.split("."):
            if not isinstance(value, dict) or part not in value:
                raise EpicArError(f"{source}: '${{{reference}}}' refers to a missing key")
            value = value[part]
        return resolve(value, (*seen, reference))

    def resolve(value: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(value, dict):
            return {key: resolve(item, seen) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item, seen) for item in value]
        if isinstance(value, str):
            whole = _INTERPOLATION.fullmatch(value)
            if whole:
                return lookup(whole.group(1), seen)
            return _INTERPOLATION.sub(lambda m: str(lookup(m.group(1), seen)), value)
        return value

    resolved = resolve(config)
    assert isinstance(resolved, dict)
    return resolved


def translate_trainer(trainer: dict[str, Any]) -> dict[str, Any]:
    """Lightning 0.9 trainer keys → today's (`gpus` → `devices`, `dp` → `auto`, ...)."""
    translated: dict[str, Any] = {}
    for key, value in trainer.items():
        new_key = _TRAINER_KEYS.get(key, key)
        if key == "accelerator" and value in _OLD_BACKENDS:
            new_key = "strategy"
        if new_key is None:
            continue
        if new_key == "strategy" and value in ("dp", "ddp2"):
            value = "auto"  # DataParallel is gone from Lightning 2; one process per GPU instead
        translated[new_key] = value
    return translated


def current_config(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored run config in today's schema: interpolations resolved, trainer keys
    translated. (Where the data is today is the scorer's business: see
    `epic_ar.training.scoring.ScoringOptions.data_dir`.)"""
    config = copy.deepcopy(stored)
    config = resolve_interpolations(config, "stored config")
    if isinstance(config.get("trainer"), dict):
        config["trainer"] = translate_trainer(config["trainer"])
    return config


def input_spec(config: dict[str, Any]) -> InputSpec:
    modality = config.get("modality")
    if modality not in ("RGB", "Flow"):
        raise EpicArError(f"config: modality {modality!r} is not RGB or Flow")
    data = config.get("data", {})
    default_length = 1 if modality == "RGB" else 5
    modality_name: Modality = modality
    return InputSpec(
        modality_name,
        frame_count=int(data.get("frame_count", 8)),
        segment_length=int(data.get("segment_length", default_length)),
    )


def listed_keys(keys: list[str], limit: int = 5) -> str:
    """The first `limit` keys, comma-separated, and how many more there are."""
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


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
            problems.append(f"{label} keys: {listed_keys(keys)}")
    if problems:
        raise EpicArError(f"{source}: weights do not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def load_checkpoint(path: str | Path, *, trust: bool = False) -> tuple[VideoModel, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as and load its weights strictly.

    Returns `(model, config)`: the model in eval mode, on the CPU; the run config (plain
    dicts) in today's schema (see `current_config`). Published checkpoints keep their stored
    preprocessing (e.g. RGB `std` equal to `mean`, which their weights depend on).
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
    state = {
        key[len(_STATE_PREFIX) :] if key.startswith(_STATE_PREFIX) else key: value
        for key, value in state_dict.items()
    }
    load_state_dict_strictly(model, state, str(path))
    return model.eval(), config
