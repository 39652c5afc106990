"""Ctrl-C and resuming, end to end on a tiny run: `epic-ar train` and `epic-ar test` stopped by
SIGINT end with one `interrupted` line and status 130, keeping the checkpoints written so far;
`resume=auto` carries on in the same version folder, and once the run is complete says so and
writes nothing; a rerun without resume says which new version folder it wrote."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.synthetic.dataset import SyntheticConfig
from helpers.gulp_data import make_synthetic_data
from helpers.training_runs import tiny, train_cli, version_dir

DATA = SyntheticConfig(
    participants=2, videos_per_participant=1, segments_per_video=8, frame_width=48,
    frame_height=32, min_frames=4, max_frames=6, layouts=("tar",), seed=3,
)  # fmt: skip
BATCH = 4

# `epic-ar ARGS` whose training step of epoch $INTERRUPT_EPOCH (or, with $INTERRUPT_SCORING,
# whose first scoring step) sends the process a SIGINT, as Ctrl-C in a terminal does.
INTERRUPTING = """
import os, signal, sys, time
from epic_ar.cli.main import main
from epic_ar.training.scoring import _Scorer
from epic_ar.training.system import ActionRecognitionSystem

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)  # Python raises KeyboardInterrupt here, from its SIGINT handler

training_step = ActionRecognitionSystem.training_step

def interrupted_step(self, batch, batch_index):
    if self.current_epoch == int(os.environ.get("INTERRUPT_EPOCH", "-1")):
        ctrl_c()
    return training_step(self, batch, batch_index)

ActionRecognitionSystem.training_step = interrupted_step
if os.environ.get("INTERRUPT_SCORING"):
    _Scorer.predict_step = lambda self, batch, batch_index: ctrl_c()
sys.exit(main(sys.argv[1:]))
"""


def interrupted(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", INTERRUPTING, *args],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def gulp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/rgb_{train,validation}: gulp directories of a tiny synthetic dataset."""
    data = make_synthetic_data(tmp_path_factory.mktemp("resume_data"), DATA)
    root = data.root / "gulp"
    for split in ("train", "validation"):
        frames, labels = data.frames("tar", "rgb"), data.labels("rgb", split)
        run_gulp(GulpJob(frames, root / f"rgb_{split}", labels, "rgb"))
    return root


