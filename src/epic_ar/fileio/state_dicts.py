"""State dicts as other tools wrote them: the one rule for the prefixes wrappers add, and
the check that a file's state dict is one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from epic_ar.errors import EpicArError
from epic_ar.fileio.messages import listed

if TYPE_CHECKING:
    import torch

Value = TypeVar("Value")

# Wrappers name the model they hold: Lightning's `model` attribute, DataParallel's and
# DistributedDataParallel's `module`. Nested wrappers stack their prefixes.
_WRAPPER_PREFIXES = re.compile(r"^(?:model\.|module\.)+")


def strip_key_prefixes(state: Mapping[str, Value]) -> dict[str, Value]:
    """A copy of `state` with each key's leading `model.` / `module.` prefixes (any number,
    in any order) removed: "module.model.fc.weight" -> "fc.weight". Keys without one stay
    as they are; the order of the keys is kept."""
    return {_WRAPPER_PREFIXES.sub("", key): value for key, value in state.items()}


def checked_state_dict(state: Mapping[Any, Any], source: str) -> dict[str, torch.Tensor]:
    """`state` (as a file held it) if it is a state dict: str keys, tensor values.

    Raises:
        EpicArError: "<source>: state_dict: key 3 is not a string", or "<source>:
            state_dict: model.fc.weight is not a tensor (int)", naming the first few
            offending keys (and how many more) and the types found.
    """
    import torch  # only here: importing it costs seconds

    not_str = [key for key in state if not isinstance(key, str)]
    if not_str:
        shown = listed([repr(key) for key in not_str])
        verb = "key {} is not a string" if len(not_str) == 1 else "keys {} are not strings"
        raise EpicArError(f"{source}: state_dict: " + verb.format(shown))
    not_tensor = {key: value for key, value in state.items() if not isinstance(value, torch.Tensor)}
    if not_tensor:
        kinds = ", ".join(sorted({type(value).__name__ for value in not_tensor.values()}))
        verb = "is not a tensor" if len(not_tensor) == 1 else "are not tensors"
        raise EpicArError(f"{source}: state_dict: {listed(list(not_tensor))} {verb} ({kinds})")
    return cast("dict[str, torch.Tensor]", dict(state))
