"""What the feature writers share: the settings an output records and how a rerun checks
them, feature arrays as stored (float32), and npz files written whole (temp + rename)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import FORCE, atomic_write_path

SETTINGS_ARRAY = "epic_ar_settings"  # npz: the settings as JSON text (a 0-d str array)


def plain_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` as JSON reads them back (tuples become lists), so that stored and given
    settings compare equal."""
    try:
        plain = json.loads(json.dumps(settings, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"feature settings must be plain JSON values: {exc}") from None
    if not isinstance(plain, dict):
        raise ValueError("feature settings must be a dict")
    return plain


def _shown(key: str, settings: dict[str, Any]) -> str:
    if key not in settings:
        return f"no {key}"
    value = settings[key]
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def check_same(out: Path, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse to continue `out` (written with `stored`) with other settings, naming the
    first that differs."""
    for key in [*stored, *(key for key in wanted if key not in stored)]:
        if key not in stored or key not in wanted or stored[key] != wanted[key]:
            raise EpicArError(
                f"{out}: was written with {_shown(key, stored)}, not {_shown(key, wanted)}; "
                "use another output or pass ",
                FORCE,
                " to start again",
            )


def as_float32(features: np.ndarray, video_id: str) -> np.ndarray:
    """`features` [N, C] (any float dtype) as contiguous little-endian float32, as stored."""
    array = np.asarray(features)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{video_id}: features must be a float array [N, C], not {array.dtype} "
            f"{list(array.shape)}"
        )
    return np.ascontiguousarray(array, dtype="<f4")


def check_video_id(video_id: str) -> None:
    # a video id names files (npz, parts): it must not reach outside the folder
    if not video_id or video_id in (".", "..") or any(c in video_id for c in "/\\\0"):
        raise EpicArError(f"video id {video_id!r}: cannot name a file; give an id like P01_01")


def settings_arrays(settings: dict[str, Any], reserved: tuple[str, ...]) -> dict[str, Any]:
    """The settings as 0-d arrays for an npz (numbers, booleans and text as such, anything
    else as JSON text), plus all of them as JSON under `SETTINGS_ARRAY`."""
    arrays: dict[str, Any] = {SETTINGS_ARRAY: np.array(json.dumps(settings))}
    for key, value in settings.items():
        if key in (*reserved, SETTINGS_ARRAY):
            raise ValueError(f"feature setting {key!r} would hide the array of that name")
        array = np.array(value) if isinstance(value, bool | int | float | str) else None
        if array is None or array.dtype.kind not in "biufU":  # None, lists, huge ints
            array = np.array(json.dumps(value))
        arrays[key] = array
    return arrays


def write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Write `arrays` into `path` all at once: a temporary file beside it, then rename."""
    with atomic_write_path(path, force=True) as tmp, tmp.open("wb") as stream:
        np.savez(stream, **arrays)
        stream.flush()
        os.fsync(stream.fileno())


def npz_settings(path: Path) -> dict[str, Any] | None:
    """The epic-ar settings stored in the npz `path`; None if it is not an npz epic-ar
    wrote (another program's file, or no npz at all)."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with np.load(path, allow_pickle=False) as data:
            if SETTINGS_ARRAY not in data.files:
                return None
            settings = json.loads(str(data[SETTINGS_ARRAY][()]))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return settings if isinstance(settings, dict) else None


def npz_shape(path: Path, name: str) -> tuple[int, ...]:
    """The shape of array `name` in the npz `path`, read from its header only."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member)
        else:
            header = np.lib.format.read_array_header_2_0(member)
    return tuple(header[0])


def channels_text(channels: set[int]) -> str:
    """The feature sizes seen, for a summary ("2048", or "1024/2048" if they differ)."""
    return "/".join(str(c) for c in sorted(channels)) or "no"
