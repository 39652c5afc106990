"""`epic-ar test`: results files from our and published-layout checkpoints, compared with
the models' own forward on frames these tests read from the archives, decode and transform
themselves (the original's test-mode recipe); DDP, test-time views, data sources, errors."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from epic_ar.annotations.flow_frames import convert_annotation_file
from epic_ar.evaluation.results import load_results
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.models import load_checkpoint
from epic_ar.models.video_model import VideoModel
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.training.scoring import ScoringOptions, score_split
from helpers.cli import epic_ar_command
from helpers.gulp_data import SyntheticData, make_synthetic_data
from helpers.training_runs import tiny, train_cli, version_dir

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


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.strip().splitlines()[-1]


def archive_frame(tar: tarfile.TarFile, number: int) -> Image.Image:
    """RGB frame `number` of a video archive, decoded by PIL."""
    name = f"frame_{number:010d}.jpg"
    member = next(m for m in tar.getmembers() if Path(m.name).name == name)
    extracted = tar.extractfile(member)
    assert extracted is not None
    return Image.open(io.BytesIO(extracted.read())).convert("RGB")


def reference_scores(
    model: VideoModel,
    config: dict[str, Any],
    frames_root: Path,
    labels: Path,
    *,
    frame_count: int,
    clips: int = 1,
    crops: int = 1,
) -> np.ndarray:
    """[N, 397] scores of the RGB segments of `labels` computed the original's way, apart
    from the code under test: part t of T of a segment of n frames gives frame
    `start + int(tick * p + tick * t)`, tick = n / T (p = 0.5 for one clip, (c + 0.5) / K
    for clip c of K); PIL decodes it; the shorter side is resized to `rescale_size` (PIL
    bilinear), then the centre (or left, centre, right) `input_size` crop is taken; pixels
    / 255, minus mean, over std; the model's logits are averaged over the views."""
    data = config["data"]
    pre, short_side = data["preprocessing"], data["test_augmentation"]["rescale_size"]
    size = pre["input_size"]
    mean = torch.tensor(pre["mean"]).reshape(3, 1, 1)
    std = torch.tensor(pre["std"]).reshape(3, 1, 1)
    model.set_frame_count(frame_count)  # TSN takes any count; TRN/TSM only their own
    scores = []
    for row in pd.read_csv(labels).to_dict("records"):
        archive = frames_root / str(row["participant_id"]) / "rgb_frames" / f"{row['video_id']}.tar"
        start, count = int(row["start_frame"]), int(row["stop_frame"]) - int(row["start_frame"]) + 1
        tick = count / frame_count
        views = []
        with tarfile.open(archive) as tar:
            for clip in range(clips):
                position = (clip + 0.5) / clips
                offsets = [
                    min(int(tick * position + tick * t), count - 1) for t in range(frame_count)
                ]
                images = [archive_frame(tar, start + o) for o in offsets]
                width, height = images[0].size
                if min(width, height) != short_side:
                    scale = short_side / min(width, height)
                    width, height = (
                        (short_side, int(height * scale))
                        if width < height
                        else (int(width * scale), short_side)
                    )
                    images = [
                        im.resize((width, height), Image.Resampling.BILINEAR) for im in images
                    ]
                top, centre = round((height - size) / 2), round((width - size) / 2)
                for left in [centre] if crops == 1 else [0, centre, width - size]:
                    box = (left, top, left + size, top + size)
                    pixels = np.stack([np.asarray(im.crop(box)) for im in images])
                    frames = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
                    with torch.no_grad():
                        views.append(model(((frames - mean) / std)[None])[0])
        scores.append(torch.stack(views).mean(dim=0).numpy())
    return np.stack(scores)


def assert_scores_match(results_path: Path, expected: np.ndarray) -> None:
    results = load_results(results_path)
    scores = np.concatenate([results.verb_output, results.noun_output], axis=1)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5 * max(scale, 1.0))


