"""Segments read straight from the EPIC-KITCHENS videos (MP4), in the official download
layout `VIDEOS/P01/videos/P01_01.MP4` (`.mp4` too), for the segments of a label file.

A segment has as many frames as the released JPEGs give it (`stop_frame - start_frame + 1`,
RGB only: videos have no optical flow), so the samplers pick the same released frame
numbers k as from frame archives; each is read as the video frame nearest its time
(`epic_ar.annotations.video_frames`), decoded by `epic_ar.data.video` and resized inside the
decoder to 256 pixels high, as the released frames were made (1920x1080 → 456x256).

Every video is checked when the source is made (it exists and FFmpeg can open it); frame
tables are read on first use, once per process (DataLoader workers, forked or spawned,
read their own).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.annotations.flow_frames import holds_flow_frame_numbers
from epic_ar.annotations.video_frames import released_rates, video_frame_indices, with_frame_numbers
from epic_ar.data.segment_sources import annotation_rows, annotation_table
from epic_ar.data.video import RELEASED_FRAME_HEIGHT, frame_table, read_frames_at
from epic_ar.data.video_table import open_video
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality

VIDEO_SUFFIXES = (".MP4", ".mp4")  # the download's suffix first
# Self-decoded videos hold a few frames more or fewer than were released: a segment that
# runs up to this far past a video's end is read with its last frame repeated, silently;
# further means labels and videos that do not belong together, and is refused.
PAST_END_TOLERANCE = 1.0  # seconds


def video_locations(videos_root: Path, participant: str, video: str) -> list[Path]:
    """Where video `video` of `participant` may be, in the order they are tried."""
    folder = videos_root / participant / "videos"
    return [folder / f"{video}{suffix}" for suffix in VIDEO_SUFFIXES]


def locate_video(videos_root: Path, participant: str, video: str) -> Path:
    """The video file of `video` under `videos_root`.

    Raises:
        EpicArError: no such file (names the path looked for).
    """
    locations = video_locations(videos_root, participant, video)
    for location in locations:
        if location.is_file():
            return location
    raise EpicArError(
        f"unknown video {video}: no video under {videos_root} (looked for {locations[0]})"
    )


def check_readable(path: Path) -> None:
    """That FFmpeg opens `path` and finds a video stream (reads its header only).

    Raises:
        EpicArError: it does not.
    """
    open_video(path).close()


class VideoSegments:
    """Segments of a label file, read from the videos under `videos_root` (RGB only).

    `labels`: an annotation file, or its rows as `read_annotations` returns them, with
    `participant_id`, `video_id` and `start_frame`/`stop_frame` in the released numbering
    (or, without them, `start_timestamp`/`stop_timestamp`: see
    `epic_ar.annotations.video_frames.with_frame_numbers`). `frame_height`: frames are
    resized to it inside the decoder (None: as stored).
    """

    def __init__(
        self,
        videos_root: Path,
        modality: Modality,
        labels: Path | pd.DataFrame,
        *,
        frame_height: int | None = RELEASED_FRAME_HEIGHT,
    ):
        videos_root = Path(videos_root)
        if modality != "rgb":
            raise EpicArError(
                f"{videos_root}: videos have no optical flow; read flow frames from frame "
                "archives or a gulp directory"
            )
        if not videos_root.is_dir():
            raise EpicArError(f"{videos_root}: no such directory (videos)")
        self.videos_root, self.frame_height = videos_root, frame_height
        self.modality: Modality = "rgb"
        rows, name = annotation_rows(labels, ("participant_id", "video_id"))
        if len(rows) == 0:
            raise EpicArError(f"{name}: no segments")
        if holds_flow_frame_numbers(rows):
            raise EpicArError(
                f"{name}: holds flow frame numbers (converted for flow); videos need the "
                "annotations with RGB frame numbers"
            )
        rows = with_frame_numbers(rows, source=name)
        counts = rows["stop_frame"].to_numpy(np.int64) - rows["start_frame"].to_numpy(np.int64) + 1
        if (counts < 1).any():
            bad = str(rows.index[int(np.argmax(counts < 1))])
            raise EpicArError(f"{name}: segment {bad!r} has no rgb frames")
        rates = released_rates(rows["video_id"], source=name)
        videos = rows[["participant_id", "video_id"]].astype(str).drop_duplicates()
        video_row = {v: i for i, v in enumerate(videos["video_id"])}
        self._video_row = rows["video_id"].astype(str).map(video_row).to_numpy(np.int64)
        self._start = rows["start_frame"].to_numpy(np.int64)
        self._rate = rates  # [S] released frames per second
        self._paths = [locate_video(videos_root, p, v) for p, v in videos.itertuples(index=False)]
        for path in self._paths:
            check_readable(path)
        self.table = annotation_table(rows, counts)

    def video_path(self, row: int) -> Path:
        """The video file of segment `row` (a table row)."""
        return self._paths[int(self._video_row[row])]

    def video_indices(self, row: int, frame_indices: np.ndarray) -> np.ndarray:
        """[F] int64: the video frames (0-based) of segment `row`'s frames `frame_indices`
        (0-based within the segment), clipped to the video's frames."""
        video = int(self._video_row[row])
        info = frame_table(self._paths[video]).info
        rate = int(self._rate[row])
        numbers = self._start[row] + np.asarray(frame_indices, dtype=np.int64)
        indices = video_frame_indices(numbers, rate, info.fps, None)
        last = info.frame_count - 1
        over = (int(indices.max()) - last) / info.fps
        if over > PAST_END_TOLERANCE:
            raise EpicArError(
                f"{info.path}: the segment runs {over:.1f} s past the video's end "
                f"({info.frame_count} frames at {info.fps:g} fps); do the labels belong to "
                "these videos?"
            )
        clipped: np.ndarray = np.minimum(indices, last)
        return clipped

    def frames_location(self, row: int) -> str:
        """Where segment `row`'s frames are stored (its video file)."""
        return str(self.video_path(row))

    def read_frames(self, row: int, frame_indices: np.ndarray) -> np.ndarray:
        """[F, H, W, 3] uint8 RGB: segment `row`'s frames `frame_indices` (0-based within
        the segment), H = `frame_height`."""
        indices = self.video_indices(row, frame_indices)
        return read_frames_at(self.video_path(row), indices, height=self.frame_height)
