"""TSN datasets over gulp directories, frame archives or videos: items are uint8 frame tensors.

An item is `(frames, metadata)`: `frames` [T, C, S, S] uint8 (C = 3 for RGB; C = 2L for
flow, channels u1, v1, u2, v2, ...), `metadata` a dict of `narration_id`, `video_id`,
`participant_id` and, for labelled splits, `verb_class` and `noun_class`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from epic_ar.data.decode import (
    CropBox,
    FrameData,
    ScratchBuffer,
    decode_frames,
    decode_grey_quads,
    decode_resized,
    frame_data_size,
)
from epic_ar.data.device_decode import JpegSample
from epic_ar.data.sampling import (
    default_snippet_length,
    sample_train_offsets,
    snippet_frame_indices,
)
from epic_ar.data.segment_sources import SegmentSource, open_segment_source
from epic_ar.data.transforms import (
    FLOW_SCALES,
    RGB_SCALES,
    crop_resize,
    invert_flow_u,
    resize_grey_quads,
    sample_multiscale_crop,
    whole_frame_box,
)
from epic_ar.data.views import ViewSettings, check_view_counts, segment_views
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality, parse_modality

Item = tuple[torch.Tensor, dict[str, Any]]
# An item's key: a segment index, or (index, seed) to fix the item's random draws.
ItemKey = int | tuple[int, int]


class TrainDraw(NamedTuple):
    """A training sample's random choices and the frames they read: `frames` (JPEG bytes
    or decoded pixels), the crop `box`, whether it is mirrored (`flip`), and whether the
    frames are grey."""

    frames: FrameData
    box: CropBox
    flip: bool
    grey: bool


class SegmentDataset(Dataset[Item]):
    """TSN sampling + group augmentation (train) or resize + centre crop (test mode).

    Index with an int (random draws from a per-process generator seeded from torch's seed,
    which DataLoader sets per worker) or with `(index, seed)` (draws fixed by the seed, so
    augmentation does not depend on worker count or on restarts: see `SeededShuffleSampler`).
    """

    def __init__(
        self,
        segments: SegmentSource,
        *,
        frame_count: int,
        segment_length: int,
        train: bool,
        input_size: int = 224,
        scale_size: int = 256,
        scales: Sequence[float] | None = None,
        fast_decode: bool = False,
        clips: int = 1,
        crops: int = 1,
        decode_on_device: bool = False,
    ):
        if frame_count < 1 or segment_length < 1:
            raise EpicArError("frame_count and segment_length must be at least 1")
        check_view_counts(clips, crops)
        if not train and scale_size < input_size:
            raise EpicArError(f"scale size {scale_size} is smaller than input size {input_size}")
        self.segments, self.table = segments, segments.table
        self.modality: Modality = segments.modality
        self.frame_count, self.segment_length, self.train = frame_count, segment_length, train
        self.input_size, self.scale_size, self.fast_decode = input_size, scale_size, fast_decode
        self.clips, self.crops = clips, crops  # test-time views (test mode only)
        # train mode: items are `JpegSample`s, decoded by the main process on the device
        self.decode_on_device = decode_on_device and train
        default_scales = FLOW_SCALES if self.modality == "flow" else RGB_SCALES
        self.scales = tuple(scales) if scales is not None else default_scales
        self.rows = np.arange(len(self.table), dtype=np.int64)  # item → segment table row
        self._rng_pid, self._rng = -1, np.random.default_rng()
        self._scratch = ScratchBuffer()  # reused for every item (outputs never alias it)

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, mask: np.ndarray) -> None:
        """Serve only the segments where `mask` ([S] bool over the table) is True."""
        self.rows = np.flatnonzero(mask).astype(np.int64)

    @property
    def item_shape(self) -> tuple[int, int, int, int]:
        """[T, C, S, S] of a training item (C: 3 for RGB, 2 L for flow snippets of L)."""
        channels = 3 if self.modality == "rgb" else 2 * self.segment_length
        return self.frame_count, channels, self.input_size, self.input_size

    @property
    def view_settings(self) -> ViewSettings:
        """How test mode views each segment (see `epic_ar.data.views`)."""
        return ViewSettings(
            frame_count=self.frame_count,
            snippet_length=self.segment_length,
            input_size=self.input_size,
            scale_size=self.scale_size,
            clips=self.clips,
            crops=self.crops,
            fast_decode=self.fast_decode,
        )

    def _process_rng(self) -> np.random.Generator:
        if self._rng_pid != os.getpid():
            self._rng_pid = os.getpid()
            self._rng = np.random.default_rng(torch.initial_seed())
        return self._rng

    def __getitem__(self, key: ItemKey) -> Item:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if not -len(self) <= index < len(self):
            raise IndexError(f"segment index {index} out of range ({len(self)} segments)")
        row = int(self.rows[index])
        rng = np.random.default_rng(seed) if seed is not None else self._process_rng()
        if self.decode_on_device:
            return self.load_jpeg_sample(row, rng), self.table.metadata(row)  # type: ignore[return-value]
        frames = self.load_frames(row, rng)
        return frames, self.table.metadata(row)

    def load_jpeg_sample(self, row: int, rng: np.random.Generator) -> JpegSample:
        """The training sample of table row `row` undecoded: the same frames, crop box and
        flip that `load_frames` draws from `rng`, with the frames' JPEG bytes."""
        try:
            draw = self._draw_train_sample(row, rng)
            if isinstance(draw.frames, np.ndarray):
                raise EpicArError("decoding on the device needs JPEG frames, not videos")
        except (ValueError, EpicArError) as exc:
            raise self._segment_error(row, exc) from exc
        box = (draw.box.x, draw.box.y, draw.box.width, draw.box.height)
        return JpegSample(tuple(draw.frames), box, draw.flip, self.frame_count)

    def load_frames(self, row: int, rng: np.random.Generator) -> torch.Tensor:
        """[T, C, S, S] uint8 for the segment in table row `row` (rng unused in test mode);
        in test mode with several clips or crops, [V, T, C, S, S]: V = clips x crops views,
        clip by clip (crops left, centre, right)."""
        num_frames = int(self.table.num_frames[row])
        try:
            if not self.train:
                read = functools.partial(self.segments.read_frames, row)
                return segment_views(read, num_frames, self.view_settings, self._scratch)
            draw = self._draw_train_sample(row, rng)
            frames = self._train_pixels(draw)
        except (ValueError, EpicArError) as exc:
            raise self._segment_error(row, exc) from exc
        if draw.flip and self.modality == "flow":
            invert_flow_u(frames)
        size = self.input_size
        return frames.reshape(self.frame_count, -1, size, size)

    def _segment_error(self, row: int, exc: Exception) -> EpicArError:
        """`exc`, raised reading table row `row`, as an error naming the segment (and for a
        frame that does not decode, where the segment's frames are)."""
        message = f"segment {self.table.narration_id[row]}: {exc}"
        if isinstance(exc, ValueError):  # source errors name their file already
            message += f" (frames in {self.segments.frames_location(row)})"
        return EpicArError(message)

    def _draw_train_sample(self, row: int, rng: np.random.Generator) -> TrainDraw:
        """What a training sample of table row `row` is made of, drawn from `rng` in this
        order: the TSN offsets (its frames are read), the multi-scale crop box, the flip."""
        num_frames = int(self.table.num_frames[row])
        length = self.segment_length
        offsets = sample_train_offsets(num_frames, self.frame_count, length, rng)
        indices = snippet_frame_indices(offsets, length, num_frames)
        frames = self.segments.read_frames(row, indices)
        height, width, grey = frame_data_size(frames)
        box = sample_multiscale_crop(width, height, self.scales, self.input_size, rng)
        return TrainDraw(frames, box, bool(rng.random() < 0.5), grey)

    def _train_pixels(self, draw: TrainDraw) -> torch.Tensor:
        """[F, C, S, S]: the drawn crop, decoded alone (mirrored as it is decoded when
        flipped), then resized. Decoded frames (videos) are cropped, mirrored and resized
        the same way."""
        frames, box, flip, size = draw.frames, draw.box, draw.flip, self.input_size
        if isinstance(frames, np.ndarray):
            return crop_resize(frames, box, size, flip=flip)
        jpegs, fast, scratch = frames, self.fast_decode, self._scratch
        if draw.grey and (box.width, box.height) != (size, size):
            quads = decode_grey_quads(jpegs, fast=fast, region=box, mirror=flip, scratch=scratch)
            return resize_grey_quads(quads, len(jpegs), size)
        resized = None if draw.grey else decode_resized(jpegs, box, size, fast=fast, mirror=flip)
        if resized is not None:  # the same bytes as below, resized as it is decoded
            return torch.from_numpy(resized).permute(0, 3, 1, 2)
        pixels = decode_frames(jpegs, fast=fast, region=box, mirror=flip, scratch=scratch)
        return crop_resize(pixels, whole_frame_box(pixels), size)


