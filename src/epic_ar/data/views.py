"""Test-time views: the frames a segment is scored on in test mode, and the average of the
scores over them.

One view is the original's test transform: T snippets of L frames at the centre of the T
parts of the segment, frames resized so that the shorter side is `scale_size`, then the
centre `input_size` x `input_size` crop. More views (test-time augmentation): `clips`
evenly shifted samplings of the parts x `crops` crops (1: centre; 3: left, centre, right,
vertically centred), the model's scores averaged over the views before any softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from epic_ar.data.config import DataConfig
from epic_ar.data.decode import (
    CropBox,
    FrameData,
    ScratchBuffer,
    decode_frames,
    decoded_pixels,
    frame_data_size,
)
from epic_ar.data.sampling import (
    default_snippet_length,
    sample_test_offsets,
    snippet_frame_indices,
)
from epic_ar.data.transforms import (
    center_crop_box,
    crop_resize,
    resize_shorter_side,
    whole_frame_box,
)
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality

CROPS = (1, 3)  # the crop counts there are: centre; left, centre, right
ReadFrames = Callable[[np.ndarray], FrameData]  # frame indices -> those frames (JPEGs or pixels)


@dataclass(frozen=True)
class ViewSettings:
    """How test mode samples and crops a segment: `frame_count` T snippets of
    `snippet_length` L frames, crops of `input_size` S pixels out of frames resized to
    `scale_size` (shorter side), `clips` x `crops` views; `fast_decode`: libjpeg-turbo's
    fast DCT/upsampling."""

    frame_count: int
    snippet_length: int
    input_size: int
    scale_size: int
    clips: int = 1
    crops: int = 1
    fast_decode: bool = False


def check_view_counts(clips: int, crops: int) -> None:
    """Refuse view counts there are no views for.

    Raises:
        EpicArError: `clips` < 1, or `crops` not 1 or 3.
    """
    if clips < 1 or crops not in CROPS:
        raise EpicArError(f"clips must be at least 1 and crops 1 or 3 (got {clips}, {crops})")


def config_view_settings(
    data: DataConfig,
    *,
    clips: int = 1,
    crops: int = 1,
    modality: Modality = "rgb",
    frame_count: int | None = None,
    check: bool = True,
) -> ViewSettings:
    """The test views of a checkpoint's data config, as `epic-ar test --split val`
    builds them (`EpicDataModule.build_dataset`): `frame_count` (None:
    `data.frame_count`) snippets of `data.segment_length` frames (None: the modality's,
    `default_snippet_length`), crops of `data.preprocessing.input_size` out of frames
    whose shorter side is resized to `data.test_augmentation.rescale_size`.

    `check` False: leave the checks to the caller (`SegmentDataset` makes them itself,
    the rescale size in test mode only).

    Raises:
        EpicArError: bad view counts, or a rescale size below the input size.
    """
    input_size, scale_size = data.preprocessing.input_size, data.test_augmentation.rescale_size
    if check:
        check_view_counts(clips, crops)
        if scale_size < input_size:
            raise EpicArError(f"scale size {scale_size} is smaller than input size {input_size}")
    length = data.segment_length
    return ViewSettings(
        frame_count=data.frame_count if frame_count is None else frame_count,
        snippet_length=default_snippet_length(modality) if length is None else length,
        input_size=input_size,
        scale_size=scale_size,
        clips=clips,
        crops=crops,
        fast_decode=data.fast_decode,
    )


def clip_positions(clips: int) -> list[float]:
    """Where each test clip samples within the T parts: (c + 0.5) / clips, so one clip is
    the original's centre sampling."""
    return [(clip + 0.5) / clips for clip in range(clips)]


def clip_frame_indices(num_frames: int, position: float, settings: ViewSettings) -> np.ndarray:
    """[T x L] int64: the frames (0-based within a segment of `num_frames`) of the clip
    sampling each of its T parts at `position` (0-1), snippet by snippet."""
    length = settings.snippet_length
    offsets = sample_test_offsets(num_frames, settings.frame_count, length, position)
    return snippet_frame_indices(offsets, length, num_frames)


