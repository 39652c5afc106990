"""Unpickling that admits data only: numpy arrays, dtypes, builtin containers and scalars.

A pickle names the callables that rebuild its objects; a plain `pickle.load` imports and
calls whatever it names, so a results file could run arbitrary code. Here every global a
pickle asks for is looked up in an explicit allow-list; anything else is refused before it
is imported, with the refused name in the error.
"""

from __future__ import annotations

import _codecs
import collections
import pickle
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from epic_ar.errors import EpicArError


class RefusedGlobalError(EpicArError):
    """A pickle asked for a global outside the allow-list (`global_name`: `module.name`)."""

    def __init__(self, message: str, global_name: str = ""):
        super().__init__(message)
        self.global_name = global_name


def _numpy_core_attr(module: str, name: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; files written under numpy 1 use the old name.
    core = getattr(np, "_core", None) or np.core
    return getattr(getattr(core, module), name)


# (module, name) as written in the pickle -> the object it is allowed to resolve to.
NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,  # bytes in protocol-2 pickles of arrays
}
for _core in ("numpy.core", "numpy._core"):
    NUMPY_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = _numpy_core_attr(
        "multiarray", "_reconstruct"
    )
    NUMPY_GLOBALS[(f"{_core}.multiarray", "scalar")] = _numpy_core_attr("multiarray", "scalar")
    NUMPY_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = _numpy_core_attr("numeric", "_frombuffer")

_BUILTIN_CONTAINERS_AND_SCALARS = {
    "set": set,
    "frozenset": frozenset,
    "bytearray": bytearray,
    "complex": complex,
    "slice": slice,
    "range": range,
}
BUILTIN_GLOBALS: dict[tuple[str, str], Any] = {
    (module, name): obj
    for module in ("builtins", "__builtin__")  # __builtin__: protocol-2 pickles from Python 2
    for name, obj in _BUILTIN_CONTAINERS_AND_SCALARS.items()
}
BUILTIN_GLOBALS[("collections", "OrderedDict")] = collections.OrderedDict

DATA_GLOBALS: dict[tuple[str, str], Any] = {**NUMPY_GLOBALS, **BUILTIN_GLOBALS}


class PersistentIdError(EpicArError):
    """The pickle refers to out-of-band storage (e.g. torch tensors in a torch zip file)."""


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves globals from an allow-list only."""

    def __init__(self, file: IO[bytes], *, source: str, allowed: Mapping[tuple[str, str], Any]):
        super().__init__(file)
        self._source = source
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"{self._source}: refused to load '{module}.{name}': only numpy arrays, "
                "dtypes and builtin containers/scalars may appear in this file",
                f"{module}.{name}",
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise PersistentIdError(f"{self._source}: refers to external storage {pid!r}")


def restricted_pickle_load(
    file: IO[bytes],
    *,
    source: str,
    allowed: Mapping[tuple[str, str], Any] = DATA_GLOBALS,
) -> Any:
    """Unpickle `file`, admitting only the globals in `allowed`.

    Raises:
        RefusedGlobalError: the pickle names a global outside `allowed` (nothing was run).
        PersistentIdError: the pickle refers to out-of-band storage.
        EpicArError: the bytes are not a complete, valid pickle.
    """
    try:
        return RestrictedUnpickler(file, source=source, allowed=allowed).load()
    except EpicArError:
        raise
    except Exception as exc:  # truncated / corrupted data raises many different types
        raise EpicArError(f"{source}: not a valid pickle ({type(exc).__name__}: {exc})") from exc