class JoinedDataset(Dataset[Item]):
    """Datasets one after the other (e.g. train + val), indexable by `ItemKey` too."""

    def __init__(self, parts: Sequence[SegmentDataset]):
        self.parts = list(parts)
        self.ends = np.cumsum([len(part) for part in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    @property
    def item_shape(self) -> tuple[int, int, int, int]:
        """The parts' training item shape (see `SegmentDataset.item_shape`).

        Raises:
            EpicArError: the parts' items differ in shape.
        """
        shapes = {part.item_shape for part in self.parts}
        if len(shapes) != 1:
            raise EpicArError(f"the joined datasets' items differ in shape: {sorted(shapes)}")
        return shapes.pop()

    def __getitem__(self, key: ItemKey) -> Item:
        index, seed = key if isinstance(key, tuple) else (key, None)
        part = int(np.searchsorted(self.ends, index, side="right"))
        if not 0 <= index < len(self) or part >= len(self.parts):
            raise IndexError(f"item {index} out of range ({len(self)} items)")
        local = index - (int(self.ends[part - 1]) if part else 0)
        return self.parts[part][(local, seed) if seed is not None else local]


class SeededShuffleSampler(Sampler[tuple[int, int]]):
    """Shuffles each epoch and gives every item its own seed for its random draws.

    Order and seeds depend only on (seed, epoch), so a run restarted at an epoch boundary
    and runs with any number of DataLoader workers see the same samples. With
    `num_replicas` > 1 (DDP) each rank takes every num_replicas-th item of the padded
    permutation, as torch's DistributedSampler does.
    """

    def __init__(self, length: int, *, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if not 0 <= rank < num_replicas:
            raise EpicArError(f"rank {rank} outside [0, {num_replicas})")
        self.length, self.seed = length, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.length / self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.length)
        seeds = rng.integers(0, 2**63 - 1, size=self.length)
        padded = len(self) * self.num_replicas
        take = np.resize(np.arange(self.length), padded)[self.rank :: self.num_replicas]
        for position in take.tolist():
            yield int(order[position]), int(seeds[position])


def build_dataset(
    source: str | Path | None = None,
    modality: Modality | None = "rgb",
    frame_count: int = 8,
    segment_length: int | None = None,
    train: bool = True,
    labels: str | Path | pd.DataFrame | None = None,
    *,
    input_size: int = 224,
    scale_size: int = 256,
    scales: Sequence[float] | None = None,
    fast_decode: bool = False,
    label_frame_numbers: Modality = "rgb",
    index_cache_dir: str | Path | None = None,
    clips: int = 1,
    crops: int = 1,
    videos_dir: str | Path | None = None,
    decode_on_device: bool = False,
) -> SegmentDataset:
    """A map-style dataset of `(frames [T, C, S, S] uint8, metadata)` items.

    Args:
        source: a gulp directory, or the root of the official frame archives
            (`ROOT/P01/rgb_frames/P01_01.tar`, or any layout `epic-ar gulp` reads); None
            with `videos_dir`.
        modality: "rgb" (C = 3) or "flow" (C = 2 * segment_length) ("RGB"/"Flow" too);
            None: what a gulp directory holds (archives: rgb).
        frame_count: T, snippets per segment. segment_length: L, frames per snippet
            (default 1 for RGB, 5 for flow).
        train: random TSN offsets + multi-scale crop + flip; False: test mode (centre
            offsets, resize to `scale_size`, centre crop).
        labels: annotation file (CSV or pickle), or its rows as `read_annotations` returns
            them: which segments to serve. Required for archives; optional for a gulp
            directory (a subset of its segments).
        input_size: S. scales: multi-scale crop scales (defaults as published).
        fast_decode: libjpeg-turbo's fast DCT/upsampling (not what published models saw).
        label_frame_numbers: archives only: whether `labels` counts RGB frames ("rgb":
            converted for flow, as `epic-ar convert-flow-idxs` does) or already counts flow
            frames ("flow") ("RGB"/"Flow" too).
        index_cache_dir: archives only: where tar indexes go (default: beside each archive,
            or ~/.cache/epic-ar when that is read-only).
        clips, crops: test mode only: `clips` evenly shifted samplings and 1 or 3 (left,
            centre, right) crops; with more than one view, items are [V, T, C, S, S].
        videos_dir: instead of `source`, read RGB frames from the videos under it
            (`DIR/P01/videos/P01_01.MP4`, see `epic_ar.data.video_sources`); needs `labels`.
        decode_on_device: train mode only: items are `(JpegSample, metadata)`, decoded by
            `epic_ar.data.device_decode.decode_on_device` (not with videos).
    """
    if decode_on_device and videos_dir is not None:
        raise EpicArError("decoding on the device needs JPEG frames: not with a videos_dir")
    segments = open_segment_source(
        source,
        videos_dir,
        parse_modality(modality, "unknown modality:") if modality is not None else None,
        labels,
        # Anything else would silently read the frames at the wrong numbers.
        label_frame_numbers=parse_modality(label_frame_numbers, "label_frame_numbers:"),
        index_cache_dir=Path(index_cache_dir) if index_cache_dir is not None else None,
    )
    if segment_length is None:
        segment_length = default_snippet_length(segments.modality)
    return SegmentDataset(
        segments,
        frame_count=frame_count,
        segment_length=segment_length,
        train=train,
        input_size=input_size,
        scale_size=scale_size,
        scales=scales,
        fast_decode=fast_decode,
        clips=clips,
        crops=crops,
        decode_on_device=decode_on_device,
    )
