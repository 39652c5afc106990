"""Where a resumed run writes: the version folder of the checkpoint it resumes from, so that a
run's checkpoints and logs stay in one `lightning_logs/version_N` however often it is resumed.

Lightning picks a new `version_N+1` for every start and its CSV logger deletes the
`metrics.csv` of a folder it reuses. A resumed run instead keeps its folder: the CSV rows and
TensorBoard events logged before the checkpoint stay, those logged after it (the part of the
run that is trained again) are dropped.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.models.checkpoint_file import read_checkpoint

VERSION_FOLDER = re.compile(r"version_(\d+)")
EPOCH_CHECKPOINT = re.compile(r"epoch=(\d+)(?:-v\d+)?\.ckpt")


@dataclass(frozen=True)
class ResumePoint:
    """How far a training checkpoint had got.

    epoch: the epoch (from 0) it was saved in. epochs_done: the epochs whose training was
    over when it was saved (Lightning's count, which ends a run at max_epochs). global_step:
    optimizer steps. logged_step: the step that the logs record next (Lightning's
    `_batches_that_stepped`): rows and events logged before the checkpoint have lower steps.
    """

    checkpoint: Path
    epoch: int
    epochs_done: int
    global_step: int
    logged_step: int


def resume_point(path: Path, checkpoint: dict[str, Any]) -> ResumePoint:
    """The progress stored in `checkpoint` (a Lightning checkpoint read from `path`)."""
    epoch = _count(checkpoint.get("epoch"), 0)
    global_step = _count(checkpoint.get("global_step"), 0)
    fit_loop = _entry(_entry(checkpoint, "loops"), "fit_loop")
    progress = _entry(_entry(fit_loop, "epoch_progress"), "current")
    stepped = _entry(fit_loop, "epoch_loop.state_dict").get("_batches_that_stepped")
    return ResumePoint(
        checkpoint=path,
        epoch=epoch,
        epochs_done=_count(progress.get("processed"), epoch + 1),
        global_step=global_step,
        logged_step=_count(stepped, global_step),
    )


def _entry(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    """`mapping[key]` where it is a mapping, else {} (a checkpoint without the loop state)."""
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def finished_by(point: ResumePoint, trainer: dict[str, Any]) -> str | None:
    """The limit of the Trainer arguments `trainer` that the checkpoint has reached
    ("trainer.max_epochs=3"), as Lightning decides that a run is over; None: training goes
    on from it."""
    max_steps = trainer.get("max_steps", -1)
    max_epochs = trainer.get("max_epochs")
    if max_epochs is None:  # Lightning's default: 1000 epochs unless a step or time limit
        max_epochs = 1000 if max_steps == -1 and trainer.get("max_time") is None else -1
    if isinstance(max_steps, int) and max_steps != -1 and point.global_step >= max_steps:
        return f"trainer.max_steps={max_steps}"
    if isinstance(max_epochs, int) and max_epochs != -1 and point.epochs_done >= max_epochs:
        return f"trainer.max_epochs={max_epochs}"
    return None


def continued_version(point: ResumePoint, logs_dir: Path) -> int | None:
    """N when the checkpoint is in `logs_dir/version_N/checkpoints` and is that run's
    newest (no complete checkpoint there of a later epoch, `last.ckpt` included): the
    resumed run carries on in that folder. None: it starts a new version folder (a
    checkpoint from elsewhere, or an earlier epoch of a run that went further, whose later
    checkpoints and logs are kept)."""
    folder = point.checkpoint.resolve().parent
    match = VERSION_FOLDER.fullmatch(folder.parent.name)
    if folder.name != "checkpoints" or match is None:
        return None
    if folder.parent.parent != logs_dir.resolve():
        return None
    resumed = point.checkpoint.resolve()
    for other in folder.glob("*.ckpt"):
        if other.resolve() == resumed or not complete_file(other):
            continue
        if _later_than(other, point):
            return None
    return int(match.group(1))


def _later_than(other: Path, point: ResumePoint) -> bool:
    """Whether checkpoint `other` holds a later epoch than `point`'s (by its name, or, for
    `last.ckpt` and other names, by its stored epoch when it was written later)."""
    found = EPOCH_CHECKPOINT.fullmatch(other.name)
    if found is not None:
        return int(found.group(1)) > point.epoch
    if other.stat().st_mtime_ns <= point.checkpoint.stat().st_mtime_ns:
        return False
    try:
        stored = read_checkpoint(other).get("epoch")
    except EpicArError:
        return True  # unknown: a new folder keeps everything
    return not isinstance(stored, int) or stored > point.epoch


def remove_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Delete the `.ckpt` files of `folder` that a killed run left half-written (so that
    the continued run writes their names afresh, not as "-v1" copies); returns them."""
    removed = [path for path in folder.glob("*.ckpt") if not complete_file(path)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def complete_file(path: Path) -> bool:
    """Whether a torch.save file was written to the end (its zip directory is readable)."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError):
        return False


def keep_rows_before(metrics_file: Path, step: int) -> list[str]:
    """Drop the rows of a `metrics.csv` logged at `step` or later (rewritten atomically);
    its columns, [] when there is no file."""
    if not metrics_file.is_file():
        return []
    with metrics_file.open(newline="") as file:
        reader = csv.DictReader(file)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [row for row in rows if not _logged_from(row, step)]
    if len(kept) < len(rows):
        with (
            atomic_write_path(metrics_file, force=True) as temporary,
            temporary.open("w", newline="") as file,
        ):
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
    return columns


def _logged_from(row: dict[str, str], step: int) -> bool:
    try:
        return int(row.get("step") or "") >= step
    except ValueError:
        return False  # not a row Lightning wrote: kept


class _ContinuedWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing the folder's `metrics.csv` (its rows from before
    `step`) instead of deleting it."""

    def __init__(self, log_dir: str, step: int):
        self.continue_before = step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        # Called by Lightning's __init__ (where the base class removes the file); the
        # header's columns tell `save` which rows to append and when to rewrite it.
        self.metrics_keys = keep_rows_before(Path(self.metrics_file_path), self.continue_before)


class ContinuedCSVLogger(CSVLogger):
    """A CSVLogger writing into an existing version folder, after its rows from before
    `step` (see `ResumePoint.logged_step`)."""

    def __init__(self, save_dir: Path, *, name: str, version: int, step: int):
        super().__init__(save_dir, name=name, version=version)
        self.continue_before = step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, self.continue_before)
        assert isinstance(self._experiment, ExperimentWriter)
        return self._experiment
