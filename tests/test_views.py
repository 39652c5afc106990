"""Test-time views (epic_ar.data.views), against PIL and plain loops."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from epic_ar.data.views import (
    ViewSettings,
    average_over_views,
    check_view_counts,
    clip_positions,
    frames_read_by_views,
    segment_views,
)
from epic_ar.errors import EpicArError
from resize_vs_pil import textured  # smooth random frames with noise

WIDTH, HEIGHT = 80, 60  # resized to 64 x 48 for a scale size of 48


def encoded(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class Segment:
    """JPEG frames of a segment, and which frame indices the views read."""

    def __init__(self, num_frames: int, channels: int):
        self.jpegs = [
            encoded(textured(HEIGHT, WIDTH, channels, seed)) for seed in range(num_frames)
        ]
        self.reads: list[list[int]] = []

    def read(self, indices: np.ndarray) -> list[bytes]:
        self.reads.append([int(i) for i in indices])
        return [self.jpegs[i] for i in indices]

    def pil_crop(self, index: int, left: int, top: int, size: int, scale: int) -> np.ndarray:
        """[C, size, size]: frame `index` decoded and resized by PIL (shorter side `scale`,
        bilinear), then cropped at (left, top)."""
        image = Image.open(io.BytesIO(self.jpegs[index]))
        width = round(WIDTH * scale / HEIGHT)
        resized = image.resize((width, scale), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized.crop((left, top, left + size, top + size)))
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def test_clip_positions_split_the_parts_evenly() -> None:
    assert clip_positions(1) == [0.5]  # the original's centre sampling
    for clips in (2, 3, 5):
        expected = np.linspace(0.5 / clips, 1 - 0.5 / clips, clips)
        np.testing.assert_allclose(clip_positions(clips), expected, rtol=0, atol=1e-12)


def test_the_frames_read_by_the_views_are_every_clip_s_snippets_sorted_once() -> None:
    # 20 frames, 2 parts of snippets of 2: tick (20 - 2 + 1) / 2 = 9.5; clip 0.25 starts at
    # int(2.375) = 2 and int(11.875) = 11, clip 0.75 at int(7.125) = 7 and int(16.625) = 16
    two_clips = ViewSettings(frame_count=2, snippet_length=2, input_size=8, scale_size=8, clips=2)
    read = frames_read_by_views(20, two_clips)
    assert read.tolist() == [2, 3, 7, 8, 11, 12, 16, 17] and read.dtype == np.int64
    # 2 frames, 3 snippets of 5: every snippet starts at 0 and repeats the last frame
    short = ViewSettings(frame_count=3, snippet_length=5, input_size=8, scale_size=8)
    assert frames_read_by_views(2, short).tolist() == [0, 1]


def test_two_clips_of_three_crops_read_shifted_frames_and_crop_left_centre_right() -> None:
    segment = Segment(22, 3)
    settings = ViewSettings(
        frame_count=2, snippet_length=1, input_size=40, scale_size=48, clips=2, crops=3
    )
    views = segment_views(segment.read, 22, settings)
    assert views.shape == (6, 2, 3, 40, 40) and views.dtype == torch.uint8
    # tick = 22 / 2 = 11; clip c reads int(11 * (c + 0.5) / 2 + 11 t)
    assert segment.reads == [[2, 13], [8, 19]]
    lefts = (0, 12, 24)  # 64 x 48 after the resize: left, centre (round(24 / 2)), right
    for clip, frames in enumerate(segment.reads):
        for crop, left in enumerate(lefts):
            expected = np.stack([segment.pil_crop(i, left, 4, 40, 48) for i in frames])
            assert np.array_equal(views[3 * clip + crop].numpy(), expected), (clip, crop)


def test_one_view_is_the_centre_crop_of_the_centre_clip() -> None:
    segment = Segment(22, 3)
    settings = ViewSettings(frame_count=2, snippet_length=1, input_size=40, scale_size=48)
    view = segment_views(segment.read, 22, settings)
    assert view.shape == (2, 3, 40, 40)
    assert segment.reads == [[5, 16]]  # int(5.5), int(16.5)
    expected = np.stack([segment.pil_crop(i, 12, 4, 40, 48) for i in (5, 16)])
    assert np.array_equal(view.numpy(), expected)


def test_grey_snippets_stack_their_frames_as_channels() -> None:
    """Flow-like input: L = 2 grey frames a snippet become the snippet's 2 channels."""
    segment = Segment(9, 1)
    settings = ViewSettings(
        frame_count=2, snippet_length=2, input_size=40, scale_size=48, clips=1, crops=3
    )
    views = segment_views(segment.read, 9, settings)
    assert views.shape == (3, 2, 2, 40, 40)
    # tick = (9 - 2 + 1) / 2 = 4: snippets start at 2 and 6
    assert segment.reads == [[2, 3, 6, 7]]
    for crop, left in enumerate((0, 12, 24)):
        for snippet, frames in enumerate(((2, 3), (6, 7))):
            expected = np.concatenate([segment.pil_crop(i, left, 4, 40, 48) for i in frames])
            assert np.array_equal(views[crop, snippet].numpy(), expected), (crop, snippet)


def test_scores_are_averaged_over_the_views_of_each_segment() -> None:
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(2 * 3 * 4 * 4, 5, generator=generator, dtype=torch.float64)

    def score(frames: torch.Tensor) -> torch.Tensor:  # [N, T, C, H, W] -> [N, 5]
        return frames.flatten(1).double() @ weights

    frames = torch.randint(0, 256, (4, 3, 2, 3, 4, 4), generator=generator, dtype=torch.uint8)
    averaged = average_over_views(score, frames)
    assert averaged.shape == (4, 5)
    for segment in range(4):
        one_by_one = [score(frames[segment, view][None])[0] for view in range(3)]
        expected = sum(one_by_one) / 3
        torch.testing.assert_close(averaged[segment], expected, rtol=0, atol=1e-9)
    single = frames[:, 0]  # [B, T, C, H, W]: one view, scored as it is
    assert torch.equal(average_over_views(score, single), score(single))


@pytest.mark.parametrize(("clips", "crops"), [(0, 1), (1, 2), (2, 0)])
def test_view_counts_without_views_are_refused(clips: int, crops: int) -> None:
    with pytest.raises(EpicArError, match="clips must be at least 1 and crops 1 or 3"):
        check_view_counts(clips, crops)