def train_args(gulp_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--config-name", "tsn_rgb", *tiny(gulp_root, run_dir, *extra)]


@pytest.fixture(scope="module")
def stopped_run(
    gulp_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A run of 2 epochs that Ctrl-C stopped in its second: (run directory, the command)."""
    run_dir = tmp_path_factory.mktemp("stopped") / "run"
    done = interrupted(*train_args(gulp_root, run_dir, "trainer.max_epochs=2"), INTERRUPT_EPOCH="1")
    return run_dir, done


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with (version_dir(run_dir) / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def printed(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines `epic-ar train` printed at the end (after Lightning's and Hydra's)."""
    lines = done.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(("run directory:", "the run"))]
    return lines[starts[0] :] if starts else []


def epochs_with(rows: list[dict[str, str]], column: str) -> list[str]:
    return [row["epoch"] for row in rows if row.get(column)]


@pytest.mark.slow
def test_ctrl_c_in_training_keeps_the_checkpoints_and_says_how_to_continue(
    stopped_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, done = stopped_run
    assert done.returncode == 130, done.stderr[-3000:]
    folder = version_dir(run_dir) / "checkpoints"
    assert sorted(path.name for path in folder.iterdir()) == ["epoch=0.ckpt", "last.ckpt"]
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        f"epic-ar train: interrupted; the checkpoints so far are kept in {folder} (newest "
    ), done.stderr[-3000:]
    assert last_line.endswith(": the same command with resume=auto continues from the newest")
    assert "Traceback" not in done.stderr
    assert "Detected KeyboardInterrupt" not in done.stdout + done.stderr
    # the epochs are shorter than trainer.log_every_n_steps (5): no warning, and logged
    assert "log_every_n_steps" not in done.stderr


@pytest.mark.slow
def test_resume_continues_in_the_same_folder_then_finds_the_run_complete(
    gulp_root: Path, stopped_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    run_dir, stopped = stopped_run
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    folder = version_dir(run_dir) / "checkpoints"
    resume = train_args(gulp_root, run_dir, "trainer.max_epochs=2", "resume=auto")[1:]
    done = train_cli(*resume)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [path.name for path in (run_dir / "lightning_logs").iterdir()] == ["version_0"]
    assert sorted(path.name for path in folder.iterdir()) == [
        "epoch=0.ckpt", "epoch=1.ckpt", "last.ckpt"
    ]  # fmt: skip
    lines = printed(done)
    assert lines[0].startswith(f"run directory: {run_dir} (continued lightning_logs/version_0 ")
    assert lines[1] == f"checkpoints:   {folder} (2 epochs + last.ckpt)"
    assert "dirpath has changed" not in done.stderr and "log_every_n_steps" not in done.stderr
    steps_per_epoch = read_checkpoint(folder / "epoch=0.ckpt")["global_step"]
    assert read_checkpoint(folder / "epoch=1.ckpt")["global_step"] == 2 * steps_per_epoch
    # one metrics.csv for the whole run, each epoch once: the learning rate logged when
    # the stopped epoch began was dropped and logged again
    rows = metrics_rows(run_dir)
    assert epochs_with(rows, "val/loss") == ["0", "1"]
    assert epochs_with(rows, "train/loss_epoch") == ["0", "1"]
    assert len([row for row in rows if row.get("lr-SGD/bn")]) == 2
    assert epochs_with(rows, "train/loss_step") == ["0", "1"]  # short epochs log a step each

    before = sorted((path, path.stat().st_mtime_ns) for path in run_dir.rglob("*"))
    again = train_cli(*resume)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(printed(again)) == 1 and printed(again)[0].startswith(
        "the run is already complete (trainer.max_epochs=2 reached): its last checkpoint is "
        f"{folder}/"
    ), again.stdout
    after = sorted((path, path.stat().st_mtime_ns) for path in run_dir.rglob("*"))
    assert [path for path, _ in after] == [path for path, _ in before]  # nothing new
    training_files = [(path, time) for path, time in after if "lightning_logs" in path.parts]
    assert training_files == [(p, t) for p, t in before if "lightning_logs" in p.parts]

    rerun = train_cli(*train_args(gulp_root, run_dir)[1:])  # no resume: a new version folder
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert printed(rerun)[:2] == [
        f"run directory: {run_dir} (this run: lightning_logs/version_1; 1 earlier run beside it)",
        f"checkpoints:   {version_dir(run_dir, 1) / 'checkpoints'} (1 epoch + last.ckpt)",
    ]


@pytest.mark.slow
def test_ctrl_c_before_the_first_checkpoint_leaves_nothing(gulp_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = interrupted(*train_args(gulp_root, run_dir), INTERRUPT_EPOCH="0")
    assert done.returncode == 130, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "epic-ar train: interrupted before the run's first checkpoint; nothing of it is kept"
    )
    assert not run_dir.exists()


@pytest.mark.slow
def test_ctrl_c_while_scoring_ends_test_with_status_130(
    gulp_root: Path, stopped_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    checkpoint = version_dir(stopped_run[0]) / "checkpoints" / "epoch=0.ckpt"
    results = tmp_path / "val.pt"
    done = interrupted(
        "test", str(checkpoint), str(results), "--split", "val", "--datadir",
        str(gulp_root / "rgb_validation"), "--workers", "0", "--accelerator", "cpu",
        INTERRUPT_SCORING="1",
    )  # fmt: skip
    assert done.returncode == 130, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == "epic-ar test: interrupted"
    assert "Detected KeyboardInterrupt" not in done.stdout + done.stderr
    assert not results.exists()
