"""A small synthetic EPIC-shaped dataset, generated once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from epic_ar.annotations.flow_frames import convert_annotation_file
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset

SMALL = SyntheticConfig(
    participants=3,
    videos_per_participant=2,
    segments_per_video=6,
    frame_width=64,
    frame_height=48,
    min_frames=4,
    max_frames=9,
    layouts=("folders", "official", "tar"),
    seed=3,
)


@dataclass(frozen=True)
class SyntheticData:
    root: Path

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    def labels(self, modality: str, split: str = "train") -> Path:
        suffix = "_flow" if modality == "flow" else ""
        return self.annotations / f"EPIC_100_{split}{suffix}.csv"

    def frames(self, layout: str, modality: str) -> Path:
        """FRAMES root of a layout (the plain folder layout has one root per modality)."""
        if layout == "folders":
            return self.root / "frames_folders" / modality
        return self.root / f"frames_{layout}"


def make_synthetic_data(root: Path, config: SyntheticConfig = SMALL) -> SyntheticData:
    generate_dataset(root, config)
    data = SyntheticData(root)
    for split in ("train", "validation"):
        convert_annotation_file(data.labels("rgb", split), data.labels("flow", split))
    return data
