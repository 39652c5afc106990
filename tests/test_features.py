"""`epic-ar features`: segment features equal pooled features computed independently;
timeline features equal segment features of the same windows; causality; what RULSTM's
and ActionFormer's readers ask for is there; a killed run resumes to the same output."""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pandas as pd
import pytest
import torch

from epic_ar.annotations.labels import read_annotations
from epic_ar.cli.main import main
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.features.extract import FeatureOptions
from epic_ar.features.run import extract_features
from epic_ar.gulp.jpeg import encode_jpeg
from epic_ar.models import load_checkpoint
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset
from epic_ar.training.run_config import parse_data_config
from epic_ar.training.scoring import ScoringOptions, with_frame_source
from epic_ar.training.scoring import test_dataset as build_test_dataset
from helpers.checkpoints import tiny_checkpoint

DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=2,
    segments_per_video=4,
    frame_width=64,
    frame_height=48,
    min_frames=8,
    max_frames=20,
    layouts=("official", "videos"),
    seed=7,
)
VIDEO = "P01_01"  # a 2018 video: released frames at 60 fps


@dataclass(frozen=True)
class Inputs:
    root: Path

    @property
    def frames(self) -> Path:
        return self.root / "frames_official"

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def labels(self) -> Path:
        return self.root / "annotations" / "EPIC_100_validation.csv"

    def checkpoint(self, name: str) -> Path:
        return self.root / f"{name}.ckpt"

    def frame_count(self, video: str = VIDEO) -> int:
        return len(list((self.frames / video[:3] / "rgb_frames" / video).iterdir()))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    made = Inputs(tmp_path_factory.mktemp("features"))
    generate_dataset(made.root, DATA)
    tiny_checkpoint(made.checkpoint("tsn_rgb"))
    tiny_checkpoint(made.checkpoint("tsm_rgb"), "tsm_rgb", frame_count=4)
    tiny_checkpoint(made.checkpoint("tsn_flow"), "tsn_flow")
    return made


def options(fmt: str, **changes: Any) -> FeatureOptions:
    settings: dict[str, Any] = {"workers": 0, "device": "cpu", "progress": False,
                                "batch_size": 4, **changes}  # fmt: skip
    return FeatureOptions(format=fmt, **settings)  # type: ignore[arg-type]


def read_lmdb(path: Path) -> dict[str, np.ndarray]:
    """Every feature key of a database, read as RULSTM reads one (read-only, no lock)."""
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {
                key.decode(): np.frombuffer(value, "float32")
                for key, value in txn.cursor()
                if not key.startswith(b"__epic_ar__")
            }
    finally:
        env.close()