def frames_read_by_views(num_frames: int, settings: ViewSettings) -> np.ndarray:
    """The frames (0-based within a segment of `num_frames`) that the test views of
    `settings` read: [K] int64, sorted, unique. (Which frames to keep while decoding; the
    views themselves are built by `segment_views`.)"""
    indices = [
        clip_frame_indices(num_frames, position, settings)
        for position in clip_positions(settings.clips)
    ]
    return np.unique(np.concatenate(indices))


def segment_views(
    read_frames: ReadFrames,
    num_frames: int,
    settings: ViewSettings,
    scratch: ScratchBuffer | None = None,
) -> torch.Tensor:
    """The test-mode frames of a segment of `num_frames` frames whose frames `read_frames`
    reads: [T, C, S, S] uint8 for one view; [V, T, C, S, S] for V = clips x crops views,
    clip by clip (crops left, centre, right). C = 3 for RGB, 2L for flow (u1, v1, ...).
    `scratch`: decode memory to reuse (outputs never alias it)."""
    count, size = settings.frame_count, settings.input_size
    views = [
        view.reshape(count, -1, size, size)
        for position in clip_positions(settings.clips)
        for view in clip_views(read_frames, num_frames, position, settings, scratch)
    ]
    return views[0] if len(views) == 1 else torch.stack(views)


def clip_views(
    read_frames: ReadFrames,
    num_frames: int,
    position: float,
    settings: ViewSettings,
    scratch: ScratchBuffer | None = None,
) -> list[torch.Tensor]:
    """The crops ([F, C, S, S] each, F = T x L frames) of the clip sampling each part at
    `position` (0-1)."""
    frames = read_frames(clip_frame_indices(num_frames, position, settings))
    if settings.crops == 1:
        return [centre_view(frames, settings, scratch)]
    return three_crop_views(frames, settings, scratch)


def centre_view(
    frames: FrameData, settings: ViewSettings, scratch: ScratchBuffer | None = None
) -> torch.Tensor:
    """[F, C, S, S]: shorter side resized to `scale_size`, then the centre crop."""
    height, width, _ = frame_data_size(frames)
    size, scale, fast = settings.input_size, settings.scale_size, settings.fast_decode
    if min(height, width) == scale:  # no resize: crop (JPEGs: decode the crop only)
        box = center_crop_box(width, height, size)
        if isinstance(frames, np.ndarray):
            pixels = frames[:, box.y : box.y + box.height, box.x : box.x + box.width]
        else:
            pixels = decode_frames(frames, fast=fast, region=box, scratch=scratch)
    else:
        decoded = decoded_pixels(frames, fast=fast, scratch=scratch)
        resized = resize_shorter_side(decoded, scale)
        box = center_crop_box(resized.shape[2], resized.shape[1], size)
        pixels = resized[:, box.y : box.y + box.height, box.x : box.x + box.width]
    return crop_resize(pixels, whole_frame_box(pixels), size)


def three_crop_views(
    frames: FrameData, settings: ViewSettings, scratch: ScratchBuffer | None = None
) -> list[torch.Tensor]:
    """Left, centre and right `S` x `S` crops of the frames resized to `scale_size`
    (vertically centred), [F, C, S, S] each."""
    decoded = decoded_pixels(frames, fast=settings.fast_decode, scratch=scratch)
    resized = resize_shorter_side(decoded, settings.scale_size)
    height, width = resized.shape[1:3]
    size = settings.input_size
    centre = center_crop_box(width, height, size)
    boxes = [CropBox(x, centre.y, size, size) for x in (0, centre.x, width - size)]
    return [crop_resize(resized, box, size) for box in boxes]


def average_over_views(
    score: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor
) -> torch.Tensor:
    """Scores [B, K] of a batch: `score` of [B, T, C, H, W] frames, or for [B, V, T, C, H, W]
    (V views per segment) the mean over the views of the scores of all B x V views at once
    (logits, before any softmax)."""
    if frames.dim() == 6:
        views = frames.shape[1]
        scores = score(frames.flatten(0, 1))  # [B x V, K], segment by segment
        return scores.reshape(-1, views, *scores.shape[1:]).mean(dim=1)
    return score(frames)
