"""TSN segment sampling, exactly as the original project samples.

A segment of `N` frames (flow: `N` u/v pairs) is split into `T` equal parts (`frame_count`);
one snippet of `L` consecutive frames (`segment_length`: 1 for RGB, 5 for flow) is taken from
each part. Offsets are 0-based indices into the segment's stored frames.
"""

from __future__ import annotations

import numpy as np

from epic_ar.modality import Modality


def default_snippet_length(modality: Modality) -> int:
    """L, frames per snippet, where a config does not set it (`segment_length`): 1 for RGB,
    5 for flow (5 u/v pairs), as the original's configs."""
    return 5 if modality == "flow" else 1


def sample_train_offsets(
    num_frames: int, frame_count: int, snippet_length: int, rng: np.random.Generator
) -> np.ndarray:
    """Random snippet starts for training: [T] int64, each in [0, max(N - L, 0)].

    With `avg = (N - L + 1) // T`: when `avg > 0`, part t starts at `t*avg + randint(0, avg)`;
    otherwise, when `N > T`, `T` sorted uniform draws from [0, N - L]; otherwise all zeros.
    """
    average = (num_frames - snippet_length + 1) // frame_count
    if average > 0:
        return np.arange(frame_count, dtype=np.int64) * average + rng.integers(
            0, average, size=frame_count
        )
    if num_frames > frame_count and num_frames >= snippet_length:
        return np.sort(rng.integers(0, num_frames - snippet_length + 1, size=frame_count))
    return np.zeros(frame_count, dtype=np.int64)


def sample_test_offsets(
    num_frames: int, frame_count: int, snippet_length: int, position: float = 0.5
) -> np.ndarray:
    """Deterministic snippet starts for validation and testing: [T] int64.

    `tick = (N - L + 1) / T`, part t starts at `int(tick*position + tick*t)`, computed in
    double precision as the original does (its `tick/2`: position 0.5, the default; other
    positions in [0, 1) give the shifted clips of test-time augmentation); clipped into
    [0, max(N - L, 0)] for segments shorter than the snippet (where the original would
    read before the first frame).
    """
    tick = (num_frames - snippet_length + 1) / float(frame_count)
    offsets = [int(tick * position + tick * t) for t in range(frame_count)]
    return np.clip(np.asarray(offsets, dtype=np.int64), 0, max(num_frames - snippet_length, 0))


def snippet_frame_indices(offsets: np.ndarray, snippet_length: int, num_frames: int) -> np.ndarray:
    """The frames the snippets cover: [T * L] int64, snippet by snippet.

    Snippet t is `offset_t, offset_t + 1, ...`; past the segment's last frame the last frame
    repeats (segments shorter than a snippet).
    """
    steps = np.arange(snippet_length, dtype=np.int64)
    indices = np.asarray(offsets, dtype=np.int64)[:, None] + steps[None, :]
    clipped: np.ndarray = np.minimum(indices, max(num_frames - 1, 0))
    return clipped.reshape(-1)
