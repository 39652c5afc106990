"""Read gulp directories (ours or gulpio2's) with a compact, fork-friendly index.

The index of a directory is a handful of numpy arrays (per-frame offsets and lengths,
per-segment first frame and count), not per-frame Python objects: the training split's
~17 million frames cost ~140 MB here instead of gigabytes, and the arrays are shared
copy-on-write with DataLoader workers without being touched by reference counting.
Frames are read with `os.pread` on file descriptors opened once per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from epic_ar.errors import EpicArError
from epic_ar.fileio.paths import os_reason
from epic_ar.gulp.format import (
    committed_chunks,
    data_path,
    meta_path,
    unfinished_gulp,
)
from epic_ar.gulp.jpeg import decode_jpeg


def _return_freed_heap_to_os() -> None:
    # Parsing the meta JSON frees hundreds of MB of small objects that glibc keeps in its
    # heap; hand them back so that DataLoader workers forked later do not carry them.
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return kinds.get(type(value), "a number")


def require_directory(path: Path) -> None:
    """Raise an EpicArError unless `path` is a folder (as a gulp directory must be)."""
    if not path.is_dir():
        problem = "is a file, not" if path.exists() else "no such directory; expected"
        raise EpicArError(f"{path}: {problem} a gulp directory")


def is_frame_record(info: object) -> bool:
    """Whether a `frame_info` entry has a record's shape: [offset, padding, length], three
    whole numbers >= 0 (whether they fit the data file is another matter)."""
    return (
        isinstance(info, list)
        and len(info) == 3
        and all(type(value) is int and value >= 0 for value in info)
    )


def read_chunk_meta(meta_file: Path) -> dict[str, dict[str, Any]]:
    """The parsed meta file of one chunk, checked to be laid out as the format says:
    `{segment_id: {"frame_info": [...], "meta_data": [{...}] or []}}` (the frame records'
    values are checked by `frame_records`).

    Raises:
        EpicArError: the file is unreadable, not JSON, or laid out otherwise (names the file,
            and the segment and key at fault).
    """
    try:
        raw = meta_file.read_bytes()
    except OSError as exc:
        raise EpicArError(f"{meta_file}: cannot read ({os_reason(exc)})") from exc
    try:
        meta = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EpicArError(f"{meta_file}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise EpicArError(
            f"{meta_file}: holds {_json_kind(meta)}, not a gulp meta file (an object mapping "
            "segment ids to their 'frame_info' and 'meta_data')"
        )
    for segment_id, entry in meta.items():
        where = f"{meta_file}: segment {segment_id!r}"
        if not isinstance(entry, dict):
            raise EpicArError(
                f"{where}: is {_json_kind(entry)}, not an object with 'frame_info' and 'meta_data'"
            )
        for key in ("frame_info", "meta_data"):
            if key not in entry:
                raise EpicArError(f"{where}: has no {key!r}")
            if not isinstance(entry[key], list):
                raise EpicArError(f"{where}: {key!r} is {_json_kind(entry[key])}, not a list")
        if entry["meta_data"] and not isinstance(entry["meta_data"][0], dict):
            kind = _json_kind(entry["meta_data"][0])
            raise EpicArError(f"{where}: 'meta_data' holds {kind}, not an object")
    return meta


def frame_records(meta_file: Path, chunk_meta: dict[str, dict[str, Any]]) -> np.ndarray:
    """[F, 3] int64 (offset, padding, length) of every frame of the chunk, in stored order.

    Raises:
        EpicArError: a record is not three whole numbers with offset >= 0 and
            0 <= padding < length (names the file, segment and frame).
    """
    flat = list(chain.from_iterable(entry["frame_info"] for entry in chunk_meta.values()))
    try:  # one conversion per chunk: no per-frame Python objects survive
        records = np.array(flat) if flat else np.zeros((0, 3), dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        records = np.zeros(0)  # ragged: found below
    if (
        records.ndim == 2
        and records.shape[1] == 3
        and records.dtype.kind in "iu"
        and (records[:, 0] >= 0).all()
        and ((records[:, 1] >= 0) & (records[:, 1] < records[:, 2])).all()
    ):
        return records.astype(np.int64, copy=False)
    for segment_id, entry in chunk_meta.items():  # rare: name the first bad record
        for index, info in enumerate(entry["frame_info"]):
            if not (is_frame_record(info) and info[1] < info[2]):
                raise EpicArError(
                    f"{meta_file}: segment {segment_id!r}: 'frame_info' record {index} is "
                    f"{orjson.dumps(info).decode()[:60]}, not [offset, padding, length] "
                    "(whole numbers, offset >= 0, 0 <= padding < length)"
                )
    raise EpicArError(f"{meta_file}: 'frame_info' records are not [offset, padding, length]")


class GulpDirectory:
    """A gulp directory opened for reading.

    Attributes:
        path: the directory.
        segment_ids: [S] str, in chunk order.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        require_directory(self.path)
        chunks = committed_chunks(self.path)
        if not chunks:
            raise EpicArError(f"{self.path}: not a gulp directory (no meta_*.gmeta files)")
        unfinished = unfinished_gulp(self.path)
        if unfinished is not None:  # reading it would silently serve a subset
            raise EpicArError(unfinished)
        ids: list[str] = []
        metas: list[bytes] = []
        seg_chunk: list[int] = []
        seg_first: list[int] = []
        seg_counts: list[int] = []
        self._data_paths = [data_path(self.path, chunk) for chunk in chunks]
        self._offsets: list[np.ndarray] = []  # per chunk: [F] uint32 (uint64 past 4 GiB)
        self._lengths: list[np.ndarray] = []  # per chunk: [F] uint32 JPEG bytes, no padding
        for chunk_row, chunk in enumerate(chunks):
            meta_file = meta_path(self.path, chunk)
            chunk_meta = read_chunk_meta(meta_file)
            infos = frame_records(meta_file, chunk_meta)
            first = 0
            for segment_id, entry in chunk_meta.items():
                count = len(entry["frame_info"])
                ids.append(segment_id)
                metas.append(orjson.dumps(entry["meta_data"][0] if entry["meta_data"] else {}))
                seg_chunk.append(chunk_row)
                seg_first.append(first)
                seg_counts.append(count)
                first += count
            big = infos[:, 0].max(initial=0) >= 2**32
            self._offsets.append(infos[:, 0].astype(np.uint64 if big else np.uint32))
            self._lengths.append((infos[:, 2] - infos[:, 1]).astype(np.uint32))
            del chunk_meta, infos
        self.segment_ids = ids
        self._row = {segment_id: row for row, segment_id in enumerate(ids)}
        if len(self._row) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise EpicArError(f"{self.path}: segment {duplicate!r} is stored more than once")
        self._chunk = np.asarray(seg_chunk, dtype=np.int32)
        self._first = np.asarray(seg_first, dtype=np.int64)
        self._count = np.asarray(seg_counts, dtype=np.int32)
        self._meta_blob = b"".join(metas)
        self._meta_end = np.cumsum([len(m) for m in metas], dtype=np.int64)
        del metas
        _return_freed_heap_to_os()
        self._fds: dict[int, int] = {}
        self._fd_pid = -1

    def __len__(self) -> int:
        return len(self.segment_ids)

    def __contains__(self, segment_id: object) -> bool:
        return segment_id in self._row

    def _segment_row(self, segment_id: str) -> int:
        try:
            return self._row[segment_id]
        except KeyError:
            raise KeyError(f"segment {segment_id!r} is not in {self.path}") from None

    def num_frames(self, segment_id: str) -> int:
        """Frames stored for the segment (pairs of u/v frames count as 2 here)."""
        return int(self._count[self._segment_row(segment_id)])

    def meta(self, segment_id: str) -> dict[str, Any]:
        """The segment's metadata dict (annotation columns, `num_frames`, `frame_size`)."""
        row = self._segment_row(segment_id)
        start = int(self._meta_end[row - 1]) if row else 0
        meta: dict[str, Any] = orjson.loads(self._meta_blob[start : int(self._meta_end[row])])
        return meta

    def _fd(self, chunk_row: int) -> int:
        if self._fd_pid != os.getpid():  # descriptors are not shared across forks
            self._fds, self._fd_pid = {}, os.getpid()
        fd = self._fds.get(chunk_row)
        if fd is None:
            try:
                fd = os.open(self._data_paths[chunk_row], os.O_RDONLY)
            except FileNotFoundError:
                raise EpicArError(f"{self._data_paths[chunk_row]}: data file missing") from None
            self._fds[chunk_row] = fd
        return fd

    def read_jpegs(self, segment_id: str, indices: Sequence[int]) -> list[bytes]:
        """The stored JPEG bytes of frames `indices` (0-based, in stored order).

        Raises:
            KeyError: unknown segment. IndexError: an index outside [0, frame count).
            EpicArError: the data file ends before a frame (truncated).
        """
        row = self._segment_row(segment_id)
        count = int(self._count[row])
        frames = np.asarray(indices, dtype=np.int64)
        if frames.size and (frames.min() < -count or frames.max() >= count):
            bad = int(frames[(frames < -count) | (frames >= count)][0])
            raise IndexError(
                f"frame index {bad} out of range for segment {segment_id!r} ({count} frames)"
            )
        frames = self._first[row] + np.where(frames < 0, frames + count, frames)
        chunk = int(self._chunk[row])
        fd = self._fd(chunk)
        offsets, lengths = self._offsets[chunk][frames], self._lengths[chunk][frames]
        jpegs = [
            os.pread(fd, length, offset)
            for offset, length in zip(offsets.tolist(), lengths.tolist(), strict=True)
        ]
        if any(len(jpeg) != length for jpeg, length in zip(jpegs, lengths.tolist(), strict=True)):
            raise EpicArError(
                f"{self._data_paths[chunk]}: ends before the frames of segment {segment_id} "
                "that its meta file lists (truncated? run epic-ar gulp-check)"
            )
        return jpegs

    def read_frames(self, segment_id: str, indices: Sequence[int]) -> list[np.ndarray]:
        """Frames `indices` decoded: [H, W, 3] uint8 RGB, or [H, W] uint8 for flow frames."""
        return [decode_jpeg(jpeg) for jpeg in self.read_jpegs(segment_id, indices)]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def __del__(self) -> None:
        if getattr(self, "_fd_pid", None) == os.getpid():
            self.close()
