"""Writing videos: [H, W, 3] uint8 RGB frames encoded as H.264 (yuv420p, as camera footage
is) or FFV1 (lossless RGB), written atomically. Encoding uses PyAV, whose wheels bundle
FFmpeg (with libx264)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path

# The muxer for each file name suffix (any case).
CONTAINER_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".mov": "mov"}
CODECS = ("libx264", "ffv1")


def pad_to_even(pixels: np.ndarray) -> np.ndarray:
    """[..., H, W, 3] frames padded with one black row (bottom) / column (right) where H /
    W is odd: H.264 in 4:2:0 (yuv420p) needs even sizes. Unchanged when both are even."""
    height, width = pixels.shape[-3:-1]
    if height % 2 == 0 and width % 2 == 0:
        return pixels
    pads = [(0, 0)] * (pixels.ndim - 3) + [(0, height % 2), (0, width % 2), (0, 0)]
    return np.pad(pixels, pads)


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
    """Encode [H, W, 3] uint8 RGB `frames` (all of one size) as a video at `fps`,
    atomically: nothing is left at `path` when encoding fails or `frames` raises.

    `codec`: "libx264" (H.264, yuv420p: even sizes only; `options` e.g. {"crf": "18"}) or
    "ffv1" (lossless, RGB kept exactly: bgr0; use a .mkv name). `gop_seconds`: keyframe
    interval, as camera footage has one about every second.

    Raises:
        EpicArError: an unknown codec or file name suffix, no frames, or frames that are
            not [H, W, 3] uint8 of one size.
    """
    path = Path(path)
    muxer = CONTAINER_FORMATS.get(path.suffix.lower())
    if muxer is None:
        suffixes = ", ".join(CONTAINER_FORMATS)
        raise EpicArError(f"{path}: unknown video file suffix; use one of {suffixes}")
    if codec not in CODECS:
        raise EpicArError(f"{path}: unknown codec {codec!r}; use one of {', '.join(CODECS)}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_write_path(path, force=force) as temporary:
        container = av.open(str(temporary), mode="w", format=muxer)
        try:
            stream = container.add_stream(codec, rate=rate)
            if not isinstance(stream, av.VideoStream):  # for the type checker
                raise EpicArError(f"{path}: {codec} is not a video codec")
            stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
            stream.codec_context.gop_size = max(1, round(fps * gop_seconds))
            if options:
                stream.options = dict(options)
            size: tuple[int, ...] = ()
            for pixels in frames:
                if not size:  # the size is fixed when the encoder opens
                    size = _frame_size(path, pixels)
                    stream.height, stream.width = size[:2]
                elif pixels.shape != size or pixels.dtype != np.uint8:
                    raise EpicArError(
                        f"{path}: frames of {pixels.shape} {pixels.dtype} among frames of "
                        f"{size} uint8"
                    )
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            if not size:
                raise EpicArError(f"{path}: no frames to write")
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
    return path


def _frame_size(path: Path, pixels: np.ndarray) -> tuple[int, ...]:
    """The shape of the first frame, checked.

    Raises:
        EpicArError: not [H, W, 3] uint8.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise EpicArError(
            f"{path}: frames must be [H, W, 3] uint8 RGB, not {pixels.shape} {pixels.dtype}"
        )
    return tuple(pixels.shape)
