"""`epic-ar train`: one training run, from a resolved config to checkpoints and logs.

Layout of a run directory (the original project's):

    RUN/lightning_logs/version_N/checkpoints/epoch=E.ckpt, last.ckpt
    RUN/lightning_logs/version_N/metrics.csv, events.out.tfevents.* (TensorBoard)

Each start without `resume` gets a new `version_N`; a resumed run carries on in the folder
of the checkpoint it resumes from (see `epic_ar.training.run_logs`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule, Trainer
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from epic_ar.data.datamodule import EpicDataModule
from epic_ar.errors import EpicArError
from epic_ar.models.checkpoint import load_state_dict_strictly
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.models.pretrained import load_pretrained
from epic_ar.models.weights import load_model_weights
from epic_ar.training.distributed import leave_process_group
from epic_ar.training.interrupts import lightning_interrupts
from epic_ar.training.run_config import RunConfig, check_sources, parse_run_config
from epic_ar.training.run_logs import (
    ContinuedCSVLogger,
    ResumePoint,
    complete_file,
    continued_version,
    finished_by,
    remove_incomplete_checkpoints,
    resume_point,
)
from epic_ar.training.system import ActionRecognitionSystem

LOG = logging.getLogger("epic_ar.train")
LOGS_NAME = "lightning_logs"
# Lightning's warnings about what `train` sees to: an epoch shorter than the logging interval
# (`ShortEpochLogging` lowers it), a continued run's checkpoint folder holding checkpoints.
SHORT_EPOCH_WARNING = r"The number of training batches \(\d+\) is smaller than the logging"
FOLDER_IN_USE_WARNING = r"Checkpoint directory .* exists and is not empty"


@dataclass(frozen=True)
class TrainingOutcome:
    run_dir: Path
    log_dir: Path  # lightning_logs/version_N
    checkpoints: list[Path]
    last_checkpoint: Path | None
    metrics: dict[str, float]  # the last logged value of each metric
    writer: bool  # whether this process reports (rank 0; always without DDP)
    resumed_from: Path | None = None
    continued: bool = False  # resumed in the checkpoint's own version folder
    # The limit the checkpoint resumed from had already reached ("trainer.max_epochs=3"):
    # nothing was trained or written.
    already_complete: str | None = None


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run. `checkpoint`: the newest complete checkpoint of its version
    folder (None: none was complete); `folder`: that version folder when it is kept (None:
    removed); `writer`: rank 0."""

    def __init__(self, checkpoint: Path | None, *, folder: Path | None = None, writer: bool):
        super().__init__(f"training interrupted; newest checkpoint: {checkpoint}")
        self.checkpoint, self.folder, self.writer = checkpoint, folder, writer


def find_resume_checkpoint(resume: str | None, run_dir: Path) -> Path | None:
    """The checkpoint to resume from: a path, or for "auto" the newest complete `.ckpt` of
    the run directory (None when it has none yet: the run starts from scratch)."""
    if resume is None:
        return None
    if resume != "auto":
        path = Path(resume)
        if path.is_dir():
            raise EpicArError(f"resume: {path} is a folder; give a checkpoint file, or auto")
        if not path.is_file():
            raise EpicArError(f"resume: no such checkpoint {path}")
        return path
    newest = newest_checkpoint(
        run_checkpoints(run_dir),
        on_incomplete=lambda path: LOG.warning(
            "resume=auto: skipping %s (incomplete: killed while writing?)", path
        ),
    )
    if newest is None:
        LOG.info("resume=auto: no checkpoint in %s yet, starting from scratch", run_dir)
    return newest


def run_checkpoints(run_dir: Path) -> Iterator[Path]:
    """The `.ckpt` files of every version folder of `run_dir`."""
    return (run_dir / LOGS_NAME).glob("version_*/checkpoints/*.ckpt")


def newest_checkpoint(
    candidates: Iterable[Path], on_incomplete: Callable[[Path], object] | None = None
) -> Path | None:
    """The newest (by modification time) complete checkpoint among `candidates` (None:
    none); `on_incomplete` is called with each newer one that a kill left half-written."""
    for path in sorted(candidates, key=lambda path: path.stat().st_mtime_ns, reverse=True):
        if complete_file(path):
            return path
        if on_incomplete is not None:
            on_incomplete(path)
    return None


