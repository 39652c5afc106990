"""Group transforms on uint8 frames: one crop and one flip for all frames of a sample.

Frames stay uint8 from decoding to the batch; conversion to float and normalisation happen
on the device (`normalize`). Crop geometry follows the original project (multi-scale crop
with 13 fixed offsets for training, resize + centre crop for testing); the crop is taken
before resizing, so only the cropped pixels are resized.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional

from epic_ar.data.decode import CropBox, pack_grey_quads, split_grey_quads
from epic_ar.errors import EpicArError
from epic_ar.gulp.segments import resized_size

RGB_SCALES = (1.0, 0.875, 0.75, 0.66)
FLOW_SCALES = (1.0, 0.875, 0.75)
_SNAP_PIXELS = 3  # crop sizes within this many pixels of the input size become the input size
_MAX_DISTORT = 1  # crop width and height scale indices differ by at most this


def multiscale_crop_sizes(
    width: int, height: int, scales: Sequence[float], input_size: int
) -> list[tuple[int, int]]:
    """The (width, height) crop sizes a multi-scale crop chooses from, uniformly."""
    base = min(width, height)
    sizes = [int(base * scale) for scale in scales]
    snapped = [input_size if abs(size - input_size) < _SNAP_PIXELS else size for size in sizes]
    return [
        (crop_w, crop_h)
        for i, crop_h in enumerate(snapped)
        for j, crop_w in enumerate(snapped)
        if abs(i - j) <= _MAX_DISTORT
    ]


def fixed_crop_offsets(
    width: int, height: int, crop_width: int, crop_height: int
) -> list[tuple[int, int]]:
    """The 13 (x, y) crop positions: corners, centre, edge centres, quarter points."""
    w_step, h_step = (width - crop_width) // 4, (height - crop_height) // 4
    steps = [
        (0, 0), (4, 0), (0, 4), (4, 4), (2, 2),  # corners and centre
        (0, 2), (4, 2), (2, 4), (2, 0),  # edge centres
        (1, 1), (3, 1), (1, 3), (3, 3),  # quarter points
    ]  # fmt: skip
    return [(i * w_step, j * h_step) for i, j in steps]


def sample_multiscale_crop(
    width: int, height: int, scales: Sequence[float], input_size: int, rng: np.random.Generator
) -> CropBox:
    """A random multi-scale crop of a `width` x `height` frame (to be resized to input_size)."""
    sizes = multiscale_crop_sizes(width, height, scales, input_size)
    crop_w, crop_h = sizes[rng.integers(len(sizes))]
    # Snapping can make a crop 1-2 pixels larger than a 221-223 pixel frame, which PIL
    # would pad with black: keep it inside the frame instead.
    crop_w, crop_h = min(crop_w, width), min(crop_h, height)
    offsets = fixed_crop_offsets(width, height, crop_w, crop_h)
    x, y = offsets[rng.integers(len(offsets))]
    return CropBox(x, y, crop_w, crop_h)


def center_crop_box(width: int, height: int, size: int) -> CropBox:
    """The centred `size` x `size` crop, offsets rounded as torchvision's CenterCrop does."""
    return CropBox(round((width - size) / 2), round((height - size) / 2), size, size)


def whole_frame_box(frames: np.ndarray) -> CropBox:
    """The box covering [F, H, W, C] frames."""
    return CropBox(0, 0, frames.shape[2], frames.shape[1])


