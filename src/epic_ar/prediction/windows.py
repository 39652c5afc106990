"""Windows over a video's time: which frames each window of `predict` covers.

Window k starts at k * stride seconds and covers the frames n (0-based, decode order) with
k * stride <= n / fps < k * stride + window. Windows that would run past the end of the
video are dropped; a video shorter than one window gets one window covering all of it.

Floating point: the window and stride are given in decimal seconds (0.1) and the frame
rate is often a ratio (59.94 = 60000/1001), so a frame time and a window boundary that are
equal on paper can differ in the last bits of their float values. Boundaries are
therefore compared with a tolerance of `TOLERANCE` (1 µs): a frame less than 1 µs before a
boundary counts as on it. Frame times on paper never come that close to a boundary without
being equal to it for the frame rates and steps in use (at 60000/1001 fps and a stride
in tenths of a second, the nearest miss is 1/60000 s), while the float error of the
computations stays below 1e-10 s for videos of many hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from epic_ar.errors import EpicArError, Parameter

TOLERANCE = 1e-6  # seconds: boundaries closer than this to a frame time count as on it
DECIMALS = 6  # a window's start and end are reported rounded to the microsecond

WINDOW = Parameter("window", "window=SECONDS", metavar="SEC")
STRIDE = Parameter("stride", "stride=SECONDS", metavar="SEC")


@dataclass(frozen=True)
class Window:
    """One window: `start` to `end` seconds (rounded to the microsecond), frames `first`
    up to but not including `stop` (0-based frame numbers in decode order)."""

    start: float
    end: float
    first: int
    stop: int

    @property
    def frame_count(self) -> int:
        return self.stop - self.first


def check_window_settings(window: float, stride: float) -> None:
    """Refuse windows or strides that are not finite numbers of seconds > 0.

    Raises:
        EpicArError: naming the parameter (a command line names its flag).
    """
    for parameter, value in ((WINDOW, window), (STRIDE, stride)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise EpicArError(parameter, f": {value!r} is not a number of seconds > 0")


def first_frames_at(times: np.ndarray, fps: float) -> np.ndarray:
    """For each time [K] (seconds), the first frame n with n / fps >= time (within
    `TOLERANCE`): [K] int64, at least 0."""
    firsts = np.ceil((np.asarray(times, dtype=np.float64) - TOLERANCE) * fps)
    return np.maximum(firsts, 0).astype(np.int64)


def frame_windows(frame_count: int, fps: float, window: float, stride: float) -> list[Window]:
    """The windows of a video of `frame_count` frames at `fps`, in time order.

    Window k covers the frames n with k * stride <= n / fps < k * stride + window; it is
    kept when every one of those frames exists, i.e. when it ends no later than the video
    (at frame_count / fps). Without such a window (a video shorter than `window`): one
    window from 0 to the video's end covering every frame. With `stride` > `window`, the
    frames between windows belong to none.

    Raises:
        EpicArError: `window` or `stride` is not > 0, the video has no frames or no
            frame rate, or `window` or `stride` is shorter than the time between two frames
            (1 / fps).
    """
    check_window_settings(window, stride)
    if frame_count < 1 or not (math.isfinite(fps) and fps > 0):
        raise EpicArError(f"no windows in a video of {frame_count} frames at {fps} fps")
    duration = frame_count / fps
    if (stride + TOLERANCE) * fps < 1:  # windows closer than frames: repeats, or millions
        raise EpicArError(
            STRIDE,
            f": {stride} s is shorter than the time between two frames at {fps:g} fps",
        )
    # a bound on the windows that can fit (the exact test below decides), plus a margin
    count = max(0, math.floor((duration - window) / stride)) + 2
    starts = np.arange(count, dtype=np.float64) * stride
    firsts = first_frames_at(starts, fps)
    stops = first_frames_at(starts + window, fps)
    kept = stops <= frame_count
    if not kept.any():
        return [Window(0.0, round(duration, DECIMALS), 0, frame_count)]
    if (window + TOLERANCE) * fps < 1 or np.any(stops[kept] <= firsts[kept]):
        raise EpicArError(
            WINDOW,
            f": {window} s is shorter than the time between two frames at {fps:g} fps",
        )
    return [
        Window(round(float(s), DECIMALS), round(float(s + window), DECIMALS), int(a), int(b))
        for s, a, b in zip(starts[kept], firsts[kept], stops[kept], strict=True)
    ]
