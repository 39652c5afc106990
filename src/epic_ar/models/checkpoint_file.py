"""Reading Lightning checkpoints without running code they name.

The published EPIC-KITCHENS checkpoints were written by PyTorch Lightning 0.9 with their
config pickled as an OmegaConf 2.0 `DictConfig`; `torch.load(weights_only=True)` refuses
them, and unpickling them for real needs (and runs) that exact OmegaConf. Here torch's
weights-only loader reads them with a short allow-list: plain containers, and stand-ins
that take the place of the OmegaConf classes and keep only their pickled state, from which
the config is rebuilt as plain dicts and lists. Nothing else the file names is imported.
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path
from typing import Any

from epic_ar.errors import EpicArError
from epic_ar.fileio.paths import require_file
from epic_ar.fileio.safe_pickle import (
    RefusedGlobalError,
    torch_data_globals,
    torch_load_failure,
    torch_refused_global,
)


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
_SAFE_GLOBALS: list[Any] = [
    *torch_data_globals(),  # numpy arrays and scalars (e.g. a stored best score)
    *((cls, name) for name, cls in STAND_INS.items()),
    (_ANY, "typing.Any"),
    dict,
    list,
    int,
    collections.Counter,
    collections.defaultdict,
    collections.OrderedDict,
]


def read_checkpoint(path: Path, *, trust: bool = False) -> dict[str, Any]:
    """The checkpoint's top-level dict, tensors on the CPU, OmegaConf containers as plain
    dicts/lists. With `trust`, a plain (code-running) `torch.load` is used instead.

    Raises:
        EpicArError: unreadable file, or one naming a global outside the allow-list.
    """
    import torch

    require_file(path, "checkpoint file", missing="no such checkpoint file")
    try:
        if trust:
            warnings.warn(
                f"{path}: loading with --trust runs any code the file names", stacklevel=2
            )
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(_SAFE_GLOBALS):
                loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        refused = None if trust else torch_refused_global(str(exc))
        if refused:
            raise RefusedGlobalError(
                f"{path}: refused to load '{refused}': the file names a class or function "
                "outside the checkpoint allow-list (nothing it names was run)",
                refused,
                trust_parameter="trust",
            ) from None
        reason = torch_load_failure(exc)
        if isinstance(exc, EOFError) or reason == "EOFError":
            reason = "the file ends early: truncated?" if path.stat().st_size else "empty file"
        raise EpicArError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(loaded, dict):
        raise EpicArError(f"{path}: not a Lightning checkpoint (top level is not a dict)")
    return {key: plain_config(value) for key, value in loaded.items()}


def plain_config(value: Any) -> Any:
    """Rebuild pickled OmegaConf containers (stand-ins) as dicts and lists, recursively;
    anything else is returned as it is."""
    if isinstance(value, _PickledState):
        return _plain_node(value)
    if type(value).__module__.startswith("omegaconf"):  # a real one (only with --trust)
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