def test_val_and_test_score_as_the_original_samples_them(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    """Val: data.frame_count (2 here); test: data.test_frame_count (TSN's 25); --n-frames
    sets the scored split's count. Rows in annotation order; the file records it all."""
    data, paths = trained
    checkpoint = paths["tsn_rgb"]
    model, config = load_checkpoint(checkpoint)
    assert (config["data"]["frame_count"], config["data"]["test_frame_count"]) == (2, 25)
    frames = data.frames("tar", "rgb")
    val_labels = data.labels("rgb", "validation")
    test_labels = data.annotations / "EPIC_100_test_timestamps.csv"

    for split, labels, extra, frame_count in [
        ("val", val_labels, [], 2),
        ("test", test_labels, [], 25),
        ("val", val_labels, ["--n-frames", 5], 5),
        ("test", test_labels, ["--n-frames", 3], 3),
    ]:
        out = tmp_path / f"{split}_{frame_count}.pt"
        done = run_test_command(checkpoint, out, "--split", split, *extra)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"{frame_count} frames" in done.stdout and str(out) in done.stdout
        results = load_results(out)
        assert list(results.narration_id) == list(pd.read_csv(labels).narration_id)
        expected = reference_scores(model, config, frames, labels, frame_count=frame_count)
        assert_scores_match(out, expected)
        record = results.extra["provenance"]
        assert record["checkpoint"] == str(checkpoint.resolve())
        assert (record["split"], record["frame_count"], record["clips"], record["crops"]) == (
            split, frame_count, 1, 1,
        )  # fmt: skip
        folder = "validation" if split == "val" else "test"
        assert record["source"] == str((paths["gulp"] / f"rgb_{folder}").resolve())


def test_clips_and_crops_average_the_views_logits(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    data, paths = trained
    model, config = load_checkpoint(paths["tsn_rgb"])
    out = tmp_path / "views.pt"
    done = run_test_command(
        paths["tsn_rgb"], out, "--split", "val", "--clips", 2, "--crops", 3, "--batch-size", 3
    )
    assert done.returncode == 0, done.stderr[-2000:]
    labels = data.labels("rgb", "validation")
    expected = reference_scores(
        model, config, data.frames("tar", "rgb"), labels, frame_count=2, clips=2, crops=3
    )
    assert_scores_match(out, expected)
    record = load_results(out).extra["provenance"]
    assert (record["clips"], record["crops"]) == (2, 3)


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


@pytest.mark.parametrize("name", ["tsn_rgb", "tsm_rgb"])
def test_published_checkpoints_score_val_as_the_original(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path, name: str
) -> None:
    """A published-layout checkpoint on the split's own gulp directory (the original's
    --datadir) scores val with data.frame_count (8), its stored preprocessing (RGB std equal
    to the mean, frames resized to 256 and cropped to 224), as the original's test.py does."""
    from helpers import checkpoints

    data, paths = trained
    published = checkpoints.filled_skeleton(name, tmp_path / f"{name}.ckpt")
    model, config = load_checkpoint(published)
    out = tmp_path / "published.pt"
    # the split's own gulp directory (the original's form), or the folder holding it
    data_dir = paths["gulp"] / "rgb_validation" if name == "tsn_rgb" else paths["gulp"]
    done = run_test_command(published, out, "--split", "val", "--datadir", data_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    labels = data.labels("rgb", "validation")
    expected = reference_scores(model, config, data.frames("tar", "rgb"), labels, frame_count=8)
    assert_scores_match(out, expected)
    record = load_results(out).extra["provenance"]
    assert record["frame_count"] == 8
    assert record["source"] == str((paths["gulp"] / "rgb_validation").resolve())
    if name == "tsm_rgb":
        wrong = run_test_command(
            published, tmp_path / "x.pt", "--split", "val", "--datadir", data_dir, "--n-frames", 4
        )
        assert wrong.returncode == 1
        assert last_line(wrong).endswith(
            "TSM models run with the frame count they were built with (8), not 4"
        )
    # without --datadir, the authors' stored path is named
    done = run_test_command(published, tmp_path / "x.pt", "--split", "val")
    assert done.returncode == 1
    assert last_line(done) == (
        "epic-ar test: error: data.val_gulp_dir stored in the checkpoint: "
        "/datasets/EPIC-KITCHENS-100/gulp/rgb_validation does not exist here; "
        "give the split's gulp directory with --datadir DIR"
    )


def test_datadir_decides_the_data_whatever_the_checkpoint_stored(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    data, paths = trained
    checkpoint = paths["tsn_rgb"]  # stores the resolved paths of the run's gulp directories
    # a gulp directory elsewhere, under another name: its segments are scored
    elsewhere = tmp_path / "my_segments"
    shutil.copytree(paths["gulp"] / "rgb_test", elsewhere)
    out = tmp_path / "other.pt"
    done = run_test_command(checkpoint, out, "--split", "val", "--datadir", elsewhere)
    assert done.returncode == 0, done.stderr[-2000:]
    test_ids = pd.read_csv(data.annotations / "EPIC_100_test_timestamps.csv").narration_id
    assert list(load_results(out).narration_id) == list(test_ids)
    # one named for another split is refused
    done = run_test_command(
        checkpoint, tmp_path / "x.pt", "--split", "val", "--datadir", paths["gulp"] / "rgb_test"
    )
    assert done.returncode == 1
    assert last_line(done).endswith(
        "rgb_test: by its name, the test split's gulp directory, not the validation split's; "
        "give rgb_validation (or its parent folder)"
    )
    # neither form: one line naming both, nothing written
    for bad, problem in [
        (tmp_path / "nonexistent", "does not exist"),
        (tmp_path, "is neither a gulp directory nor a folder holding rgb_validation/"),
    ]:
        done = run_test_command(checkpoint, tmp_path / "x.pt", "--split", "val", "--datadir", bad)
        assert done.returncode == 1, done.stderr
        assert last_line(done) == (
            f"epic-ar test: error: {bad}: {problem}; give the split's gulp directory "
            "(e.g. /gulp/rgb_validation) or the folder that holds it (e.g. /gulp)"
        )
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x.pt").exists()
    # a gulp directory of the other modality
    done = run_test_command(
        checkpoint,
        tmp_path / "x.pt",
        "--split",
        "val",
        "--datadir",
        paths["gulp"] / "flow_validation",
    )
    assert done.returncode == 1
    assert last_line(done).endswith("flow_validation: holds flow frames, not rgb")


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
    assert from_tars.extra["provenance"]["labels"] == str(rgb_labels.resolve())
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
    assert last_line(done).endswith("trn_eval sampled applies to TRN models, not TSN")
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: 0 is not an integer >= 1"),
        (["--workers", "-1"], "argument --workers: -1 is not an integer >= 0"),
        (["--devices", "0"], "argument --devices: 0 is not an integer >= 1"),
        (["--n-frames", "0"], "argument --n-frames: 0 is not an integer >= 1"),
        (["--clips", "x"], "argument --clips: 'x' is not an integer"),
        (["--accelerator", "tpux"], "argument --accelerator: invalid choice: 'tpux'"),
        (["--frames-dir", "."], "--labels goes with --frames-dir or --videos-dir"),
        (["--datadir", ".", "--frames-dir", ".", "--labels", "l.csv"], "not both"),
    ],
)
def test_bad_flags_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    from epic_ar.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["test", str(tmp_path / "c.ckpt"), str(tmp_path / "r.pt"), "--split", "val", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "r.pt").exists()


def test_existing_results_are_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "r.pt").write_text("keep me")
    done = run_test_command(tmp_path / "missing.ckpt", tmp_path / "r.pt", "--split", "val")
    assert done.returncode == 1
    assert (
        last_line(done)
        == f"epic-ar test: error: {tmp_path / 'r.pt'}: already exists; pass --force to overwrite it"
    )
    assert (tmp_path / "r.pt").read_text() == "keep me"


def test_a_model_scoring_nan_and_a_damaged_data_section_name_the_checkpoint(
    trained: tuple[SyntheticData, dict[str, Path]], tmp_path: Path
) -> None:
    from helpers.checkpoints import stand_in_omegaconf

    _, paths = trained
    with stand_in_omegaconf():
        checkpoint = torch.load(paths["tsn_rgb"], weights_only=False)
    name = next(key for key in checkpoint["state_dict"] if key.endswith("new_fc.bias"))
    checkpoint["state_dict"][name][:] = float("nan")
    nan = tmp_path / "nan.ckpt"
    torch.save(checkpoint, nan)
    out = tmp_path / "r.pt"
    done = run_test_command(nan, out, "--split", "val", "--datadir", paths["gulp"])
    assert done.returncode == 1 and not out.exists()
    assert re.fullmatch(
        rf"epic-ar test: error: {re.escape(str(nan))}: the model scored (\d+) of \1 segments as "
        r"NaN or inf \(first P\d+_\d+_\d+\); are its weights finite\?",
        last_line(done),
    ), last_line(done)
    checkpoint["state_dict"][name][:] = 0.0
    checkpoint["hyper_parameters"]["data"]["worker_count"] = -1
    damaged = tmp_path / "damaged.ckpt"
    torch.save(checkpoint, damaged)
    done = run_test_command(damaged, out, "--split", "val", "--datadir", paths["gulp"])
    assert done.returncode == 1 and not out.exists()
    assert last_line(done).startswith(f"epic-ar test: error: {damaged}: data.worker_count: -1 ")
