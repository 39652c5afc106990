"""Scores for every segment of a split, in one process or several (DDP), with test-time views.

Each process scores its share of the segments (Lightning's distributed sampler, which pads
the last share with repeats); the shares are gathered to every process, the repeats dropped
and the rows put back in the split's order, so the scores equal a single process's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, Dataset

from epic_ar import __version__
from epic_ar.data.config import DataConfig
from epic_ar.data.datamodule import EpicDataModule, split_gulp_dir
from epic_ar.data.dataset import Item, SegmentDataset
from epic_ar.data.segment_sources import is_gulp_directory
from epic_ar.data.views import average_over_views
from epic_ar.errors import EpicArError, Parameter
from epic_ar.modality import Modality, config_modality, config_spelling
from epic_ar.models.config import TrnEval
from epic_ar.models.video_model import VideoModel
from epic_ar.training.distributed import leave_process_group
from epic_ar.training.interrupts import lightning_interrupts
from epic_ar.training.run_config import parse_data_config

ScoredSplit = Literal["val", "test"]  # the splits that are scored (never train)


# where the split's frames are when the checkpoint's own gulp directory is not here
DATA_DIR = Parameter("data_dir", "data_dir=DIR", metavar="DIR")
# ... or the split's frame archives (or videos) and its annotation file
FRAMES_DIR = Parameter("frames_dir", "frames_dir=DIR", metavar="DIR")
VIDEOS_DIR = Parameter("videos_dir", "videos_dir=DIR", metavar="DIR")
LABELS = Parameter("labels", "labels=FILE", metavar="FILE")


@dataclass(frozen=True)
class ScoringOptions:
    """How to score a split.

    `frame_count` None: the split's default as the original samples it (val:
    `data.frame_count`; test: `data.test_frame_count`, else `data.frame_count`).
    `data_dir`: the split's gulp directory, or a folder holding `{rgb,flow}_{validation,test}`
    (see `split_gulp_dir`); it replaces whatever the checkpoint's config names.
    `frames_dir` + `labels`: read the official frame archives (or folders) under
    `frames_dir` for the segments of `labels` (RGB frame numbers) instead of gulp
    directories; `videos_dir` + `labels`: read them from the videos under `videos_dir`
    (`DIR/P01/videos/P01_01.MP4`, RGB only). `clips` x `crops` views per segment, scores
    averaged. `trn_eval` None: the config's. `checkpoint`: recorded in the scores' record.
    """

    split: ScoredSplit
    frame_count: int | None = None
    data_dir: Path | None = None
    batch_size: int = 8
    clips: int = 1
    crops: int = 1
    devices: int = 1
    accelerator: str = "auto"
    workers: int = 4
    frames_dir: Path | None = None
    labels: Path | None = None
    trn_eval: TrnEval | None = None
    checkpoint: Path | None = None
    videos_dir: Path | None = None


@dataclass(frozen=True)
class SplitScores:
    narration_id: np.ndarray  # [N] str, the split's order
    scores: np.ndarray  # [N, 397] float32: 97 verbs, then 300 nouns
    writer: bool  # whether this process writes outputs (rank 0; always without DDP)
    record: dict[str, Any]  # how the scores were made (plain values, for results files)


class _Indexed(Dataset[Item]):
    """Items with their dataset index in the metadata (to undo the distributed split)."""

    def __init__(self, dataset: SegmentDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Item:
        frames, metadata = self.dataset[index]
        return frames, {"index": index, "narration_id": metadata["narration_id"]}


class _Scorer(LightningModule):
    """Averages the model's scores over the views ([B, V, T, C, H, W] input) of a segment."""

    def __init__(self, model: VideoModel, data: EpicDataModule):  # data: for `normalize`
        super().__init__()
        self.model, self.data = model, data

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        frames, metadata = batch
        return self.data.normalize(frames), metadata

    def predict_step(self, batch: Any, batch_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames, metadata = batch
        scores = average_over_views(self.model, frames)
        return metadata["index"].cpu(), scores.float().cpu()


def test_dataset(data: DataConfig, modality: Modality, settings: ScoringOptions) -> SegmentDataset:
    """The split's test-mode dataset with the settings' frame count and views."""
    module = EpicDataModule(data, modality=modality, batch_size=settings.batch_size)
    return module.build_dataset(
        settings.split,
        train=False,
        frame_count=settings.frame_count,
        clips=settings.clips,
        crops=settings.crops,
    )


def with_frame_source(data: DataConfig, modality: Modality, settings: ScoringOptions) -> DataConfig:
    """`data` reading the split from the settings' gulp directory, frame archives or videos
    and labels, when they name them (whatever the checkpoint's config stored)."""
    sources = (settings.data_dir, settings.frames_dir, settings.videos_dir)
    given = [source for source in sources if source is not None]
    if len(given) > 1:
        raise EpicArError(
            "give one of a gulp data_dir, a frames_dir with labels or a videos_dir with labels"
        )
    if settings.data_dir is not None:
        gulp_dir = str(split_gulp_dir(settings.data_dir, settings.split, modality))
        data = replace(data, frames_dir=None, videos_dir=None)
        if settings.split == "val":
            return replace(data, val_gulp_dir=gulp_dir)
        return replace(data, test_gulp_dir=gulp_dir)
    if settings.frames_dir is None and settings.videos_dir is None:
        if data.frames_dir is None and data.videos_dir is None:
            _check_stored_gulp_dir(data, settings.split)
        else:
            _check_stored_labels(data, settings.split)
        return data
    if settings.labels is None:
        folder = "frames" if settings.frames_dir is not None else "videos"
        raise EpicArError(f"reading a {folder} folder needs the split's labels file")
    if settings.videos_dir is not None:
        data = replace(data, frames_dir=None, videos_dir=str(settings.videos_dir))
    else:
        data = replace(data, frames_dir=str(settings.frames_dir), videos_dir=None)
    data = replace(data, label_frame_numbers="rgb")
    if settings.split == "val":
        return replace(data, val_labels=str(settings.labels))
    return replace(data, test_labels=str(settings.labels))


def _check_stored_labels(data: DataConfig, split: ScoredSplit) -> None:
    """A checkpoint trained from frame archives or videos names the labels of the splits it
    was trained on: for another split (test), say how to give its source and labels."""
    if getattr(data, f"{split}_labels") is not None:
        return
    key = "videos_dir" if data.videos_dir is not None else "frames_dir"
    source = VIDEOS_DIR if data.videos_dir is not None else FRAMES_DIR
    raise EpicArError(
        f"the checkpoint was trained from data.{key} and stores no data.{split}_labels; "
        "give the split's frames and labels with ", source, " ", LABELS,
        ", or its gulp directory with ", DATA_DIR,
    )  # fmt: skip


def _check_stored_gulp_dir(data: DataConfig, split: ScoredSplit) -> None:
    """The checkpoint's own gulp directory for `split` must exist where this runs: often it
    names the machine the model was trained on."""
    key = f"{split}_gulp_dir"
    stored = getattr(data, key)
    if stored is None:
        raise EpicArError(
            f"the checkpoint stores no data.{key}; give the split's gulp directory with ",
            DATA_DIR,
        )
    if not is_gulp_directory(Path(stored)):
        problem = "is not a gulp directory" if Path(stored).exists() else "does not exist here"
        raise EpicArError(
            f"data.{key} stored in the checkpoint: {stored} {problem}; "
            "give the split's gulp directory with ",
            DATA_DIR,
        )


def scoring_record(
    settings: ScoringOptions, module: EpicDataModule, dataset: SegmentDataset, modality: Modality
) -> dict[str, Any]:
    """How a split was scored, as plain values: what `epic-ar test` stores in results."""
    source, labels = module.source(settings.split)
    checkpoint = settings.checkpoint
    return {
        "made_by": f"epic-ar {__version__} test",
        "checkpoint": str(checkpoint.resolve()) if checkpoint is not None else None,
        "modality": config_spelling(modality),  # as the run config spells it
        "split": settings.split,
        "source": str(source.resolve()),
        "source_kind": source_kind(module.data),
        "labels": str(labels.resolve()) if labels is not None else None,
        "frame_count": dataset.frame_count,
        "clips": settings.clips,
        "crops": settings.crops,
        "trn_eval": settings.trn_eval,
    }


def source_kind(data: DataConfig) -> str:
    """What the frames are read from: "videos", "frames" (archives or folders) or "gulp"."""
    if data.videos_dir is not None:
        return "videos"
    return "frames" if data.frames_dir is not None else "gulp"


def score_split(model: VideoModel, config: dict[str, Any], settings: ScoringOptions) -> SplitScores:
    """Scores of every segment of `settings.split`, as the run `config` (a checkpoint's,
    see `epic_ar.models.load_checkpoint`) reads and preprocesses it.

    Returns the same on every process; the order is the split's (annotation order).
    """
    # messages about the stored config name the checkpoint file it came from
    source = str(settings.checkpoint) if settings.checkpoint is not None else "config"
    modality = config_modality(config.get("modality", "RGB"), f"{source}: modality")
    try:
        stored = parse_data_config(dict(config.get("data", {})))
    except EpicArError as exc:
        if settings.checkpoint is None:
            raise
        raise EpicArError(f"{source}: {exc}") from None
    data = with_frame_source(stored, modality, settings)
    dataset = test_dataset(data, modality, settings)
    model.set_frame_count(dataset.frame_count)
    if settings.trn_eval is not None:
        model.set_trn_eval(settings.trn_eval)
    module = EpicDataModule(data, modality=modality, batch_size=settings.batch_size)
    loader = DataLoader(
        _Indexed(dataset),
        batch_size=settings.batch_size,
        num_workers=settings.workers,
        pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        accelerator=settings.accelerator,
        devices=settings.devices,
        strategy="ddp" if settings.devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    with lightning_interrupts():  # Ctrl-C: KeyboardInterrupt, not Lightning's exit(1)
        predictions = trainer.predict(_Scorer(model.eval(), module), dataloaders=loader)
    assert predictions is not None
    indices = torch.cat([index for index, _ in predictions])
    scores = torch.cat([score for _, score in predictions])
    indices, scores = _gather(indices, scores)
    writer = trainer.is_global_zero
    leave_process_group()  # every process has all the scores now
    order = _first_of_each(indices.numpy(), len(dataset))
    narration_ids = np.asarray(dataset.table.narration_id)[dataset.rows]
    ordered = scores.numpy()[order]
    _check_finite(ordered, narration_ids, source)
    return SplitScores(
        narration_id=narration_ids,
        scores=ordered,
        writer=writer,
        record=scoring_record(settings, module, dataset, modality),
    )


def _check_finite(scores: np.ndarray, narration_ids: np.ndarray, source: str) -> None:
    """Refuse scores ([N, 397]) holding NaN or inf: the model (`source`) is at fault, not the
    results file they would go to."""
    bad = ~np.isfinite(scores).all(axis=1)
    if bad.any():
        raise EpicArError(
            f"{source}: the model scored {int(bad.sum())} of {len(bad)} segments as NaN or "
            f"inf (first {narration_ids[bad][0]}); are its weights finite?"
        )


def _gather(indices: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's (indices, scores), concatenated in rank order (as is without DDP)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return indices, scores
    shares: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shares, (indices, scores))
    return torch.cat([i for i, _ in shares]), torch.cat([s for _, s in shares])


def _first_of_each(indices: np.ndarray, count: int) -> np.ndarray:
    """Rows of `indices` that hold dataset items 0..count-1, the first of any repeats."""
    _, first = np.unique(indices, return_index=True)
    if len(first) != count:
        raise EpicArError(f"scored {len(first)} of {count} segments")
    return first
