"""`epic-ar features` runs: a killed run resumes to what an uninterrupted run writes; two
processes write what one writes; bad requests get one line."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epic_ar.cli.main import main
from epic_ar.features.run import extract_features
from helpers.feature_inputs import (
    VIDEO,
    Inputs,
    make_inputs,
    options,
    read_lmdb,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("features"))


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
# Processes, errors


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
    assert status == 2 and line.endswith(
        "--window-sec SEC is for format rulstm-lmdb, not actionformer"
    )
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


def test_a_finished_segments_file_is_kept_for_the_same_segments_only(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.csv"
    rows = pd.read_csv(inputs.labels)
    rows[rows["video_id"] == VIDEO].to_csv(labels, index=False)
    out = tmp_path / "segments.npz"
    arguments = ["features", str(inputs.checkpoint("tsn_rgb")), str(out), "--format", "segments",
                 "--frames-dir", str(inputs.frames), "--labels", str(labels), "--workers", "0",
                 "--device", "cpu"]  # fmt: skip
    assert main(arguments) == 0
    written = out.read_bytes()
    assert main(arguments) == 0  # the same again: nothing to do
    assert "finished before, skipped" in capsys.readouterr().out and out.read_bytes() == written
    moved = rows[rows["video_id"] == VIDEO].assign(stop_frame=lambda r: r["stop_frame"] - 1)
    moved.to_csv(labels, index=False)  # the same segment ids, other frames
    status, line = run(capsys, *arguments)
    assert status == 1 and "was written with segments_sha256=" in line and "--force" in line
    assert out.read_bytes() == written


def test_a_frame_that_does_not_decode_is_named(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    video = frames / "P01" / "rgb_frames" / VIDEO
    shutil.copytree(inputs.frames / "P01" / "rgb_frames" / VIDEO, video)
    for path in video.iterdir():  # markers intact, no image inside
        path.write_bytes(b"\xff\xd8" + b"\xff\xf7" * 64 + b"\xff\xd9")
    out = tmp_path / "out.lmdb"
    status, line = run(capsys, "features", inputs.checkpoint("tsn_rgb"), out, "--format",
                       "rulstm-lmdb", "--frames-dir", frames, "--videos", VIDEO, "--workers",
                       "0", "--device", "cpu")  # fmt: skip
    assert status == 1
    prefix = f"epic-ar features: error: {video}: frame "
    assert line.startswith(prefix) and line[len(prefix) :].split(":")[0].isdigit(), line
    assert "of the sample" not in line
    assert not out.exists()  # it finished no video: nothing to resume, nothing left
    # an output that existed before the failed run stays (it may hold other videos)
    out.mkdir()
    status, _ = run(capsys, "features", inputs.checkpoint("tsn_rgb"), out, "--format",
                    "rulstm-lmdb", "--frames-dir", frames, "--videos", VIDEO, "--workers",
                    "0", "--device", "cpu")  # fmt: skip
    assert status == 1 and sorted(p.name for p in out.iterdir()) == ["data.mdb", "lock.mdb"]
