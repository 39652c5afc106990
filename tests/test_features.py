"""`epic-ar features`: segment features equal pooled features computed independently;
timeline features equal segment features of the same windows (RGB and flow); causality;
what RULSTM's and ActionFormer's readers ask for is there. (Resuming, processes and
errors: test_features_runs.py.)"""

from __future__ import annotations

import math
import shutil
from fractions import Fraction
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch

from epic_ar.annotations.labels import read_annotations
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.features.run import extract_features
from epic_ar.gulp.jpeg import encode_jpeg
from epic_ar.models import load_checkpoint
from epic_ar.training.run_config import parse_data_config
from epic_ar.training.scoring import ScoringOptions, with_frame_source
from epic_ar.training.scoring import test_dataset as build_test_dataset
from helpers.feature_inputs import (
    VIDEO,
    Inputs,
    make_inputs,
    options,
    read_lmdb,
    read_segments,
    window_labels,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("features"))


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
# Flow


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
