"""Video files as frames: decoding frames by index, and whole videos in order (writing:
`write_video`, from `epic_ar.data.video_writer`).

Frames are numbered 0, 1, ... in presentation order. A video's frame table is read once by
demuxing (no decoding): the presentation time of every frame and which frames are
keyframes. Reading frames `[i, j, ...]` then seeks to the keyframe before each run of
wanted frames and decodes forward only as far as the last wanted frame of the run; frames
that are neither wanted nor referenced by others (B-frames, usually) are skipped by the
decoder rather than decoded. Decoding for random access is single-threaded: a data loader
gets its parallelism from its workers.

Per process, frame tables are kept for the last `TABLES_KEPT` videos read and open
decoders for the last `VIDEOS_KEPT` (opening a container and its decoder costs several
milliseconds, more than decoding a small frame). Both are kept per version of the file
(a video rewritten under the same name is read again), and a forked process (a DataLoader
worker) drops the open decoders it inherits and opens its own.

Frames can be resized to a height (keeping the aspect ratio, width rounded to an even
number, as FFmpeg's `scale=-2:H` does) inside the decoder by FFmpeg's swscale with its
bicubic filter (FFmpeg's default for `scale`), the way the released EPIC-KITCHENS frames
were made from the videos (1920x1080 → 456x256).

Decoding uses PyAV, whose wheels bundle FFmpeg.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from epic_ar.data.video_table import FrameTable, VideoInfo, open_video, read_frame_table
from epic_ar.data.video_writer import write_video
from epic_ar.errors import EpicArError

__all__ = [
    "RELEASED_FRAME_HEIGHT",
    "TABLES_KEPT",
    "VIDEOS_KEPT",
    "FrameTable",
    "VideoInfo",
    "frame_table",
    "iterate_frames",
    "iterate_wanted_frames",
    "probe_video",
    "read_frames_at",
    "resize_to_height",
    "resized_width",
    "write_video",
]

RELEASED_FRAME_HEIGHT = 256  # pixels: the released EPIC-KITCHENS frames' height
_INTERPOLATION = "BICUBIC"  # swscale's filter for resizing (FFmpeg's default for `scale`)
# A table costs ~9 bytes per frame (EPIC-KITCHENS-100: 20 M frames in 700 videos, 180 MB in
# all); re-reading one means demuxing the whole file, so keep more than a dataset has videos.
TABLES_KEPT = 1024
# An open decoder holds its reference frames (tens of MB at 1080p).
VIDEOS_KEPT = 4
# (inode, size, mtime in ns) of a file: a rewritten file is a new version.
FileVersion = tuple[int, int, int]


def resized_width(width: int, height: int, target_height: int) -> int:
    """The width of a `width` x `height` frame resized to `target_height` high, rounded to
    an even number as FFmpeg's `scale=-2:H` does (1920x1080 → 456x256): in integers, with
    halves rounded up (642x512 → 322x256)."""
    half_width = (target_height * width + height) // (2 * height)
    return 2 * half_width


def _file_version(path: Path) -> FileVersion:
    """(inode, size, mtime) of the video file `path`.

    Raises:
        EpicArError: there is no such file.
    """
    try:
        status = path.stat()
    except OSError:
        raise EpicArError(f"{path}: no such video file") from None
    if not stat.S_ISREG(status.st_mode):
        raise EpicArError(f"{path}: no such video file")
    return status.st_ino, status.st_size, status.st_mtime_ns


class _FrameTables:
    """The frame tables of the last `TABLES_KEPT` videos read, each for one version of its
    file. Call it with a path (see `frame_table`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: OrderedDict[Path, tuple[FileVersion, FrameTable]] = OrderedDict()

    def __call__(self, path: Path, index_dir: Path | None = None) -> FrameTable:
        """The frame table of `path`, once per version of the file (per process): from its
        index file, or demuxed and saved (`data.video_table`; `index_dir` forces the index
        folder).

        Raises:
            EpicArError: the file is missing, unreadable, holds no video or no frames.
        """
        return self.versioned(Path(path), index_dir)[1]

    def versioned(
        self, path: Path, index_dir: Path | None = None
    ) -> tuple[FileVersion, FrameTable]:
        """(the file's version, its frame table)."""
        version = _file_version(path)
        with self._lock:
            kept = self._tables.get(path)
            if kept is not None and kept[0] == version:
                self._tables.move_to_end(path)
                return kept
        table = read_frame_table(path, index_dir)
        with self._lock:
            self._tables[path] = (version, table)
            self._tables.move_to_end(path)
            while len(self._tables) > TABLES_KEPT:
                self._tables.popitem(last=False)
        return version, table

    def cache_clear(self) -> None:
        """Forget every table, and close the decoders kept open."""
        with self._lock:
            self._tables.clear()
        _open_videos.close_all()

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork


frame_table = _FrameTables()


class _OpenVideos:
    """Containers with a single-threaded decoder, kept open for the last `VIDEOS_KEPT`
    videos read. A container is taken out while it is in use, so that threads never share
    one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[Path, tuple[FileVersion, Any]] = OrderedDict()

    @contextlib.contextmanager
    def borrowed(self, path: Path, version: FileVersion) -> Iterator[Any]:
        """An open container of version `version` of `path`, kept open afterwards unless
        the block raises (its decoder's state is then unknown)."""
        with self._lock:
            kept = self._open.pop(path, None)
        if kept is not None and kept[0] != version:
            kept[1].close()
            kept = None
        container = kept[1] if kept is not None else self._opened(path)
        try:
            yield container
        except BaseException:
            container.close()
            raise
        with self._lock:
            replaced = self._open.pop(path, None)  # another thread's, opened meanwhile
            self._open[path] = (version, container)
            evicted = [replaced] if replaced is not None else []
            while len(self._open) > VIDEOS_KEPT:
                evicted.append(self._open.popitem(last=False)[1])
        for _, old in evicted:
            old.close()

    @staticmethod
    def _opened(path: Path) -> Any:
        container = open_video(path)
        container.streams.video[0].codec_context.thread_count = 1
        return container

    def close_all(self) -> None:
        with self._lock:
            kept, self._open = list(self._open.values()), OrderedDict()
        for _, container in kept:
            container.close()

    def after_fork(self) -> None:
        """In a forked child: forget the parent's containers (they share its file offsets
        and decoder state) without using them."""
        self._lock = threading.Lock()
        self._open = OrderedDict()


_open_videos = _OpenVideos()


def _after_fork_in_child() -> None:
    frame_table.after_fork()
    _open_videos.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def probe_video(path: Path, index_dir: Path | None = None) -> VideoInfo:
    """Frame rate, frame count and frame size of `path` (see `frame_table`)."""
    return frame_table(Path(path), index_dir).info


def _to_rgb(frame: Any, height: int | None) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a decoded frame as it is shown: turned by its display
    rotation (phone videos), as FFmpeg's players turn it, then `height` high when given."""
    quarter_turns = round(getattr(frame, "rotation", 0) / 90) % 4  # counterclockwise
    shown_width, shown_height = frame.width, frame.height
    if quarter_turns % 2:
        shown_width, shown_height = shown_height, shown_width
    if height is None or height == shown_height:
        pixels = frame.to_ndarray(format="rgb24")
    else:
        width = resized_width(shown_width, shown_height, height)
        stored = (height, width) if quarter_turns % 2 else (width, height)
        pixels = frame.reformat(
            width=stored[0], height=stored[1], format="rgb24", interpolation=_INTERPOLATION
        ).to_ndarray()
    if quarter_turns:
        return np.ascontiguousarray(np.rot90(pixels, quarter_turns))
    return np.asarray(pixels)


def resize_to_height(pixels: np.ndarray, height: int | None) -> np.ndarray:
    """[H, W, 3] uint8 RGB resized to `height` high (width: `resized_width`) by swscale's
    bicubic filter, as decoded video frames are; unchanged when it already is that high
    (or `height` is None)."""
    if height is None or pixels.shape[0] == height:
        return pixels
    width = resized_width(pixels.shape[1], pixels.shape[0], height)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
    resized = frame.reformat(
        width=width, height=height, format="rgb24", interpolation=_INTERPOLATION
    )
    return np.asarray(resized.to_ndarray())


def read_frames_at(
    path: Path, indices: Sequence[int] | np.ndarray, *, height: int | None = 256
) -> np.ndarray:
    """Frames `indices` (0-based, presentation order; repeats and any order allowed) of
    `path`: [F, H, W, 3] uint8 RGB, resized to `height` high (None: as stored).

    Raises:
        EpicArError: the video cannot be read, or an index is outside [0, frame count).
    """
    path = Path(path)
    version, table = frame_table.versioned(path)
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    count = table.info.frame_count
    if wanted.size == 0:
        raise EpicArError(f"{path}: no frames asked for")
    if wanted.min() < 0 or wanted.max() >= count:
        bad = int(wanted[(wanted < 0) | (wanted >= count)][0])
        raise EpicArError(f"{path}: frame {bad} asked for, but the video has {count} frames")
    decoded: dict[int, np.ndarray] = {}
    try:
        with _open_videos.borrowed(path, version) as container:
            unique = np.unique(wanted)
            for run in _decode_runs(table, unique):
                _decode_run(container, table, run, unique, decoded, height, skip=True)
            # A decoder that skips a frame it should not have (none known) only costs time.
            missed = np.setdiff1d(unique, np.fromiter(decoded, np.int64, len(decoded)))
            for run in _decode_runs(table, missed):
                _decode_run(container, table, run, missed, decoded, height, skip=False)
    except av.FFmpegError as exc:
        raise EpicArError(f"{path}: decoding failed ({exc})") from None
    missing = [i for i in wanted.tolist() if i not in decoded]
    if missing:
        raise EpicArError(f"{path}: frame {missing[0]} could not be decoded")
    return np.stack([decoded[i] for i in wanted.tolist()])


def _decode_runs(table: FrameTable, wanted: np.ndarray) -> list[tuple[int, int]]:
    """(keyframe, last frame) runs to decode for the sorted frames `wanted`: wanted frames
    that share the keyframe before them, or that lie before the next wanted frame's
    keyframe, decode in one forward pass."""
    key_positions = np.flatnonzero(table.keyframe)
    if key_positions.size == 0 or key_positions[0] != 0:
        key_positions = np.concatenate([[0], key_positions])
    keys = key_positions[np.searchsorted(key_positions, wanted, side="right") - 1]
    runs: list[tuple[int, int]] = []
    for key, frame in zip(keys.tolist(), wanted.tolist(), strict=True):
        if runs and key <= runs[-1][1]:  # reachable by decoding on from the previous run
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((key, frame))
    return runs


def _frame_index(table: FrameTable, pts: int | None) -> int:
    """The index of the frame presented at `pts`, or -1 for none."""
    if pts is None:
        return -1
    index = int(np.searchsorted(table.pts, pts))
    return index if index < len(table.pts) and table.pts[index] == pts else -1


def _packet_needed(table: FrameTable, pts: int | None, keep: set[int]) -> bool:
    """Whether the packet presented at `pts` must be decoded: its frame is in `keep`, or it
    has no time (the flush packet at the end of the file)."""
    return pts is None or _frame_index(table, pts) in keep


def _decode_run(
    container: Any,
    table: FrameTable,
    run: tuple[int, int],
    wanted: np.ndarray,
    decoded: dict[int, np.ndarray],
    height: int | None,
    *,
    skip: bool,
) -> None:
    """Seek to frame `run[0]` (a keyframe) and decode forward through frame `run[1]`,
    keeping the `wanted` frames (sorted indices) of the run in `decoded` (by index).

    `skip`: the decoder skips the packets of frames that are not wanted and that no other
    frame refers to (FFmpeg's `skip_frame=NONREF`), decided packet by packet from the
    packet's presentation time."""
    start, stop = run
    keep = set(wanted[(wanted >= start) & (wanted <= stop)].tolist())
    stream = container.streams.video[0]
    codec = stream.codec_context
    container.seek(int(table.pts[start]), stream=stream, backward=True, any_frame=False)
    last_pts = int(table.pts[stop])
    try:
        for packet in container.demux(stream):
            if skip:
                needed = _packet_needed(table, packet.pts, keep)
                codec.skip_frame = "DEFAULT" if needed else "NONREF"
            for frame in codec.decode(packet):
                index = _frame_index(table, frame.pts)
                # Only frames of this run: after a seek, an open GOP's leading frames
                # come out broken, and may be wanted from an earlier run.
                if index in keep:
                    decoded[index] = _to_rgb(frame, height)
                if frame.pts is not None and frame.pts >= last_pts:
                    return
    finally:
        codec.skip_frame = "DEFAULT"


def iterate_frames(path: Path, *, height: int | None = 256) -> Iterator[np.ndarray]:
    """Every frame of `path` in presentation order: [H, W, 3] uint8 RGB, resized to `height`
    high (None: as stored).

    Raises:
        EpicArError: the video cannot be read.
    """
    for _, frame in iterate_wanted_frames(path, None, height=height):
        yield frame


def iterate_wanted_frames(
    path: Path, wanted: Collection[int] | None, *, height: int | None = 256
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, [H, W, 3] uint8 RGB) of the frames of `path` whose 0-based index is in
    `wanted` (None: every frame), in presentation order, decoding the video once from the
    start and stopping after the last wanted frame. Frames not wanted are decoded (later
    frames refer to them) but not converted to RGB, which costs more than decoding.

    Raises:
        EpicArError: the video cannot be read.
    """
    path = Path(path)
    last = max(wanted, default=-1) if wanted is not None else None
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: decode order is kept
        for index, frame in enumerate(container.decode(stream)):
            if last is not None and index > last:
                return
            if wanted is None or index in wanted:
                yield index, _to_rgb(frame, height)
    except av.FFmpegError as exc:
        raise EpicArError(f"{path}: decoding failed ({exc})") from None
    finally:
        container.close()
