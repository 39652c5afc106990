"""Windows of a whole video on a timeline: which source frames each feature is computed on.

A video is a source of `frame_count` frames at `fps` (frame i, 0-based, at time i / fps);
its duration is frame_count / fps. A timeline runs at `timeline_fps` (30 by default, the
rate RULSTM and ActionFormer's EPIC config assume) and has N = floor(duration *
timeline_fps) frames, numbered 1..N.

- RULSTM (`rulstm_windows`): timeline frame n stands for the time t = n / timeline_fps, and
  its feature may see only the past: the source frames i with
  t - window_sec < i / fps <= t, never one after t.
- ActionFormer (`actionformer_windows`): feature i covers timeline frames
  [i * stride, i * stride + clip), i.e. the source frames i with a <= i / fps < b for
  a, b = (i * stride, i * stride + clip) / timeline_fps; ActionFormer places it at the
  centre, (i * stride + clip / 2) / timeline_fps.

Floating point: boundaries are compared with `prediction.windows.TOLERANCE` (1 µs), as
`prediction.windows` does, so that a frame time and a boundary equal on paper (a frame of a
59.94 fps video exactly at a timeline tick) count as equal whatever their float values. The
frame count N counts a product duration * timeline_fps within 1e-6 of an integer as it.
"""

from __future__ import annotations

import math

import numpy as np

from epic_ar.errors import EpicArError, Parameter
from epic_ar.prediction.windows import DECIMALS, TOLERANCE, Window, first_frames_at

TIMELINE_FPS = 30.0  # RULSTM's and ActionFormer's (EPIC config `default_fps`) timeline
COUNT_TOLERANCE = 1e-6  # timeline frames: a product this close to an integer counts as it

TIMELINE = Parameter("timeline_fps", "timeline_fps=FPS", metavar="FPS")
WINDOW_SEC = Parameter("window_sec", "window_sec=SECONDS", metavar="SEC")
STRIDE = Parameter("stride", "stride=FRAMES", metavar="N")
CLIP = Parameter("clip", "clip=FRAMES", metavar="N")


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float | np.floating | np.integer)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and bool(value > 0)
    )


