"""The official per-video tar archives as a random-access frame store.

A member of an uncompressed tar archive is a contiguous byte range of the file, so with an
index of (offset, size) per frame the archives serve frames with one `pread` each: no
extraction, no gulping. The index is built once per archive (a scan of its headers) and
cached as a small `.npy` file next to the archive, or in a cache folder when that is not
writable. It is memory-mapped when used, so DataLoader workers share it through the page
cache.

Index layout: int64 [K, M + 1, 2] of (offset, size) for frame numbers 0..M, K = 1 for an
RGB archive (`frame_*.jpg`) and 2 for a flow archive (`u/...`, `v/...`); missing frames hold
(-1, -1). Frame numbers are 1-based, so row 0 of the first axis is free: it stores the
archive's (size, mtime_ns), and an archive that changed is indexed again.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.fileio.index_cache import file_stamp, index_locations, load_index, save_index
from epic_ar.fileio.paths import os_reason
from epic_ar.gulp.sources import member_name

INDEX_SUFFIX = ".epic_ar_index.npy"
AXES = {"rgb": ("",), "flow": ("u", "v")}
# Frame numbers up to this always index (a video of 4.6 h at 60 fps), and beyond it up to
# this many times the archive's member count (archives holding only some frames).
MIN_FRAME_NUMBER_LIMIT = 1_000_000
MAX_FRAMES_PER_MEMBER = 4
_MEMBER = re.compile(r"(?:\./)?(?:(u|v)/)?frame_(\d+)\.jpg")


def build_tar_index(archive: Path) -> np.ndarray:
    """Scan the archive's headers: int64 [K, M + 1, 2] (see the module docstring).

    Raises:
        EpicArError: the file is not a readable tar archive, or holds no frames.
    """
    members: list[tuple[str, int, int, int]] = []  # axis, frame number, offset, size
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                match = _MEMBER.fullmatch(member.name)
                if match and member.isfile():
                    axis = match.group(1) or ""
                    members.append((axis, int(match.group(2)), member.offset_data, member.size))
    except (tarfile.TarError, OSError) as exc:
        raise EpicArError(f"{archive}: unreadable tar archive ({exc})") from exc
    if not members:
        raise EpicArError(f"{archive}: no frame_*.jpg members")
    axes = AXES["flow"] if any(axis for axis, *_ in members) else AXES["rgb"]
    last = max(number for _, number, _, _ in members)
    # The table has a row per frame number: bound it by what a real video can hold.
    if last > max(MAX_FRAMES_PER_MEMBER * len(members), MIN_FRAME_NUMBER_LIMIT):
        raise EpicArError(
            f"{archive}: a member is named frame number {last}, far beyond the archive's "
            f"{len(members)} frames (not an EPIC frame archive?)"
        )
    table = np.full((len(axes), last + 1, 2), -1, dtype=np.int64)
    for axis, number, offset, size in members:
        if axis in axes:
            table[axes.index(axis), number] = (offset, size)
    table[0, 0] = file_stamp(archive)
    return table


def _index_shape_ok(table: np.ndarray) -> bool:
    return table.ndim == 3 and table.shape[2] == 2


def _locations(archive: Path, cache_dir: Path | None) -> list[Path]:
    return index_locations(archive, INDEX_SUFFIX, "tar-index", cache_dir)


def cached_tar_index(archive: Path, cache_dir: Path | None = None) -> np.ndarray | None:
    """The archive's cached index if one is current (memory-mapped), else None."""
    return load_index(archive, _locations(archive, cache_dir), _index_shape_ok)


def tar_index(archive: Path, cache_dir: Path | None = None) -> np.ndarray:
    """The archive's index, memory-mapped from its cache file (built and saved if needed).

    The cache file is `ARCHIVE.tar.epic_ar_index.npy` next to the archive, or, when that
    folder is not writable, in `~/.cache/epic-ar/tar-index` (`fileio.index_cache`);
    `cache_dir` forces a folder.
    """
    cached = cached_tar_index(archive, cache_dir)
    if cached is not None:
        return cached
    locations = _locations(archive, cache_dir)
    return save_index(archive, build_tar_index(archive), locations, _index_shape_ok)


class IndexedTar:
    """Frames of one archive by axis ("" for RGB, "u"/"v" for flow) and frame number."""

    def __init__(self, archive: Path, table: np.ndarray):
        self.archive, self.table = archive, table
        self.axes = AXES["flow"] if table.shape[0] == 2 else AXES["rgb"]

    def locate(self, axis: str, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, sizes) of frames `numbers` on `axis`, as int64 arrays.

        Raises:
            EpicArError: a frame is not in the archive (named, with the archive).
        """
        if axis not in self.axes:
            kind = "flow" if self.axes == AXES["flow"] else "RGB"
            raise EpicArError(f"{self.archive}: holds {kind} frames, not {axis or 'RGB'!s}")
        numbers = np.asarray(numbers, dtype=np.int64)
        last = self.table.shape[1] - 1
        valid = (numbers >= 1) & (numbers <= last)
        rows = self.table[self.axes.index(axis), np.where(valid, numbers, 0)]
        missing = ~valid | (rows[:, 1] < 0)
        if missing.any():
            name = member_name(axis, int(numbers[missing][0]))
            raise EpicArError(f"missing frame {self.archive}:{name}")
        return rows[:, 0], rows[:, 1]

    def read(self, numbers: np.ndarray, axes: Sequence[str]) -> list[bytes]:
        """The JPEG bytes of frames `numbers` ([N] int, 1-based frame numbers) on `axes`
        ([A] of "" for RGB, "u"/"v" for flow): a list of N * A members, number-major
        ([n1 axis1, n1 axis2, n2 axis1, ...]), read with one `pread` each.

        Raises:
            EpicArError: the archive holds the other modality, a frame is not in the archive
                ("missing frame ARCHIVE:MEMBER"), the archive cannot be opened, or a member
                reads short ("ARCHIVE: truncated at member MEMBER": the archive changed
                since it was indexed).
        """
        numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
        if not axes or numbers.size == 0:
            return []
        places = [self.locate(axis, numbers) for axis in axes]
        offsets = np.stack([offset for offset, _ in places], axis=1).reshape(-1).tolist()
        sizes = np.stack([size for _, size in places], axis=1).reshape(-1).tolist()
        jpegs: list[bytes] = []
        try:
            fd = os.open(self.archive, os.O_RDONLY)
        except OSError as exc:  # gone or unreadable since it was indexed
            raise EpicArError(f"{self.archive}: cannot read ({os_reason(exc)})") from None
        try:
            for offset, size in zip(offsets, sizes, strict=True):
                jpeg = os.pread(fd, size, offset)
                if len(jpeg) != size:
                    k = len(jpegs)
                    member = member_name(axes[k % len(axes)], int(numbers[k // len(axes)]))
                    raise EpicArError(f"{self.archive}: truncated at member {member}")
                jpegs.append(jpeg)
        finally:
            os.close(fd)
        return jpegs
