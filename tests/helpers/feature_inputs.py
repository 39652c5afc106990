"""Shared by the `epic-ar features` tests: a small synthetic dataset (official frame
layout and MP4s) with tiny TSN, TSM and flow checkpoints, and readers of what features
wrote (RULSTM's way for LMDB)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pandas as pd

from epic_ar.features.extract import FeatureOptions
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset
from helpers.checkpoints import tiny_checkpoint

DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=2,
    segments_per_video=4,
    frame_width=64,
    frame_height=48,
    min_frames=8,
    max_frames=20,
    layouts=("official", "videos"),
    seed=7,
)
VIDEO = "P01_01"  # a 2018 video: released frames at 60 fps


@dataclass(frozen=True)
class Inputs:
    root: Path

    @property
    def frames(self) -> Path:
        return self.root / "frames_official"

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def labels(self) -> Path:
        return self.root / "annotations" / "EPIC_100_validation.csv"

    def checkpoint(self, name: str) -> Path:
        return self.root / f"{name}.ckpt"

    def frame_count(self, video: str = VIDEO) -> int:
        return len(list((self.frames / video[:3] / "rgb_frames" / video).iterdir()))


def make_inputs(root: Path) -> Inputs:
    """The dataset and the checkpoints under `root`."""
    made = Inputs(root)
    generate_dataset(made.root, DATA)
    tiny_checkpoint(made.checkpoint("tsn_rgb"))
    tiny_checkpoint(made.checkpoint("tsm_rgb"), "tsm_rgb", frame_count=4)
    tiny_checkpoint(made.checkpoint("tsn_flow"), "tsn_flow")
    return made


def options(fmt: str, **changes: Any) -> FeatureOptions:
    settings: dict[str, Any] = {"workers": 0, "device": "cpu", "progress": False,
                                "batch_size": 4, **changes}  # fmt: skip
    return FeatureOptions(format=fmt, **settings)  # type: ignore[arg-type]


def read_lmdb(path: Path) -> dict[str, np.ndarray]:
    """Every feature key of a database, read as RULSTM reads one (read-only, no lock)."""
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {
                key.decode(): np.frombuffer(value, "float32")
                for key, value in txn.cursor()
                if not key.startswith(b"__epic_ar__")
            }
    finally:
        env.close()


def read_segments(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return dict(zip(stored["narration_id"].tolist(), stored["features"], strict=True))


def window_labels(inputs: Inputs, tmp_path: Path, windows: list[tuple[int, int]]) -> Path:
    """A label file of one segment per window (first, last source frame, 0-based) of
    `VIDEO`: released frame k is source frame k - 1."""
    template = pd.read_csv(inputs.labels).iloc[0].to_dict()
    rows = [{**template, "narration_id": f"{VIDEO}_w{i}", "participant_id": VIDEO[:3],
             "video_id": VIDEO, "start_frame": first + 1, "stop_frame": last + 1}
            for i, (first, last) in enumerate(windows)]  # fmt: skip
    for row in rows:
        row.pop("start_timestamp", None)
        row.pop("stop_timestamp", None)
    path = tmp_path / "windows.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
