"""Initialising a model from ImageNet (torchvision), Kinetics (TSM) or a local file."""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torchvision

from epic_ar.errors import EpicArError
from epic_ar.fileio.download import download
from epic_ar.modality import config_spelling
from epic_ar.models.backbones import flow_kernel
from epic_ar.models.config import check_pretrained
from epic_ar.models.video_model import VideoModel
from epic_ar.models.weights import read_model_state

# The TSM authors' Kinetics-400 checkpoints (8 segments, shift 1/8, residual shift)
KINETICS_TSM_URL = (
    "https://hanlab.mit.edu/projects/tsm/models/"
    "TSM_kinetics_{modality}_resnet50_shift8_blockres_avg_segment8_e50.pth"
)


def hub_checkpoint_dir() -> Path:
    """Where downloaded weights are cached: torch hub's `checkpoints` folder."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def load_pretrained(model: VideoModel, pretrained: str | None) -> None:
    """Initialise `model`'s backbone in place: "imagenet", "kinetics" (TSM), a file, or None.

    The classifier stays freshly initialised. Flow models get the RGB first conv averaged
    over its input channels and repeated (unless the weights already are flow weights).
    """
    if pretrained is None:
        return
    check_pretrained(pretrained, model.config)
    if pretrained == "imagenet":
        state = _imagenet_state(model.config.backbone)
        _load_backbone(model, _backbone_from_torchvision(state, model), "ImageNet weights")
    elif pretrained == "kinetics":
        url = KINETICS_TSM_URL.format(modality=config_spelling(model.spec.modality))
        path = _cached(url)
        _load_backbone(model, read_model_state(path, checkpoint=False), str(path))
    else:
        path = Path(pretrained)
        if path.is_dir():
            raise EpicArError(f"pretrained: {pretrained} is a folder, not a weights file")
        if not path.is_file():
            raise EpicArError(
                f"pretrained: {pretrained!r} is not imagenet, kinetics or an existing file"
            )
        state = read_model_state(path, checkpoint=False)
        if not any(key.startswith("base_model.") for key in state):
            state = _backbone_from_torchvision(state, model)
        _load_backbone(model, state, str(path))


def _imagenet_state(backbone: str) -> dict[str, torch.Tensor]:
    # The original used torchvision's `pretrained=True`, i.e. the V1 weights.
    weights = torchvision.models.get_model_weights(backbone)["IMAGENET1K_V1"]
    return read_model_state(_cached(weights.url), checkpoint=False)


def _cached(url: str) -> Path:
    """The file for `url` in the hub cache, downloaded first if missing."""
    path = hub_checkpoint_dir() / Path(url.split("?", maxsplit=1)[0]).name
    if not path.is_file():
        try:
            download(url, path)
        except EpicArError as exc:
            raise EpicArError(
                f"{exc}; without network access, place {path.name} in {path.parent}"
            ) from None
    return path


def _backbone_from_torchvision(
    state: dict[str, torch.Tensor], model: VideoModel
) -> dict[str, torch.Tensor]:
    """torchvision ResNet keys → `base_model.*` keys of `model` (TSM's shifted convs live
    under `.net`); the ImageNet classifier is dropped."""
    ours = set(model.state_dict())
    mapped = {}
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        name = f"base_model.{key}"
        if name not in ours:
            name = re.sub(r"\.conv1\.(weight|bias)$", r".conv1.net.\1", name)
        mapped[name] = value
    return mapped


def _load_backbone(model: VideoModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every backbone weight (all of `base_model` but its classifier) from `state`;
    other keys (e.g. a Kinetics classifier) are ignored. A missing backbone key is an error."""
    current = model.state_dict()
    wanted = {
        k for k in current if k.startswith("base_model.") and not k.startswith("base_model.fc.")
    }
    missing = sorted(wanted - set(state))
    if missing:
        raise EpicArError(f"{source}: lacks backbone weights {missing[:5]}")
    conv1 = "base_model.conv1.weight"
    selected = {key: state[key] for key in wanted}
    if selected[conv1].shape[1] != current[conv1].shape[1]:  # RGB weights for a flow model
        selected[conv1] = flow_kernel(selected[conv1], current[conv1].shape[1])
    wrong = sorted(k for k in wanted if selected[k].shape != current[k].shape)
    if wrong:
        raise EpicArError(f"{source}: weights of another shape for {wrong[:5]}")
    model.load_state_dict(selected, strict=False)
