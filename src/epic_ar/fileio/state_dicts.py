"""State dicts as other tools wrote them: the one rule for the prefixes wrappers add."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

Value = TypeVar("Value")

# Wrappers name the model they hold: Lightning's `model` attribute, DataParallel's and
# DistributedDataParallel's `module`. Nested wrappers stack their prefixes.
_WRAPPER_PREFIXES = re.compile(r"^(?:model\.|module\.)+")


def strip_key_prefixes(state: Mapping[str, Value]) -> dict[str, Value]:
    """A copy of `state` with each key's leading `model.` / `module.` prefixes (any number,
    in any order) removed: "module.model.fc.weight" -> "fc.weight". Keys without one stay
    as they are; the order of the keys is kept."""
    return {_WRAPPER_PREFIXES.sub("", key): value for key, value in state.items()}