def initialise(system: ActionRecognitionSystem, run: RunConfig) -> None:
    """Pretrained backbone weights, or the whole model from `model.weights`."""
    if run.init.weights is not None:
        report = load_model_weights(
            system.model, Path(run.init.weights), strict=run.init.weights_strict
        )
        if report:
            LOG.warning("model.weights: %s", report)
    else:
        load_pretrained(system.model, run.model.pretrained)
        if run.model.pretrained is None and run.model.partial_bn:
            LOG.warning(
                "model.partial_bn with model.pretrained=null: every BatchNorm but the first "
                "keeps its initial statistics (mean 0, variance 1) throughout training; set "
                "model.partial_bn=false to train from scratch"
            )


def check_resume_checkpoint(path: Path, system: ActionRecognitionSystem) -> ResumePoint:
    """Refuse, before Lightning loads it, a file to resume from that is not a training
    checkpoint of this model: unreadable or truncated, naming code outside the allow-list
    (nothing it names is run), without optimizer state, or with other weights. Returns
    how far it had got."""
    source = f"resume: {path}"
    try:
        loaded = read_checkpoint(path)
    except EpicArError as exc:  # without a trust=True hint: resuming never trusts
        raise EpicArError("resume: ", *exc.text.without_suggestions().parts) from None
    if not isinstance(loaded.get("state_dict"), dict) or "optimizer_states" not in loaded:
        raise EpicArError(f"{source}: not a training checkpoint (no state_dict / optimizer state)")
    load_state_dict_strictly(system, loaded["state_dict"], source)
    return resume_point(path, loaded)


