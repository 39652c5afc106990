"""Write one gulp chunk, crash-safely: temp files, fsync, then rename data and meta."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from epic_ar.gulp.format import data_path, meta_path, padding


@dataclass
class GulpRecord:
    """What a chunk stores of one segment: its id (the narration id), metadata
    (JSON-serialisable) and JPEG frames in order."""

    segment_id: str
    meta: dict[str, Any]
    jpegs: list[bytes] = field(default_factory=list)


def _fsync_write(path: Path, chunks: Iterable[bytes]) -> None:
    with path.open("wb") as file:
        for chunk in chunks:
            file.write(chunk)
        file.flush()
        os.fsync(file.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunk(directory: Path, chunk: int, records: Iterable[GulpRecord]) -> int:
    """Write chunk `chunk` of `directory` holding `records`; returns the frames written.

    Both files are written under temporary names and synced before being renamed into
    place, meta last: a chunk is either complete and visible, or absent (an orphan data
    file without its meta is ignored by readers and overwritten by the next attempt).
    """
    frames: list[bytes] = []  # padded JPEGs, as the data file holds them
    meta: dict[str, Any] = {}
    offset = 0
    for record in records:
        frame_info = []
        for jpeg in record.jpegs:
            pad = padding(len(jpeg))
            frames.append(jpeg + b"\0" * pad if pad else jpeg)
            frame_info.append([offset, pad, len(jpeg) + pad])
            offset += len(jpeg) + pad
        meta[record.segment_id] = {"frame_info": frame_info, "meta_data": [record.meta]}
    final_data, final_meta = data_path(directory, chunk), meta_path(directory, chunk)
    tmp_data = directory / f".{final_data.name}.{os.getpid()}.tmp"
    tmp_meta = directory / f".{final_meta.name}.{os.getpid()}.tmp"
    try:
        _fsync_write(tmp_data, frames)
        _fsync_write(tmp_meta, [orjson.dumps(meta)])
        tmp_data.replace(final_data)
        tmp_meta.replace(final_meta)
        _fsync_directory(directory)
    finally:
        tmp_data.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    return len(frames)
