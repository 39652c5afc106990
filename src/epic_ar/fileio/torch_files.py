"""The one loader for files written by `torch.save` (checkpoints, weights, results).

`torch.load(weights_only=True)` rebuilds tensors and plain containers and refuses any other
global a file names, before importing it. Here that refusal, an unreadable file and a
truncated one become one-line errors naming the file, worded for the kind of file the
caller reads (`TorchFileKind`).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epic_ar.errors import EpicArError, MessageException, Parameter
from epic_ar.fileio.safe_pickle import (
    RefusedGlobalError,
    check_loaded_arrays,
    quiet_teardown,
    torch_data_globals,
    torch_load_failure,
    torch_refused_global,
)

TRUST = Parameter("trust", "trust=True")  # a command names its flag instead


class TrustedLoadWarning(MessageException, UserWarning):
    """A file is being loaded trusting it (a plain `torch.load`, which runs what the file
    names). `text` names the parameter that asked for it, so that a command line can name
    its flag instead."""


def trusted_load_warning(path: Path) -> TrustedLoadWarning:
    """The warning for loading `path` with trust=True."""
    return TrustedLoadWarning(f"{path}: loading with ", TRUST, " runs any code the file names")


@dataclass(frozen=True)
class TorchFileKind:
    """How the errors about one kind of torch file read (each follows "{path}: ").

    unreadable: the file cannot be unpickled, e.g. "not a readable checkpoint"; the reason
        follows in parentheses.
    allowed: why a refused global may not appear, after "refused to load 'module.name': ".
    corrupted: any other failure (a damaged archive or storage); default: `unreadable`.
    trust_parameter: the loader's parameter that loads a refused file anyway (`TRUST`),
        suggested by the RefusedGlobalError; None when the caller has none.
    name_early_end: an early end of file reads "the file ends early: truncated?" (or
        "empty file") instead of torch's bare "EOFError".
    """

    unreadable: str
    allowed: str
    corrupted: str | None = None
    trust_parameter: Parameter | None = None
    name_early_end: bool = False


def load_torch_file(
    path: Path,
    kind: TorchFileKind,
    *,
    extra_globals: Sequence[Any] = (),
    trust: bool = False,
) -> Any:
    """The object `torch.save` stored in `path`, tensors on the CPU.

    Weights-only: besides tensors and builtin containers, only numpy arrays and scalars
    (`torch_data_globals`) and `extra_globals` (in the form torch's `safe_globals` takes)
    may be named; numpy arrays are checked for corrupted dtypes. With `trust`, a plain
    `torch.load` (which runs whatever the file names) is used instead: the caller warns
    (`trusted_load_warning`).

    Raises:
        RefusedGlobalError: the file names a global outside the allow-list (nothing it
            names was imported or run).
        EpicArError: the file is not a readable torch file, is truncated or corrupted.
    """
    import torch  # only here: importing it costs seconds

    try:
        if trust:
            return torch.load(path, map_location="cpu", weights_only=False)
        allowed = [*torch_data_globals(), *extra_globals]
        with quiet_teardown(), torch.serialization.safe_globals(allowed):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            check_loaded_arrays(loaded, str(path))
            return loaded
    except EpicArError:
        raise
    except Exception as exc:  # torch raises many types for bad files
        raise _load_error(path, kind, exc, trusted=trust) from None


def _load_error(path: Path, kind: TorchFileKind, exc: Exception, *, trusted: bool) -> EpicArError:
    refused = None if trusted else torch_refused_global(str(exc))
    if refused:
        return RefusedGlobalError(
            f"{path}: refused to load '{refused}': {kind.allowed}",
            refused,
            trust_parameter=kind.trust_parameter,
        )
    reason = torch_load_failure(exc)
    if kind.name_early_end and (isinstance(exc, EOFError) or reason == "EOFError"):
        reason = "the file ends early: truncated?" if path.stat().st_size else "empty file"
    failure = kind.unreadable
    if not isinstance(exc, pickle.UnpicklingError) and kind.corrupted is not None:
        failure = kind.corrupted
    return EpicArError(f"{path}: {failure} ({reason})")
