"""Timelines of whole videos for features: RULSTM's causal windows and ActionFormer's
strided clips, against exact rational arithmetic, by hand, and the parameters refused."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epic_ar.errors import EpicArError
from epic_ar.features.timeline import (
    TIMELINE_FPS,
    actionformer_windows,
    rulstm_key,
    rulstm_windows,
    timeline_frame_count,
)
from epic_ar.prediction.windows import Window

RATES = [Fraction(30000, 1001), Fraction(60000, 1001), Fraction(50), Fraction(60),
         Fraction(25), Fraction(30), Fraction(24000, 1001)]  # fmt: skip
TIMELINE_RATES = [Fraction(30), Fraction(25), Fraction(10)]
WINDOW_SECONDS = [Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(2)]


def exact_count(frame_count: int, fps: Fraction, timeline_fps: Fraction) -> int:
    return math.floor(frame_count / fps * timeline_fps)


def exact_rulstm(
    frame_count: int, fps: Fraction, timeline_fps: Fraction, window: Fraction
) -> list[tuple[int, int]]:
    """(first, stop) of every timeline frame n, in exact arithmetic: the frames i with
    t - window < i / fps <= t, t = n / timeline_fps (the last: floor(t * fps); the first:
    the one after floor((t - window) * fps), at least 0)."""
    windows = []
    for n in range(1, exact_count(frame_count, fps, timeline_fps) + 1):
        t = n / timeline_fps
        stop = min(frame_count, math.floor(t * fps) + 1)
        first = max(0, math.floor((t - window) * fps) + 1)
        windows.append((first, stop))
    return windows


def exact_actionformer(
    frame_count: int, fps: Fraction, timeline_fps: Fraction, stride: int, clip: int
) -> list[tuple[int, int]] | None:
    """(first, stop) of every clip in exact arithmetic (the frames i with
    a <= i / fps < b: from ceil(a * fps) up to ceil(b * fps)), None when a clip holds no
    frame."""
    count = exact_count(frame_count, fps, timeline_fps)
    if count < clip:
        return [(0, frame_count)]
    windows = []
    for k in range((count - clip) // stride + 1):
        a, b = k * stride / timeline_fps, (k * stride + clip) / timeline_fps
        first, stop = math.ceil(a * fps), min(frame_count, math.ceil(b * fps))
        if stop <= first:
            return None
        windows.append((first, stop))
    return windows


def brute_force(
    frame_count: int, fps: Fraction, low: Fraction, high: Fraction, *, causal: bool
) -> tuple[int, int]:
    """(first, stop) of the frames whose time s has low < s <= high (`causal`) or
    low <= s < high, testing frame by frame."""
    if causal:
        frames = [i for i in range(frame_count) if low < i / fps <= high]
    else:
        frames = [i for i in range(frame_count) if low <= i / fps < high]
    return frames[0], frames[-1] + 1


@given(
    frame_count=st.integers(1, 2000),
    fps=st.sampled_from(RATES),
    timeline_fps=st.sampled_from(TIMELINE_RATES),
    window=st.sampled_from(WINDOW_SECONDS),
)
def test_rulstm_windows_hold_the_frames_exact_arithmetic_gives(
    frame_count: int, fps: Fraction, timeline_fps: Fraction, window: Fraction
) -> None:
    windows = rulstm_windows(
        frame_count, float(fps), timeline_fps=float(timeline_fps), window_sec=float(window)
    )
    assert [(w.first, w.stop) for w in windows] == exact_rulstm(
        frame_count, fps, timeline_fps, window
    )
    assert len(windows) == timeline_frame_count(frame_count, float(fps), float(timeline_fps))
    for n, w in enumerate(windows, start=1):
        t = n / timeline_fps
        assert w.end == round(float(t), 6)
        assert w.start == round(float(max(Fraction(0), t - window)), 6)
        # causal and never empty: every frame at or before t, the first at time >= 0
        assert 0 <= w.first < w.stop <= frame_count
        assert Fraction(w.stop - 1) / fps <= t


@pytest.mark.parametrize("fps", RATES)
@pytest.mark.parametrize("window", WINDOW_SECONDS)
def test_rulstm_windows_frame_by_frame(fps: Fraction, window: Fraction) -> None:
    """Every frame's time tested against the window's bounds (a short video)."""
    frame_count = 130
    windows = rulstm_windows(frame_count, float(fps), window_sec=float(window))
    for n, w in enumerate(windows, start=1):
        t = n / Fraction(30)
        assert (w.first, w.stop) == brute_force(frame_count, fps, t - window, t, causal=True)


@pytest.mark.parametrize("fps", RATES)
def test_actionformer_windows_frame_by_frame(fps: Fraction) -> None:
    frame_count, stride, clip = 400, 5, 12
    windows = actionformer_windows(frame_count, float(fps), stride=stride, clip=clip)
    assert len(windows) == (exact_count(frame_count, fps, Fraction(30)) - clip) // stride + 1
    for k, w in enumerate(windows):
        a, b = Fraction(k * stride, 30), Fraction(k * stride + clip, 30)
        assert (w.first, w.stop) == brute_force(frame_count, fps, a, b, causal=False)


@given(
    frame_count=st.integers(1, 2000),
    fps=st.sampled_from(RATES),
    timeline_fps=st.sampled_from(TIMELINE_RATES),
)
def test_timeline_frame_count_is_the_exact_floor(
    frame_count: int, fps: Fraction, timeline_fps: Fraction
) -> None:
    expected = exact_count(frame_count, fps, timeline_fps)
    assert timeline_frame_count(frame_count, float(fps), float(timeline_fps)) == expected


@given(
    frame_count=st.integers(1, 2000),
    fps=st.sampled_from(RATES),
    timeline_fps=st.sampled_from(TIMELINE_RATES),
    stride=st.integers(1, 20),
    clip=st.integers(1, 40),
)
def test_actionformer_windows_hold_the_frames_exact_arithmetic_gives(
    frame_count: int, fps: Fraction, timeline_fps: Fraction, stride: int, clip: int
) -> None:
    expected = exact_actionformer(frame_count, fps, timeline_fps, stride, clip)
    arguments = dict(timeline_fps=float(timeline_fps), stride=stride, clip=clip)
    if expected is None:  # a clip shorter than the time between two frames
        with pytest.raises(EpicArError, match=r"^clip=FRAMES: .* is shorter than the time"):
            actionformer_windows(frame_count, float(fps), **arguments)  # type: ignore[arg-type]
        return
    windows = actionformer_windows(frame_count, float(fps), **arguments)  # type: ignore[arg-type]
    assert [(w.first, w.stop) for w in windows] == expected
    if exact_count(frame_count, fps, timeline_fps) >= clip:
        for k, w in enumerate(windows):
            # ActionFormer's place for feature k: the centre of its clip
            centre = (k * stride + Fraction(clip, 2)) / timeline_fps
            assert (w.start + w.end) / 2 == pytest.approx(float(centre), abs=1e-6)
            assert w.start == round(float(k * stride / timeline_fps), 6)
    else:
        assert windows == [Window(0.0, round(frame_count / float(fps), 6), 0, frame_count)]


@pytest.mark.parametrize(
    ("frame_count", "fps", "timeline_fps", "window", "n", "expected"),
    [
        (60, 60.0, 30.0, 1.0, 1, Window(0.0, 0.033333, 0, 3)),  # frames 0, 1, 2 (t = 2/60)
        (60, 60.0, 30.0, 1.0, 30, Window(0.0, 1.0, 1, 60)),  # frame 0 is at t - 1 s: out
        (100, 60000 / 1001, 30.0, 0.5, 30, Window(0.5, 1.0, 30, 60)),
        (50, 25.0, 25.0, 1.0, 25, Window(0.0, 1.0, 1, 26)),  # frame 25 at t: in
        # 29.97 fps: frame 1000 is at 1001/30 s exactly, the time of timeline frame 1001
        (1100, 30000 / 1001, 30.0, 1.0, 1001, Window(32.366667, 33.366667, 971, 1001)),
        (1100, 30000 / 1001, 30.0, 1.0, 1000, Window(32.333333, 33.333333, 970, 1000)),
    ],
)
def test_rulstm_windows_by_hand(
    frame_count: int, fps: float, timeline_fps: float, window: float, n: int, expected: Window
) -> None:
    windows = rulstm_windows(frame_count, fps, timeline_fps=timeline_fps, window_sec=window)
    assert windows[n - 1] == expected


def test_rulstm_defaults_and_counts() -> None:
    assert TIMELINE_FPS == 30.0
    windows = rulstm_windows(120, 60.0)  # 2 s: 60 timeline frames, 1 s windows
    assert len(windows) == 60
    assert windows[59] == Window(1.0, 2.0, 61, 120)
    assert rulstm_windows(1, 60.0) == []  # 1/60 s: shorter than one timeline frame
    # a product within 1e-6 of an integer counts as it: 1001 frames at 29.97 fps is 33.4 s
    assert timeline_frame_count(1001, 30000 / 1001) == 1002
    assert timeline_frame_count(1000, 30000 / 1001) == 1001


def test_actionformer_windows_by_hand() -> None:
    # 100 timeline frames (a 60 fps video of 200 frames): (100 - 32) // 16 + 1 = 5 clips
    windows = actionformer_windows(200, 60.0)
    assert [(w.first, w.stop) for w in windows] == [(k * 32, k * 32 + 64) for k in range(5)]
    assert windows[1] == Window(0.533333, 1.6, 32, 96)
    short = actionformer_windows(50, 50.0)  # 30 timeline frames < 32: one window over all
    assert short == [Window(0.0, 1.0, 0, 50)]


def test_rulstm_keys() -> None:
    assert rulstm_key("P01_01", 1) == "P01_01_frame_0000000001.jpg"
    assert rulstm_key("P12_101", 1234567) == "P12_101_frame_0001234567.jpg"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"timeline_fps": 0.0}, r"^timeline_fps=FPS: 0\.0 is not a frame rate > 0$"),
        ({"timeline_fps": float("nan")}, r"^timeline_fps=FPS: nan is not a frame rate > 0$"),
        ({"window_sec": -1.0}, r"^window_sec=SECONDS: -1\.0 is not a number of seconds > 0$"),
        ({"window_sec": float("inf")}, r"^window_sec=SECONDS: inf is not a number of seconds"),
        (
            {"window_sec": 0.01},
            r"^window_sec=SECONDS: 0\.01 s is shorter than the time between "
            r"two frames at 60 fps$",
        ),
    ],
)
def test_bad_rulstm_settings_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(EpicArError, match=message):
        rulstm_windows(100, 60.0, **arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"stride": 0}, r"^stride=FRAMES: 0 is not a number of frames >= 1$"),
        ({"clip": -2}, r"^clip=FRAMES: -2 is not a number of frames >= 1$"),
        ({"clip": 1.5}, r"^clip=FRAMES: 1\.5 is not a number of frames >= 1$"),
        ({"timeline_fps": -30.0}, r"^timeline_fps=FPS: -30\.0 is not a frame rate > 0$"),
        # one timeline frame (1/30 s) holds no frame of a 25 fps video somewhere
        (
            {"clip": 1, "stride": 1},
            r"^clip=FRAMES: 1 frames at 30 fps is shorter than the "
            r"time between two frames at 25 fps$",
        ),
    ],
)
def test_bad_actionformer_settings_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(EpicArError, match=message):
        actionformer_windows(100, 25.0, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame_count", "fps"), [(0, 30.0), (-1, 30.0), (10, 0.0), (10, float("nan"))]
)
def test_sources_without_frames_or_rate_are_refused(frame_count: int, fps: float) -> None:
    for windows in (rulstm_windows, actionformer_windows, timeline_frame_count):
        with pytest.raises(EpicArError, match=r"^no timeline over a source of "):
            windows(frame_count, fps)
