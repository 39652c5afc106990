"""Pickled OmegaConf 2.0 containers, read without OmegaConf.

The published EPIC-KITCHENS checkpoints were written by PyTorch Lightning 0.9 with their
config pickled as an OmegaConf 2.0 `DictConfig`; unpickling it for real needs (and runs)
that exact OmegaConf. Instead, torch's weights-only loader is given stand-ins
(`OMEGACONF_GLOBALS`) that take the place of the OmegaConf classes and keep only their
pickled state, from which `plain_config` rebuilds the config as plain dicts and lists.
"""

from __future__ import annotations

from typing import Any


class _PickledState:
    """Stand-in for a class the allow-list maps by name: keeps the pickled state only."""

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _stand_in(qualified_name: str) -> type[_PickledState]:
    return type(qualified_name.rsplit(".", 1)[1], (_PickledState,), {"origin": qualified_name})


_OMEGACONF_CLASSES = [
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.EnumNode",
]
STAND_INS: dict[str, type[_PickledState]] = {name: _stand_in(name) for name in _OMEGACONF_CLASSES}
_ANY = object()  # what `typing.Any` (a node's declared type) becomes: never used
# The stand-ins in the form torch's `safe_globals` takes: (object, qualified name)
OMEGACONF_GLOBALS: list[tuple[object, str]] = [
    *((cls, name) for name, cls in STAND_INS.items()),
    (_ANY, "typing.Any"),
]


def plain_config(value: Any) -> Any:
    """Rebuild pickled OmegaConf containers (stand-ins) as dicts and lists, recursively;
    anything else is returned as it is."""
    if isinstance(value, _PickledState):
        return _plain_node(value)
    if type(value).__module__.startswith("omegaconf"):  # a real one (only with trust=True)
        from omegaconf import OmegaConf  # type: ignore[import-not-found, unused-ignore]

        return OmegaConf.to_container(value, resolve=False)
    return value


def _plain_node(node: _PickledState) -> Any:
    state = node.state if isinstance(node.state, dict) else {}
    origin = getattr(type(node), "origin", "")
    if origin.endswith(("DictConfig", "ListConfig")):
        content = state.get("_content")
        if isinstance(content, dict):
            return {key: plain_config(item) for key, item in content.items()}
        if isinstance(content, list):
            return [plain_config(item) for item in content]
        return content  # None, or an interpolation string standing for the whole container
    if origin.startswith("omegaconf.nodes."):
        return state.get("_val")
    return None  # metadata
