"""Run configs stored by older checkpoints, in today's schema.

The published checkpoints keep the config they were trained with as OmegaConf left it,
`${...}` interpolations unresolved, and with PyTorch Lightning 0.9 trainer keys (`gpus`,
`distributed_backend`, ...); the original's command lines use those keys too.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from epic_ar.errors import EpicArError

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
    resolvers such as `${env:...}` and missing keys are refused, naming the key that holds
    the reference ("<source>: data.x: '${a.b}' refers to a missing key")."""

    def lookup(reference: str, seen: tuple[str, ...], key: str) -> Any:
        if ":" in reference or reference in seen:
            raise EpicArError(f"{source}: {key}: cannot resolve '${{{reference}}}'")
        value: Any = config
        for part in reference.split("."):
            if not isinstance(value, dict) or part not in value:
                raise EpicArError(f"{source}: {key}: '${{{reference}}}' refers to a missing key")
            value = value[part]
        return resolve(value, (*seen, reference), reference)

    def resolve(value: Any, seen: tuple[str, ...], key: str) -> Any:
        if isinstance(value, dict):
            return {
                name: resolve(item, seen, f"{key}.{name}" if key else str(name))
                for name, item in value.items()
            }
        if isinstance(value, list):
            return [resolve(item, seen, f"{key}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, str):
            whole = _INTERPOLATION.fullmatch(value)
            if whole:
                return lookup(whole.group(1), seen, key)
            return _INTERPOLATION.sub(lambda m: str(lookup(m.group(1), seen, key)), value)
        return value

    resolved = resolve(config, (), "")
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


def translate_trainer_arguments(values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A run's `trainer.*` as the original's command lines give them → (today's Trainer
    arguments, the `resume_from_checkpoint` path or None). Nothing is checked but `gpus`
    beside `devices`: which arguments Lightning takes is the run config's business.

    Besides `translate_trainer`'s renames, `gpus: N` selects the GPU accelerator (unless
    one is set), as Lightning 0.9's `gpus` meant GPUs where `devices` alone means any.
    """
    values = dict(values)
    resume = values.pop("resume_from_checkpoint", None)
    gpus = values.pop("gpus", None)
    if gpus is not None:
        if values.get("devices", "auto") != "auto":
            raise EpicArError("trainer: set trainer.devices or trainer.gpus, not both")
        values["gpus"] = gpus
    translated = translate_trainer(values)
    if gpus is not None and translated.get("accelerator", "auto") == "auto":
        translated["accelerator"] = "gpu"
    return translated, str(resume) if resume is not None else None


def current_config(stored: dict[str, Any], source: str = "stored config") -> dict[str, Any]:
    """A stored run config in today's schema: interpolations resolved, trainer keys
    translated; `source` (e.g. the checkpoint file) starts the messages. (Where the data is
    today is the scorer's business: see `epic_ar.training.scoring.ScoringOptions.data_dir`.)"""
    config = copy.deepcopy(stored)
    config = resolve_interpolations(config, source)
    if isinstance(config.get("trainer"), dict):
        config["trainer"] = translate_trainer(config["trainer"])
    return config
