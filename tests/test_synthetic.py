"""The synthetic EPIC-shaped dataset: official schema, determinism, learnable content."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epic_ar.annotations.labels import read_annotations
from epic_ar.errors import EpicArError
from epic_ar.synthetic.dataset import Segment, SyntheticConfig, generate_dataset
from epic_ar.synthetic.render import Renderer
from helpers.gulp_data import SMALL

REAL_COLUMNS = [
    "narration_id",
    "participant_id",
    "video_id",
    "narration_timestamp",
    "start_timestamp",
    "stop_timestamp",
    "start_frame",
    "stop_frame",
    "narration",
    "verb",
    "verb_class",
    "noun",
    "noun_class",
    "all_nouns",
    "all_noun_classes",
]


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    config = SyntheticConfig(
        participants=2,
        videos_per_participant=1,
        segments_per_video=3,
        frame_width=32,
        frame_height=24,
        min_frames=3,
        max_frames=5,
        layouts=("official", "tar"),
    )
    generate_dataset(tmp_path / "a", config)
    generate_dataset(tmp_path / "b", config)
    generate_dataset(tmp_path / "c", SyntheticConfig(**{**config.__dict__, "seed": 1}))
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


def test_annotations_follow_the_official_schema(tmp_path: Path) -> None:
    generate_dataset(tmp_path, SMALL)
    folder = tmp_path / "annotations"
    train = pd.read_csv(folder / "EPIC_100_train.csv")
    assert train.columns.tolist() == REAL_COLUMNS
    test = pd.read_csv(folder / "EPIC_100_test_timestamps.csv")
    assert test.columns.tolist() == REAL_COLUMNS[:8]
    for column in ("start_frame", "stop_frame", "verb_class", "noun_class"):
        assert pd.api.types.is_integer_dtype(train[column])
    verbs = pd.read_csv(folder / "EPIC_100_verb_classes.csv")
    assert (train["verb"] == verbs["key"][train["verb_class"]].to_numpy()).all()
    assert (train["narration"] == train["verb"] + " " + train["noun"]).all()
    assert train["video_id"].str.len().isin([6, 7]).all()  # P01_01 and P01_101 styles
    from_pickle = read_annotations(folder / "EPIC_100_train.pkl")
    assert from_pickle.index.tolist() == train["narration_id"].tolist()
    unseen = pd.read_csv(folder / "EPIC_100_unseen_participant_ids_validation.csv")
    assert unseen["participant_id"].tolist() == ["P03"]
    assert "P03" not in set(train["participant_id"])


def test_real_schema_matches(validation_labels_csv: Path) -> None:
    real = pd.read_csv(validation_labels_csv, nrows=5)
    assert real.columns.tolist() == REAL_COLUMNS


def test_classes_are_visible_in_the_frames() -> None:
    config = SyntheticConfig(frame_width=96, frame_height=64, verbs=4, nouns=6)
    renderer = Renderer(config, np.random.default_rng(0))
    colours = {tuple(renderer.colour(n)) for n in range(config.nouns)}
    assert len(colours) == config.nouns  # every noun its own colour
    velocities = {renderer.velocity(v) for v in range(config.verbs)}
    assert len(velocities) == config.verbs  # every verb its own motion
    segment = Segment(
        "P01_01_0", "P01", "P01_01", 10, 30, verb_class=0, noun_class=2, split="train"
    )
    first, last = renderer.rgb(segment, 10), renderer.rgb(segment, 30)
    moved = np.argwhere((first != renderer.background).any(-1)).mean(0)
    moved_to = np.argwhere((last != renderer.background).any(-1)).mean(0)
    assert moved_to[1] > moved[1]  # verb 0 moves right
    u, v = renderer.flow(segment, 20, stride=2)
    assert u.max() > 128 and v.min() == 128  # rightward motion: u positive, no vertical


def test_bad_config() -> None:
    with pytest.raises(EpicArError, match="unknown layouts"):
        SyntheticConfig(layouts=("zip",))
    with pytest.raises(EpicArError, match="verbs"):
        SyntheticConfig(verbs=98)
