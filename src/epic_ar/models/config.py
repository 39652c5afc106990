"""The model part of a run's configuration, with the original project's key names."""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

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


# Each field's type, read from the dataclass so that a new field is checked too
_FIELD_TYPES: dict[str, Any] = get_type_hints(ModelConfig)
# Fields whose values are limited beyond their type: (check, what the message says they take)
_FIELD_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dropout": (lambda value: 0 <= value < 1, "a number in [0, 1)"),
    "backbone_dim": (lambda value: value >= 1, "an integer >= 1"),
    "shift_div": (lambda value: value >= 1, "an integer >= 1"),
}
_TYPE_NAMES: dict[object, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    type(None): "null",
}


def _has_type(value: object, hint: Any) -> bool:
    """Whether `value` is of the field type `hint` (a Literal, a union, or a plain type).
    bool is not taken for a number, though Python's bool is an int; an int is taken for a
    float, as YAML and Hydra write `0` for 0.0."""
    origin = get_origin(hint)
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in get_args(hint))
    if origin in (Union, types.UnionType):
        return any(_has_type(value, arg) for arg in get_args(hint))
    if hint in (int, float) and isinstance(value, bool):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    """How a message names the values of field type `hint` ("a string or null")."""
    origin = get_origin(hint)
    if origin is Literal:
        return f"one of {list(get_args(hint))}"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(hint))
    return _TYPE_NAMES[hint]


def model_config_from_dict(values: object, source: str = "model") -> ModelConfig:
    """A ModelConfig from the `model` section of a config (its `TRAINING_KEYS` ignored);
    unknown keys, and values not of their field's type or range, are refused.

    `source` names the section in messages ("model" for a run config; a checkpoint's
    loader adds its file: "ckpt: model"), each then naming the key: "model.dropout: 'abc'
    is not a number in [0, 1)".
    """
    if not isinstance(values, dict):
        raise EpicArError(f"{source}: {values!r} is not a mapping of model keys")
    values = {key: value for key, value in values.items() if key not in TRAINING_KEYS}
    known = {field.name for field in fields(ModelConfig)}
    unknown = sorted(set(values) - known, key=str)  # a damaged file may hold non-str keys
    if unknown:
        raise EpicArError(f"{source}: unknown model keys {unknown}; known: {sorted(known)}")
    for name, hint in _FIELD_TYPES.items():
        if name not in values:
            continue
        value, limited = values[name], _FIELD_RANGES.get(name)
        if not _has_type(value, hint) or (limited is not None and not limited[0](value)):
            wanted = limited[1] if limited is not None else _type_name(hint)
            raise EpicArError(f"{source}.{name}: {value!r} is not {wanted}")
    config = ModelConfig(**values)
    if config.non_local:
        raise EpicArError(f"{source}.non_local: non-local blocks are not supported")
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
