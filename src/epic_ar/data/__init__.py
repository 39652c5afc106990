"""Sampling, transforms, decoding and datasets.

`build_dataset` and `normalize` are the entry points for your own training loops; the
Lightning DataModule lives in `epic_ar.data.datamodule` (imported on demand: Lightning is
slow to import).
"""

from epic_ar.data.dataset import SeededShuffleSampler, SegmentDataset, build_dataset
from epic_ar.data.transforms import normalize

__all__ = ["SeededShuffleSampler", "SegmentDataset", "build_dataset", "normalize"]
