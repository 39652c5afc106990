"""`epic-ar predict`: window arithmetic, scores equal to `epic-ar test`'s for segments made of
the windows' frames, the JSON/CSV/table outputs, published names, and errors."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import sys
import tarfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from epic_ar.annotations.classes import ACTION_TOP_N, class_names
from epic_ar.cli.main import main
from epic_ar.data.decode import decode_frames
from epic_ar.data.video import (
    iterate_frames,
    probe_video,
    resize_to_height,
    resized_width,
    write_video,
)
from epic_ar.data.views import config_view_settings, frames_read_by_views
from epic_ar.errors import EpicArError
from epic_ar.models import load_checkpoint
from epic_ar.prediction.frames import natural_key, open_frame_source
from epic_ar.prediction.outputs import CSV_COLUMNS
from epic_ar.prediction.predict import wanted_frames, window_scores, window_views
from epic_ar.prediction.windows import Window, frame_windows
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset
from epic_ar.training.run_config import parse_data_config
from epic_ar.training.scoring import ScoringOptions, score_split
from helpers.checkpoints import tiny_checkpoint

FPS = 10.0  # of the lossless test video: window boundaries fall on whole frames
DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=1,
    segments_per_video=5,
    frame_width=320,
    frame_height=256,  # as the released frames: predict resizes nothing
    min_frames=5,
    max_frames=9,
    layouts=("official",),
    seed=5,
)


# ---------------------------------------------------------------------------------------------
# Window arithmetic, against exact rational arithmetic on the values as written


def expected_windows(
    frame_count: int, fps: Fraction, window: Fraction, stride: Fraction
) -> list[tuple[Fraction, int, int]]:
    """(start, first frame, stop frame) of every window, by exact arithmetic: window k holds
    the n with k*stride <= n/fps < k*stride + window, kept when (k*stride + window) * fps <=
    frame_count (all its frames exist); else one window of every frame."""
    windows = []
    k = 0
    while (k * stride + window) * fps <= frame_count:
        start = k * stride
        windows.append((start, math.ceil(start * fps), math.ceil((start + window) * fps)))
        k += 1
    return windows or [(Fraction(0), 0, frame_count)]


RATES = [Fraction(10), Fraction(25), Fraction(30000, 1001), Fraction(50), Fraction(60000, 1001),
         Fraction(60), Fraction(24000, 1001)]  # fmt: skip
SECONDS = [Fraction(n, 10) for n in (2, 3, 5, 10, 15, 20, 25, 40)] + [Fraction(1, 4)]


@given(
    fps=st.sampled_from(RATES),
    window=st.sampled_from(SECONDS),
    stride=st.sampled_from([*SECONDS, Fraction(1, 10)]),
    frame_count=st.integers(1, 700),
)
def test_windows_hold_the_frames_exact_arithmetic_gives(
    fps: Fraction, window: Fraction, stride: Fraction, frame_count: int
) -> None:
    windows = frame_windows(frame_count, float(fps), float(window), float(stride))
    expected = expected_windows(frame_count, fps, window, stride)
    assert [(w.first, w.stop) for w in windows] == [(a, b) for _, a, b in expected]
    if window * fps > frame_count:  # shorter than a window: one window of the whole video
        assert windows == [Window(0.0, round(frame_count / float(fps), 6), 0, frame_count)]
    else:
        assert [w.start for w in windows] == [float(s) for s, _, _ in expected]
        assert [w.end for w in windows] == [float(s + window) for s, _, _ in expected]


@pytest.mark.parametrize(
    ("frame_count", "fps", "window", "stride", "expected"),
    [
        # 59.94 fps, 0.1 s steps: frame 6 (0.1001 s) is the first at or after 0.1 s
        (60, 60000 / 1001, 0.5, 0.1, [(0, 30), (6, 36), (12, 42), (18, 48), (24, 54), (30, 60)]),
        (25, 10.0, 1.0, 0.5, [(0, 10), (5, 15), (10, 20), (15, 25)]),
        (24, 10.0, 1.0, 0.5, [(0, 10), (5, 15), (10, 20)]),  # the last would run past the end
        (7, 10.0, 2.0, 1.0, [(0, 7)]),  # shorter than a window: one window of every frame
        (50, 10.0, 1.0, 2.5, [(0, 10), (25, 35)]),  # stride > window: frames 10-24 in none
        (30, 30000 / 1001, 1.0, 1.0, [(0, 30)]),  # 30 frames last 1.001 s: one window
    ],
)
def test_windows_by_hand(
    frame_count: int, fps: float, window: float, stride: float, expected: list[tuple[int, int]]
) -> None:
    assert [(w.first, w.stop) for w in frame_windows(frame_count, fps, window, stride)] == expected


def test_window_times_are_rounded_to_the_microsecond() -> None:
    windows = frame_windows(100, 10.0, 0.5, 0.1)
    assert [w.start for w in windows[:4]] == [0.0, 0.1, 0.2, 0.3]  # not 0.30000000000000004
    assert windows[3].end == 0.8
    short = frame_windows(7, 3.0, 5.0, 1.0)
    assert short == [Window(0.0, 2.333333, 0, 7)]


TOO_SHORT = "shorter than the time between two frames at 10 fps"


@pytest.mark.parametrize(
    ("window", "stride", "message"),
    [
        (0.0, 1.0, "window=SECONDS: 0.0 is not a number of seconds > 0"),
        (-1.0, 1.0, "window=SECONDS: -1.0 is not a number of seconds > 0"),
        (1.0, 0.0, "stride=SECONDS: 0.0 is not a number of seconds > 0"),
        (1.0, math.inf, "stride=SECONDS: inf is not a number of seconds > 0"),
        (0.05, 1.0, "window=SECONDS: 0.05 s is shorter than the time between two frames at 10 fps"),
        (
            1.0,
            1e-9,
            "stride=SECONDS: 1e-09 s is shorter than the time between two frames at 10 fps",
        ),
        (1.0, 0.05, "stride=SECONDS: 0.05 s is shorter than the time between two frames at 10 fps"),
    ],
)
def test_bad_windows_are_refused(window: float, stride: float, message: str) -> None:
    with pytest.raises(EpicArError) as refused:
        frame_windows(100, 10.0, window, stride)
    assert str(refused.value).startswith(message)


# ---------------------------------------------------------------------------------------------
# A tiny checkpoint, a synthetic video as JPEG frames and as a lossless video


class Inputs:
    def __init__(self, root: Path):
        self.root = root
        self.frames_root = root / "frames_official"
        self.frame_folder = self.frames_root / "P01" / "rgb_frames" / "P01_01"
        self.video = root / "P01_01.mkv"
        self.checkpoint = root / "tiny.ckpt"
        self.labels_template = root / "annotations" / "EPIC_100_validation.csv"

    @property
    def frame_count(self) -> int:
        return len(list(self.frame_folder.iterdir()))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """Synthetic frames 320x256 (JPEG, official layout), video P01_01 also as a lossless
    FFV1 video of the decoded JPEGs at 10 fps (video frame n = JPEG frame n + 1), and a
    tiny checkpoint."""
    made = Inputs(tmp_path_factory.mktemp("predict"))
    generate_dataset(made.root, DATA)
    jpegs = [file.read_bytes() for file in sorted(made.frame_folder.iterdir())]
    write_video(made.video, list(decode_frames(jpegs)), FPS, codec="ffv1")
    tiny_checkpoint(made.checkpoint)
    return made


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    status = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# predict scores a window as test scores a segment of the same frames


@pytest.mark.slow
def test_window_scores_equal_test_scores_of_the_same_frames(inputs: Inputs, tmp_path: Path) -> None:
    assert probe_video(inputs.video).frame_count == inputs.frame_count == 55
    model, config = load_checkpoint(inputs.checkpoint)
    source = open_frame_source(inputs.video)
    windows = frame_windows(source.frame_count, source.fps, 1.6, 0.7)
    assert len(windows) == 6 and windows[1].first == 7 and windows[1].stop == 23
    for clips, crops in [(1, 1), (2, 3)]:
        predicted = window_scores(
            model, config, source, windows, clips=clips, crops=crops, batch_size=4, device="cpu"
        )
        # one segment per window: frame n of the video is JPEG frame n + 1
        template = pd.read_csv(inputs.labels_template).iloc[0].to_dict()
        rows = [
            {**template, "narration_id": f"P01_01_w{i}", "participant_id": "P01",
             "video_id": "P01_01", "start_frame": w.first + 1, "stop_frame": w.stop}
            for i, w in enumerate(windows)
        ]  # fmt: skip
        labels = tmp_path / f"windows_{clips}_{crops}.csv"
        pd.DataFrame(rows).to_csv(labels, index=False)
        options = ScoringOptions(
            split="val",
            frames_dir=inputs.frames_root,
            labels=labels,
            batch_size=3,
            clips=clips,
            crops=crops,
            accelerator="cpu",
            workers=0,
        )
        tested = score_split(model, config, options)
        assert predicted.shape == tested.scores.shape == (6, 397)
        assert predicted.dtype == np.float32
        scale = float(np.abs(tested.scores).max())
        np.testing.assert_allclose(predicted, tested.scores, rtol=0, atol=1e-5 * scale)
        assert not np.allclose(predicted[0], predicted[1], atol=1e-3)  # windows differ


@pytest.mark.slow
def test_a_folder_of_frames_scores_as_the_video(inputs: Inputs) -> None:
    model, config = load_checkpoint(inputs.checkpoint)
    video = open_frame_source(inputs.video)
    folder = open_frame_source(inputs.frame_folder, fps=FPS)
    assert (folder.fps, folder.frame_count) == (video.fps, video.frame_count)
    windows = frame_windows(video.frame_count, FPS, 2.0, 1.0)
    from_video = window_scores(model, config, video, windows, device="cpu")
    from_folder = window_scores(model, config, folder, windows, device="cpu")
    np.testing.assert_array_equal(from_folder, from_video)  # the same pixels: FFV1 is lossless


def test_frames_are_resized_to_256_high_as_the_video_decoder_resizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(3, 12, 16, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(coarse, 10, axis=1), 10, axis=2)  # 3 frames 120x160
    video = write_video(tmp_path / "small.mkv", list(frames), 5.0, codec="ffv1")
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"f{i}.png")
    from_folder = [frame for _, frame in open_frame_source(folder, fps=5.0).frames()]
    from_video = list(iterate_frames(video, height=256))
    width = resized_width(160, 120, 256)
    assert width == 342
    for mine, theirs in zip(from_folder, from_video, strict=True):
        assert mine.shape == theirs.shape == (256, 342, 3)
        # the same scaler (FFmpeg's swscale, bicubic) as the video decoder's, the same pixels
        np.testing.assert_array_equal(mine, theirs)
    first = frames[0]
    assert resize_to_height(first, 120) is first  # already that high: untouched


def test_frame_files_are_sorted_by_name_with_numbers_as_numbers() -> None:
    names = ["frame_10.jpg", "frame_2.jpg", "frame_1.jpg", "a.png", "frame_02b.jpg"]
    assert sorted(names, key=natural_key) == [
        "a.png", "frame_1.jpg", "frame_2.jpg", "frame_02b.jpg", "frame_10.jpg",
    ]  # fmt: skip


def test_only_the_sampled_frames_are_kept_and_decoding_stops_after_the_last_window() -> None:
    data = parse_data_config({"frame_count": 3, "preprocessing": {"input_size": 8},
                              "test_augmentation": {"rescale_size": 8}})  # fmt: skip
    settings = config_view_settings(data)
    # test-mode offsets of 3 parts of 10 frames: int(10/3 * (t + 0.5)) = 1, 5, 8
    assert frames_read_by_views(10, settings).tolist() == [1, 5, 8]
    windows = frame_windows(95, 10.0, 1.0, 1.0)  # 9 windows of frames 0-89
    pulled: list[int] = []

    def frames() -> Any:
        for number in range(95):
            pulled.append(number)
            yield number, np.full((8, 8, 3), number, np.uint8)

    views = [v for v, _ in window_views(frames(), windows, settings)]
    # the last window (frames 80-89) samples 81, 85, 88: frames 89-94 are never decoded
    assert len(views) == 9 and pulled[-1] == 88
    assert wanted_frames(windows, settings) == {w.first + i for w in windows for i in (1, 5, 8)}
    for window, view in zip(windows, views, strict=True):
        assert view[:, 0, 0, 0].tolist() == [window.first + 1, window.first + 5, window.first + 8]
    short = ((n, np.zeros((8, 8, 3), np.uint8)) for n in range(85))  # fewer frames than its table
    with pytest.raises(EpicArError) as ended:
        list(window_views(short, windows, settings, name="v.mp4"))
    assert str(ended.value) == ("v.mp4: ended after 85 frames, before the end of window 8-9 s")


def test_the_parser_imports_no_torch() -> None:
    # `epic-ar predict --help` starts fast: torch is imported when the command runs
    code = (
        "import sys; from epic_ar.cli.main import build_parser; build_parser('predict'); "
        "print(','.join(m for m in ('torch', 'lightning', 'av') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------
# Outputs


def softmax(scores: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(scores).double(), dim=-1).numpy()


@pytest.mark.slow
def test_json_output_layout_and_values(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    status, stdout, err = run(
        capsys, inputs.checkpoint, inputs.video, "--window", 1.5, "--stride", 0.5, "--top-k", 4,
        "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert status == 0, err
    document = json.loads(out.read_text())
    assert list(document) == ["video", "fps", "frames", "model", "window", "stride", "windows"]
    assert document["video"] == str(inputs.video) and document["model"] == str(inputs.checkpoint)
    assert (document["fps"], document["frames"]) == (10.0, 55)
    assert (document["window"], document["stride"]) == (1.5, 0.5)
    windows = frame_windows(55, FPS, 1.5, 0.5)
    assert len(document["windows"]) == len(windows) == 9
    model, config = load_checkpoint(inputs.checkpoint)
    scores = window_scores(model, config, open_frame_source(inputs.video), windows, device="cpu")
    verb_names, noun_names = class_names("verb"), class_names("noun")
    for entry, window, row in zip(document["windows"], windows, scores, strict=True):
        assert list(entry) == ["start", "end", "verbs", "nouns", "actions"]
        assert (entry["start"], entry["end"]) == (window.start, window.end)
        verb_p, noun_p = softmax(row[:97]), softmax(row[97:])
        for key, p, names in [("verbs", verb_p, verb_names), ("nouns", noun_p, noun_names)]:
            listed = entry[key]
            assert len(listed) == 4
            for class_id, name, probability in listed:
                assert isinstance(class_id, int) and isinstance(name, str)
                assert name == names[class_id] and 0 <= probability <= 1
                assert probability == pytest.approx(p[class_id], rel=1e-9)
            assert [c[0] for c in listed] == np.argsort(-p, kind="stable")[:4].tolist()
        # actions: the best products among the top-100 verbs x top-100 nouns
        products = verb_p[:, None] * noun_p[None, :]
        candidates = np.zeros_like(products, dtype=bool)
        top_verbs = np.argsort(-row[:97], kind="stable")[:ACTION_TOP_N]
        top_nouns = np.argsort(-row[97:], kind="stable")[:ACTION_TOP_N]
        candidates[np.ix_(top_verbs, top_nouns)] = True
        best = np.argsort(-np.where(candidates, products, -1).ravel(), kind="stable")[:4]
        assert [(a[0], a[1]) for a in entry["actions"]] == [divmod(int(i), 300) for i in best]
        for verb, noun, name, probability in entry["actions"]:
            assert name == f"{verb_names[verb]} {noun_names[noun]}"
            assert probability == pytest.approx(verb_p[verb] * noun_p[noun], rel=1e-9)
        for key in ("verbs", "nouns", "actions"):
            ps = [item[-1] for item in entry[key]]
            assert ps == sorted(ps, reverse=True)
    summary, written = stdout.strip().splitlines()
    assert re.fullmatch(
        re.escape(f"{inputs.video}: 9 windows of 1.5 s every 0.5 s (55 frames at 10 fps) "
                  f"scored by {inputs.checkpoint} in ") + r"\d+\.\d s",
        summary,
    )  # fmt: skip
    assert written == f"predictions: {out}"
    assert "9/9 windows" in err  # the progress line


@pytest.mark.slow
def test_csv_output_has_a_row_per_window_and_rank(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    as_json, as_csv = tmp_path / "p.json", tmp_path / "p.csv"
    for out in (as_json, as_csv):
        status, _, err = run(capsys, inputs.checkpoint, inputs.video, "--top-k", 3, "--out", out)
        assert status == 0, err
    document = json.loads(as_json.read_text())
    with as_csv.open() as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 3 * len(document["windows"]) == 1 + 3 * 4
    for index, row in enumerate(rows[1:]):
        window = document["windows"][index // 3]
        rank = index % 3
        verb, noun, action = window["verbs"][rank], window["nouns"][rank], window["actions"][rank]
        assert row == [
            str(window["start"]), str(window["end"]), str(rank + 1),
            str(verb[0]), verb[1], repr(verb[2]), str(noun[0]), noun[1], repr(noun[2]),
            str(action[0]), str(action[1]), action[2], repr(action[3]),
        ]  # fmt: skip


@pytest.mark.slow
def test_the_table_printed_without_out(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    assert run(capsys, inputs.checkpoint, inputs.video, "--out", out)[0] == 0
    document = json.loads(out.read_text())
    status, stdout, _ = run(capsys, inputs.checkpoint, inputs.video)
    assert status == 0
    lines = stdout.rstrip().splitlines()
    assert lines[0].split() == ["start", "end", "action", "p", "verb", "p", "noun", "p"]
    assert len(lines) == 1 + len(document["windows"]) + 1  # header, windows, summary
    for line, window in zip(lines[1:-1], document["windows"], strict=True):
        verb, noun, action = window["verbs"][0], window["nouns"][0], window["actions"][0]
        expected = [f"{window['start']:.2f}", f"{window['end']:.2f}", *action[2].split(),
                    f"{action[3]:.3f}", *verb[1].split(), f"{verb[2]:.3f}", *noun[1].split(),
                    f"{noun[2]:.3f}"]  # fmt: skip
        assert line.split() == expected
    assert lines[-1].startswith(f"{inputs.video}: 4 windows of 2 s every 1 s (55 frames")


@pytest.mark.slow
def test_timeline_and_annotated_video(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from epic_ar.visualize.timeline import TIMELINE_SIZE

    timeline, annotated = tmp_path / "t.png", tmp_path / "v.mp4"
    status, stdout, err = run(
        capsys, inputs.checkpoint, inputs.frame_folder, "--fps", FPS, "--timeline", timeline,
        "--video-out", annotated,
    )  # fmt: skip
    assert status == 0, err
    with Image.open(timeline) as picture:
        assert picture.size == TIMELINE_SIZE
    info = probe_video(annotated)
    assert (info.frame_count, info.width, info.height, info.fps) == (55, 320, 256, FPS)
    assert stdout.rstrip().splitlines()[-2:] == [
        f"timeline: {timeline}",
        f"annotated video: {annotated}",
    ]


def test_the_annotated_video_shows_three_actions_whatever_the_top_k(
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from epic_ar.visualize import annotated_video

    drawn: list[list[str]] = []
    window_lines = annotated_video.window_lines

    def recorded(window: Any) -> list[str]:
        drawn.append(window_lines(window))
        return drawn[-1]

    monkeypatch.setattr(annotated_video, "window_lines", recorded)
    out, video = tmp_path / "p.json", tmp_path / "v.mp4"
    status, _, err = run(
        capsys, inputs.checkpoint, inputs.frame_folder, "--fps", FPS, "--top-k", "1",
        "--out", out, "--video-out", video,
    )  # fmt: skip
    assert status == 0, err
    assert drawn and all(len(lines) == 1 + 3 for lines in drawn)  # time span + 3 actions
    windows = json.loads(out.read_text())["windows"]
    assert all(len(w[key]) == 1 for w in windows for key in ("verbs", "nouns", "actions"))


def test_a_failing_annotated_video_leaves_no_output_behind(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "frames"
    shutil.copytree(inputs.frame_folder, folder)
    last = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))[-1]
    last.write_bytes(b"not a JPEG")  # a frame no window samples: only --video-out reads it
    outputs = [tmp_path / "p.json", tmp_path / "t.png", tmp_path / "v.mp4"]
    status, _, err = run(
        capsys, inputs.checkpoint, folder, "--fps", FPS, "--out", outputs[0],
        "--timeline", outputs[1], "--video-out", outputs[2],
    )  # fmt: skip
    assert status == 1 and f"{last}: not a readable frame" in err
    assert [path.exists() for path in outputs] == [False, False, False]


# ---------------------------------------------------------------------------------------------
# Published names


@pytest.mark.slow
def test_published_name_from_the_cache_or_fetched_once(
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "epic-ar" / "checkpoints" / "tsn_rgb.ckpt"
    mirror = tiny_checkpoint(tmp_path / "mirror.ckpt", seed=1)  # a TSN RGB: passes the check
    out = tmp_path / "p.json"
    status, _, err = run(capsys, "tsn_rgb", inputs.video, "--out", out, "--url", f"file://{mirror}")
    assert status == 0, err
    assert cached.read_bytes() == mirror.read_bytes()
    first = json.loads(out.read_text())
    assert first["model"] == "tsn_rgb"
    mirror.unlink()  # from now on, the cached copy is used
    status, _, err = run(capsys, "tsn_rgb", inputs.video, "--out", out, "--force")
    assert status == 0, err
    assert json.loads(out.read_text()) == first
    # a cache filled by hand is used as it is
    tiny_checkpoint(cached, seed=2)
    status, _, err = run(capsys, "tsn_rgb", inputs.video, "--out", out, "--force")
    assert status == 0, err
    assert json.loads(out.read_text())["windows"] != first["windows"]


# ---------------------------------------------------------------------------------------------
# Errors: one line, exit 1 (argparse: exit 2), nothing written


def test_errors_are_one_line(
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text_video = tmp_path / "notes.mp4"
    text_video.write_text("not a video\n")
    flow = tiny_checkpoint(tmp_path / "flow.ckpt", "tsn_flow")
    existing = tmp_path / "existing.json"
    existing.write_text("keep me")
    ckpt, video = inputs.checkpoint, inputs.video
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    jpegs = sorted(inputs.frame_folder.glob("*.jpg"))[:3]
    with tarfile.open(pictures / "frames.tar", "w") as archive:  # as EPIC's frame archives
        for jpeg in jpegs:
            archive.add(jpeg, arcname=f"./{jpeg.name}")
    Image.new("RGB", (64, 48)).save(pictures / "one.png")
    clip = pictures / "clip.mp4"
    clip.write_bytes(video.read_bytes())
    cases: list[tuple[list[object], str]] = [
        ([ckpt, tmp_path / "none.mp4"], f"{tmp_path / 'none.mp4'}: no such video file"),
        ([ckpt, text_video], f"{text_video}: not a readable video ("),
        (
            [flow, video],
            f"{flow}: a flow model; raw video has no optical flow: predict runs RGB models only",
        ),
        (["tsm_flow", video], "tsm_flow: a flow model; raw video has no optical flow"),
        (
            [ckpt, inputs.frame_folder],
            f"{inputs.frame_folder}: a folder of frames; give its frame rate with --fps FPS",
        ),
        (
            [ckpt, video, "--fps", 25],
            f"{video}: a video file plays at its own frame rate; "
            "--fps FPS is for a folder of frames",
        ),
        ([ckpt, tmp_path], f"{tmp_path}: a folder holding no JPEG or PNG frames"),
        (
            ["tsm_rbg", video],
            "tsm_rbg: no such checkpoint file, nor a published model "
            "(trn_flow, trn_rgb, tsm_flow, tsm_rgb, tsn_flow, tsn_rgb)",
        ),
        ([ckpt, video, "--url", "file:///x"], "--url URL is for a published model name"),
        (
            [ckpt, video, "--out", tmp_path / "p.txt"],
            f"{tmp_path / 'p.txt'}: predictions are written as .json or .csv; give a name "
            "ending in .json or .csv",
        ),
        (
            [ckpt, video, "--timeline", tmp_path / "t.jpg"],
            f"{tmp_path / 't.jpg'}: the timeline is a PNG picture",
        ),
        (
            [ckpt, video, "--out", existing],
            f"{existing}: already exists; pass --force to overwrite it",
        ),
        (
            [ckpt, video, "--window", 0.05],
            "--window SEC: 0.05 s is shorter than the time between two frames at 10 fps",
        ),
        (
            [ckpt, clip, "--video-out", clip, "--force"],
            f"{clip}: is the input video; write the outputs to other files",
        ),
        (
            [ckpt, pictures / "frames.tar"],
            f"{pictures / 'frames.tar'}: holds pictures, not a video (FFmpeg reads it as mjpeg)",
        ),
        (
            [ckpt, pictures / "one.png"],
            f"{pictures / 'one.png'}: holds pictures, not a video (FFmpeg reads it as png_pipe)",
        ),
    ]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cases.append(
        (
            [ckpt, video, "--device", "cuda"],
            "no CUDA device is available here; pass --device cpu or leave it out",
        )
    )
    for args, message in cases:
        status, stdout, err = run(capsys, *args)
        assert status == 1, (args, err)
        assert error_line(err).startswith(f"epic-ar predict: error: {message}"), err
        assert stdout == ""
    assert existing.read_text() == "keep me"
    assert clip.read_bytes() == video.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == [
        "existing.json",
        "flow.ckpt",
        "notes.mp4",
        "pictures",
    ]
    assert sorted(p.name for p in pictures.iterdir()) == ["clip.mp4", "frames.tar", "one.png"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--window", "0"], "argument --window: 0 is not a number > 0"),
        (["--stride", "-1"], "argument --stride: -1 is not a number > 0"),
        (["--top-k", "0"], "argument --top-k: 0 is not an integer >= 1"),
        (["--crops", "2"], "argument --crops: invalid choice: 2"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    ],
)
def test_bad_flags_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "tsn_rgb", str(tmp_path / "v.mp4"), *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
