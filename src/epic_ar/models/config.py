"""The model part of a run's configuration, with the original project's key names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from epic_ar.annotations.classes import N_NOUNS, N_VERBS
from epic_ar.errors import EpicArError

if TYPE_CHECKING:
    import numpy as np
    import torch

ModelType = Literal["TSN", "MTRN", "TSM"]
Backbone = Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
TrnEval = Literal["sampled", "expected"]
NUM_CLASSES = N_VERBS + N_NOUNS  # scores: 97 verbs, then 300 nouns
# a batch of scores: numpy (results) or torch (training)
Scores = TypeVar("Scores", "np.ndarray", "torch.Tensor")

# model.* keys about how a run trains the network, not about the network itself
TRAINING_KEYS = ("weights", "weights_strict", "channels_last", "compile")
MODEL_TYPES: tuple[ModelType, ...] = ("TSN", "MTRN", "TSM")
BACKBONES: tuple[Backbone, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass(frozen=True)
class ModelConfig:
    """`model.*` of a run config (the original's keys), plus epic-ar's `trn_eval`.

    `pretrained`: "imagenet", "kinetics" (TSM only), a local weights file, or None.
    `backbone_dim`: the per-frame feature size TRN relates (the original's 256).
    `trn_eval`: how MTRN evaluates its random relation subsets ("expected": deterministic).
    """

    type: ModelType = "TSN"
    backbone: Backbone = "resnet50"
    pretrained: str | None = "imagenet"
    dropout: float = 0.7
    partial_bn: bool = True
    backbone_dim: int = 256
    shift_div: int = 8
    non_local: bool = False
    temporal_pool: bool = False
    trn_eval: TrnEval = "expected"


def model_config_from_dict(values: dict[str, Any], source: str = "model") -> ModelConfig:
    """A ModelConfig from the `model` section of a config (its `TRAINING_KEYS` ignored);
    unknown keys are refused."""
    values = {key: value for key, value in values.items() if key not in TRAINING_KEYS}
    known = {field.name for field in fields(ModelConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise EpicArError(f"{source}: unknown model keys {unknown}; known: {sorted(known)}")
    config = ModelConfig(**values)
    if config.type not in MODEL_TYPES:
        raise EpicArError(f"{source}.type: {config.type!r} is not one of {list(MODEL_TYPES)}")
    if config.backbone not in BACKBONES:
        raise EpicArError(f"{source}.backbone: {config.backbone!r} is not one of {list(BACKBONES)}")
    if config.trn_eval not in ("sampled", "expected"):
        raise EpicArError(f"{source}.trn_eval: {config.trn_eval!r} is not sampled or expected")
    if config.non_local:
        raise EpicArError(f"{source}.non_local: non-local blocks are not supported")
    if not 0 <= config.dropout < 1:
        raise EpicArError(f"{source}.dropout: {config.dropout} is not in [0, 1)")
    return config


def split_scores(scores: Scores) -> tuple[Scores, Scores]:
    """A model's [B, 397] scores → (verb scores [B, 97], noun scores [B, 300])."""
    return scores[:, :N_VERBS], scores[:, N_VERBS:]


def check_pretrained(pretrained: str | None, config: ModelConfig, key: str = "pretrained") -> None:
    """Refuse initial weights `pretrained` that do not exist for the model `config`
    describes (`key` names the setting in the message).

    Raises:
        EpicArError: "kinetics" for a model other than TSM with resnet50.
    """
    if pretrained == "kinetics" and (config.type, config.backbone) != ("TSM", "resnet50"):
        raise EpicArError(f"{key}: kinetics weights exist for TSM with resnet50 only")


def check_temporal_pool(
    config: ModelConfig,
    frame_count: int,
    key: str = "temporal_pool",
    frame_count_key: str = "frame_count",
) -> None:
    """Refuse TSM's temporal pool where it cannot work (`key` names the setting,
    `frame_count_key` where `frame_count` came from).

    Raises:
        EpicArError: temporal pooling asked of a model other than TSM, or with an odd
            `frame_count` (the pool halves the frames).
    """
    if not config.temporal_pool:
        return
    if config.type != "TSM":
        raise EpicArError(f"{key}: applies to TSM only")
    if frame_count % 2:
        raise EpicArError(f"{key} halves the frames: {frame_count_key} {frame_count} is odd")
