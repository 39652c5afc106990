"""`predict`'s pictures: the timeline PNG and the annotated video, from hand-built predictions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from epic_ar.data.video import probe_video
from epic_ar.errors import EpicArError
from epic_ar.prediction.result import ActionScore, ClassScore, VideoPrediction, WindowPrediction
from epic_ar.visualize.annotated_video import (
    annotated_frames,
    window_lines,
    write_annotated_video,
)
from epic_ar.visualize.timeline import (
    NOUN_ROW,
    TIMELINE_SIZE,
    VERB_ROW,
    Band,
    class_colour,
    merged_bands,
    nearest_windows,
    window_spans,
    write_timeline,
)

VERBS = {0: "take", 1: "put", 2: "wash", 3: "open"}
NOUNS = {10: "cup", 11: "plate", 12: "tap"}


def window(
    start: float, end: float, verb: int, noun: int, p_verb: float, p_noun: float
) -> WindowPrediction:
    """A window whose top-1 verb and noun are `verb`, `noun`; runners-up share the rest."""
    others_v = [v for v in VERBS if v != verb][:2]
    others_n = [n for n in NOUNS if n != noun][:2]
    verbs = [ClassScore(verb, VERBS[verb], p_verb)] + [
        ClassScore(v, VERBS[v], (1 - p_verb) / 4) for v in others_v
    ]
    nouns = [ClassScore(noun, NOUNS[noun], p_noun)] + [
        ClassScore(n, NOUNS[n], (1 - p_noun) / 4) for n in others_n
    ]
    actions = sorted(
        (ActionScore(v.id, n.id, f"{v.name} {n.name}", v.p * n.p) for v in verbs for n in nouns),
        key=lambda a: -a.p,
    )
    return WindowPrediction(start, end, verbs, nouns, actions)


# 4 windows of 2 s every 1 s over a 5.5 s video at 10 fps (the last 0.5 s in no window).
PLAN = [(0, 10, 0.9, 0.8), (0, 10, 0.5, 0.9), (2, 11, 0.95, 0.3), (3, 12, 0.7, 1.0)]
PREDICTION = VideoPrediction(
    video="kitchen.mp4",
    fps=10.0,
    frames=55,
    model="tsm_rgb",
    window=2.0,
    stride=1.0,
    windows=[window(k, k + 2, *plan) for k, plan in enumerate(PLAN)],
)


def brute_force_nearest(times: list[float], centres: list[float]) -> list[int]:
    """The first index of the smallest |t - c|, by looking at every centre."""
    return [min(range(len(centres)), key=lambda i: (abs(t - centres[i]), i)) for t in times]


# --- which window speaks for an instant ---------------------------------------------------


def test_nearest_window_by_hand() -> None:
    # Centres 1, 2, 3: the turns are at 1.5 and 2.5 (ties go to the earlier window).
    times = np.arange(20) / 4  # 0, 0.25, ..., 4.75
    expected = [0] * 7 + [1] * 4 + [2] * 9
    assert nearest_windows(times, np.array([1.0, 2.0, 3.0])).tolist() == expected


# Quarters and eighths: exact in floating point, so ties are real ties (ties between
# centres closer than the rounding of t - c are a matter of rounding, not of the rule).
QUARTERS = st.integers(-400, 400).map(lambda i: i / 4)
EIGHTHS = st.integers(-900, 900).map(lambda i: i / 8)


@given(st.lists(QUARTERS, min_size=1, max_size=8), st.lists(EIGHTHS, min_size=1, max_size=30))
def test_nearest_window_is_the_nearest_centre(centres: list[float], times: list[float]) -> None:
    centres = sorted(centres)  # duplicates too
    got = nearest_windows(np.array(times), np.array(centres)).tolist()
    assert got == brute_force_nearest(times, centres)


@given(
    fps=st.sampled_from([10.0, 29.97, 50.0, 59.94]),
    window_s=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    stride=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    count=st.integers(1, 12),
)
def test_every_frame_gets_the_nearest_window(
    fps: float, window_s: float, stride: float, count: int
) -> None:
    centres = [k * stride + window_s / 2 for k in range(count)]
    times = [n / fps for n in range(round((count * stride + window_s + 1) * fps))]
    assert nearest_windows(np.array(times), np.array(centres)).tolist() == (
        brute_force_nearest(times, centres)
    )


def test_window_spans_split_at_midpoints() -> None:
    spans = window_spans(np.array([1.0, 2.0, 3.0]), duration=5.5)
    assert spans.tolist() == [[0.0, 1.5], [1.5, 2.5], [2.5, 5.5]]
    one = window_spans(np.array([0.7]), duration=1.4)  # a video shorter than one window
    assert one.tolist() == [[0.0, 1.4]]


def test_consecutive_windows_with_one_class_make_one_band() -> None:
    best = [ClassScore(0, "take", 0.9), ClassScore(0, "take", 0.4), ClassScore(2, "wash", 0.5)]
    spans = np.array([[0.0, 1.5], [1.5, 2.5], [2.5, 4.0]])
    assert merged_bands(best, spans) == [Band(0, "take", 0.0, 2.5), Band(2, "wash", 2.5, 4.0)]


def test_class_colours_are_fixed_and_tell_the_verbs_apart() -> None:
    colours = [class_colour(i) for i in range(97)]
    assert colours == [class_colour(i) for i in range(97)]
    as_bytes = {tuple(round(255 * c) for c in colour) for colour in colours}
    assert len(as_bytes) == 97
    assert all(0 <= c <= 1 for colour in colours for c in colour)


# --- the timeline -------------------------------------------------------------------------


def pixel(
    picture: np.ndarray, row: tuple[float, float, float, float], t: float, height: float
) -> np.ndarray:
    """The pixel at time `t` (s, of PREDICTION's 5.5) and `height` (0 bottom .. 1 top) of an
    axes box (left, bottom, width, height as fractions of the figure)."""
    left, bottom, width, box_height = row
    x = TIMELINE_SIZE[0] * (left + width * t / 5.5)
    y = TIMELINE_SIZE[1] * (1 - (bottom + box_height * height))
    return np.asarray(picture[int(y), int(x)], dtype=int)


def over_white(colour: tuple[float, float, float], p: float) -> np.ndarray:
    return np.array([255 * (1 - p + p * c) for c in colour])


def test_timeline_size_bands_and_names(tmp_path: Path) -> None:
    path = write_timeline(PREDICTION, tmp_path / "timeline.png")
    with Image.open(path) as image:
        assert image.size == (1600, 400) == TIMELINE_SIZE
        picture = np.asarray(image.convert("RGB"))
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20  # not blank
    # Centres 1, 2, 3, 4: window k shows from k + 0.5 to k + 1.5 (the first from 0, the last
    # to 5.5). Near the top of each row, away from the names written at mid-height.
    for t, k in ((0.2, 0), (1.0, 0), (2.0, 1), (3.0, 2), (4.0, 3), (5.3, 3)):
        verb, noun, p_verb, p_noun = PLAN[k]
        got_verb = pixel(picture, VERB_ROW, t, 0.9)
        got_noun = pixel(picture, NOUN_ROW, t, 0.9)
        assert np.abs(got_verb - over_white(class_colour(verb), p_verb)).max() <= 2, (t, k)
        assert np.abs(got_noun - over_white(class_colour(noun), p_noun)).max() <= 2, (t, k)
    # "take" covers 0-2.5 s (two windows, one band), its name written in the middle.
    middle = [pixel(picture, VERB_ROW, t, h) for t in np.linspace(1.0, 1.5, 40)
              for h in np.linspace(0.4, 0.6, 15)]  # fmt: skip
    assert min(int(m.sum()) for m in middle) < 200  # dark text on a light band


def test_timeline_writes_only_pngs_and_keeps_files(tmp_path: Path) -> None:
    for name in ("timeline.jpg", "timeline"):
        with pytest.raises(EpicArError) as caught:
            write_timeline(PREDICTION, tmp_path / name)
        message = str(caught.value)
        assert "\n" not in message and name in message and ".png" in message
        assert not (tmp_path / name).exists()
    existing = tmp_path / "old.png"
    existing.write_bytes(b"keep")
    with pytest.raises(EpicArError, match="already exists"):
        write_timeline(PREDICTION, existing)
    assert existing.read_bytes() == b"keep"
    write_timeline(PREDICTION, existing, force=True)
    assert existing.read_bytes().startswith(b"\x89PNG")


def test_timeline_of_no_windows_is_refused(tmp_path: Path) -> None:
    empty = VideoPrediction("v.mp4", 10.0, 5, "m", 2.0, 1.0, [])
    with pytest.raises(EpicArError, match="no windows"):
        write_timeline(empty, tmp_path / "t.png")
    assert list(tmp_path.iterdir()) == []


# --- the annotated video ------------------------------------------------------------------

HEIGHT, WIDTH = 96, 160
FAR_FROM_BOX = (slice(72, None), slice(None)), (slice(None), slice(120, None))  # rows, columns


def input_frames(count: int, height: int = HEIGHT, width: int = WIDTH) -> Iterator[np.ndarray]:
    """Bright smooth frames (small H.264 error), each a little different."""
    ramp = np.linspace(150, 230, width)[None, :, None] * np.ones((height, 1, 3))
    for n in range(count):
        yield np.clip(ramp + (n % 10), 0, 255).astype(np.uint8)


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_window_lines() -> None:
    actions = [
        ActionScore(2, 11, "wash plate", 0.62),
        ActionScore(2, 10, "wash cup", 0.2),
        ActionScore(2, 12, "wash tap", 0.1),
        ActionScore(0, 11, "take plate", 0.05),
    ]
    lines = window_lines(WindowPrediction(2.0, 4.0, [], [], actions))
    assert lines == ["2-4 s", "1. wash plate  0.62", "2. wash cup  0.20", "3. wash tap  0.10"]
    noisy = WindowPrediction(0.25, 0.25 + 2.0000000000000004, [], [], actions[:1])
    assert window_lines(noisy) == ["0.25-2.25 s", "1. wash plate  0.62"]


def test_each_frame_shows_the_nearest_window() -> None:
    still = next(input_frames(1))
    count = PREDICTION.frames
    out = list(annotated_frames(PREDICTION, (still for _ in range(count))))
    centres = [(w.start + w.end) / 2 for w in PREDICTION.windows]
    expected = brute_force_nearest([n / PREDICTION.fps for n in range(count)], centres)
    box = (slice(0, 60), slice(0, 120))
    # The input never changes, so two frames' boxes are equal exactly when they show the
    # same window (every window's text differs).
    for n in range(count):
        for m in range(count):
            same = np.array_equal(out[n][box], out[m][box])
            assert same == (expected[n] == expected[m]), (n, m)
    assert expected[-1] == 3 and expected[count - 6] == 3  # the uncovered end: last window
    assert all(np.array_equal(o[FAR_FROM_BOX[0]], still[FAR_FROM_BOX[0]]) for o in out)
    assert all(np.array_equal(o[FAR_FROM_BOX[1]], still[FAR_FROM_BOX[1]]) for o in out)


def test_annotated_video_frames_size_and_pixels(tmp_path: Path) -> None:
    path = tmp_path / "annotated.mp4"
    assert write_annotated_video(PREDICTION, input_frames(PREDICTION.frames), path) == path
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (PREDICTION.frames, WIDTH, HEIGHT)
    assert info.fps == pytest.approx(PREDICTION.fps)
    decoded = decode(path).astype(int)
    original = np.stack(list(input_frames(PREDICTION.frames))).astype(int)
    for rows, columns in FAR_FROM_BOX:  # the codec's error only
        error = np.abs(decoded[:, rows, columns] - original[:, rows, columns])
        assert error.mean() < 1.5 and error.max() <= 12
    box = np.abs(decoded[:, 4:50, 4:60] - original[:, 4:50, 4:60])
    assert box.mean() > 50  # darkened by the box, text drawn


def test_odd_frame_sizes_are_padded_to_even(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    write_annotated_video(PREDICTION, input_frames(12, 63, 95), path)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (12, 96, 64)


def test_annotated_video_bad_paths(tmp_path: Path) -> None:
    for name in ("out.avi", "out"):
        with pytest.raises(EpicArError) as caught:
            write_annotated_video(PREDICTION, input_frames(3), tmp_path / name)
        message = str(caught.value)
        assert "\n" not in message and name in message and ".mp4" in message
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"keep")
    with pytest.raises(EpicArError, match="already exists"):
        write_annotated_video(PREDICTION, input_frames(3), existing)
    assert existing.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mp4"]


def test_no_partial_video_when_frames_fail(tmp_path: Path) -> None:
    def failing() -> Iterator[np.ndarray]:
        yield from input_frames(20)
        raise EpicArError("kitchen.mp4: decoding failed (broken packet)")

    path = tmp_path / "out.mp4"
    with pytest.raises(EpicArError, match="broken packet"):
        write_annotated_video(PREDICTION, failing(), path)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ([], "no frames"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], "frame 1"),
        ([np.zeros((8, 8), np.uint8)], "frame 0"),
        ([np.zeros((8, 8, 3), np.float32)], "frame 0"),
    ],
)
def test_bad_frames_give_one_line(tmp_path: Path, frames: list[np.ndarray], words: str) -> None:
    with pytest.raises(EpicArError) as caught:
        write_annotated_video(PREDICTION, iter(frames), tmp_path / "out.mp4")
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
