"""The `data.*` part of a run's configuration, with the original project's key names.

Plain dataclasses: the training configs (Hydra) use them as their schema, and Python users
can build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from epic_ar.annotations.splits import Split
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality

IMAGENET_MEAN = [0.485, 0.456, 0.406]


@dataclass
class Preprocessing:
    """How uint8 frames become model input (applied on the device, after transfer).

    The published RGB configs store `std` equal to the ImageNet *mean* (a quirk of the
    original configs that the published checkpoints were trained with); keep it to evaluate
    them as published.
    """

    bgr: bool = False
    rescale: bool = True  # divide by 255 before normalising
    input_size: int = 224
    scale_size: int = 256
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))


@dataclass
class TrainAugmentation:
    multiscale_crop_scales: list[float] = field(default_factory=lambda: [1, 0.875, 0.75, 0.66])


@dataclass
class TestAugmentation:
    rescale_size: int = 256  # shorter side before the centre crop (val and test)


@dataclass
class DataConfig:
    """Where the segments are and how they are sampled and loaded.

    Sources: `{train,val,test}_gulp_dir` (gulp directories), or, when `frames_dir` is set,
    the official frame archives under it with `{train,val,test}_labels` annotation files,
    or, when `videos_dir` is set, the videos under it (`DIR/P01/videos/P01_01.MP4`, RGB only)
    with the same annotation files.
    """

    frame_count: int = 8
    test_frame_count: int | None = None  # frame count at test time (default: frame_count)
    segment_length: int | None = None  # L; None: the modality's (`default_snippet_length`)
    _root_gulp_dir: str | None = None  # for the configs' `${data._root_gulp_dir}/...`
    train_gulp_dir: str | None = None
    val_gulp_dir: str | None = None
    test_gulp_dir: str | None = None
    frames_dir: str | None = None
    videos_dir: str | None = None
    train_labels: str | None = None
    val_labels: str | None = None
    test_labels: str | None = None
    label_frame_numbers: Modality = "rgb"  # archives: labels count RGB frames (converted for flow)
    worker_count: int = 8
    pin_memory: bool = True
    persistent_workers: bool = True
    batch_ring: bool = False  # training batches written into preallocated shared slots
    decode: Literal["cpu", "gpu"] = "cpu"  # gpu: training JPEGs decoded on the model's device
    train_on_val: bool = False  # train on train + val (for a final test-set submission)
    fast_decode: bool = False
    participants: list[str] | None = None  # keep only these participants' segments
    max_segments: int | None = None  # keep the first N segments of each split (quick runs)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    train_augmentation: TrainAugmentation = field(default_factory=TrainAugmentation)
    test_augmentation: TestAugmentation = field(default_factory=TestAugmentation)


def split_labels(data: DataConfig, split: Split) -> str:
    """The annotation file naming `split`'s segments when frames come from `frames_dir` or
    `videos_dir`.

    Raises:
        EpicArError: the config sets no labels for `split`.
    """
    labels: str | None = getattr(data, f"{split}_labels")
    if labels is None:
        key = "videos_dir" if data.videos_dir is not None else "frames_dir"
        raise EpicArError(f"data.{key} is set but data.{split}_labels is not")
    return str(labels)
