"""The gulp directory format, as gulpio2 writes it.

A directory holds chunk pairs `data_<i>.gulp` + `meta_<i>.gmeta`:

- `data_<i>.gulp`: JPEG records one after another, each padded with NUL bytes to a
  multiple of 4 bytes;
- `meta_<i>.gmeta`: JSON `{segment_id: {"frame_info": [[offset, pad, length], ...],
  "meta_data": [metadata_dict]}}`, `length` counting the padding.

A chunk exists once its meta file does: writers rename the meta file into place last.
Temporary files start with "." so that gulpio2's `data*.gulp` / `meta*.gmeta` globs skip them.
`epic-ar gulp` also writes a manifest (`MANIFEST_NAME`, JSON) naming its job, from which a
reader tells a finished directory from one whose job was interrupted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

DATA_PATTERN = re.compile(r"^data_(\d+)\.gulp$")
# Hidden *.tmp files are what epic-ar's writers leave behind when killed mid-write.
TEMP_PATTERN = re.compile(r"^\..*\.tmp$")
META_PATTERN = re.compile(r"^meta_(\d+)\.gmeta$")
RECORD_ALIGNMENT = 4
MANIFEST_NAME = ".epic_ar_gulp.json"


def data_path(directory: Path, chunk: int) -> Path:
    return directory / f"data_{chunk}.gulp"


def meta_path(directory: Path, chunk: int) -> Path:
    return directory / f"meta_{chunk}.gmeta"


def padding(length: int) -> int:
    """NUL bytes appended to a record of `length` bytes to reach a multiple of 4."""
    return (RECORD_ALIGNMENT - length % RECORD_ALIGNMENT) % RECORD_ALIGNMENT


def committed_chunks(directory: Path) -> list[int]:
    """Indices of the chunks whose meta file exists, in ascending order."""
    if not directory.is_dir():
        return []
    found = (META_PATTERN.match(path.name) for path in directory.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def remove_stale_temp_files(directory: Path) -> int:
    """Delete temp files left by a killed writer; returns how many (one job per directory)."""
    if not directory.is_dir():
        return 0
    stale = [path for path in directory.iterdir() if TEMP_PATTERN.match(path.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of the `epic-ar gulp` job that wrote `directory`: None when there is
    none (not started, or another tool's directory), {} when it is unreadable."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def unfinished_gulp(directory: Path) -> str | None:
    """When the `epic-ar gulp` job that wrote `directory` stopped before writing every
    chunk, the one line that says so and what to do; None when it finished, or when no
    manifest says what the job was (gulp directories of other tools)."""
    manifest = read_manifest(directory) or {}
    segments, per_chunk = manifest.get("segments"), manifest.get("segments_per_chunk")
    if not (isinstance(segments, int) and isinstance(per_chunk, int) and per_chunk > 0):
        return None
    expected = -(-segments // per_chunk)
    written = len(set(range(expected)) & set(committed_chunks(directory)))
    if written == expected:
        return None
    return (
        f"{directory}: an unfinished gulp ({written} of {expected} chunks written); "
        "run the same epic-ar gulp command again to finish it"
    )
