"""A video's frame table: the presentation time of every frame and which are keyframes,
read by demuxing the whole file (no decoding) once, then kept on disk.

Demuxing reads every byte of the file (seconds for an EPIC-KITCHENS video), so the table is
saved as `VIDEO.epic_ar_frames.npy` beside the video, or in `~/.cache/epic-ar/video-index`
when that folder is read-only (`fileio.index_cache`), and read from there by every later
process and DataLoader worker. A table of a file that changed since is built again.

On disk: int64 [5 + N, 2]: the video's (size, mtime in ns); the stream's time base and
average frame rate as (numerator, denominator); the frame (width, height); (format
version, 0); then (pts, keyframe) of each frame shown, in presentation order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.fileio.index_cache import file_stamp, index_locations, load_index, save_index

LOG = logging.getLogger(__name__)

INDEX_SUFFIX = ".epic_ar_frames.npy"
_HEADER_ROWS = 5
# Row 4 of an index: its format; an index written by an older rule is built again.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: `frame_count` frames at `fps` (the stream's average frame rate),
    each `width` x `height` pixels as stored."""

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int


@dataclass(frozen=True)
class FrameTable:
    """A video's frames in presentation order: `pts` [N] int64 (in `time_base` units) and
    `keyframe` [N] bool."""

    info: VideoInfo
    pts: np.ndarray
    keyframe: np.ndarray
    time_base: Fraction


def open_video(path: Path) -> Any:
    """An open PyAV container of `path` with a video stream.

    Raises:
        EpicArError: missing, unreadable, or without video.
    """
    if not path.is_file():
        raise EpicArError(f"{path}: no such video file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EpicArError(f"{path}: not a readable video ({reason})") from None
    if not container.streams.video:
        container.close()
        raise EpicArError(f"{path}: holds no video stream")
    return container


def demux_frame_table(path: Path) -> tuple[FrameTable, Fraction]:
    """(frame table, average frame rate) of `path`, read by demuxing its video stream."""
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        pts, keys, skipped = [], [], 0
        for packet in container.demux(stream):
            # Discarded packets (an MP4 edit list's lead-in) are decoded but never shown.
            if packet.pts is not None and packet.size > 0 and not packet.is_discard:
                pts.append(packet.pts)
                keys.append(packet.is_keyframe)
            else:
                skipped += 1
        listed = stream.frames  # what the container's index lists (0: not stated)
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
        time_base = stream.time_base
    except av.FFmpegError as exc:
        raise EpicArError(f"{path}: not a readable video ({exc})") from None
    finally:
        container.close()
    if not pts:
        raise EpicArError(f"{path}: holds no video frames")
    if listed > len(pts) + skipped:  # e.g. a download cut short: its index lists the rest
        LOG.warning(
            "%s: the file lists %d frames but only %d can be read (cut short?); only those "
            "are used",
            path,
            listed,
            len(pts),
        )
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    if not rate or rate <= 0:
        raise EpicArError(f"{path}: the video stream states no frame rate")
    info = VideoInfo(path, float(rate), len(pts), width, height)
    pts_sorted = np.asarray(pts, dtype=np.int64)[order]
    table = FrameTable(info, pts_sorted, np.asarray(keys, dtype=bool)[order], time_base)
    return table, Fraction(rate)


def _as_array(table: FrameTable, stamp: tuple[int, int], rate: Fraction) -> np.ndarray:
    header = [
        stamp,
        (table.time_base.numerator, table.time_base.denominator),
        (rate.numerator, rate.denominator),
        (table.info.width, table.info.height),
        (FORMAT_VERSION, 0),
    ]
    frames = np.stack([table.pts, table.keyframe.astype(np.int64)], axis=1)
    return np.concatenate([np.asarray(header, dtype=np.int64), frames]).astype(np.int64)


def _from_array(path: Path, array: np.ndarray) -> FrameTable:
    time_base = Fraction(int(array[1, 0]), int(array[1, 1]))
    fps = float(Fraction(int(array[2, 0]), int(array[2, 1])))
    width, height = int(array[3, 0]), int(array[3, 1])
    frames = np.asarray(array[_HEADER_ROWS:])
    info = VideoInfo(path, fps, len(frames), width, height)
    return FrameTable(info, frames[:, 0].copy(), frames[:, 1].astype(bool), time_base)


def _table_shape_ok(array: np.ndarray) -> bool:
    return (
        array.ndim == 2
        and array.shape[0] > _HEADER_ROWS
        and array.shape[1] == 2
        and bool((array[1:3] > 0).all())
        and int(array[4, 0]) == FORMAT_VERSION
    )


def read_frame_table(path: Path, cache_dir: Path | None = None) -> FrameTable:
    """The frame table of `path`: from its index file when one is current, else demuxed
    and saved (see the module docstring; `cache_dir` forces the index folder).

    Raises:
        EpicArError: the file is missing, unreadable, holds no video or no frames.
    """
    if not path.is_file():
        raise EpicArError(f"{path}: no such video file")
    locations = index_locations(path, INDEX_SUFFIX, "video-index", cache_dir)
    cached = load_index(path, locations, _table_shape_ok)
    if cached is not None:
        return _from_array(path, cached)
    stamp = file_stamp(path)
    table, rate = demux_frame_table(path)
    if file_stamp(path) != stamp:  # written to while being read: do not keep the table
        return table
    save_index(path, _as_array(table, stamp, rate), locations, _table_shape_ok)
    return table
