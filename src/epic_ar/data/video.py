"""Video files as frames: decoding frames by index, whole videos in order, and writing videos.

Frames are numbered 0, 1, ... in presentation order. A video's frame table is read once by
demuxing (no decoding): the presentation time of every frame and which frames are
keyframes. Reading frames `[i, j, ...]` then seeks to the keyframe before each run of
wanted frames and decodes forward only as far as the last wanted frame of the run.

Frames can be resized to a height (keeping the aspect ratio, width rounded to an even
number, as FFmpeg's `scale=-2:H` does) inside the decoder by FFmpeg's swscale with its
bicubic filter (FFmpeg's default for `scale`), the way the released EPIC-KITCHENS frames
were made from the videos (1920x1080 → 456x256).

Decoding uses PyAV, whose wheels bundle FFmpeg.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path

_INTERPOLATION = "BICUBIC"  # swscale's filter for resizing (FFmpeg's default for `scale`)


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


def resized_width(width: int, height: int, target_height: int) -> int:
    """The width of a `width` x `height` frame resized to `target_height` high, rounded to
    an even number as FFmpeg's `scale=-2:H` does (1920x1080 → 456x256)."""
    return 2 * round(target_height * width / (2 * height))


def _open(path: Path) -> Any:
    """An open PyAV container of `path` with a video stream.

    Raises:
        EpicArError: missing, unreadable, or without video.
    """
    if not path.is_file():
        raise EpicArError(f"{path}: no such video file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise EpicArError(f"{path}: not a readable video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise EpicArError(f"{path}: holds no video stream")
    return container


@functools.lru_cache(maxsize=64)
def frame_table(path: Path) -> FrameTable:
    """The frame table of `path`, read by demuxing its video stream (cached per process).

    Raises:
        EpicArError: the file is missing, unreadable, holds no video or no frames.
    """
    container = _open(path)
    try:
        stream = container.streams.video[0]
        pts, keys = [], []
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size > 0:
                pts.append(packet.pts)
                keys.append(packet.is_keyframe)
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
        time_base = stream.time_base
    except av.FFmpegError as exc:
        raise EpicArError(f"{path}: not a readable video ({exc})") from None
    finally:
        container.close()
    if not pts:
        raise EpicArError(f"{path}: holds no video frames")
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    info = VideoInfo(path, float(rate) if rate else 0.0, len(pts), width, height)
    if info.fps <= 0:
        raise EpicArError(f"{path}: the video stream states no frame rate")
    return FrameTable(
        info,
        np.asarray(pts, dtype=np.int64)[order],
        np.asarray(keys, dtype=bool)[order],
        time_base,
    )


def probe_video(path: Path) -> VideoInfo:
    """Frame rate, frame count and frame size of `path` (see `frame_table`)."""
    return frame_table(Path(path)).info


def _to_rgb(frame: Any, height: int | None) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a decoded frame, resized to `height` when given."""
    if height is None or height == frame.height:
        return np.asarray(frame.to_ndarray(format="rgb24"))
    width = resized_width(frame.width, frame.height, height)
    return np.asarray(
        frame.reformat(width=width, height=height, format="rgb24", interpolation=_INTERPOLATION)
        .to_ndarray()
    )


def read_frames_at(
    path: Path, indices: Sequence[int] | np.ndarray, *, height: int | None = 256
) -> np.ndarray:
    """Frames `indices` (0-based, presentation order; repeats and any order allowed) of
    `path`: [F, H, W, 3] uint8 RGB, resized to `height` high (None: as stored).

    Raises:
        EpicArError: the video cannot be read, or an index is outside [0, frame count).
    """
    path = Path(path)
    table = frame_table(path)
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    count = table.info.frame_count
    if wanted.size == 0:
        raise EpicArError(f"{path}: no frames asked for")
    if wanted.min() < 0 or wanted.max() >= count:
        bad = int(wanted[(wanted < 0) | (wanted >= count)][0])
        raise EpicArError(f"{path}: frame {bad} asked for, but the video has {count} frames")
    decoded: dict[int, np.ndarray] = {}
    container = _open(path)
    try:
        stream = container.streams.video[0]
        for start, stop in _decode_runs(table, np.unique(wanted)):
            _decode_run(container, stream, table, start, stop, set(wanted.tolist()), decoded, height)
    except av.FFmpegError as exc:
        raise EpicArError(f"{path}: decoding failed ({exc})") from None
    finally:
        container.close()
    missing = [i for i in wanted.tolist() if i not in decoded]
    if missing:
        raise EpicArError(f"{path}: frame {missing[0]} could not be decoded")
    return np.stack([decoded[i] for i in wanted.tolist()])


def _decode_runs(table: FrameTable, wanted: np.ndarray) -> list[tuple[int, int]]:
    """(keyframe, last frame) runs to decode: wanted frames that share the keyframe before
    them, or that lie before the next wanted frame's keyframe, decode in one forward pass."""
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


def _decode_run(
    container: Any,
    stream: Any,
    table: FrameTable,
    start: int,
    stop: int,
    wanted: set[int],
    decoded: dict[int, np.ndarray],
    height: int | None,
) -> None:
    """Seek to frame `start` (a keyframe) and decode forward through frame `stop`, keeping
    the wanted frames in `decoded` (by index)."""
    container.seek(int(table.pts[start]), stream=stream, backward=True, any_frame=False)
    last_pts = int(table.pts[stop])
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        index = int(np.searchsorted(table.pts, frame.pts))
        if index < len(table.pts) and table.pts[index] == frame.pts and index in wanted:
            decoded[index] = _to_rgb(frame, height)
        if frame.pts >= last_pts:
            return


def iterate_frames(path: Path, *, height: int | None = 256) -> Iterator[np.ndarray]:
    """Every frame of `path` in presentation order: [H, W, 3] uint8 RGB, resized to `height`
    high (None: as stored).

    Raises:
        EpicArError: the video cannot be read.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: decode order is kept
        for frame in container.decode(stream):
            yield _to_rgb(frame, height)
    except av.FFmpegError as exc:
        raise EpicArError(f"{path}: decoding failed ({exc})") from None
    finally:
        container.close()


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    gop_seconds: float = 1.0,
    options: dict[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Encode [H, W, 3] uint8 RGB `frames` as a video at `fps`, atomically.

    `codec`: "libx264" (H.264, yuv420p; `options` e.g. {"crf": "18"}) or "ffv1" (lossless,
    RGB kept exactly: bgr0). `gop_seconds`: keyframe interval, as camera footage has one
    about every second.
    """
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_write_path(Path(path), force=force) as temporary:
        container = av.open(str(temporary), mode="w", format=_container_format(Path(path)))
        try:
            stream = container.add_stream(codec, rate=rate)
            stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
            stream.codec_context.gop_size = max(1, round(fps * gop_seconds))
            if options:
                stream.options = dict(options)
            for position, pixels in enumerate(frames):
                if position == 0:  # the size is fixed when the encoder opens
                    stream.height, stream.width = pixels.shape[:2]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
    return Path(path)


def _container_format(path: Path) -> str | None:
    """FFmpeg's muxer for a file name (guessed from the suffix, any case)."""
    return {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".mov": "mov"}.get(
        path.suffix.lower()
    )
