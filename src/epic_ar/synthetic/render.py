"""Drawing and writing the synthetic dataset's frames and videos (`epic_ar.synthetic.dataset`
plans the videos and segments and calls these).

`Renderer` draws a video's frames: one object per segment moving over a per-video
background,

- the noun sets the object's colour and shape;
- the verb sets the direction and speed of its motion.

Optical-flow frames (u, v greyscale, 128 = still) encode that motion, so both modalities
can be learned. RGB and flow frames are written as JPEGs in any of the three layouts that
`epic-ar gulp` reads ("folders", "official", "tar"), and each video also as an MP4 (layout
"videos": `videos/P01/videos/P01_01.MP4`, the download's layout), H.264 at the released
frames' rate (60 fps for 2018 videos, 50 for 2020), so that RGB frame k is video frame
k - 1, encoded from the same rendered pixels as the JPEGs.
"""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from epic_ar.data.video import write_video
from epic_ar.gulp.jpeg import encode_jpeg
from epic_ar.gulp.sources import frame_name, member_name

if TYPE_CHECKING:  # dataset imports this module; its classes serve here only as type hints
    from epic_ar.synthetic.dataset import Segment, SyntheticConfig, Video

# Frames per second: the released frames' rates, for the annotations' timestamps too (and
# the synthetic MP4s', so that frame k of the JPEG layouts is video frame k - 1; the real
# MP4s of 2018 run at 59.94).
FPS = {2018: 60, 2020: 50}
FLOW_STRIDE = {2018: 2, 2020: 1}
JPEG_QUALITY = 90
# H.264's constant rate factor for the MP4s: 18 is x264's "visually lossless" setting; the
# mean difference from the JPEG layouts' pixels stays near the JPEGs' own error (see
# tests/test_video_source.py), smaller values mostly grow the files.
VIDEO_CRF = 18
VIDEO_GOP_SECONDS = 1.0  # a keyframe every second, as camera footage has