def read_segments(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return dict(zip(stored["narration_id"].tolist(), stored["features"], strict=True))


def window_labels(inputs: Inputs, tmp_path: Path, windows: list[tuple[int, int]]) -> Path:
    """A label file of one segment per window (first, last source frame, 0-based) of
    `VIDEO`: released frame k is source frame k - 1."""
    template = pd.read_csv(inputs.labels).iloc[0].to_dict()
    rows = [{**template, "narration_id": f"{VIDEO}_w{i}", "participant_id": VIDEO[:3],
             "video_id": VIDEO, "start_frame": first + 1, "stop_frame": last + 1}
            for i, (first, last) in enumerate(windows)]  # fmt: skip
    for row in rows:
        row.pop("start_timestamp", None)
        row.pop("stop_timestamp", None)
    path = tmp_path / "windows.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------
# Values


def test_segment_features_are_the_classifier_inputs_averaged_over_time(
    inputs: Inputs, tmp_path: Path
) -> None:
    checkpoint = inputs.checkpoint("tsm_rgb")
    out = tmp_path / "segments.npz"
    extract_features(checkpoint, out, options("segments", frames_dir=inputs.frames,
                                              labels=inputs.labels))  # fmt: skip
    with np.load(out) as stored:  # no pickles: loads with allow_pickle=False
        names, features = stored["narration_id"], stored["features"]
    expected_names = read_annotations(inputs.labels).index.astype(str).tolist()
    assert names.tolist() == expected_names and features.dtype == np.float32
    # independently: the test views as `epic-ar test` builds them, through the model's own
    # forward, catching what goes into the classifier (before dropout: eval mode)
    model, config = load_checkpoint(checkpoint)
    model.eval()
    data = parse_data_config(dict(config["data"]))
    scoring = ScoringOptions(split="val", frames_dir=inputs.frames, labels=inputs.labels)
    dataset = build_test_dataset(with_frame_source(data, "rgb", scoring), "rgb", scoring)
    normalize = EpicDataModule(data, modality="rgb", batch_size=1).normalize
    caught: list[torch.Tensor] = []
    assert model.new_fc is not None
    model.new_fc.register_forward_pre_hook(lambda _, args: caught.append(args[0]))
    for index in range(len(dataset)):
        with torch.no_grad():
            model(normalize(dataset[index][0][None]))
        expected = caught[-1].reshape(4, -1).mean(dim=0).numpy()  # [T, 512] -> [512]
        np.testing.assert_allclose(features[index], expected, rtol=0, atol=1e-5)
    assert features.shape == (len(dataset), 512)
    assert not np.allclose(features[0], features[1], atol=1e-3)


def rulstm_window(n: int, fps: int, count: int, window: Fraction = Fraction(1)) -> tuple[int, int]:
    """(first, last) source frame of RULSTM frame n by exact arithmetic: the frames i with
    n/30 - window < i/fps <= n/30."""
    t = Fraction(n, 30)
    first = max(0, math.floor((t - window) * fps) + 1)
    return first, min(math.floor(t * fps), count - 1)


def test_rulstm_features_are_segment_features_of_the_window_before_each_time_step(
    inputs: Inputs, tmp_path: Path
) -> None:
    checkpoint, count = inputs.checkpoint("tsm_rgb"), inputs.frame_count()
    out = tmp_path / "rulstm"
    extract_features(checkpoint, out, options("rulstm-lmdb", frames_dir=inputs.frames,
                                              videos=(VIDEO,)))  # fmt: skip
    stored = read_lmdb(out)
    last = math.floor(Fraction(count, 60) * 30)
    assert sorted(stored) == [f"{VIDEO}_frame_{n:010d}.jpg" for n in range(1, last + 1)]
    checked = [1, 2, 17, 30, last]  # windows clipped at the start, whole ones, the end
    windows = [rulstm_window(n, 60, count) for n in checked]
    assert windows[0] == (0, 2) and windows[3] == (1, 60)
    segments = tmp_path / "segments.npz"
    extract_features(checkpoint, segments, options("segments", frames_dir=inputs.frames,
                     labels=window_labels(inputs, tmp_path, windows)))  # fmt: skip
    expected = read_segments(segments)
    for i, n in enumerate(checked):
        got = stored[f"{VIDEO}_frame_{n:010d}.jpg"]
        np.testing.assert_allclose(got, expected[f"{VIDEO}_w{i}"], rtol=0, atol=1e-5)


def test_actionformer_features_from_videos_are_segment_features_of_each_clip(
    inputs: Inputs, tmp_path: Path
) -> None:
    checkpoint, count = inputs.checkpoint("tsn_rgb"), inputs.frame_count()
    out = tmp_path / "actionformer"
    run = extract_features(checkpoint, out, options("actionformer", videos_dir=inputs.videos,
                           videos=(VIDEO,), stride=4, clip=8))  # fmt: skip
    with np.load(out / f"{VIDEO}.npz") as stored:  # as ActionFormer's loader reads it
        feats = stored["feats"]
        assert (int(stored["feat_stride"]), int(stored["num_frames"])) == (4, 8)
    timeline = math.floor(Fraction(count, 60) * 30)
    assert feats.shape == ((timeline - 8) // 4 + 1, 512) and feats.dtype == np.float32
    assert "  feat_stride: 4" in run.config_lines and "  input_dim: 512" in run.config_lines
    # clip i: timeline frames [4i, 4i + 8) at 30 fps = source frames [8i, 8i + 16) at 60
    windows = [(8 * i, 8 * i + 15) for i in range(len(feats))]
    segments = tmp_path / "segments.npz"
    extract_features(checkpoint, segments, options("segments", videos_dir=inputs.videos,
                     labels=window_labels(inputs, tmp_path, windows)))  # fmt: skip
    expected = read_segments(segments)
    for i, row in enumerate(feats):
        np.testing.assert_allclose(row, expected[f"{VIDEO}_w{i}"], rtol=0, atol=1e-5)


def test_a_feature_never_sees_frames_after_its_time(inputs: Inputs, tmp_path: Path) -> None:
    changed_root = tmp_path / "frames"
    folder = changed_root / "P01" / "rgb_frames" / VIDEO
    shutil.copytree(inputs.frames / "P01" / "rgb_frames" / VIDEO, folder)
    first_changed = 40  # source frame index (0-based), at 40/60 s
    for index in range(first_changed, inputs.frame_count()):
        noise = np.random.default_rng(index).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        (folder / f"frame_{index + 1:010d}.jpg").write_bytes(encode_jpeg(noise, 90))
    outs = []
    for root, name in ((inputs.frames, "same"), (changed_root, "changed")):
        outs.append(tmp_path / name)
        extract_features(inputs.checkpoint("tsn_rgb"), outs[-1], options(
            "rulstm-lmdb", frames_dir=root, videos=(VIDEO,)))  # fmt: skip
    same, changed = (read_lmdb(out) for out in outs)
    differ = []
    for key in same:
        n = int(key[-14:-4])
        if Fraction(n, 30) < Fraction(first_changed, 60):  # every frame it may use is unchanged
            np.testing.assert_array_equal(same[key], changed[key])
        else:  # its window holds changed frames (which its 3 snippets may or may not sample)
            differ.append(not np.allclose(same[key], changed[key], atol=1e-4))
    assert len(differ) > 10 and all(differ[-10:])  # the last windows sample changed frames


# ---------------------------------------------------------------------------------------------
# What the downstream readers ask for


def rulstm_requests(start: int, end: int) -> list[int]:
    """The frames RULSTM's SequenceDataset reads for an action starting at frame `start`
    (30 fps): 14 steps of 0.25 s before it, floored, padded with the first valid frame;
    and 5 frames sampled from the action (`action_samples`)."""
    steps = np.arange(0.25, 0.25 * 15, 0.25)[::-1]
    frames = np.floor((start / 30 - steps) * 30).astype(int)
    if frames.max() >= 1:
        frames[frames < 1] = frames[frames >= 1].min()
    inside = np.linspace(start, end, 6, dtype=int)[1:]
    return [*frames.tolist(), *inside.tolist()] if frames.min() >= 1 else inside.tolist()


def test_every_frame_rulstm_reads_for_the_synthetic_actions_is_in_the_database(
    inputs: Inputs, tmp_path: Path
) -> None:
    out = tmp_path / "rulstm"
    extract_features(inputs.checkpoint("tsn_rgb"), out, options(
        "rulstm-lmdb", frames_dir=inputs.frames, labels=inputs.labels))  # fmt: skip
    labels = read_annotations(inputs.labels)
    env = lmdb.open(str(out), readonly=True, lock=False)  # as RULSTM's dataset.py opens it
    requested = 0
    for _, row in labels.iterrows():
        fps = 60 if len(row["video_id"].split("_")[1]) == 2 else 50
        start = math.floor((row["start_frame"] - 1) / fps * 30)
        end = math.floor((row["stop_frame"] - 1) / fps * 30)
        for frame in rulstm_requests(start, end):
            with env.begin() as txn:
                value = txn.get(f"{row['video_id']}_frame_{frame:010d}.jpg".encode())
            assert value is not None, (row.name, frame)
            assert np.frombuffer(value, "float32").shape == (512,)
            requested += 1
    env.close()
    assert requested >= len(labels) * 5


# ---------------------------------------------------------------------------------------------
# Resume


KILLER = """
import os, signal, sys
from epic_ar.models.video_model import VideoModel
calls = 0
original = VideoModel._pooled
def killing(*args, **kwargs):  # a batch through the backbone
    global calls
    calls += 1
    if calls == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
VideoModel._pooled = killing
from epic_ar.cli.main import main
sys.exit(main({arguments!r}))
"""


@pytest.mark.slow
def test_a_killed_run_resumes_to_what_an_uninterrupted_run_writes(
    inputs: Inputs, tmp_path: Path
) -> None:
    videos = ["P01_01", "P01_102", "P02_01"]
    arguments = ["features", str(inputs.checkpoint("tsn_rgb")), "OUT", "--format",
                 "rulstm-lmdb", "--frames-dir", str(inputs.frames), "--videos", *videos,
                 "--workers", "0", "--batch-size", "4", "--device", "cpu"]  # fmt: skip
    killed = tmp_path / "killed"
    script = KILLER.format(kill_at=14, arguments=[str(killed) if a == "OUT" else a
                                                  for a in arguments])  # fmt: skip
    ended = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert ended.returncode == -signal.SIGKILL, ended.stderr
    partial = read_lmdb(killed)
    assert partial and all(key.startswith("P01_01_") for key in partial)  # the 1st video only
    assert main([str(killed) if a == "OUT" else a for a in arguments]) == 0
    clean = tmp_path / "clean"
    assert main([str(clean) if a == "OUT" else a for a in arguments]) == 0
    resumed, uninterrupted = read_lmdb(killed), read_lmdb(clean)
    assert sorted(resumed) == sorted(uninterrupted)
    assert {key[:7] for key in resumed} >= {"P01_01_", "P01_102", "P02_01_"}
    for key, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[key], value)


# ---------------------------------------------------------------------------------------------
# Flow, devices, errors


def test_flow_features_come_from_the_flow_frames_at_their_own_rate(
    inputs: Inputs, tmp_path: Path
) -> None:
    checkpoint = inputs.checkpoint("tsn_flow")
    flow_folder = inputs.frames / "P01" / "flow_frames" / VIDEO / "u"
    count = len(list(flow_folder.iterdir()))  # flow frames of a 2018 video: 30 per second
    out = tmp_path / "rulstm"
    extract_features(checkpoint, out, options("rulstm-lmdb", frames_dir=inputs.frames,
                                              videos=(VIDEO,)))  # fmt: skip
    stored = read_lmdb(out)
    assert len(stored) == count
    # RULSTM frame n: flow frames i (0-based) with n/30 - 1 < i/30 <= n/30, read as a segment
    # of flow frames i + 1 ..., i.e. of RGB frames 2i + 1 ... (flow frame = (rgb - 1) // 2 + 1)
    checked = [5, 31, count]
    spans = [(max(0, n - 29), min(n, count - 1)) for n in checked]
    labels = window_labels(inputs, tmp_path, [(2 * a, 2 * b + 2) for a, b in spans])
    segments = tmp_path / "segments.npz"
    extract_features(checkpoint, segments, options("segments", frames_dir=inputs.frames,
                                                   labels=labels))  # fmt: skip
    expected = read_segments(segments)
    for i, n in enumerate(checked):
        np.testing.assert_allclose(stored[f"{VIDEO}_frame_{n:010d}.jpg"],
                                   expected[f"{VIDEO}_w{i}"], rtol=0, atol=1e-5)  # fmt: skip


@pytest.mark.slow
def test_two_processes_write_what_one_writes(inputs: Inputs, tmp_path: Path) -> None:
    checkpoint = inputs.checkpoint("tsn_rgb")
    for name, devices in (("one", 1), ("two", 2)):
        extract_features(checkpoint, tmp_path / name, options(
            "actionformer", frames_dir=inputs.frames, labels=inputs.labels, devices=devices,
            stride=4, clip=8, workers=1))  # fmt: skip
    one = sorted((tmp_path / "one").glob("*.npz"))
    assert [p.name for p in one] == sorted(p.name for p in (tmp_path / "two").glob("*.npz"))
    assert len(one) == 4
    for path in one:
        with np.load(path) as a, np.load(tmp_path / "two" / path.name) as b:
            np.testing.assert_allclose(a["feats"], b["feats"], rtol=0, atol=1e-6)


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as exc:
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return status, lines[0]


def test_bad_requests_get_one_line(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsn, tsm, flow = (inputs.checkpoint(n) for n in ("tsn_rgb", "tsm_rgb", "tsn_flow"))
    out = tmp_path / "out"
    frames = ("--frames-dir", inputs.frames)
    rulstm = ("--format", "rulstm-lmdb", "--workers", "0", "--device", "cpu")
    status, line = run(capsys, "features", tsn, out, *rulstm, *frames, "--videos", "P07_01")
    assert status == 1 and "unknown video P07_01" in line
    status, line = run(capsys, "features", flow, out, *rulstm, "--videos-dir", inputs.videos,
                       "--videos", VIDEO)  # fmt: skip
    assert status == 1 and "no optical flow" in line
    status, line = run(capsys, "features", tsm, out, *rulstm, *frames, "--videos", VIDEO,
                       "--frames", "5")  # fmt: skip
    assert status == 1 and "TSM models run with the frame count they were built with (4)" in line
    status, line = run(capsys, "features", tsn, out, "--format", "segments", *frames,
                       "--videos", VIDEO)  # fmt: skip
    assert status == 2 and line.endswith(
        "--videos ID is for the timeline formats; segments come from --labels FILE"
    )
    status, line = run(capsys, "features", tsn, out, *rulstm, "--videos", VIDEO)
    assert status == 2 and line.endswith(
        "give one of --frames-dir DIR, --videos-dir DIR or (segments) --datadir DIR"
    )
    status, line = run(capsys, "features", tsn, out, *rulstm, *frames, "--videos-dir",
                       inputs.videos, "--videos", VIDEO)  # fmt: skip
    assert status == 2 and line.endswith(
        "give one source of frames, not --frames-dir DIR and --videos-dir DIR"
    )
    status, line = run(capsys, "features", tsn, out, "--format", "actionformer", *frames,
                       "--videos", VIDEO, "--window-sec", "2")  # fmt: skip
    assert status == 2 and line.endswith("--window-sec is for format rulstm-lmdb, not actionformer")
    status, line = run(capsys, "features", tsn, tmp_path / "s.npz", "--format", "segments",
                       "--datadir", inputs.root, "--workers", "0")  # fmt: skip
    assert status == 1 and line.endswith(f"--datadir DIR: {inputs.root} is not a gulp directory")
    assert not out.exists()
    # a video shorter than one time step (1/30 s): committed with no features
    short = tmp_path / "short" / "P01" / "P01_05"
    short.mkdir(parents=True)
    first = inputs.frames / "P01" / "rgb_frames" / VIDEO / "frame_0000000001.jpg"
    shutil.copy(first, short / first.name)
    assert main(["features", str(tsn), str(tmp_path / "short.lmdb"), *map(str, rulstm),
                 "--frames-dir", str(tmp_path / "short"), "--videos", "P01_05"]) == 0  # fmt: skip
    assert "0 keys" in capsys.readouterr().out
    assert read_lmdb(tmp_path / "short.lmdb") == {}
    assert main(["features", str(tsn), str(out), *map(str, rulstm), *map(str, frames),
                 "--videos", VIDEO]) == 0  # fmt: skip
    capsys.readouterr()
    status, line = run(capsys, "features", tsn, out, *rulstm, *frames, "--videos", VIDEO,
                       "--window-sec", "2")  # fmt: skip
    assert status == 1 and "window_sec" in line and "--force" in line