def _check_count(parameter: Parameter, value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise EpicArError(parameter, f": {value!r} is not {what} >= 1")


def check_timeline_settings(
    *,
    timeline_fps: float | None = None,
    window_sec: float | None = None,
    stride: int | None = None,
    clip: int | None = None,
) -> None:
    """Refuse timeline settings no source can have windows for (None: not checked).

    Raises:
        EpicArError: a rate or `window_sec` not finite and > 0, `stride` or `clip` < 1
            (names it).
    """
    if timeline_fps is not None and not _positive(timeline_fps):
        raise EpicArError(TIMELINE, f": {timeline_fps!r} is not a frame rate > 0")
    if window_sec is not None and not _positive(window_sec):
        raise EpicArError(WINDOW_SEC, f": {window_sec!r} is not a number of seconds > 0")
    if stride is not None:
        _check_count(STRIDE, stride, "a number of frames")
    if clip is not None:
        _check_count(CLIP, clip, "a number of frames")


def _check_source(frame_count: int, fps: float, timeline_fps: float) -> None:
    # The source's count and rate come from its files, not from the caller: no parameter.
    if isinstance(frame_count, bool) or not isinstance(frame_count, int | np.integer):
        raise EpicArError(f"no timeline over a source of {frame_count!r} frames")
    if frame_count < 1 or not _positive(fps):
        raise EpicArError(f"no timeline over a source of {frame_count} frames at {fps!r} fps")
    check_timeline_settings(timeline_fps=timeline_fps)


def timeline_frame_count(frame_count: int, fps: float, timeline_fps: float = TIMELINE_FPS) -> int:
    """N, the frames of the timeline at `timeline_fps` over a source of `frame_count` frames
    at `fps`: floor(frame_count / fps * timeline_fps), a product within 1e-6 of an integer
    counting as it.

    Raises:
        EpicArError: a count < 1, or a rate that is not finite and > 0 (names it).
    """
    _check_source(frame_count, fps, timeline_fps)
    return math.floor(frame_count / fps * timeline_fps + COUNT_TOLERANCE)


def rulstm_windows(
    frame_count: int,
    fps: float,
    *,
    timeline_fps: float = TIMELINE_FPS,
    window_sec: float = 1.0,
) -> list[Window]:
    """The window of every RULSTM timeline frame n = 1..N (`windows[n - 1]`): from
    max(0, t - window_sec) to t = n / timeline_fps seconds (rounded to the µs), holding the
    source frames i with t - window_sec < i / fps <= t, within [0, frame_count). Never a
    frame after t; never empty. A source shorter than one timeline frame has none.

    Raises:
        EpicArError: a count < 1, a rate or `window_sec` not finite and > 0, or
            `window_sec` shorter than the time between two source frames (names it).
    """
    _check_source(frame_count, fps, timeline_fps)
    check_timeline_settings(window_sec=window_sec)
    if (window_sec + TOLERANCE) * fps < 1:
        raise _too_short(WINDOW_SEC, f"{window_sec} s", fps)
    count = timeline_frame_count(frame_count, fps, timeline_fps)
    ends = np.arange(1, count + 1, dtype=np.float64) / timeline_fps
    starts = ends - window_sec
    # i / fps <= t: i <= t * fps; a frame within 1 µs after t counts as at t.
    stops = np.floor((ends + TOLERANCE) * fps).astype(np.int64) + 1
    # i / fps > t - window_sec: a frame at (or within 1 µs of) that time is out.
    firsts = np.floor((starts + TOLERANCE) * fps).astype(np.int64) + 1
    stops = np.minimum(stops, frame_count)
    firsts = np.clip(firsts, 0, frame_count)
    if np.any(stops <= firsts):
        raise _too_short(WINDOW_SEC, f"{window_sec} s", fps)
    return [
        Window(round(max(0.0, float(s)), DECIMALS), round(float(e), DECIMALS), int(a), int(b))
        for s, e, a, b in zip(starts, ends, firsts, stops, strict=True)
    ]


def actionformer_windows(
    frame_count: int,
    fps: float,
    *,
    timeline_fps: float = TIMELINE_FPS,
    stride: int = 16,
    clip: int = 32,
) -> list[Window]:
    """ActionFormer's feature windows, in time order: window i covers the timeline frames
    [i * stride, i * stride + clip), from a = i * stride / timeline_fps to
    b = (i * stride + clip) / timeline_fps seconds, i.e. the source frames i with
    a <= i / fps < b; T = (N - clip) // stride + 1 of them when the timeline has N >= clip
    frames, else one window over every frame. ActionFormer (`feat_stride` = stride,
    `num_frames` = clip, `default_fps` = timeline_fps) puts feature i at the window's
    centre, (i * stride + clip / 2) / timeline_fps.

    Raises:
        EpicArError: a count < 1, a rate not finite and > 0, `stride` or `clip` < 1, or
            `clip` timeline frames shorter than the time between two source frames.
    """
    _check_source(frame_count, fps, timeline_fps)
    check_timeline_settings(stride=stride, clip=clip)
    count = timeline_frame_count(frame_count, fps, timeline_fps)
    if count < clip:
        return [Window(0.0, round(frame_count / fps, DECIMALS), 0, frame_count)]
    ticks = np.arange((count - clip) // stride + 1, dtype=np.int64) * stride
    starts = ticks / timeline_fps
    ends = (ticks + clip) / timeline_fps
    firsts = np.minimum(first_frames_at(starts, fps), frame_count)
    stops = np.minimum(first_frames_at(ends, fps), frame_count)
    if np.any(stops <= firsts):
        raise _too_short(CLIP, f"{clip} frames at {timeline_fps:g} fps", fps)
    return [
        Window(round(float(s), DECIMALS), round(float(e), DECIMALS), int(a), int(b))
        for s, e, a, b in zip(starts, ends, firsts, stops, strict=True)
    ]


def _too_short(parameter: Parameter, value: str, fps: float) -> EpicArError:
    return EpicArError(
        parameter, f": {value} is shorter than the time between two frames at {fps:g} fps"
    )


def rulstm_key(video_id: str, n: int) -> str:
    """The LMDB key of RULSTM timeline frame `n` (1-based) of `video_id`, as RULSTM's
    `SequenceDataset` asks for it: `P01_01_frame_0000000001.jpg`."""
    return f"{video_id}_frame_{n:010d}.jpg"
