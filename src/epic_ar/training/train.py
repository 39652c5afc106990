"""`epic-ar train`: one training run, from a resolved config to checkpoints and logs.

Layout of a run directory (the original project's):

    RUN/lightning_logs/version_N/checkpoints/epoch=E.ckpt, last.ckpt
    RUN/lightning_logs/version_N/metrics.csv, events.out.tfevents.* (TensorBoard)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning import Trainer
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from epic_ar.data.datamodule import EpicDataModule
from epic_ar.errors import EpicArError
from epic_ar.models.checkpoint import load_state_dict_strictly
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.models.pretrained import load_pretrained
from epic_ar.models.weights import load_model_weights
from epic_ar.training.run_config import RunConfig, check_sources, parse_run_config
from epic_ar.training.system import ActionRecognitionSystem

LOG = logging.getLogger("epic_ar.train")
LOGS_NAME = "lightning_logs"


@dataclass(frozen=True)
class TrainingOutcome:
    run_dir: Path
    log_dir: Path  # lightning_logs/version_N
    checkpoints: list[Path]
    last_checkpoint: Path | None
    metrics: dict[str, float]  # the last logged value of each metric
    writer: bool  # whether this process reports (rank 0; always without DDP)


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
    found = sorted(
        (run_dir / LOGS_NAME).glob("version_*/checkpoints/*.ckpt"),
        key=lambda path: path.stat().st_mtime_ns,
        reverse=True,
    )
    for path in found:
        if _complete(path):
            return path
        LOG.warning("resume=auto: skipping %s (incomplete: killed while writing?)", path)
    LOG.info("resume=auto: no checkpoint in %s yet, starting from scratch", run_dir)
    return None


def _complete(path: Path) -> bool:
    """Whether a torch.save file was written to the end (its zip directory is readable)."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError):
        return False


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


def check_resume_checkpoint(path: Path, system: ActionRecognitionSystem) -> None:
    """Refuse, before Lightning loads it, a file to resume from that is not a training
    checkpoint of this model: unreadable or truncated, naming code outside the allow-list
    (nothing it names is run), without optimizer state, or with other weights."""
    source = f"resume: {path}"
    try:
        loaded = read_checkpoint(path)
    except EpicArError as exc:  # without a trust=True hint: resuming never trusts
        raise EpicArError("resume: ", *exc.text.without_suggestions().parts) from None
    if not isinstance(loaded.get("state_dict"), dict) or "optimizer_states" not in loaded:
        raise EpicArError(f"{source}: not a training checkpoint (no state_dict / optimizer state)")
    load_state_dict_strictly(system, loaded["state_dict"], source)


def build_trainer(run: RunConfig, run_dir: Path) -> Trainer:
    csv = CSVLogger(run_dir, name=LOGS_NAME)
    tensorboard = TensorBoardLogger(run_dir, name=LOGS_NAME, version=csv.version)
    checkpoints = ModelCheckpoint(
        filename="epoch={epoch}",
        auto_insert_metric_name=False,
        save_top_k=-1,
        save_last=True,
    )
    try:
        return Trainer(
            **run.trainer,
            default_root_dir=run_dir,
            logger=[csv, tensorboard],  # CSV first: it wants an empty folder
            callbacks=[checkpoints, LearningRateMonitor(logging_interval="epoch")],
            use_distributed_sampler=False,  # the data module's samplers split the data
        )
    # Everything else passed is fixed here: Lightning refuses the trainer.* values given
    # (an unavailable accelerator, an unknown strategy, a negative max_epochs, ...).
    except (MisconfigurationException, ValueError, TypeError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EpicArError(f"trainer: Lightning refused the arguments: {reason}") from None


def train(config: dict[str, Any], run_dir: Path) -> TrainingOutcome:
    """Train as `config` (a resolved run config, plain dicts) says, writing into `run_dir`."""
    run = parse_run_config(config)
    need_val = run.trainer.get("limit_val_batches", 1.0) != 0
    check_sources(run.data, need_val=need_val)
    resume = find_resume_checkpoint(run.resume, run_dir)
    torch.manual_seed(run.seed)  # the same initial classifier weights in every process
    system = ActionRecognitionSystem(run.stored)
    if resume is None:
        initialise(system, run)
    else:
        check_resume_checkpoint(resume, system)
    datamodule = EpicDataModule(
        run.data, modality=run.modality, batch_size=run.learning.batch_size, seed=run.seed
    )
    trainer = build_trainer(run, run_dir)
    if resume is not None:
        LOG.info("resuming from %s", resume)
    log_dir = Path(trainer.log_dir or run_dir)
    new_log_dir = not log_dir.exists()
    try:
        trainer.fit(system, datamodule=datamodule, ckpt_path=resume)
    except Exception:
        if new_log_dir and trainer.is_global_zero:
            remove_log_dir_without_checkpoints(log_dir)
        raise
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Leaving the process group to the interpreter's exit can abort the process
        # ("terminate called without an active exception") when gloo threads are alive.
        torch.distributed.destroy_process_group()
    return outcome(trainer, run_dir)


def remove_log_dir_without_checkpoints(log_dir: Path) -> None:
    """After a run failed: remove its `lightning_logs/version_N` folder (and an emptied
    `lightning_logs`) unless it holds a checkpoint. A run that failed after writing
    checkpoints keeps everything (`resume=auto` continues from the newest)."""
    if any((log_dir / "checkpoints").glob("*.ckpt")):
        LOG.warning("the run failed; its checkpoints and logs are kept in %s", log_dir)
        return
    shutil.rmtree(log_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        log_dir.parent.rmdir()


def remove_unused_run_dir(run_dir: Path) -> None:
    """After a failed start: remove what Hydra wrote into `run_dir` (its `.hydra` folder and
    job log) and the folder itself, unless it holds anything else (an earlier run's files)."""
    hydra_files = [run_dir / ".hydra", *run_dir.glob("*.log")]
    if not run_dir.is_dir() or set(run_dir.iterdir()) - set(hydra_files):
        return
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    for log in run_dir.glob("*.log"):
        log.unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # also its empty parents made by Hydra (outputs/DATE/TIME)
        run_dir.parent.rmdir()


def outcome(trainer: Trainer, run_dir: Path) -> TrainingOutcome:
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
    )


def summary_lines(result: TrainingOutcome) -> list[str]:
    """What a person needs after training: where things are, and the last val numbers."""
    lines = [f"run directory: {result.run_dir}"]
    if result.last_checkpoint is not None:
        lines.append(f"checkpoints:   {result.last_checkpoint.parent} "
                     f"({len(result.checkpoints)} epochs + last.ckpt)")  # fmt: skip
    lines.append(f"logs:          {result.log_dir} (metrics.csv; "
                 f"tensorboard --logdir {result.run_dir})")  # fmt: skip
    shown = [f"{name} {value:.2f}" for name, value in sorted(result.metrics.items())
             if name.startswith("val/") and "top" in name]  # fmt: skip
    if shown:
        lines.append("last validation: " + ", ".join(shown))
    return lines