class Renderer:
    """Draws the frames of one video: background texture, one moving object per segment."""

    def __init__(self, config: SyntheticConfig, rng: np.random.Generator):
        self.config = config
        h, w = config.frame_height, config.frame_width
        coarse = rng.integers(60, 200, size=(4, 6, 3)).astype(np.float32)
        rows = np.linspace(0, 3, h)[:, None]
        cols = np.linspace(0, 5, w)[None, :]
        r0, c0 = np.floor(rows).astype(int).clip(0, 2), np.floor(cols).astype(int).clip(0, 4)
        fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
        self.background = (
            coarse[r0, c0] * (1 - fr) * (1 - fc)
            + coarse[r0 + 1, c0] * fr * (1 - fc)
            + coarse[r0, c0 + 1] * (1 - fr) * fc
            + coarse[r0 + 1, c0 + 1] * fr * fc
        ).astype(np.uint8)
        self.radius = max(3, h // 8)
        yy, xx = np.mgrid[-self.radius : self.radius + 1, -self.radius : self.radius + 1]
        self.shapes = [
            np.ones_like(yy, dtype=bool),  # square
            (yy**2 + xx**2) <= self.radius**2,  # disc
            np.abs(xx) <= (yy + self.radius) / 2,  # triangle
        ]

    def colour(self, noun: int) -> np.ndarray:
        hue = noun / self.config.nouns
        rgb = [0.5 + 0.5 * math.cos(2 * math.pi * (hue + k / 3)) for k in range(3)]
        return (np.array(rgb) * 255).astype(np.uint8)

    def velocity(self, verb: int) -> tuple[float, float]:
        """(dy, dx) pixels per RGB frame."""
        angle = 2 * math.pi * verb / self.config.verbs
        speed = self.config.frame_height / 80 * (1 + verb % 2)
        return speed * math.sin(angle), speed * math.cos(angle)

    def position(self, segment: Segment, frame: int) -> tuple[int, int]:
        """Object centre at RGB `frame`: crosses the frame centre mid-segment."""
        dy, dx = self.velocity(segment.verb_class)
        middle = (segment.start_frame + segment.stop_frame) / 2
        h, w, r = self.config.frame_height, self.config.frame_width, self.radius
        y = h / 2 + (frame - middle) * dy
        x = w / 2 + (frame - middle) * dx
        return int(np.clip(round(y), r, h - r - 1)), int(np.clip(round(x), r, w - r - 1))

    def _mask_box(self, segment: Segment, frame: int) -> tuple[slice, slice, np.ndarray]:
        y, x = self.position(segment, frame)
        r = self.radius
        return slice(y - r, y + r + 1), slice(x - r, x + r + 1), self.shapes[segment.noun_class % 3]

    def rgb(self, segment: Segment | None, frame: int) -> np.ndarray:
        image: np.ndarray = self.background.copy()
        if segment is not None:
            ys, xs, mask = self._mask_box(segment, frame)
            image[ys, xs][mask] = self.colour(segment.noun_class)
        return image

    def flow(self, segment: Segment | None, frame: int, stride: int) -> tuple[np.ndarray, ...]:
        """u and v images for the motion from RGB `frame` to `frame + stride`."""
        h, w = self.config.frame_height, self.config.frame_width
        u = np.full((h, w), 128, np.uint8)
        v = np.full((h, w), 128, np.uint8)
        if segment is not None:
            dy, dx = self.velocity(segment.verb_class)
            ys, xs, mask = self._mask_box(segment, frame)
            u[ys, xs][mask] = np.uint8(np.clip(128 + 8 * dx * stride, 0, 255))
            v[ys, xs][mask] = np.uint8(np.clip(128 + 8 * dy * stride, 0, 255))
        return u, v


def segments_at_frames(video: Video) -> dict[int, Segment]:
    """The segment shown at each RGB frame number (frames between segments: none)."""
    at_frame: dict[int, Segment] = {}
    for segment in video.segments:
        for frame in range(segment.start_frame, segment.stop_frame + 1):
            at_frame[frame] = segment
    return at_frame


def render_video(video: Video, renderer: Renderer) -> dict[str, dict[str, bytes]]:
    """{"rgb": {member: jpeg}, "flow": {"u/member": jpeg, "v/member": jpeg}} of a video."""
    at_frame = segments_at_frames(video)
    rgb = {
        frame_name(f): encode_jpeg(renderer.rgb(at_frame.get(f), f), JPEG_QUALITY)
        for f in range(1, video.num_frames + 1)
    }
    stride = FLOW_STRIDE[video.year]
    flow: dict[str, bytes] = {}
    flow_frames = (video.num_frames - 1) // stride
    for j in range(1, flow_frames + 1):
        rgb_frame = (j - 1) * stride + 1
        u, v = renderer.flow(at_frame.get(rgb_frame), rgb_frame, stride)
        flow[member_name("u", j)] = encode_jpeg(u, JPEG_QUALITY)
        flow[member_name("v", j)] = encode_jpeg(v, JPEG_QUALITY)
    return {"rgb": rgb, "flow": flow}


def _write_folder(root: Path, members: dict[str, bytes]) -> None:
    for name, data in members.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as archive:  # "./" prefixes, as in the official archives
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def write_video_frames(
    out: Path, video: Video, frames: dict[str, dict[str, bytes]], layouts: tuple[str, ...]
) -> None:
    p, v = video.participant_id, video.video_id
    for modality, members in frames.items():
        official = f"{modality}_frames"
        if "folders" in layouts:  # the original tool's layout: one root per modality
            _write_folder(out / "frames_folders" / modality / p / v, members)
        if "official" in layouts:
            _write_folder(out / "frames_official" / p / official / v, members)
        if "tar" in layouts:
            _write_tar(out / "frames_tar" / p / official / f"{v}.tar", members)


def video_path(out: Path, video: Video) -> Path:
    """Where layout "videos" puts a video: the download's layout, `P01/videos/P01_01.MP4`."""
    return out / "videos" / video.participant_id / "videos" / f"{video.video_id}.MP4"


def write_video_file(out: Path, video: Video, renderer: Renderer) -> Path:
    """The video's RGB frames (the pixels the JPEG layouts encode) as an H.264 MP4 at its
    released frames' rate, frame k of the JPEGs being video frame k - 1."""
    at_frame = segments_at_frames(video)
    frames = (renderer.rgb(at_frame.get(f), f) for f in range(1, video.num_frames + 1))
    return write_video(
        video_path(out, video),
        frames,
        FPS[video.year],
        codec="libx264",
        gop_seconds=VIDEO_GOP_SECONDS,
        options={"crf": str(VIDEO_CRF)},
    )
