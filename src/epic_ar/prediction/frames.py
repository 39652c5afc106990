"""What `predict` reads: a video file (anything FFmpeg decodes), or a folder of JPEG/PNG
frames at a frame rate given by the user; frames one by one, in order, 256 high.

Frames whose height is not 256 are resized to 256 high keeping the aspect ratio, the width
rounded to an even number (`data.video.resized_width`: 1920x1080 -> 456x256), with FFmpeg's
swscale and its bicubic filter: inside the decoder for videos (`data.video`), and by the
same swscale call on the decoded pixels for a folder of frames. The released EPIC-KITCHENS
frames were made that way from the videos.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Collection, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from epic_ar.data.decode import decode_frames
from epic_ar.data.video import (
    RELEASED_FRAME_HEIGHT,
    iterate_wanted_frames,
    probe_video,
    resize_to_height,
)
from epic_ar.data.video_table import open_video
from epic_ar.errors import EpicArError, Parameter
from epic_ar.fileio.index_cache import default_cache_dir

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_DEMUXERS = ("image2", "mjpeg")  # FFmpeg's readers of pictures (and "*_pipe")
FPS = Parameter("fps", "fps=FPS", metavar="FPS")


@dataclass(frozen=True)
class FrameSource:
    """A video file (`files` None) or a folder of frames (`files`: its frame files in
    order): `frame_count` frames at `fps`."""

    path: Path
    fps: float
    frame_count: int
    files: tuple[Path, ...] | None = None

    def frames(
        self,
        *,
        height: int | None = RELEASED_FRAME_HEIGHT,
        fast_decode: bool = False,
        wanted: Collection[int] | None = None,
    ) -> Generator[tuple[int, np.ndarray], None, None]:
        """(index, [H, W, 3] uint8 RGB `height` high (None: as stored)) of every frame in
        order, or of the frames whose 0-based index is in `wanted` (the others are not
        converted, or for a folder not read). `fast_decode`: libjpeg-turbo's fast mode for
        JPEG frames (as a checkpoint's `data.fast_decode` asks).

        Raises:
            EpicArError: a frame cannot be read, or differs in size from the first.
        """
        if self.files is None:
            yield from iterate_wanted_frames(self.path, wanted, height=height)
            return
        first_size: tuple[int, int] | None = None
        for index, file in enumerate(self.files):
            if wanted is not None and index not in wanted:
                continue
            pixels = read_frame_file(file, fast_decode=fast_decode)
            size = (pixels.shape[1], pixels.shape[0])
            if first_size is None:
                first_size = size
            elif size != first_size:
                raise EpicArError(
                    f"{file}: {size[0]}x{size[1]} pixels, but the folder's first frame is "
                    f"{first_size[0]}x{first_size[1]}"
                )
            yield index, resize_to_height(pixels, height)


def natural_key(name: str) -> list[str | int]:
    """Sort key of a file name with its digit runs compared as numbers (frame_2 before
    frame_10); digits and text alternate at fixed places, so keys always compare."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def open_frame_source(path: Path, *, fps: float | None = None) -> FrameSource:
    """The frames of `path`: a video file (its stream's average frame rate), or a folder
    of JPEG/PNG frames sorted by name (digit runs as numbers) at `fps` frames per second.

    Raises:
        EpicArError: a missing or unreadable video; `fps` given for a video; a folder
            without `fps`, or holding no frames.
    """
    path = Path(path)
    if not path.is_dir():
        if fps is not None:
            raise EpicArError(
                f"{path}: a video file plays at its own frame rate; ",
                FPS,
                " is for a folder of frames",
            )
        check_is_video(path)
        # The frame index goes to the cache folder, never beside the user's video.
        info = probe_video(path, default_cache_dir("video-index"))
        return FrameSource(path, info.fps, info.frame_count)
    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    if not files:
        raise EpicArError(f"{path}: a folder holding no JPEG or PNG frames")
    if fps is None:
        raise EpicArError(f"{path}: a folder of frames; give its frame rate with ", FPS)
    if not (math.isfinite(fps) and fps > 0):
        raise EpicArError(FPS, f": {fps!r} is not a frame rate > 0")
    return FrameSource(path, float(fps), len(files), tuple(files))


def check_is_video(path: Path) -> None:
    """Refuse what FFmpeg reads as pictures rather than a video: a single image, or JPEGs
    one after the other (a tar archive of frames reads so), whose frame rate FFmpeg makes
    up (25 fps).

    Raises:
        EpicArError: `path` is missing, unreadable, or not a video.
    """
    container = open_video(path)
    try:
        demuxer = container.format.name
    finally:
        container.close()
    if demuxer in IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
        raise EpicArError(
            f"{path}: holds pictures, not a video (FFmpeg reads it as {demuxer}); for "
            "frames, give a folder of JPEG/PNG files and their frame rate with ",
            FPS,
        )


def read_frame_file(file: Path, *, fast_decode: bool = False) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a JPEG (epic-ar's decoder, as frames from archives are
    decoded) or PNG (PIL) file; grey frames are made RGB.

    Raises:
        EpicArError: naming the file, when it cannot be read or decoded.
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise EpicArError(f"{file}: cannot read ({exc.strerror or exc})") from None
    try:
        if file.suffix.lower() == ".png":
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB"))
        else:
            pixels = decode_frames([data], fast=fast_decode)[0]
    except (ValueError, OSError, UnidentifiedImageError) as exc:
        raise EpicArError(f"{file}: not a readable frame ({exc})") from None
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)