def build_trainer(
    run: RunConfig,
    run_dir: Path,
    *,
    continued: ResumePoint | None = None,
    version: int | None = None,
) -> Trainer:
    """The run's Trainer, logging into `run_dir/lightning_logs/version_N`: a new N, or with
    `continued`, the existing folder `version` that the run resumed from."""
    csv: CSVLogger
    if continued is None or version is None:
        csv = CSVLogger(run_dir, name=LOGS_NAME)
        tensorboard = TensorBoardLogger(run_dir, name=LOGS_NAME, version=csv.version)
    else:
        step = continued.logged_step
        csv = ContinuedCSVLogger(run_dir, name=LOGS_NAME, version=version, step=step)
        # TensorBoard hides the folder's events from `step` on (the part trained again)
        tensorboard = TensorBoardLogger(run_dir, name=LOGS_NAME, version=version, purge_step=step)
    checkpoints = ModelCheckpoint(
        filename="epoch={epoch}",
        auto_insert_metric_name=False,
        save_top_k=-1,
        save_last=True,
    )
    callbacks = [checkpoints, LearningRateMonitor(logging_interval="epoch"), ShortEpochLogging()]
    try:
        return Trainer(
            **run.trainer,
            default_root_dir=run_dir,
            logger=[csv, tensorboard],  # CSV first: it wants an empty folder
            callbacks=callbacks,
            use_distributed_sampler=False,  # the data module's samplers split the data
        )
    # Everything else passed is fixed here: Lightning refuses the trainer.* values given
    # (an unavailable accelerator, an unknown strategy, a negative max_epochs, ...).
    except (MisconfigurationException, ValueError, TypeError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EpicArError(f"trainer: Lightning refused the arguments: {reason}") from None


class ShortEpochLogging(Callback):
    """Training steps are logged at least once an epoch: an epoch of fewer optimizer steps
    than `trainer.log_every_n_steps` (a short run) lowers the interval to its step count,
    where Lightning would only warn and log no step."""

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # a plain attribute of the Trainer, read at every step (not in its type stubs)
        configured: int = getattr(trainer, "log_every_n_steps", 0)
        interval = logging_interval(
            configured, trainer.num_training_batches, trainer.accumulate_grad_batches
        )
        setattr(trainer, "log_every_n_steps", interval)  # noqa: B010


def _rank_zero() -> bool:
    """Whether this process is rank 0 (as Lightning tells from the launcher's variables)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def logging_interval(configured: int, batches: float, accumulation: int) -> int:
    """`configured` steps, or fewer: the optimizer steps of an epoch of `batches` batches
    (`accumulation` batches a step); 0 (no logging) and epochs of unknown length unchanged."""
    if configured <= 0 or not math.isfinite(batches):
        return configured
    return min(configured, max(1, int(batches) // max(1, accumulation)))


def train(config: dict[str, Any], run_dir: Path) -> TrainingOutcome:
    """Train as `config` (a resolved run config, plain dicts) says, writing into `run_dir`.

    Raises:
        TrainingInterrupted: Ctrl-C stopped the run (its checkpoints are kept).
    """
    run = parse_run_config(config)
    need_val = run.trainer.get("limit_val_batches", 1.0) != 0
    check_sources(run.data, need_val=need_val)
    resume = find_resume_checkpoint(run.resume, run_dir)
    torch.manual_seed(run.seed)  # the same initial classifier weights in every process
    system = ActionRecognitionSystem(run.stored)
    point = version = None
    if resume is None:
        initialise(system, run)
    else:
        point = check_resume_checkpoint(resume, system)
        reached = finished_by(point, run.trainer)
        if reached is not None:
            return TrainingOutcome(
                run_dir, resume.parent.parent, [], resume, {}, writer=_rank_zero(),
                resumed_from=resume, already_complete=reached,
            )  # fmt: skip
        version = continued_version(point, run_dir / LOGS_NAME)
        if version is not None and _rank_zero():  # its names are written afresh, not "-v1"
            remove_incomplete_checkpoints(resume.parent)
    datamodule = EpicDataModule(
        run.data, modality=run.modality, batch_size=run.learning.batch_size, seed=run.seed
    )
    trainer = build_trainer(run, run_dir, continued=point, version=version)
    if resume is not None:
        where = "its own" if version is not None else "a new"
        LOG.info("resuming from %s, in %s version folder", resume, where)
    log_dir = Path(trainer.log_dir or run_dir)
    new_log_dir = not log_dir.exists()
    try:
        with warnings.catch_warnings(), lightning_interrupts():
            warnings.filterwarnings("ignore", message=SHORT_EPOCH_WARNING)
            if version is not None:
                warnings.filterwarnings("ignore", message=FOLDER_IN_USE_WARNING)
            trainer.fit(system, datamodule=datamodule, ckpt_path=resume)
    except (Exception, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        if new_log_dir and trainer.is_global_zero:
            remove_log_dir_without_checkpoints(log_dir, report=not interrupted)
        if interrupted:
            kept = log_dir if log_dir.is_dir() else None
            newest = newest_checkpoint((log_dir / "checkpoints").glob("*.ckpt"))
            raise TrainingInterrupted(newest, folder=kept, writer=trainer.is_global_zero) from None
        raise
    leave_process_group()
    return outcome(trainer, run_dir, resumed_from=resume, continued=version is not None)


def remove_log_dir_without_checkpoints(log_dir: Path, *, report: bool = True) -> None:
    """After a run failed: remove its `lightning_logs/version_N` folder (and an emptied
    `lightning_logs`) unless it holds a checkpoint. A run that failed after writing
    checkpoints keeps everything (`resume=auto` continues from the newest) and, with
    `report`, says so."""
    if any((log_dir / "checkpoints").glob("*.ckpt")):
        if report:
            LOG.warning(
                "the run failed; its checkpoints and logs are kept in %s (resume=auto "
                "continues from the newest)",
                log_dir,
            )
        return
    shutil.rmtree(log_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        log_dir.parent.rmdir()


def remove_unused_run_dir(run_dir: Path, existed: Collection[Path] = ()) -> None:
    """After a failed start: remove what Hydra wrote into `run_dir` (its `.hydra` folder and
    job log) and the folder itself, unless it holds anything else (an earlier run's files).
    Folders in `existed` (there before the command started) are kept, even empty, and a
    run folder among them is left as it is."""
    kept = {path.absolute() for path in existed}
    if run_dir.absolute() in kept:  # the user's folder: what is in it may be theirs
        return
    hydra_files = [run_dir / ".hydra", *run_dir.glob("*.log")]
    if not run_dir.is_dir() or set(run_dir.iterdir()) - set(hydra_files):
        return
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    for log in run_dir.glob("*.log"):
        log.unlink()
    with contextlib.suppress(OSError):
        for folder in (run_dir, run_dir.parent):  # and the parent Hydra made (outputs/DATE)
            if folder.absolute() in kept:
                break
            folder.rmdir()


def outcome(
    trainer: Trainer, run_dir: Path, *, resumed_from: Path | None = None, continued: bool = False
) -> TrainingOutcome:
    log_dir = Path(trainer.log_dir or run_dir)
    checkpoint_dir = log_dir / "checkpoints"
    checkpoints = sorted(checkpoint_dir.glob("epoch=*.ckpt"), key=os.path.getmtime)
    last = checkpoint_dir / "last.ckpt"
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    return TrainingOutcome(
        run_dir,
        log_dir,
        checkpoints,
        last if last.is_file() else None,
        metrics,
        writer=trainer.is_global_zero,
        resumed_from=resumed_from,
        continued=continued,
    )


def summary_lines(result: TrainingOutcome) -> list[str]:
    """What a person needs after training: where things are, and the last val numbers
    (reads which other version folders the run directory holds)."""
    if result.already_complete is not None:
        key = result.already_complete.partition("=")[0]
        return [f"the run is already complete ({result.already_complete} reached): its last "
                f"checkpoint is {result.last_checkpoint}; nothing was trained or written "
                f"(raise {key} to train on)"]  # fmt: skip
    lines = [f"run directory: {result.run_dir}{_which_version(result)}"]
    if result.last_checkpoint is not None:
        count = len(result.checkpoints)
        lines.append(f"checkpoints:   {result.last_checkpoint.parent} "
                     f"({count} epoch{'' if count == 1 else 's'} + last.ckpt)")  # fmt: skip
    lines.append(f"logs:          {result.log_dir} (metrics.csv; "
                 f"tensorboard --logdir {result.run_dir})")  # fmt: skip
    shown = [f"{name} {value:.2f}" for name, value in sorted(result.metrics.items())
             if name.startswith("val/") and "top" in name]  # fmt: skip
    if shown:
        lines.append("last validation: " + ", ".join(shown))
    return lines


def _which_version(result: TrainingOutcome) -> str:
    """Which version folder the run wrote, where that is not the only one: " (...)"."""
    folder = result.log_dir.parent.name + "/" + result.log_dir.name
    if result.resumed_from is not None:
        if result.continued:
            return f" (continued {folder} from {result.resumed_from.name})"
        return f" (resumed from {result.resumed_from} in a new {folder})"
    earlier = [path for path in result.log_dir.parent.glob("version_*") if path != result.log_dir]
    if not earlier:
        return ""
    runs = f"{len(earlier)} earlier run" + ("s" if len(earlier) > 1 else "")
    return f" (this run: {folder}; {runs} beside it)"


def interruption_message(exc: KeyboardInterrupt, run_dir: Path) -> str:
    """What `epic-ar train` says when Ctrl-C stopped it: where the checkpoints so far are
    and how to continue."""
    if isinstance(exc, TrainingInterrupted):
        newest = exc.checkpoint
        if newest is None and exc.folder is None:
            return "interrupted before the run's first checkpoint; nothing of it is kept"
        if newest is None:  # a checkpoint was being written: its folder stays
            return (
                f"interrupted while writing the run's first checkpoint; {exc.folder} is kept "
                "(resume=auto starts the run afresh)"
            )
    else:  # before training started: an earlier run's checkpoints, if any
        newest = newest_checkpoint(run_checkpoints(run_dir))
        if newest is None:
            return "interrupted"
    return (
        f"interrupted; the checkpoints so far are kept in {newest.parent} (newest "
        f"{newest.name}): the same command with resume=auto continues from the newest"
    )
