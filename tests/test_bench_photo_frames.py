"""The camera pan of benchmarks/photo_frames.py (the loader benchmark's real-photo frames)."""

from __future__ import annotations

import numpy as np
import pytest
import simplejpeg

import photo_frames
from photo_frames import fit_for_pan, pan_offsets, panned_segments


def test_pan_is_a_straight_line_inside_the_photo() -> None:
    rng = np.random.default_rng(3)
    offsets = np.array(pan_offsets(rng, 60, 68, 268))
    assert offsets.shape == (60, 2)
    assert offsets.min() >= 0 and (offsets[:, 0] <= 68).all() and (offsets[:, 1] <= 268).all()
    # Evenly spaced between the two ends, up to the rounding to whole pixels.
    ends = offsets[[0, -1]].astype(float)
    line = ends[0] + np.linspace(0, 1, 60)[:, None] * (ends[1] - ends[0])
    assert np.abs(offsets - line).max() <= 1.0
    assert len({tuple(o) for o in offsets}) > 1  # it moves


def test_small_photos_are_enlarged_never_shrunk() -> None:
    small = np.zeros((300, 451, 3), np.uint8)  # chelsea's size, narrower than a frame
    enlarged = fit_for_pan(small, 456, 256)
    assert enlarged.shape[1] >= 1.15 * 456 - 1 and enlarged.shape[0] >= 1.15 * 256 - 1
    assert enlarged.shape[1] / enlarged.shape[0] == pytest.approx(451 / 300, rel=0.01)
    large = np.zeros((800, 900, 3), np.uint8)
    assert fit_for_pan(large, 456, 256) is large


def test_panned_segments_are_seeded_456x256_420_jpegs(monkeypatch: pytest.MonkeyPatch) -> None:
    # stand-in photographs (scikit-image is the benchmark's optional extra, not the tests')
    def photo(name: str) -> np.ndarray:
        rng = np.random.default_rng(len(name))
        return rng.integers(0, 256, (300 + len(name), 520, 3), dtype=np.uint8)

    monkeypatch.setattr(photo_frames, "load_photo", photo)
    first = panned_segments(2, 3, width=456, height=256)
    assert first == panned_segments(2, 3, width=456, height=256)
    assert [len(segment) for segment in first] == [3, 3]
    assert simplejpeg.decode_jpeg_header(first[1][2]) == (256, 456, "YCbCr", "420")
    assert first[0][0] != first[0][1] or first[0][1] != first[0][2]  # the window moves
