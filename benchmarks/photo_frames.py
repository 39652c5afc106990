"""Frames cut from real photographs, for benchmarks: a camera pan over a still photo.

The photographs are scikit-image's bundled samples (`skimage.data`, no download), chosen
for their licences: astronaut and rocket are public domain (NASA, SpaceX), chelsea and
coffee CC0 (see each function's docstring in skimage.data). Install them with the `bench`
extra: `pip install -e '.[bench]'`.

Each segment pans a 456x256 window over one photograph in a straight line, from one random
position to another (integer offsets), so consecutive frames differ the way a slow camera
pan makes them differ. Photographs too small for the window plus a margin are enlarged
(Lanczos) first. Frames are JPEG with 4:2:0 chroma, as EPIC-KITCHENS' frames are, at the
libjpeg quality whose files are the size of ffmpeg's `-q:v 4` MJPEG (`PHOTO_QUALITY`).

Run as a script, it prints that comparison: the mean size of these frames encoded by
ffmpeg's MJPEG encoder (through PyAV, the `video`/`test` extra) at `-q:v` 3, 4 and 5, and by
libjpeg-turbo at several qualities.

    .venv/bin/python benchmarks/photo_frames.py
"""

from __future__ import annotations

import importlib
from fractions import Fraction

import numpy as np
import simplejpeg
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
# EPIC-KITCHENS' frames were extracted with ffmpeg at `-q:v 4` (`-vf scale=-2:256`); on
# these photographs that gives files of about the size of libjpeg quality 75 (run this file).
PHOTO_QUALITY = 75
# Room to pan: the enlarged photograph is at least this much larger than the window.
MARGIN = 1.15


def load_photo(name: str) -> np.ndarray:
    """One of `PHOTOS` as [H, W, 3] uint8 RGB, from the files scikit-image ships."""
    try:
        # By name, so that type checking needs no scikit-image (an optional extra).
        data = importlib.import_module("skimage.data")
    except ImportError as error:
        raise SystemExit(
            "the photo run needs scikit-image: pip install -e '.[bench]' "
            "(or leave the photos out: --runs rgb flow)"
        ) from error
    photo: np.ndarray = getattr(data, name)()
    return photo


def fit_for_pan(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """`photo` enlarged (never shrunk) to at least MARGIN x the window in both sides."""
    scale = max(1.0, MARGIN * width / photo.shape[1], MARGIN * height / photo.shape[0])
    if scale == 1.0:
        return photo
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))


def pan_offsets(
    rng: np.random.Generator, frames: int, room_x: int, room_y: int
) -> list[tuple[int, int]]:
    """(x, y) window offsets of `frames` frames along a straight line between two random
    points of [0, room_x] x [0, room_y]."""
    start = rng.uniform((0, 0), (room_x, room_y))
    end = rng.uniform((0, 0), (room_x, room_y))
    steps = np.linspace(0.0, 1.0, frames)[:, None]
    points = np.rint(start + steps * (end - start)).astype(int)
    return [(int(x), int(y)) for x, y in points]


def panned_segments(
    segments: int, frames: int, *, width: int, height: int, quality: int = PHOTO_QUALITY
) -> list[list[bytes]]:
    """`segments` lists of `frames` JPEG frames ([height, width] RGB, 4:2:0), segment s
    panning over photograph `PHOTOS[s % len(PHOTOS)]`. Seeded: the same bytes every run."""
    rng = np.random.default_rng(0)
    photos = [fit_for_pan(load_photo(name), width, height) for name in PHOTOS]
    result = []
    for s in range(segments):
        photo = photos[s % len(photos)]
        room_x, room_y = photo.shape[1] - width, photo.shape[0] - height
        jpegs = []
        for x, y in pan_offsets(rng, frames, room_x, room_y):
            window = np.ascontiguousarray(photo[y : y + height, x : x + width])
            jpegs.append(
                bytes(
                    simplejpeg.encode_jpeg(
                        window, quality=quality, colorspace="RGB", colorsubsampling="420"
                    )
                )
            )
        result.append(jpegs)
    return result


def ffmpeg_mjpeg_size(frame: np.ndarray, qscale: int) -> int:
    """Bytes of `frame` ([H, W, 3] uint8) encoded by ffmpeg's MJPEG encoder as
    `ffmpeg -pix_fmt yuvj420p -q:v qscale` does (fixed quantiser scale)."""
    import av

    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = frame.shape[1], frame.shape[0]
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 60)
    codec.options = {"qmin": str(qscale), "qmax": str(qscale)}
    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuvj420p")
    packets = [*codec.encode(video_frame), *codec.encode(None)]
    return sum(packet.size for packet in packets)


def main() -> None:
    width, height = 456, 256
    rng = np.random.default_rng(0)
    frames = []
    for name in PHOTOS:
        photo = fit_for_pan(load_photo(name), width, height)
        room_x, room_y = photo.shape[1] - width, photo.shape[0] - height
        for x, y in pan_offsets(rng, 4, room_x, room_y):
            frames.append(np.ascontiguousarray(photo[y : y + height, x : x + width]))
    print(f"mean bytes of {len(frames)} {width}x{height} frames of the photographs:")
    for qscale in (3, 4, 5):
        size = np.mean([ffmpeg_mjpeg_size(f, qscale) for f in frames])
        print(f"  ffmpeg MJPEG -q:v {qscale}:  {size:8.0f}")
    for quality in (70, 75, 80, 85, 90, 95):
        size = np.mean(
            [
                len(simplejpeg.encode_jpeg(f, quality=quality, colorsubsampling="420"))
                for f in frames
            ]
        )
        print(f"  libjpeg quality {quality}, 4:2:0: {size:8.0f}")


if __name__ == "__main__":
    main()
