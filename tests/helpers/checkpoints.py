"""Published-checkpoint files for tests: the reference skeletons filled with weights.

The skeletons pickle OmegaConf 2.0 objects. To fill in `state_dict` without OmegaConf, the
file is read and written with stand-in `omegaconf.*` modules whose classes keep (and
pickle again) exactly the state they were given.
"""

from __future__ import annotations

import contextlib
import copyreg
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from epic_ar.compat.lightning_config import current_config
from epic_ar.models.checkpoint import input_spec
from epic_ar.models.config import model_config_from_dict
from epic_ar.models.video_model import build_model

# Copied from the reference material on the published checkpoints (see data/README.txt).
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
PUBLISHED = ("tsn_rgb", "tsn_flow", "trn_rgb", "trn_flow", "tsm_rgb", "tsm_flow")


class _Pickled:
    _state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (copyreg.__newobj__, (type(self),), self._state)  # type: ignore[attr-defined]


_CLASSES = {
    "omegaconf.dictconfig": ["DictConfig"],
    "omegaconf.listconfig": ["ListConfig"],
    "omegaconf.base": ["ContainerMetadata", "Metadata"],
    "omegaconf.nodes": ["AnyNode"],
}


@contextlib.contextmanager
def stand_in_omegaconf() -> Iterator[None]:
    """Importable `omegaconf.*` modules of state-keeping classes, for the block."""
    saved: dict[str, types.ModuleType | None] = {
        name: sys.modules.get(name) for name in ["omegaconf", *_CLASSES]
    }
    sys.modules["omegaconf"] = types.ModuleType("omegaconf")
    for module_name, class_names in _CLASSES.items():
        module = types.ModuleType(module_name)
        for class_name in class_names:
            cls = type(class_name, (_Pickled,), {"__module__": module_name})
            setattr(module, class_name, cls)
        sys.modules[module_name] = module
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def manifest_state_dict(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the shapes the published checkpoint `name` holds."""
    manifest = json.loads((REFERENCE / "official_state_dict_keys.json").read_text())
    entries = manifest[name.replace("trn", "mtrn")]
    items = entries.items() if isinstance(entries, dict) else entries
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in items:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


def filled_skeleton(name: str, out: Path, state: dict[str, torch.Tensor] | None = None) -> Path:
    """The reference skeleton of published checkpoint `name` with `state_dict` filled in
    (everything else as stored), written to `out`."""
    with stand_in_omegaconf():
        checkpoint = torch.load(
            REFERENCE / "published_checkpoints" / f"{name}.ckpt", weights_only=False
        )
        checkpoint["state_dict"] = state if state is not None else manifest_state_dict(name)
        torch.save(checkpoint, out)
    return out


def tiny_checkpoint(
    path: Path, name: str = "tsn_rgb", *, seed: int = 0, frame_count: int = 3
) -> Path:
    """A checkpoint in the published layout: the published `name`'s config with a random
    resnet18 taking `frame_count` frames of 32x32 crops out of frames resized to 48 (shorter
    side)."""
    config = json.loads((REFERENCE / "official_hyper_parameters.json").read_text())[name]
    config["model"].update(backbone="resnet18", pretrained=None)
    config["data"]["frame_count"] = frame_count
    config["data"]["preprocessing"]["input_size"] = 32
    config["data"]["test_augmentation"]["rescale_size"] = 48
    resolved = current_config(config)
    torch.manual_seed(seed)
    model = build_model(model_config_from_dict(dict(resolved["model"])), input_spec(resolved))
    assert model.new_fc is not None
    with torch.no_grad():
        model.new_fc.weight.normal_(0, 0.5)  # scores far apart: rankings that mean something
    state = {f"model.{key}": value for key, value in model.state_dict().items()}
    torch.save({"hyper_parameters": config, "state_dict": state}, path)
    return path