def _resize(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """[F, C, h, w] uint8, C = 3 or 4, channels-last memory → [F, C, size, size], same layout.

    Antialiased bilinear, the filter of PIL's `resize(BILINEAR)` (rounding apart: about 97% of
    pixels equal, the rest 1 level apart but a few per million at 2; benchmarks/resize_vs_pil.py);
    torch's uint8 kernel is vectorised for 3 and 4 interleaved channels.
    """
    return functional.interpolate(
        pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )


def crop_resize(frames: np.ndarray, box: CropBox, size: int, *, flip: bool = False) -> torch.Tensor:
    """Crop every frame to `box`, resize to `size` x `size`, optionally mirror left-right.

    Args:
        frames: [F, H, W, C] uint8, C = 3 (RGB) or 1 (grey).
    Returns:
        [F, C, size, size] uint8 (a new tensor). RGB comes in channels-last memory, as
        decoded and resized: batching copies it anyway, so it is not reordered here.
    """
    count = frames.shape[0]
    crop = frames[:, box.y : box.y + box.height, box.x : box.x + box.width]
    same_size = (box.width, box.height) == (size, size)
    if frames.shape[3] == 3:
        # At most one copy before the resize: channels-last and contiguous, mirrored if asked.
        # Without a resize, the output is always a copy: `frames` may be a reused buffer.
        view = torch.from_numpy(crop)
        if flip:
            view = view.flip(2)
        elif same_size:
            view = view.clone(memory_format=torch.contiguous_format)
        pixels = view.contiguous().permute(0, 3, 1, 2)
        return pixels if same_size else _resize(pixels, size)
    if same_size:
        grey = torch.from_numpy(crop[..., 0].copy())
    else:
        grey = resize_grey_quads(pack_grey_quads(crop), count, size)[:, 0]
    grey = grey.flip(-1) if flip else grey
    return grey.unsqueeze(1)


def resize_grey_quads(quads: np.ndarray, count: int, size: int) -> torch.Tensor:
    """Resize grey frames packed 4 to an RGBA image ([G, h, w, 4] uint8, `pack_grey_quads`):
    [count, 1, size, size] uint8, a new tensor. About 3x faster than resizing 1-channel
    images, and pixel for pixel the same."""
    resized = _resize(torch.from_numpy(quads).permute(0, 3, 1, 2), size)  # channels-last
    frames = split_grey_quads(resized.permute(0, 2, 3, 1).numpy(), count)
    return torch.from_numpy(frames).unsqueeze(1)


def resize_shorter_side(frames: np.ndarray, short_side: int) -> np.ndarray:
    """Resize [F, H, W, C] uint8 frames so that min(H, W) == short_side, with PIL's bilinear
    filter, as the original's test transform does (unchanged when already that size)."""
    height, width = frames.shape[1:3]
    if min(height, width) == short_side:
        return frames
    new_h, new_w = resized_size(height, width, short_side)
    squeeze = frames.shape[3] == 1
    resized = [
        np.asarray(
            Image.fromarray(frame[..., 0] if squeeze else frame).resize(
                (new_w, new_h), Image.Resampling.BILINEAR
            )
        )
        for frame in frames
    ]
    stacked = np.stack(resized)
    return stacked[..., None] if squeeze else stacked


def invert_flow_u(frames: torch.Tensor) -> torch.Tensor:
    """After a left-right flip, horizontal motion changes sign: u → 255 - u, in place.

    Args:
        frames: [F, 1, H, W] uint8, interleaved u1, v1, u2, v2, ...
    """
    frames[0::2].bitwise_not_()  # 255 - u for uint8
    return frames


def normalize(
    frames: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    rescale: bool = True,
    bgr: bool = False,
) -> torch.Tensor:
    """The model's input from uint8 frames, computed as the original's CPU transforms do.

    Args:
        frames: [..., C, H, W] uint8 (e.g. [B, T, C, H, W]); `mean`/`std` repeat over C
            (RGB: 3 values; flow: 1 value for every u/v channel).
        rescale: divide by 255 first. bgr: reverse the channel order first (RGB only).
    Returns:
        float32 tensor of the same shape, on the same device.
    Raises:
        EpicArError: C is not a multiple of the number of means, or means and stds differ
            in number.
    """
    channels = frames.shape[-3]
    if channels % len(mean) or len(mean) != len(std):
        raise EpicArError(f"{channels} channels but {len(mean)} means and {len(std)} stds")
    if bgr:
        frames = frames.flip(-3)
    repeat = channels // len(mean)

    def per_channel(values: Sequence[float]) -> torch.Tensor:
        column = torch.tensor(list(values) * repeat, dtype=torch.float32, device=frames.device)
        return column.reshape(channels, 1, 1)

    # Tensors (not Python scalars) as divisors: CUDA turns division by a scalar into a
    # multiplication by its reciprocal, which can differ from the CPU result in the last bit.
    result = frames.to(torch.float32)
    if rescale:
        result = result / torch.tensor(255.0, device=frames.device)
    return (result - per_channel(mean)) / per_channel(std)
