"""Which videos a `features` run reads, and where: the videos of a label file, each found
in a frames folder (any layout `epic-ar gulp` reads) or a videos folder, and checked before
any work starts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from epic_ar.annotations.labels import read_annotations
from epic_ar.annotations.video_frames import released_fps
from epic_ar.data.tar_index import cached_tar_index, tar_index
from epic_ar.data.video_sources import locate_video
from epic_ar.errors import EpicArError
from epic_ar.features.sources import (
    FRAMES_DIR,
    KIND,
    OTHER,
    VIDEOS_DIR,
    ReleasedFrames,
    VideoFileFrames,
    VideoFrames,
)
from epic_ar.gulp.sources import candidate_locations
from epic_ar.modality import MODALITIES, Modality
from epic_ar.progress import Progress


def video_ids_of_labels(labels: Path) -> list[str]:
    """The videos of an annotation file (any format `annotations.labels.read_annotations`
    reads), each once, in order of first appearance.

    Raises:
        EpicArError: the file cannot be read, has no `video_id` column, or no segments.
    """
    rows = read_annotations(labels, required_columns=("video_id",))
    if len(rows) == 0:
        raise EpicArError(f"{labels}: no segments, so no videos")
    return list(dict.fromkeys(rows["video_id"].astype(str)))


def participant_of(video_id: str) -> str:
    """The participant of a video id: the part before its first `_` (`P01_101` -> `P01`).

    Raises:
        EpicArError: the id has no `_`, or could name a path elsewhere.
    """
    participant, underscore, rest = video_id.partition("_")
    if not (participant and underscore and rest) or re.search(r"[/\\\x00]|^\.", video_id):
        raise EpicArError(
            f"video {video_id!r} is not named like an EPIC-KITCHENS video (P01_01: participant "
            "P01), so where it lies is unknown"
        )
    return participant


def open_videos(
    video_ids: Sequence[str],
    modality: Modality,
    *,
    frames_dir: Path | None = None,
    videos_dir: Path | None = None,
    index_cache_dir: Path | None = None,
) -> list[VideoFrames]:
    """The videos `video_ids` (each once, in order) as sources: released frames under
    `frames_dir` (any layout gulp reads), or video files under `videos_dir`
    (`DIR/P01/videos/P01_01.MP4`, RGB only). Each is located and checked now: its frames
    counted (archives indexed, with progress when not cached) or its video's frame table
    read. `index_cache_dir`: where archive indexes are cached (default: beside them).

    Raises:
        EpicArError: not exactly one of `frames_dir` / `videos_dir`, no videos, flow asked
            of videos, or a video unknown, not named like an EPIC video, missing frames,
            holding only the other modality, or unreadable (one line naming it).
    """
    if (frames_dir is None) == (videos_dir is None):
        raise EpicArError(
            "read the videos either from frames (", FRAMES_DIR, ") or from video files (",
            VIDEOS_DIR, "): give exactly one",
        )  # fmt: skip
    if modality not in MODALITIES:
        raise EpicArError(f"modality {modality!r} is not rgb or flow")
    ids = list(dict.fromkeys(str(video) for video in video_ids))
    if not ids:
        raise EpicArError("no videos to read")
    if videos_dir is not None:
        return _open_video_files(ids, modality, Path(videos_dir))
    assert frames_dir is not None
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        if frames_dir.is_file():
            raise EpicArError(f"{frames_dir}: a file; give the folder holding the participants' "
                              "folders (FRAMES for FRAMES/P01/rgb_frames/P01_01.tar)")  # fmt: skip
        raise EpicArError(f"{frames_dir}: no such directory (frames)")
    locations = []
    for video in ids:
        released_fps(video)  # a video named otherwise: its frames' rate is unknown
        locations.append(_locate_frames(frames_dir, video, modality))
    _index_archives(locations, index_cache_dir)
    return [
        ReleasedFrames.from_location(video, location, modality, index_cache_dir=index_cache_dir)
        for video, location in zip(ids, locations, strict=True)
    ]


def _open_video_files(ids: list[str], modality: Modality, videos_dir: Path) -> list[VideoFrames]:
    if modality != "rgb":
        raise EpicArError(
            f"{videos_dir}: videos have no optical flow; read flow frames from frame archives "
            "or folders (",
            FRAMES_DIR,
            ")",
        )
    if not videos_dir.is_dir():
        raise EpicArError(f"{videos_dir}: no such directory (videos)")
    paths = [locate_video(videos_dir, participant_of(video), video) for video in ids]
    return [VideoFileFrames.from_file(video, path) for video, path in zip(ids, paths, strict=True)]


def _locate_frames(frames_dir: Path, video: str, modality: Modality) -> Path:
    """The tar archive or folder of `video`'s frames, from the first layout that has it.

    Raises:
        EpicArError: none has it (names where it looked, and frames of the other modality
            found instead).
    """
    participant = participant_of(video)
    candidates = candidate_locations(frames_dir, participant, video, modality)
    for location in candidates:
        if (location.suffix == ".tar" and location.is_file()) or location.is_dir():
            return location
    looked = ", ".join(str(p.relative_to(frames_dir)) for p in candidates)
    message = (
        f"unknown video {video}: no {KIND[modality]} frames under {frames_dir} (looked for "
        f"{looked})"
    )
    other = OTHER[modality]
    for location in candidate_locations(frames_dir, participant, video, other):
        if location.exists():
            message += f"; only {KIND[other]} frames ({location.relative_to(frames_dir)})"
            break
    else:
        if frames_dir.name in (participant, "rgb_frames", "flow_frames"):
            message += f"; give the folder holding {participant}/, above {frames_dir.name}"
    raise EpicArError(message)


def _index_archives(locations: list[Path], cache_dir: Path | None) -> None:
    """Index the tar archives whose index is not cached yet, showing progress."""
    archives = [p for p in locations if p.suffix == ".tar" and p.is_file()]
    unindexed = [p for p in archives if cached_tar_index(p, cache_dir) is None]
    if not unindexed:
        return
    progress = Progress("indexing tar archives", len(unindexed), unit="archives", extra_unit=None)
    try:
        for archive in unindexed:
            tar_index(archive, cache_dir)
            progress.update()
    finally:
        progress.close()
