"""The Lightning DataModule: train / val / test loaders from a `DataConfig`.

Workers ship uint8 frames; `on_after_batch_transfer` turns them into normalised float32 on
the device (4x fewer bytes through shared memory and the host-to-device copy).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from epic_ar.annotations.splits import Split
from epic_ar.data.batch_ring import BatchRing, RingBatch, RingBatchSampler, RingWriter
from epic_ar.data.config import DataConfig, split_labels
from epic_ar.data.dataset import (
    Item,
    JoinedDataset,
    SeededShuffleSampler,
    SegmentDataset,
    build_dataset,
)
from epic_ar.data.device_decode import JpegBatch, collate_jpeg_samples, decode_on_device
from epic_ar.data.segment_sources import is_gulp_directory
from epic_ar.data.transforms import normalize
from epic_ar.data.views import config_view_settings
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality, parse_modality

LOG = logging.getLogger(__name__)
PREFETCH_FACTOR = 2  # batches each worker has in hand (torch's default)
# The folder of each split in a gulp root, as the packaged configs name them.
SPLIT_FOLDERS: dict[Split, str] = {"train": "train", "val": "validation", "test": "test"}


def default_frame_count(data: DataConfig, split: Split) -> int:
    """Snippets per segment (T) for `split`, as the original project samples them: train and
    val use `frame_count`; test uses `test_frame_count` when set (TSN's 25), else
    `frame_count`. The published TSN validation numbers were computed with 8 frames."""
    if split == "test" and data.test_frame_count is not None:
        return data.test_frame_count
    return data.frame_count


def split_gulp_dir(data_dir: Path, split: Split, modality: Modality) -> Path:
    """The gulp directory of `split` that `data_dir` names: `data_dir` itself when it is a
    gulp directory (the split's own, as the original's `test.py --datadir` takes it), else
    `data_dir/{modality}_{split folder}` (e.g. `rgb_validation`) when `data_dir` holds it.
    A gulp directory named for another split (`rgb_test` when scoring val) is refused.

    Raises:
        EpicArError: `data_dir` is neither; the message names both forms.
    """
    folder = f"{modality}_{SPLIT_FOLDERS[split]}"
    if is_gulp_directory(data_dir):
        named = re.fullmatch(r"(?:rgb|flow)_(train|validation|test)", data_dir.name)
        if named is not None and named.group(1) != SPLIT_FOLDERS[split]:
            raise EpicArError(
                f"{data_dir}: by its name, the {named.group(1)} split's gulp directory, not "
                f"the {SPLIT_FOLDERS[split]} split's; give {folder} (or its parent folder)"
            )
        return data_dir
    if is_gulp_directory(data_dir / folder):
        return data_dir / folder
    if not data_dir.is_dir():
        problem = "does not exist" if not data_dir.exists() else "is not a folder"
    else:
        problem = f"is neither a gulp directory nor a folder holding {folder}/"
    raise EpicArError(
        f"{data_dir}: {problem}; give the split's gulp directory (e.g. /gulp/{folder}) or "
        f"the folder that holds it (e.g. /gulp)"
    )


class EpicDataModule(LightningDataModule):
    """Loaders for one modality. Training shuffles with `SeededShuffleSampler` (each item's
    augmentation fixed by (seed, epoch, item)); when the trainer runs several processes the
    sampler splits the data between them itself, so the trainer must be created with
    `use_distributed_sampler=False`. `modality`: "rgb" or "flow" ("RGB"/"Flow", the
    configs' spelling, are taken too).
    """

    def __init__(self, data: DataConfig, *, modality: Modality, batch_size: int, seed: int = 0):
        super().__init__()
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.modality: Modality = parse_modality(modality, "unknown modality:")
        self._datasets: dict[tuple[Split, bool], SegmentDataset] = {}
        self._ring: BatchRing | None = None
        self._ring_slot: int | None = None  # the ring slot of the batch being transferred

    def source(self, split: Split) -> tuple[Path, Path | None]:
        """(source, labels) of a split: its gulp directory, or the archives (or the videos)
        + its labels."""
        data = self.data
        if data.frames_dir is not None and data.videos_dir is not None:
            raise EpicArError("data.frames_dir and data.videos_dir are both set; set one")
        if data.videos_dir is not None:
            return Path(data.videos_dir), Path(split_labels(data, split))
        if data.frames_dir is not None:
            return Path(data.frames_dir), Path(split_labels(data, split))
        gulp_dir = {"train": data.train_gulp_dir, "val": data.val_gulp_dir}.get(
            split, data.test_gulp_dir
        )
        if gulp_dir is None:
            raise EpicArError(f"data.{split}_gulp_dir is not set")
        return Path(gulp_dir), None

    def dataset(self, split: Split, *, train: bool) -> SegmentDataset:
        """The split's dataset, in training mode or test mode (built once, then cached)."""
        key = (split, train)
        if key not in self._datasets:
            self._datasets[key] = self.build_dataset(split, train=train)
        return self._datasets[key]

    def build_dataset(
        self,
        split: Split,
        *,
        train: bool,
        frame_count: int | None = None,
        clips: int = 1,
        crops: int = 1,
    ) -> SegmentDataset:
        """A new dataset of the split as the config describes it. `frame_count` None: the
        split's default (`default_frame_count`); `clips`/`crops`: test-time views (test
        mode). Sampling, sizes and decoding are `config_view_settings`'s, in train mode too."""
        data = self.data
        source, labels = self.source(split)
        if frame_count is None:
            frame_count = default_frame_count(data, split)
        # unchecked: the dataset checks them after opening the source (the scale in test mode)
        views = config_view_settings(
            data,
            clips=clips,
            crops=crops,
            modality=self.modality,
            frame_count=frame_count,
            check=False,
        )
        videos = data.videos_dir is not None
        dataset = build_dataset(
            None if videos else source,
            self.modality,
            frame_count=views.frame_count,
            segment_length=views.snippet_length,
            train=train,
            labels=labels,
            input_size=views.input_size,
            scale_size=views.scale_size,
            scales=data.train_augmentation.multiscale_crop_scales,
            fast_decode=views.fast_decode,
            label_frame_numbers=data.label_frame_numbers,
            clips=views.clips,
            crops=views.crops,
            videos_dir=source if videos else None,
            decode_on_device=train and data.decode == "gpu",
        )
        restrict(dataset, data.participants, data.max_segments)
        return dataset

    def _world(self) -> tuple[int, int]:
        """(processes, this one's rank) of the attached trainer; (1, 0) without one."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def process_batch_size(self) -> int:
        """`batch_size` is the global batch (the original's, over all its GPUs): each of the
        trainer's processes loads an equal share."""
        processes = self._world()[0]
        if self.batch_size % processes:
            raise EpicArError(
                f"learning.batch_size {self.batch_size} does not split evenly between "
                f"{processes} processes"
            )
        return self.batch_size // processes

    def _loader(
        self, dataset: Dataset[Item], sampler: Any = None, collate_fn: Any = None
    ) -> DataLoader[Item]:
        workers = self.data.worker_count
        return DataLoader(
            dataset,
            batch_size=self.process_batch_size(),
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate_fn,
            pin_memory=self.data.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.data.persistent_workers and workers > 0,
            prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
        )

    def uses_batch_ring(self) -> bool:
        """Whether training batches go through a `BatchRing`: `data.batch_ring`, with
        persistent workers or none (new workers each epoch could still be writing; then the
        standard loader is used, and a warning says so)."""
        data = self.data
        if not data.batch_ring:
            return False
        if data.decode == "gpu":
            LOG.warning("data.batch_ring holds decoded frames; with data.decode=gpu the "
                        "workers ship JPEG bytes: training without the ring")  # fmt: skip
            return False
        if data.persistent_workers or data.worker_count == 0:
            return True
        LOG.warning("data.batch_ring needs data.persistent_workers=true (or no workers); "
                    "training with the standard loader")  # fmt: skip
        return False

    def _ring_loader(
        self, dataset: SegmentDataset | JoinedDataset, sampler: Any
    ) -> DataLoader[Any]:
        """The training loader through a batch ring: enough slots for every task the
        workers hold (`PREFETCH_FACTOR` each), the batch being handed out, the one still
        being copied to the GPU, and one to spare."""
        workers, batch_size = self.data.worker_count, self.process_batch_size()
        item_shape = dataset.item_shape
        self._ring = BatchRing(workers * PREFETCH_FACTOR + 3, batch_size, item_shape)
        if self.data.pin_memory and torch.cuda.is_available() and not self._ring.pin():
            LOG.warning("the batch ring could not be page-locked; copies to the GPU will be slower")
        return DataLoader(
            RingWriter(dataset, self._ring.frames),
            batch_size=None,
            sampler=RingBatchSampler(sampler, batch_size, self._ring),
            num_workers=workers,
            persistent_workers=workers > 0,
            prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader[Item]:
        parts = [self.dataset("train", train=True)]
        if self.data.train_on_val:
            parts.append(self.dataset("val", train=True))
        dataset = JoinedDataset(parts)
        replicas, rank = self._world()
        sampler = SeededShuffleSampler(
            len(dataset), seed=self.seed, num_replicas=replicas, rank=rank
        )
        return self.training_loader(dataset, sampler)

    def training_loader(self, dataset: JoinedDataset, sampler: Any) -> DataLoader[Any]:
        """The loader of training items as the config asks: through the batch ring, with
        JPEGs for decoding on the device, or the standard one."""
        if self.uses_batch_ring():
            return self._ring_loader(dataset, sampler)
        if self.data.decode == "gpu":
            return self._loader(dataset, sampler, collate_fn=collate_jpeg_samples)
        return self._loader(dataset, sampler)

    def _evaluation_loader(self, dataset: SegmentDataset) -> DataLoader[Item]:
        processes, rank = self._world()
        sampler: DistributedSampler[Item] | None = None
        if processes > 1:  # each process takes every processes-th segment (padded)
            sampler = DistributedSampler(dataset, processes, rank, shuffle=False)
        return self._loader(dataset, sampler)

    def val_dataloader(self) -> DataLoader[Item]:
        return self._evaluation_loader(self.dataset("val", train=False))

    def test_dataloader(self) -> DataLoader[Item]:
        return self._evaluation_loader(self.dataset("test", train=False))

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, RingBatch) and self._ring is not None:
            self._ring_slot = batch.slot
            return self._ring.hand_out(batch)
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, JpegBatch):
            size, grey = self.data.preprocessing.input_size, self.modality == "flow"
            frames = decode_on_device(batch, size, grey=grey, device=self._device())
            return self.normalize(frames), batch.metadata
        frames, metadata = batch
        normalised = self.normalize(frames)  # a new tensor: the ring slot is no longer read
        if self._ring is not None and self._ring_slot is not None:
            copied = None
            if frames.is_cuda:  # the copy from the slot may still be running
                copied = torch.cuda.Event()  # type: ignore[no-untyped-call]
                copied.record()
            self._ring.release(self._ring_slot, copied)
            self._ring_slot = None
        return normalised, metadata

    def _device(self) -> torch.device:
        """The device the trainer moves batches to (the CPU without a trainer)."""
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, C, S, S] uint8 → float32 model input, on the frames' device."""
        pre = self.data.preprocessing
        return normalize(
            frames, pre.mean, pre.std, rescale=pre.rescale, bgr=pre.bgr and self.modality == "rgb"
        )


def restrict(
    dataset: SegmentDataset, participants: list[str] | None, max_segments: int | None
) -> None:
    """Keep only the given participants' segments, then only the first `max_segments`."""
    mask = np.ones(len(dataset.table), dtype=bool)
    if participants is not None:
        mask &= np.isin(dataset.table.participant_id, [str(p) for p in participants])
    if max_segments is not None:
        mask &= np.cumsum(mask) <= max_segments
    if not mask.any():
        raise EpicArError(
            f"no segments left after data.participants={participants} / "
            f"data.max_segments={max_segments}"
        )
    dataset.keep(mask)
