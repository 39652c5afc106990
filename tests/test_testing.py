"""`epic-ar test`: results files from our and published-layout checkpoints, DDP, TTA; then
fuse, evaluate and submit on them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import epic_ar_command
from epic_ar.annotations.flow_frames import convert_annotation_file
from epic_ar.data.synthetic import SyntheticConfig
from epic_ar.evaluation.results import load_results
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.models import load_checkpoint
from epic_ar.training.testing import ScoringOptions, score_split
from gulp_fixtures import SyntheticData, make_synthetic_data
from test_training import tiny, train_cli, version_dir

pytestmark = pytest.mark.slow

DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=2,
    segments_per_video=6,
    frame_width=64,
    frame_height=48,
    min_frames=6,
    max_frames=12,
    layouts=("tar",),
    seed=11,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticData, dict[str, Path]]:
    """Gulp directories of every split and a tiny TSN per modality trained on them."""
    root = tmp_path_factory.mktemp("test_data")
    data = make_synthetic_data(root, DATA)
    gulp = root / "gulp"
    test_labels = data.annotations / "EPIC_100_test_timestamps.csv"
    for modality in ("rgb", "flow"):
        for split in ("train", "validation", "test"):
            labels = test_labels if split == "test" else data.labels(modality, split)
            if split == "test" and modality == "flow":
                labels = root / "test_flow.csv"
                convert_annotation_file(test_labels, labels)
            run_gulp(
                GulpJob(
                    data.frames("tar", modality), gulp / f"{modality}_{split}", labels, modality
                )
            )
    checkpoints = {}
    for name in ("tsn_rgb", "tsn_flow"):
        run_dir = root / name
        done = train_cli("--config-name", name, *tiny(gulp, run_dir))
        assert done.returncode == 0, done.stderr[-2000:]
        checkpoints[name] = version_dir(run_dir) / "checkpoints" / "last.ckpt"
    checkpoints["gulp"] = gulp
    return data, checkpoints


def run_test_command(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*epic_ar_command(), "test", *map(str, args), "--workers", "0", "--accelerator", "cpu"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_results_hold_every_segment_in_order_with_the_model_scores(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    data, paths = trained
    out = tmp_path / "val.pt"
    done = run_test_command(paths["tsn_rgb"], out, "--split", "val")
    assert done.returncode == 0, done.stderr[-2000:]
    results = load_results(out)
    labels = pd.read_csv(data.labels("rgb", "validation"))
    assert list(results.narration_id) == list(labels.narration_id)
    # the same scores as the model on the test-mode items
    model, config = load_checkpoint(paths["tsn_rgb"])
    settings = ScoringOptions(split="val", accelerator="cpu", workers=0)
    direct = score_split(model, config, settings)
    assert np.allclose(results.verb_output, direct.scores[:, :97], atol=1e-5)
    assert np.allclose(results.noun_output, direct.scores[:, 97:], atol=1e-5)
    assert "scored" in done.stdout and str(out) in done.stdout

    test_out = tmp_path / "test.pt"
    assert run_test_command(paths["tsn_rgb"], test_out, "--split", "test").returncode == 0
    test_labels = pd.read_csv(data.annotations / "EPIC_100_test_timestamps.csv")
    assert list(load_results(test_out).narration_id) == list(test_labels.narration_id)


def test_ddp_output_equals_single_process(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    _, paths = trained
    single, double = tmp_path / "one.pt", tmp_path / "two.pt"
    assert run_test_command(paths["tsn_flow"], single, "--split", "val").returncode == 0
    done = run_test_command(
        paths["tsn_flow"], double, "--split", "val", "--devices", 2, "--batch-size", 3
    )
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = load_results(single), load_results(double)
    assert list(one.narration_id) == list(two.narration_id)
    assert np.allclose(one.verb_output, two.verb_output, atol=1e-6)
    assert np.allclose(one.noun_output, two.noun_output, atol=1e-6)


def test_clips_and_crops_average_more_views(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    _, paths = trained
    model, config = load_checkpoint(paths["tsn_rgb"])
    base = ScoringOptions(split="val", accelerator="cpu", workers=0)
    plain = score_split(model, config, base).scores
    more = score_split(
        model, config, ScoringOptions(split="val", accelerator="cpu", workers=0, clips=3, crops=3)
    ).scores
    assert plain.shape == more.shape and not np.allclose(plain, more)
    frames = score_split(
        model, config, ScoringOptions(split="val", accelerator="cpu", workers=0, frame_count=4)
    ).scores
    assert not np.allclose(plain, frames)


def test_published_layout_checkpoint_tests_with_datadir(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    checkpoint_fixtures = pytest.importorskip("checkpoint_fixtures")
    if not checkpoint_fixtures.REFERENCE.is_dir():
        pytest.skip("../shared/reference is not available")
    _, paths = trained
    published = checkpoint_fixtures.filled_skeleton("tsm_rgb", tmp_path / "tsm_rgb.ckpt")
    out = tmp_path / "published.pt"
    done = run_test_command(published, out, "--split", "val", "--datadir", paths["gulp"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(load_results(out)) == len(pd.read_csv(trained[0].labels("rgb", "validation")))
    wrong = run_test_command(
        published, tmp_path / "x.pt", "--split", "val", "--datadir", paths["gulp"], "--n-frames", 4
    )
    assert wrong.returncode == 1
    assert (
        wrong.stderr.strip()
        .splitlines()[-1]
        .endswith("TSM models run with the frame count they were built with (8), not 4")
    )


def test_archives_score_like_the_gulp_directories(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    data, paths = trained
    out = tmp_path / "from_tars.pt"
    rgb_labels = data.labels("rgb", "validation")
    done = run_test_command(
        paths["tsn_rgb"], out, "--split", "val", "--frames-dir", data.frames("tar", "rgb"),
        "--labels", rgb_labels,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    options = ScoringOptions(split="val", accelerator="cpu", workers=0)
    model, config = load_checkpoint(paths["tsn_rgb"])
    from_gulp = score_split(model, config, options)
    from_tars = load_results(out)
    assert list(from_tars.narration_id) == list(from_gulp.narration_id)
    assert np.array_equal(from_tars.verb_output, from_gulp.scores[:, :97])
    # flow from the archives with the official (RGB-numbered) labels, converted on the fly
    model, config = load_checkpoint(paths["tsn_flow"])
    archives = ScoringOptions(
        split="val",
        accelerator="cpu",
        workers=0,
        frames_dir=data.frames("tar", "flow"),
        labels=rgb_labels,
    )
    assert np.array_equal(
        score_split(model, config, archives).scores, score_split(model, config, options).scores
    )


def test_trn_eval_is_refused_for_other_models(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    _, paths = trained
    done = run_test_command(
        paths["tsn_rgb"], tmp_path / "x.pt", "--split", "val", "--trn-eval", "sampled"
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith("trn_eval applies to TRN models, not TSN")
    assert not (tmp_path / "x.pt").exists()
