"""Shared by the feature-writer tests: settings of each format, made-up features, and
readers written as the downstream projects read (RULSTM: `lmdb.open(readonly=True,
lock=False)`, `np.frombuffer(v, "float32")`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from epic_ar.features.writers import FeatureFormat, open_writer

RULSTM = {"format": "rulstm-lmdb", "model": "tsn", "timeline_fps": 30.0, "window_sec": 1.0}
ACTIONFORMER = {
    "format": "actionformer",
    "model": "tsm",
    "feat_stride": 16,
    "num_frames": 32,
    "default_fps": 30.0,
    "sizes": [224, 256],
}
SEGMENTS = {"format": "segments", "model": "trn", "frame_count": 8}
SETTINGS: dict[FeatureFormat, dict[str, Any]] = {
    "rulstm-lmdb": RULSTM,
    "actionformer": ACTIONFORMER,
    "segments": SEGMENTS,
}
SRC = str(Path(__file__).resolve().parents[2] / "src")


def features(seed: int, rows: int, channels: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, channels))


def read_rulstm(out: Path) -> dict[bytes, bytes]:
    """Every key and value of the environment, read as RULSTM opens it."""
    env = lmdb.open(str(out), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {bytes(key): bytes(value) for key, value in txn.cursor()}
    finally:
        env.close()


def rulstm_frame(out: Path, video: str, n: int) -> np.ndarray | None:
    env = lmdb.open(str(out), readonly=True, lock=False)
    try:
        value = env.begin().get(f"{video}_frame_{n:010d}.jpg".encode())
        return None if value is None else np.frombuffer(value, "float32")
    finally:
        env.close()


def frame_keys(contents: dict[bytes, bytes], video: str) -> list[bytes]:
    return sorted(key for key in contents if key.startswith(f"{video}_frame_".encode()))


def commit_one(fmt: FeatureFormat, out: Path, video: str, rows: np.ndarray, **kwargs: Any) -> None:
    writer = open_writer(fmt, out, SETTINGS[fmt], **kwargs)
    writer.commit(video, rows, [f"{video}_{i}" for i in range(len(rows))])
    writer.close()


def output_of(fmt: FeatureFormat, tmp_path: Path) -> Path:
    return tmp_path / {"rulstm-lmdb": "db", "actionformer": "af", "segments": "s.npz"}[fmt]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
