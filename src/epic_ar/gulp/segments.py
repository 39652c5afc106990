"""From an annotation row to the JPEG frames and metadata stored for it."""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image

from epic_ar.errors import EpicArError
from epic_ar.gulp.jpeg import decode_jpeg, encode_jpeg
from epic_ar.gulp.sources import (
    FrameSource,
    MissingFrameError,
    frame_name,
    member_name,
    open_video,
)
from epic_ar.gulp.writer import GulpRecord

JPEG_QUALITY = 90  # as gulpio2 writes resized frames
_EOI_SEARCH = 64  # bytes at the end of a JPEG in which its end-of-image marker must appear


class BadSegmentError(EpicArError):
    """A segment cannot be stored (bad frame range, missing or broken frame, unknown video)."""


def segment_frame_names(start: int, stop: int, modality: str) -> list[str]:
    """Member names to store for a segment, in stored order.

    RGB: frames start..stop inclusive. Flow: pairs for frames start..stop-1 (stop
    exclusive: flow lies between RGB frames), interleaved u1, v1, u2, v2, ...
    """
    if modality == "rgb":
        return [frame_name(n) for n in range(start, stop + 1)]
    return [member_name(axis, n) for n in range(start, stop) for axis in ("u", "v")]


def _check_last_frame(source: FrameSource, stop: int, modality: str) -> None:
    """Read the segment's last frame first: a stop_frame past the video's end then fails
    before a list of names as long as the segment is made."""
    try:
        source.read(frame_name(stop) if modality == "rgb" else member_name("v", stop - 1))
    except MissingFrameError as exc:
        if modality != "flow":
            raise
        raise MissingFrameError(
            f"stop_frame {stop}: {exc} (do the annotations hold flow frame numbers? "
            "epic-ar convert-flow-idxs converts RGB ones)"
        ) from None


def jpeg_shape(jpeg: bytes, where: str) -> tuple[int, int, int]:
    """(height, width, channels) from the JPEG header, after checking the file is whole.

    Only the markers are checked (start of image, a parsable header, end of image near the
    end); `check_jpeg_decodes` checks the compressed image data.
    """
    if not jpeg.startswith(b"\xff\xd8") or b"\xff\xd9" not in jpeg[-_EOI_SEARCH:]:
        raise EpicArError(f"{where}: not a complete JPEG file ({len(jpeg)} bytes)")
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(jpeg)
    except ValueError as exc:
        raise EpicArError(f"{where}: unreadable JPEG ({exc})") from exc
    return height, width, 1 if colorspace == "Gray" else 3


def check_jpeg_decodes(jpeg: bytes, where: str) -> None:
    """Raise an EpicArError naming `where` unless the JPEG decodes without any error or
    warning (as strictly as the training reader decodes, and `gulp-check`).

    A corrupt body leaves the markers intact and only shows when the entropy-coded data is
    decoded. The decode is at 1/8 scale, in greyscale: that skips most of the inverse DCT,
    upsampling and colour conversion, though not the entropy decoding, which finds the
    corruption (and costs most of the time that is left).
    """
    try:
        simplejpeg.decode_jpeg(jpeg, colorspace="GRAY", min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        raise EpicArError(f"{where}: corrupt JPEG data ({exc})") from exc


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the shorter side `short_side`, computed as gulpio2 does."""
    if height < width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def resize_jpeg(jpeg: bytes, size: tuple[int, int], where: str) -> bytes:
    """Decode, resize to (height, width) with antialiased bilinear filtering, re-encode."""
    try:
        pixels = decode_jpeg(jpeg)
    except ValueError as exc:
        raise EpicArError(f"{where}: unreadable JPEG ({exc})") from exc
    resized = Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return encode_jpeg(np.asarray(resized), JPEG_QUALITY)


class VideoCache:
    """Keeps the few most recently used video sources open (segments come video by video)."""

    def __init__(self, frames_root: Path, modality: str, size: int = 2):
        self.frames_root, self.modality, self.size = frames_root, modality, size
        self._open: OrderedDict[str, FrameSource] = OrderedDict()

    def get(self, participant: str, video: str) -> FrameSource:
        source = self._open.pop(video, None)
        if source is None:
            source = open_video(self.frames_root, participant, video, self.modality)
        self._open[video] = source
        while len(self._open) > self.size:
            _, evicted = self._open.popitem(last=False)
            evicted.close()
        return source

    def close(self) -> None:
        for source in self._open.values():
            source.close()
        self._open.clear()


def _plain(value: Any) -> Any:
    # numpy scalars and NaN become JSON-friendly Python values
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def read_segment(
    row: dict[str, Any],
    videos: VideoCache,
    *,
    modality: str,
    frame_size: int,
    check_decodes: bool = True,
) -> GulpRecord:
    """The frames and metadata to store for one annotation row (keys: the annotation columns
    plus `narration_id`). Every frame is checked to decode (`check_jpeg_decodes`) unless
    `check_decodes` is False; resized frames are decoded anyway.

    Raises:
        BadSegmentError: naming the segment, its video and the offending file.
    """
    segment_id, video = str(row["narration_id"]), str(row["video_id"])
    context = f"segment {segment_id} (video {video})"
    start, stop = int(row["start_frame"]), int(row["stop_frame"])
    if stop < start or (modality == "flow" and stop == start):
        problem = f"stop_frame {stop} < start_frame {start}" if stop < start else "no flow frames"
        raise BadSegmentError(f"{context}: {problem}")
    try:
        source = videos.get(str(row["participant_id"]), video)
        _check_last_frame(source, stop, modality)
        names = segment_frame_names(start, stop, modality)
        jpegs = [source.read(name) for name in names]
        shapes = [jpeg_shape(j, source.where(n)) for n, j in zip(names, jpegs, strict=True)]
        height, width, channels = shapes[0]
        if frame_size > 0 and min(height, width) != frame_size:
            height, width = resized_size(height, width, frame_size)
            jpegs = [  # decoding to resize checks the frames
                resize_jpeg(j, (height, width), source.where(n))
                for n, j in zip(names, jpegs, strict=True)
            ]
        elif check_decodes:
            for name, jpeg in zip(names, jpegs, strict=True):
                check_jpeg_decodes(jpeg, source.where(name))
    except EpicArError as exc:
        raise BadSegmentError(f"{context}: {exc}") from exc
    meta = {key: _plain(value) for key, value in row.items()}
    meta["num_frames"] = len(jpegs) // (2 if modality == "flow" else 1)
    meta["frame_size"] = [height, width] if channels == 1 else [height, width, channels]
    return GulpRecord(segment_id, meta, jpegs)
