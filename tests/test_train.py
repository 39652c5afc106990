"""`epic-ar train`: every packaged config trains, resume after a kill, DDP on CPU, weights, config
errors in one line, Hydra's help and config printing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from epic_ar.data.datamodule import EpicDataModule
from epic_ar.errors import EpicArError
from epic_ar.evaluation import metrics as official
from epic_ar.gulp import GulpDirectory
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.models import load_checkpoint
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.training.run_config import parse_run_config
from epic_ar.training.train import find_resume_checkpoint
from helpers.cli import epic_ar_command
from helpers.gulp_data import make_synthetic_data
from helpers.training_runs import tiny, train_cli, version_dir

CONFIGS = ["tsn_rgb", "tsn_flow", "trn_rgb", "trn_flow", "tsm_rgb", "tsm_flow"]
TRAIN_DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=2,
    segments_per_video=8,
    frame_width=64,
    frame_height=48,
    min_frames=6,
    max_frames=12,
    layouts=("tar",),
    seed=5,
)


@pytest.fixture(scope="module")
def gulp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/{rgb,flow}_{train,validation}: gulp directories of a small synthetic dataset."""
    data = make_synthetic_data(tmp_path_factory.mktemp("train_data"), TRAIN_DATA)
    root = data.root / "gulp"
    for modality in ("rgb", "flow"):
        for split in ("train", "validation"):
            frames, labels = data.frames("tar", modality), data.labels(modality, split)
            run_gulp(GulpJob(frames, root / f"{modality}_{split}", labels, modality))
    return root


