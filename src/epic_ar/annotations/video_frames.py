"""Where the released frames of EPIC-KITCHENS lie in the videos.

The released frames are numbered 1, 2, ... at a fixed rate R: 60 frames per second for the
2018 videos (`P01_01`: two-digit video number) and 50 for the 2020 ones (`P01_101`: three
digits). The MP4s have their own rates (59.94 and 50 fps, a few 29.97, 47.95 or 90), so a
released frame k is found in a video by its time, tau = (k - 1) / R seconds, as the video
frame nearest that time: j = round(tau * fps) (0-based, presentation order).

Annotation files give a segment's `start_frame`/`stop_frame` in the released numbering and
its `start_timestamp`/`stop_timestamp` ("HH:MM:SS.ff"). In the official files the frame
numbers are `max(1, floor(t * R))` of the timestamp t read as a double (hours * 3600 +
minutes * 60 + seconds), rounding errors included: a timestamp whose exact value makes
t * R a whole number sometimes gives the number below it (checked against every segment of
the published validation and test files). Label files without frame numbers get them the
same way, so that they point at the frames the official numbers would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pandas as pd

from epic_ar.errors import EpicArError

# Released frames per second, by the number of digits of the video number (P01_01, P01_101).
RELEASED_FPS = {2: 60, 3: 50}
_VIDEO_ID = re.compile(r"P\d+_(\d+)")
_TIMESTAMP = r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)$"
# Video frame rates are ratios with small denominators (60000/1001 for 59.94 fps): a float
# rate is read back as the nearest such ratio, so that frame indices are computed exactly.
_RATE_DENOMINATOR = 1001


def released_fps(video_id: str) -> int:
    """R, the rate of a video's released frames: 60 for 2018 videos (`P01_01`), 50 for
    2020 videos (`P01_101`).

    Raises:
        EpicArError: the id is named neither way.
    """
    match = _VIDEO_ID.fullmatch(str(video_id))
    rate = RELEASED_FPS.get(len(match.group(1))) if match else None
    if rate is None:
        raise EpicArError(
            f"video {video_id!r} is not named like an EPIC-KITCHENS video (P01_01: 2018, "
            "frames at 60 fps; P01_101: 2020, frames at 50 fps), so the rate of its released "
            "frames is unknown"
        )
    return rate


def video_frame_indices(
    frames: Sequence[int] | np.ndarray, rate: int, video_fps: float, frame_count: int | None
) -> np.ndarray:
    """[N] int64: for released frames k (1-based, `rate` R per second), the index (0-based,
    presentation order) of the frame of a video at `video_fps` nearest their time
    (k - 1) / R, halves rounded up, clipped to [0, frame_count - 1] (None: not clipped
    above).

    Computed in integers (no rounding error): `video_fps` is taken as the nearest ratio
    with a denominator of at most 1001 (59.94005994... is 60000/1001).
    """
    if rate < 1 or (frame_count is not None and frame_count < 1) or not video_fps > 0:
        raise EpicArError(
            f"released rate {rate}, video rate {video_fps} and frame count {frame_count} "
            "must be positive"
        )
    fps = Fraction(video_fps).limit_denominator(_RATE_DENOMINATOR)
    steps = np.asarray(frames, dtype=np.int64) - 1
    # floor(steps / R * fps + 1/2) = floor((2 * steps * p + R * q) / (2 * R * q)), fps = p/q
    numerator = 2 * steps * fps.numerator + rate * fps.denominator
    nearest = np.floor_divide(numerator, 2 * rate * fps.denominator)
    clipped: np.ndarray = np.clip(nearest, 0, None if frame_count is None else frame_count - 1)
    return clipped


def timestamp_seconds(values: pd.Series, *, column: str, source: str) -> np.ndarray:
    """[N] float64 seconds of "HH:MM:SS.ff" timestamps, summed as the official frame numbers
    were computed: hours * 3600 + minutes * 60 + seconds, in double precision.

    Raises:
        EpicArError: a value is not such a timestamp (names `source`, the segment, `column`).
    """
    parts = values.astype(str).str.extract(_TIMESTAMP)
    bad = parts.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise EpicArError(
            f"{source}: {column} of segment {values.index[row]} is {values.iloc[row]!r}, not "
            "a timestamp HH:MM:SS.ff"
        )
    numbers = parts.astype(np.float64).to_numpy()
    seconds: np.ndarray = numbers[:, 0] * 3600 + numbers[:, 1] * 60 + numbers[:, 2]
    return seconds


def frames_at_times(seconds: np.ndarray, rates: np.ndarray | int) -> np.ndarray:
    """[N] int64 released frame numbers of annotation times: max(1, floor(t * R)), in double
    precision as in the official annotation files."""
    products = np.asarray(seconds, dtype=np.float64) * np.asarray(rates, dtype=np.float64)
    frames: np.ndarray = np.maximum(1, np.floor(products)).astype(np.int64)
    return frames


def frame_timestamp(frame: int, rate: int) -> str:
    """The first timestamp "HH:MM:SS.ff" (whole hundredths of a second) that gives back
    released frame `frame` by the official rule (`frames_at_times`): what an annotation of
    a segment starting or stopping at that frame says."""
    hundredths = -(-100 * frame // rate)  # ceil(100 k / R): the first at or after k / R
    for candidate in (hundredths, hundredths + 1):  # + 1: t * R whole, rounded down
        text = _format_hundredths(candidate)
        seconds = timestamp_seconds(pd.Series([text]), column="timestamp", source="frame")
        if int(frames_at_times(seconds, rate)[0]) == max(frame, 1):
            return text
    raise AssertionError(f"no timestamp for frame {frame} at {rate} fps")  # pragma: no cover


def _format_hundredths(hundredths: int) -> str:
    minutes, centiseconds = divmod(hundredths, 6000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{centiseconds // 100:02d}.{centiseconds % 100:02d}"


def with_frame_numbers(labels: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """`labels` (indexed by narration id) with `start_frame`/`stop_frame`: as they are when
    it has both, else computed from `start_timestamp`/`stop_timestamp` (a copy).

    Raises:
        EpicArError: a needed column is missing, a timestamp is malformed, or a video is not
            named like an EPIC-KITCHENS video (names `source` and the segment).
    """
    if {"start_frame", "stop_frame"} <= set(labels.columns):
        return labels
    needed = ["video_id", "start_timestamp", "stop_timestamp"]
    missing = [column for column in needed if column not in labels.columns]
    if missing:
        raise EpicArError(
            f"{source}: has neither start_frame/stop_frame nor {', '.join(missing)} to "
            "compute them from"
        )
    rates = released_rates(labels["video_id"], source=source)
    numbered: pd.DataFrame = labels.copy()
    for kind in ("start", "stop"):
        column = f"{kind}_timestamp"
        seconds = timestamp_seconds(labels[column], column=column, source=source)
        numbered[f"{kind}_frame"] = frames_at_times(seconds, rates)
    return numbered


def released_rates(video_ids: pd.Series, *, source: str) -> np.ndarray:
    """[N] int64: `released_fps` of each row's video.

    Raises:
        EpicArError: a video named otherwise (names `source` and its first segment).
    """
    rates = {}
    for video_id in pd.unique(video_ids.astype(str)):
        try:
            rates[video_id] = released_fps(video_id)
        except EpicArError as exc:
            segment = video_ids.index[int(np.argmax(video_ids.astype(str) == video_id))]
            raise EpicArError(f"{source}: segment {segment}: {exc}") from None
    return video_ids.astype(str).map(rates).to_numpy(dtype=np.int64)
