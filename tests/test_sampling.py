"""TSN sampling: the original's offsets, every index in range, train-offset distribution."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from epic_ar.data.sampling import sample_test_offsets, sample_train_offsets, snippet_frame_indices

frames = st.integers(1, 400)
counts = st.integers(1, 25)
lengths = st.integers(1, 6)


def original_test_offsets(num_frames: int, frame_count: int, length: int) -> list[int]:
    """The original's test-mode formula, unclipped."""
    tick = (num_frames - length + 1) / float(frame_count)
    return [int(tick / 2.0 + tick * x) for x in range(frame_count)]


@given(frames, counts, lengths, st.integers(0, 2**32 - 1))
def test_train_indices_stay_inside_the_segment(n: int, t: int, length: int, seed: int) -> None:
    offsets = sample_train_offsets(n, t, length, np.random.default_rng(seed))
    assert offsets.shape == (t,)
    assert offsets.min() >= 0 and offsets.max() <= max(n - length, 0)
    indices = snippet_frame_indices(offsets, length, n)
    assert indices.shape == (t * length,)
    assert indices.min() >= 0 and indices.max() <= n - 1


@given(frames, counts, lengths, st.integers(0, 2**32 - 1))
def test_train_offsets_follow_the_three_cases(n: int, t: int, length: int, seed: int) -> None:
    offsets = sample_train_offsets(n, t, length, np.random.default_rng(seed))
    average = (n - length + 1) // t
    if average > 0:
        parts = np.arange(t) * average
        assert ((offsets >= parts) & (offsets < parts + average)).all()
    elif n > t and n >= length:
        assert (np.diff(offsets) >= 0).all()  # sorted draws
    else:
        assert (offsets == 0).all()


@given(frames, counts, lengths)
def test_test_offsets_are_the_originals_and_deterministic(n: int, t: int, length: int) -> None:
    offsets = sample_test_offsets(n, t, length)
    assert (offsets == sample_test_offsets(n, t, length)).all()
    assert offsets.min() >= 0 and offsets.max() <= max(n - length, 0)
    if n >= length:  # where the original stays inside the segment, same offsets
        assert offsets.tolist() == original_test_offsets(n, t, length)
    indices = snippet_frame_indices(offsets, length, n)
    assert indices.min() >= 0 and indices.max() <= n - 1


def test_known_test_offsets() -> None:
    assert sample_test_offsets(100, 8, 1).tolist() == [6, 18, 31, 43, 56, 68, 81, 93]
    # flow: 30 pairs, snippets of 5 → tick 26/8 = 3.25
    assert sample_test_offsets(30, 8, 5).tolist() == [1, 4, 8, 11, 14, 17, 21, 24]
    # shorter than T: frames repeat
    assert sample_test_offsets(3, 8, 1).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_snippets_are_consecutive_and_repeat_the_last_frame() -> None:
    offsets = np.array([0, 4, 8])
    assert snippet_frame_indices(offsets, 3, 10).tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 9]
    assert snippet_frame_indices(np.array([0]), 5, 2).tolist() == [0, 1, 1, 1, 1]


def test_short_segments_give_zeros_or_sorted_draws() -> None:
    rng = np.random.default_rng(0)
    assert sample_train_offsets(5, 8, 1, rng).tolist() == [0] * 8  # N <= T
    assert sample_train_offsets(3, 8, 5, rng).tolist() == [0] * 8  # N < L
    draws = sample_train_offsets(10, 8, 5, rng)  # avg = 6 // 8 = 0, N > T
    assert (np.diff(draws) >= 0).all() and draws.max() <= 5


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_train_offsets_are_uniform_within_each_part(seed: int) -> None:
    rng = np.random.default_rng(seed)
    draws = np.stack([sample_train_offsets(41, 8, 1, rng) for _ in range(4000)])
    within = draws - np.arange(8) * 5  # avg = 41 // 8 = 5: each part offers 0..4
    assert within.min() == 0 and within.max() == 4
    frequencies = np.stack([(within == k).mean(axis=0) for k in range(5)])
    assert np.abs(frequencies - 0.2).max() < 0.04  # 4000 draws: sd ≈ 0.0063
    # parts are drawn independently: neighbouring parts are uncorrelated
    correlation = np.corrcoef(within[:, 0], within[:, 1])[0, 1]
    assert abs(correlation) < 0.08