def logged_rows(log_dir: Path) -> list[dict[str, str]]:
    with (log_dir / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def last_values(log_dir: Path) -> dict[str, str]:
    """The last logged value of every column of metrics.csv."""
    values: dict[str, str] = {}
    for row in logged_rows(log_dir):
        values.update({key: value for key, value in row.items() if value})
    return values


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_every_packaged_config_trains(gulp_root: Path, tmp_path: Path, name: str) -> None:
    run_dir = tmp_path / name
    done = train_cli(
        "--config-name", name, *tiny(gulp_root, run_dir, "trainer.limit_train_batches=2")
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = version_dir(run_dir) / "checkpoints" / "last.ckpt"
    model, config = load_checkpoint(checkpoint)
    expected_type = {"tsn": "TSN", "trn": "MTRN", "tsm": "TSM"}[name[:3]]
    assert model.config.type == expected_type
    assert model.spec.channels == (3 if name.endswith("rgb") else 10)
    assert config["learning"]["batch_size"] == 4 and config["data"]["frame_count"] == 2
    stored = read_checkpoint(checkpoint)
    assert all(key.startswith("model.") for key in stored["state_dict"])
    assert stored["global_step"] == 2
    logged = last_values(version_dir(run_dir))
    for metric in ("train/loss_epoch", "val/loss"):
        assert metric in logged
    recomputed = validation_accuracies(checkpoint)
    assert len(recomputed) == 6
    for metric, value in recomputed.items():
        assert float(logged[metric]) == pytest.approx(value, abs=1e-3), metric
    assert "run directory:" in done.stdout and str(checkpoint.parent) in done.stdout


def validation_accuracies(checkpoint: Path) -> dict[str, float]:
    """val/{verb,noun,action}_top{1,5} of the checkpoint's model, computed here: its scores
    on the validation split (test mode, the run's batches), ranked by the evaluator's code
    (`epic_ar.evaluation.metrics`, not the training metrics)."""
    model, config = load_checkpoint(checkpoint)
    run = parse_run_config(config)
    data = EpicDataModule(run.data, modality=run.modality, batch_size=run.learning.batch_size)
    scores, verbs, nouns = [], [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the training subprocess ran (OMP_NUM_THREADS=1)
    try:
        with torch.no_grad():
            for frames, metadata in data.val_dataloader():
                scores.append(model.eval()(data.normalize(frames)).numpy())
                verbs.append(metadata["verb_class"].numpy())
                nouns.append(metadata["noun_class"].numpy())
    finally:
        torch.set_num_threads(threads)
    all_scores = np.concatenate(scores)
    verb_scores, noun_scores = all_scores[:, :97], all_scores[:, 97:]
    verb, noun = np.concatenate(verbs), np.concatenate(nouns)
    ranks = {
        "verb": official.class_ranks(verb_scores, verb),
        "noun": official.class_ranks(noun_scores, noun),
        "action": official.action_ranks(verb_scores, noun_scores, verb, noun),
    }
    return {
        f"val/{task}_top{k}": official.accuracy_percent(task_ranks, k)
        for task, task_ranks in ranks.items()
        for k in (1, 5)
    }


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "training ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


@pytest.mark.slow
def test_resume_after_a_kill_reaches_the_uninterrupted_result(
    gulp_root: Path, tmp_path: Path
) -> None:
    options = [
        "--config-name",
        "tsm_rgb",
        "trainer.max_epochs=3",
        "trainer.deterministic=true",
        "data.frame_count=4",
        "data.preprocessing.input_size=48",
        "trainer.benchmark=false",
        "learning.batch_size=2",
        "model.dropout=0.5",
        "learning.lr_scheduler.epochs=[1]",
    ]
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole = train_cli(*options[:2], *tiny(gulp_root, whole_dir), *options[2:])
    assert whole.returncode == 0, whole.stderr[-3000:]

    command = [
        *epic_ar_command(),
        "train",
        *options[:2],
        *tiny(gulp_root, killed_dir),
        *options[2:],
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    checkpoints = version_dir(killed_dir) / "checkpoints"
    wait_for(checkpoints / "epoch=1.ckpt", process)
    time.sleep(0.2)  # let last.ckpt follow; the third epoch takes several seconds
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (checkpoints / "epoch=2.ckpt").exists(), "killed too late to test resuming"

    resumed = train_cli(*options[:2], *tiny(gulp_root, killed_dir), *options[2:], "resume=auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # the resumed run carries on in the killed run's folder: one folder for the whole run
    assert [path.name for path in (killed_dir / "lightning_logs").iterdir()] == ["version_0"]
    final = {
        run: read_checkpoint(version_dir(run) / "checkpoints" / "epoch=2.ckpt")
        for run in (whole_dir, killed_dir)
    }
    whole_state, resumed_state = (final[run]["state_dict"] for run in (whole_dir, killed_dir))
    assert whole_state.keys() == resumed_state.keys()
    for key, value in whole_state.items():
        assert torch.equal(value, resumed_state[key]), key
    assert final[whole_dir]["global_step"] == final[killed_dir]["global_step"]
    whole_last = [r for r in logged_rows(version_dir(whole_dir)) if r["epoch"] == "2"]
    resumed_last = [r for r in logged_rows(version_dir(killed_dir)) if r["epoch"] == "2"]
    columns = [
        key
        for key in whole_last[-1]
        if key.startswith("val/") or (key.startswith("train/") and key.endswith("_epoch"))
    ]
    assert columns
    for column in columns:
        whole_values = [row[column] for row in whole_last if row[column]]
        assert whole_values == [row[column] for row in resumed_last if row[column]], column


# Runs `epic-ar train` with every process (rank) appending what its training steps received
# to RECORD_DIR/rank<R>.jsonl. Lightning's DDP launcher starts the other ranks by running
# this same script again, so they record too.
RECORDING_TRAIN = """
import json, os, sys
from epic_ar.cli.main import main
from epic_ar.training.system import ActionRecognitionSystem

training_step = ActionRecognitionSystem.training_step

def recording_step(self, batch, batch_index):
    frames, metadata = batch
    record = {"rank": self.global_rank, "world": self.trainer.world_size,
              "step": self.global_step, "size": len(frames),
              "ids": list(metadata["narration_id"])}
    path = os.path.join(os.environ["RECORD_DIR"], f"rank{self.global_rank}.jsonl")
    with open(path, "a") as file:
        file.write(json.dumps(record) + "\\n")
    return training_step(self, batch, batch_index)

ActionRecognitionSystem.training_step = recording_step
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_splits_the_global_batch(gulp_root: Path, tmp_path: Path) -> None:
    run_dir, record_dir, script = tmp_path / "ddp", tmp_path / "record", tmp_path / "train.py"
    record_dir.mkdir()
    script.write_text(RECORDING_TRAIN)
    overrides = ["trainer.devices=2", "trainer.strategy=ddp", "trainer.limit_train_batches=3"]
    done = subprocess.run(
        [sys.executable, str(script), "train", "--config-name", "tsn_rgb",
         *tiny(gulp_root, run_dir), *overrides],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RECORD_DIR": str(record_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = read_checkpoint(version_dir(run_dir) / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 3
    assert not (run_dir / "lightning_logs" / "version_1").exists()  # one log dir, by rank 0
    assert "val/verb_top1" in last_values(version_dir(run_dir))

    assert sorted(path.name for path in record_dir.iterdir()) == ["rank0.jsonl", "rank1.jsonl"]
    steps = [
        [json.loads(line) for line in (record_dir / f"rank{rank}.jsonl").read_text().splitlines()]
        for rank in (0, 1)
    ]
    train_ids = set(GulpDirectory(gulp_root / "rgb_train").segment_ids)
    assert len(train_ids) == 11  # padded to 12 = 2 processes x 3 steps x 2: the whole epoch
    for rank, records in enumerate(steps):
        assert [r["step"] for r in records] == [0, 1, 2]
        assert all(r["rank"] == rank and r["world"] == 2 for r in records)
        # learning.batch_size=4 is the global batch: each of the 2 processes loads 2
        assert [r["size"] for r in records] == [2, 2, 2]
        assert all(len(r["ids"]) == 2 and set(r["ids"]) <= train_ids for r in records)
    for first, second in zip(*steps, strict=True):
        assert not set(first["ids"]) & set(second["ids"])  # each rank its own share
    seen = [segment for records in steps for r in records for segment in r["ids"]]
    assert len(seen) == 12 and set(seen) == train_ids  # every segment, one twice (padding)


@pytest.mark.slow
def test_training_starts_from_given_weights(gulp_root: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert train_cli("--config-name", "tsn_rgb", *tiny(gulp_root, first)).returncode == 0
    weights = version_dir(first) / "checkpoints" / "last.ckpt"
    plain = tmp_path / "plain.pt"
    state = {k[len("model.") :]: v for k, v in read_checkpoint(weights)["state_dict"].items()}
    torch.save(state, plain)

    # lr 0: the weights stay as loaded (except the running stats of the one training BN)
    second = tmp_path / "second"
    done = train_cli(
        "--config-name",
        "tsn_rgb",
        *tiny(gulp_root, second),
        f"+model.weights={plain}",
        "learning.lr=0",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trained = read_checkpoint(version_dir(second) / "checkpoints" / "last.ckpt")["state_dict"]
    assert torch.equal(trained["model.new_fc.weight"], state["new_fc.weight"])
    assert torch.equal(
        trained["model.base_model.layer4.1.conv2.weight"], state["base_model.layer4.1.conv2.weight"]
    )

    state["extra.weight"] = torch.zeros(1)
    del state["new_fc.bias"]
    torch.save(state, plain)
    strict = train_cli(
        "--config-name", "tsn_rgb", *tiny(gulp_root, tmp_path / "third"), f"+model.weights={plain}"
    )
    assert strict.returncode == 1
    error = strict.stderr.strip().splitlines()[-1]
    assert "missing keys: new_fc.bias" in error and "unexpected keys: extra.weight" in error
    partial = train_cli(
        "--config-name",
        "tsn_rgb",
        *tiny(gulp_root, tmp_path / "fourth"),
        f"+model.weights={plain}",
        "model.weights_strict=false",
    )
    assert partial.returncode == 0, partial.stderr[-3000:]
    assert "left as initialised: new_fc.bias" in partial.stdout + partial.stderr


@pytest.mark.slow
def test_published_layout_checkpoint_initialises_training(gulp_root: Path, tmp_path: Path) -> None:
    from helpers import checkpoints

    published = checkpoints.filled_skeleton("tsn_rgb", tmp_path / "tsn_rgb.ckpt")
    run_dir = tmp_path / "from_published"
    done = train_cli(
        "--config-name",
        "tsn_rgb",
        *tiny(gulp_root, run_dir),
        "model.backbone=resnet50",
        f"+model.weights={published}",
        "learning.lr=0",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trained = read_checkpoint(version_dir(run_dir) / "checkpoints" / "last.ckpt")["state_dict"]
    source = read_checkpoint(published)["state_dict"]
    assert trained.keys() == source.keys()
    assert torch.equal(trained["model.new_fc.weight"], source["model.new_fc.weight"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "data._root_gulp_dir=/nonexistent",
            "data.train_gulp_dir: /nonexistent/rgb_train does not exist",
        ),
        ("model.type=C3D", "model.type: 'C3D' is not one of"),
        ("model.backbone=vgg16", "model.backbone: 'vgg16' is not one of"),
        ("+model.temporal_pool=true", "model.temporal_pool: applies to TSM only"),
        (
            "+trainer.not_an_option=1",
            "trainer.not_an_option: not an argument of Lightning's Trainer",
        ),
        ("learning.batch_size=0", "learning.batch_size: 0 is not a positive integer"),
    ],
)
def test_config_errors_are_one_line(
    gulp_root: Path, tmp_path: Path, override: str, message: str
) -> None:
    done = train_cli("--config-name", "tsn_rgb", *tiny(gulp_root, tmp_path / "run"), override)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epic-ar train: error: "), done.stderr
    assert message in lines[0]
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_unset_gulp_root_and_missing_config_name(tmp_path: Path) -> None:
    done = train_cli("--config-name", "tsm_flow", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "epic-ar train: error: data._root_gulp_dir is not set: add data._root_gulp_dir=... "
        "(the folder holding the gulp directories, or set data.frames_dir or data.videos_dir)"
    )
    done = train_cli(f"hydra.run.dir={tmp_path}")
    assert done.returncode == 1 and "choose one with --config-name" in done.stderr


def test_hydra_prints_the_composed_config() -> None:
    done = train_cli("--config-name", "tsm_rgb", "--cfg", "job", "data._root_gulp_dir=/g")
    assert done.returncode == 0, done.stderr
    assert "type: TSM" in done.stdout and "batch_size: 64" in done.stdout
    assert "std:\n    - 0.485" in done.stdout  # the published RGB std quirk


def test_resume_auto_takes_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    assert find_resume_checkpoint("auto", tmp_path) is None
    folder = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    older, newer, broken = folder / "epoch=0.ckpt", folder / "epoch=1.ckpt", folder / "last.ckpt"
    for index, path in enumerate((older, newer)):
        torch.save({"epoch": index}, path)
        os.utime(path, (1000 + index, 1000 + index))
    broken.write_bytes(newer.read_bytes()[:100])  # killed while writing
    assert find_resume_checkpoint("auto", tmp_path) == newer
    with pytest.raises(EpicArError, match="no such checkpoint"):
        find_resume_checkpoint(str(tmp_path / "nope.ckpt"), tmp_path)


def test_cli_lists_train_and_passes_hydra_help() -> None:
    done = subprocess.run(
        [*epic_ar_command(), "--help"], capture_output=True, text=True, check=False
    )
    assert "train" in done.stdout
    done = train_cli("--help")
    assert done.returncode == 0 and "--config-name" in done.stdout
