"""Unpickling that admits data only: numpy arrays, dtypes, builtin containers and scalars.

A pickle names the callables that rebuild its objects; a plain `pickle.load` imports and
calls whatever it names, so a results file could run arbitrary code. Here every global a
pickle asks for is looked up in an explicit allow-list; anything else is refused before it
is imported, with the refused name in the error.
"""

from __future__ import annotations

import _codecs
import collections
import contextlib
import gc
import pickle
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import IO, Any, ClassVar

import numpy as np

from epic_ar.errors import EpicArError, Message, Parameter, Suggestion


class RefusedGlobalError(EpicArError):
    """A pickle asked for a global outside the allow-list (`global_name`: `module.name`).

    `trust_parameter`: the loader's parameter that would load the file anyway (e.g.
    `fileio.torch_files.TRUST`), suggested at the end of the message ("; if you trust the
    file, pass trust=True ..."); None when there is none.
    """

    def __init__(
        self, message: str, global_name: str = "", *, trust_parameter: Parameter | None = None
    ):
        if trust_parameter is None:
            super().__init__(message)
        else:
            hint = (
                "; if you trust the file, pass ",
                trust_parameter,
                " (it runs what the file names)",
            )
            super().__init__(message, Suggestion(Message(hint)))
        self.global_name = global_name
        self.trust_parameter = trust_parameter


# torch's weights-only loader names a refused global in several phrasings ("Unsupported
# global: GLOBAL a.b was not an allowed global", "Trying to load unsupported GLOBAL a.b
# whose module a is blocked", ...); the name always follows "GLOBAL ".
_TORCH_REFUSED = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_ADVICE_END = "Do it only if you got the file from a trusted source."


def torch_refused_global(message: str) -> str | None:
    """The global (`module.name`) that torch's weights-only loader refused, from its error
    message; None when the message is about something else."""
    refused = _TORCH_REFUSED.search(message)
    return refused.group(1) if refused else None


def torch_load_failure(exc: BaseException) -> str:
    """The first line of why `torch.load` failed, without the advice torch prints first
    (to retry with `weights_only=False`, which would run code the file names)."""
    message = str(exc)
    for marker in ("WeightsUnpickler error:", _TORCH_ADVICE_END):
        message = message.rsplit(marker, maxsplit=1)[-1]
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # torch's reader goes on for sentences ("This is an internal miniz error. If you...")
    return lines[0].split(". ", maxsplit=1)[0].removesuffix(".")


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


def _bytes_from_pickle(*args: Any) -> bytes:
    # Protocol-2 pickles rebuild `bytes` by calling it (with no argument for b"", a list of
    # ints otherwise). `bytes(n)` would allocate n bytes, whatever the file's size: refused.
    if args and not isinstance(args[0], (list, tuple, bytes, bytearray)):
        raise ValueError(f"bytes({args[0]!r}) refused: only bytes made of listed values")
    return bytes(*args[:1])


for _module in ("builtins", "__builtin__"):
    BUILTIN_GLOBALS[(_module, "bytes")] = _bytes_from_pickle

DATA_GLOBALS: dict[tuple[str, str], Any] = {**NUMPY_GLOBALS, **BUILTIN_GLOBALS}


def torch_data_globals() -> list[Any]:
    """`DATA_GLOBALS` in the form torch's weights-only loader takes (`safe_globals`)."""
    # torch matches globals by their qualified name; the tuple form lets numpy-1 names
    # (numpy.core.*) resolve to the numpy-2 objects (numpy._core.*).
    # torch also checks the class of each dtype it rebuilds (numpy.dtypes.Float32DType, ...).
    allowed: list[Any] = [(obj, f"{module}.{name}") for (module, name), obj in DATA_GLOBALS.items()]
    dtype_classes = getattr(np, "dtypes", None)  # numpy >= 1.25
    if dtype_classes is not None:
        allowed += [
            getattr(dtype_classes, name) for name in dir(dtype_classes) if name.endswith("DType")
        ]
    return allowed


class InvalidPickleError(EpicArError):
    """The bytes are not a complete, valid pickle."""


class PersistentIdError(EpicArError):
    """The pickle refers to out-of-band storage (e.g. torch tensors in a torch zip file)."""


def check_build_state(instance: Any, state: Any, source: str) -> None:
    """Refuse a BUILD that would set a numpy dtype's internals to anything unusual.

    `dtype.__setstate__` trusts its input: corrupted flags or sizes crash numpy (even
    segfault). A dtype built from a pickle must end up exactly as numpy builds it from its
    type string; structured dtypes (never needed in results files) are refused too.
    """
    if isinstance(instance, np.dtype):
        expected = instance.__reduce__()[2]
        if state != expected:
            raise EpicArError(f"{source}: corrupted or unsupported numpy dtype state {state!r}")


class RestrictedUnpickler(pickle._Unpickler):
    """A pure-Python unpickler that resolves globals from an allow-list only and checks
    every numpy dtype it rebuilds (the C unpickler offers no hook for the latter)."""

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

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

    def load_build(self) -> None:
        # `stack` and `load_build` exist on pickle's pure-Python unpickler (no stubs)
        stack = self.stack  # type: ignore[attr-defined]
        check_build_state(stack[-2], stack[-1], self._source)
        super().load_build()  # type: ignore[misc]

    dispatch[pickle.BUILD[0]] = load_build


def check_loaded_arrays(obj: Any, source: str, depth: int = 0) -> None:
    """Refuse arrays whose dtype state is not what numpy itself would build.

    For objects unpickled by others (torch's weights-only loader), where BUILDs cannot be
    checked as `RestrictedUnpickler` checks them: corrupted flags (e.g. a string dtype
    claiming to hold object references) crash numpy when the array is freed.
    """
    if depth > 20:
        return
    if isinstance(obj, (np.ndarray, np.generic)):
        dtype = obj.dtype
        clean = np.dtype(dtype.str) if dtype.fields is None and dtype.subdtype is None else dtype
        if dtype.flags != clean.flags or dtype.itemsize != clean.itemsize:
            raise EpicArError(f"{source}: corrupted array (inconsistent dtype {dtype.str})")
        if dtype.kind == "O" and isinstance(obj, np.ndarray):
            for item in obj.flat:
                check_loaded_arrays(item, source, depth + 1)
    elif isinstance(obj, Mapping):
        for value in obj.values():
            check_loaded_arrays(value, source, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            check_loaded_arrays(item, source, depth + 1)


@contextlib.contextmanager
def quiet_teardown() -> Iterator[None]:
    # Corrupted pickles can leave half-built numpy objects whose destruction numpy reports
    # as an "Exception ignored" traceback (or a warning); the load error already says the
    # file is bad, so those reports are dropped while the unpickler and its stack go away.
    previous = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.unraisablehook = previous


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
        InvalidPickleError: the bytes are not a complete, valid pickle.
        EpicArError: the pickle holds a corrupted numpy dtype state.
    """
    unpickler = RestrictedUnpickler(file, source=source, allowed=allowed)
    error: EpicArError
    with quiet_teardown():
        try:
            return unpickler.load()
        except EpicArError as exc:
            error = exc.with_traceback(None)  # no frames keep the unpickler alive
        except Exception as exc:  # truncated / corrupted data raises many different types
            error = InvalidPickleError(
                f"{source}: not a valid pickle ({type(exc).__name__}: {exc})"
            )
        finally:
            del unpickler
        # Free what the failed load had built (some of it in reference cycles) while the
        # teardown reports are silenced; raise afterwards, with nothing attached.
        gc.collect()
    raise error
