"""A synthetic dataset shaped like EPIC-KITCHENS-100, with learnable classes: its sizes
(`SyntheticConfig`), the plan of its videos and segments, the annotation tables, and
`generate_dataset`/`write_dataset`, which write annotations, frames and videos.

Each segment shows one object moving over a per-video background: the noun sets the
object's colour and shape, the verb the direction and speed of its motion (drawn and
written by `epic_ar.synthetic.render`, optical flow included). Videos are named in both
styles (`P01_01`: 2018, flow at stride 2; `P01_101`: 2020, stride 1). Annotations follow
the official schema and use real class ids and names. Frames are written in any of the
three layouts that `epic-ar gulp` reads, and each video also as an MP4 (layout "videos").
Everything is deterministic given the seed.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.annotations.classes import N_NOUNS, N_VERBS, PACKAGED_TABLES, packaged_table
from epic_ar.annotations.splits import OFFICIAL_STEMS
from epic_ar.annotations.video_frames import frame_timestamp
from epic_ar.errors import EpicArError, Parameter
from epic_ar.fileio.atomic import atomic_write_dir
from epic_ar.synthetic.render import (
    FPS,
    Renderer,
    render_video,
    write_video_file,
    write_video_frames,
)

FRAME_LAYOUTS = ("folders", "official", "tar")
LAYOUTS = (*FRAME_LAYOUTS, "videos")


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of the generated dataset (frame numbers and sizes as in EPIC by default)."""

    participants: int = 4
    videos_per_participant: int = 2
    segments_per_video: int = 12
    frame_width: int = 456
    frame_height: int = 256
    min_frames: int = 16
    max_frames: int = 40
    verbs: int = 6
    nouns: int = 8
    layouts: tuple[str, ...] = ("tar",)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.verbs <= N_VERBS or not 1 <= self.nouns <= N_NOUNS:
            raise EpicArError(
                Parameter("verbs"),
                f" must be 1-{N_VERBS} and ",
                Parameter("nouns"),
                f" 1-{N_NOUNS}",
            )
        if self.min_frames < 3 or self.max_frames < self.min_frames:
            raise EpicArError("need 3 <= min frames <= max frames")
        if not (16 <= self.frame_width <= 4096 and 16 <= self.frame_height <= 4096):
            raise EpicArError(
                f"frame_width x frame_height {self.frame_width}x{self.frame_height}: each side "
                "must be 16-4096 pixels"
            )
        if self.participants < 2:
            raise EpicArError("need at least 2 participants (one of them is unseen)")
        for name in ("videos_per_participant", "segments_per_video"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise EpicArError(f"{name}: {value!r} is not an integer >= 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise EpicArError(f"seed: {self.seed!r} is not an integer >= 0")
        unknown = set(self.layouts) - set(LAYOUTS)
        if unknown:
            raise EpicArError(f"unknown layouts {sorted(unknown)}; choose from {LAYOUTS}")
        if "videos" in self.layouts and (self.frame_width % 2 or self.frame_height % 2):
            raise EpicArError(
                f"frame_width x frame_height {self.frame_width}x{self.frame_height}: layout "
                "videos needs both even (H.264 stores colour at half resolution)"
            )


@dataclass
class Segment:
    narration_id: str
    participant_id: str
    video_id: str
    start_frame: int
    stop_frame: int
    verb_class: int
    noun_class: int
    split: str


@dataclass
class Video:
    participant_id: str
    video_id: str
    year: int
    num_frames: int
    segments: list[Segment] = field(default_factory=list)


def video_names(config: SyntheticConfig) -> Iterator[tuple[str, str, int]]:
    """(participant, video, year) for every video: alternately 2018 and 2020 style."""
    for p in range(1, config.participants + 1):
        participant = f"P{p:02d}"
        for v in range(1, config.videos_per_participant + 1):
            year = 2018 if v % 2 else 2020
            suffix = f"{v:02d}" if year == 2018 else f"{100 + v}"
            yield participant, f"{participant}_{suffix}", year


def plan_videos(config: SyntheticConfig, rng: np.random.Generator) -> list[Video]:
    """Segments of every video with frame ranges, classes and splits.

    The last participant appears only in validation and test (an unseen participant);
    other segments are split 70/15/15 at random.
    """
    unseen = f"P{config.participants:02d}"
    videos = []
    for participant, video_id, year in video_names(config):
        frame = 1 + int(rng.integers(0, 5))
        segments = []
        for index in range(config.segments_per_video):
            length = int(rng.integers(config.min_frames, config.max_frames + 1))
            if participant == unseen:
                split = "validation" if rng.random() < 0.5 else "test"
            else:
                split = str(rng.choice(["train", "validation", "test"], p=[0.7, 0.15, 0.15]))
            segments.append(
                Segment(
                    narration_id=f"{video_id}_{index}",
                    participant_id=participant,
                    video_id=video_id,
                    start_frame=frame,
                    stop_frame=frame + length - 1,
                    verb_class=int(rng.integers(0, config.verbs)),
                    noun_class=int(rng.integers(0, config.nouns)),
                    split=split,
                )
            )
            frame += length + int(rng.integers(0, 6))
        videos.append(Video(participant, video_id, year, frame + 2, segments))
    return videos


def _timestamp(seconds: float, decimals: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:0{3 + decimals}.{decimals}f}"


def annotation_tables(videos: list[Video]) -> dict[str, pd.DataFrame]:
    """The annotation tables in the official schema, by file stem (`EPIC_100_train`, ...)."""
    verbs = pd.read_csv(packaged_table("EPIC_100_verb_classes.csv"))["key"]
    nouns = pd.read_csv(packaged_table("EPIC_100_noun_classes.csv"))["key"]
    rows: dict[str, list[dict[str, object]]] = {"train": [], "validation": [], "test": []}
    for video in videos:
        fps = FPS[video.year]
        for s in video.segments:
            verb, noun = str(verbs[s.verb_class]), str(nouns[s.noun_class])
            rows[s.split].append(
                {
                    "narration_id": s.narration_id,
                    "participant_id": s.participant_id,
                    "video_id": s.video_id,
                    "narration_timestamp": _timestamp(s.start_frame / fps + 0.1, 3),
                    # timestamps that give the frame numbers back as in the official files
                    "start_timestamp": frame_timestamp(s.start_frame, fps),
                    "stop_timestamp": frame_timestamp(s.stop_frame, fps),
                    "start_frame": s.start_frame,
                    "stop_frame": s.stop_frame,
                    "narration": f"{verb} {noun}",
                    "verb": verb,
                    "verb_class": s.verb_class,
                    "noun": noun,
                    "noun_class": s.noun_class,
                    "all_nouns": [noun],
                    "all_noun_classes": [s.noun_class],
                }
            )
    tables = {split: pd.DataFrame(split_rows) for split, split_rows in rows.items()}
    tables["test"] = tables["test"].iloc[:, :8]  # the test split has no labels
    return {
        OFFICIAL_STEMS["train"]: tables["train"],
        OFFICIAL_STEMS["val"]: tables["validation"],
        OFFICIAL_STEMS["test"]: tables["test"],
    }


def write_annotations(out: Path, videos: list[Video], config: SyntheticConfig) -> None:
    folder = out / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in annotation_tables(videos).items():
        table.set_index("narration_id").to_pickle(folder / f"{name}.pkl")
        table.to_csv(folder / f"{name}.csv", index=False)
    for name in PACKAGED_TABLES[:2]:  # the class lists
        shutil.copyfile(packaged_table(name), folder / name)
    unseen = pd.DataFrame({"participant_id": [f"P{config.participants:02d}"]})
    for split in ("validation", "test"):
        unseen.to_csv(folder / f"EPIC_100_unseen_participant_ids_{split}.csv", index=False)
    # The rarer half of the classes used play the tail classes.
    pd.DataFrame({"verb": range(config.verbs // 2, config.verbs)}).to_csv(
        folder / "EPIC_100_tail_verbs.csv", index=False
    )
    pd.DataFrame({"noun": range(config.nouns // 2, config.nouns)}).to_csv(
        folder / "EPIC_100_tail_nouns.csv", index=False
    )
    info = pd.DataFrame(
        [
            {
                "video_id": v.video_id,
                "duration": v.num_frames / FPS[v.year],
                "fps": float(FPS[v.year]),
                "resolution": f"{config.frame_width}x{config.frame_height}",
            }
            for v in videos
        ]
    )
    info.to_csv(folder / "EPIC_100_video_info.csv", index=False)


def check_splits(videos: list[Video]) -> None:
    """Refuse a plan that leaves a split without segments (too few segments for 70/15/15)."""
    counts = {split: 0 for split in ("train", "validation", "test")}
    for video in videos:
        for segment in video.segments:
            counts[segment.split] += 1
    empty = [split for split, count in counts.items() if count == 0]
    if empty:
        total = sum(counts.values())
        raise EpicArError(
            f"the {total} segments planned leave no {' and no '.join(empty)} segments: "
            "ask for more segments (segments_per_video, videos_per_participant or participants)"
        )


def generate_dataset(out: Path, config: SyntheticConfig) -> list[Video]:
    """Write annotations and frames of a synthetic dataset into `out`; returns its videos.

    Files are written in place: see `write_dataset` for a folder made whole or not at all.
    """
    rng = np.random.default_rng(config.seed)
    videos = plan_videos(config, rng)
    check_splits(videos)
    write_annotations(out, videos, config)
    for video in videos:
        video_seed = zlib.crc32(video.video_id.encode())  # stable across processes
        renderer = Renderer(config, np.random.default_rng([config.seed, video_seed]))
        if set(config.layouts) & set(FRAME_LAYOUTS):
            write_video_frames(out, video, render_video(video, renderer), config.layouts)
        if "videos" in config.layouts:
            write_video_file(out, video, renderer)
    return videos


def write_dataset(out: Path, config: SyntheticConfig, *, force: bool = False) -> list[Video]:
    """`generate_dataset` into a new folder `out`, whole or not at all: written beside it
    under a temporary name and renamed at the end, so that a failure (or Ctrl-C) leaves
    nothing. An existing `out` is replaced only with `force`, and only once complete."""
    with atomic_write_dir(out, force=force) as folder:
        return generate_dataset(folder, config)
