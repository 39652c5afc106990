"""Group transforms on uint8 frames: one crop and one flip for all frames of a sample.

Frames stay uint8 from decoding to the batch; conversion to float and normalisation happen
on the device (`normalize`). Crop geometry follows the original project (multi-scale crop
with 13 fixed offsets for training, resize + centre crop for testing); the crop is taken
before resizing, so only the cropped pixels are resized.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import simplejpeg
import torch
from PIL import Image
from torch.nn import functional

from epic_ar.gulp.segments import resized_size

# decode_crop(jpeg, out, x, y, width, height, gray, fast) -> (image width, image height)
DecodeCrop = Callable[
    [bytes, npt.NDArray[np.uint8], int, int, int, int, bool, bool], tuple[int, int]
]
_decode_crop: DecodeCrop | None
try:  # optional C extension (built when libjpeg-turbo's headers are present)
    from epic_ar.data import _crop_decode

    _decode_crop = _crop_decode.decode_crop
except ImportError:  # pragma: no cover - depends on the build machine
    _decode_crop = None

PARTIAL_DECODING = _decode_crop is not None

RGB_SCALES = (1.0, 0.875, 0.75, 0.66)
FLOW_SCALES = (1.0, 0.875, 0.75)
_SNAP_PIXELS = 3  # crop sizes within this many pixels of the input size become the input size
_MAX_DISTORT = 1  # crop width and height scale indices differ by at most this


@dataclass(frozen=True)
class CropBox:
    """A crop in pixels: left `x`, top `y`, `width`, `height`."""

    x: int
    y: int
    width: int
    height: int


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


def jpeg_frame_size(jpeg: bytes) -> tuple[int, int, bool]:
    """(height, width, is_grey) from a JPEG's header."""
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(jpeg)
    return height, width, colorspace == "Gray"


def _scratch_array(scratch: bytearray | None, shape: tuple[int, ...]) -> np.ndarray:
    if scratch is None:
        return np.empty(shape, dtype=np.uint8)
    size = math.prod(shape)
    if len(scratch) < size:
        scratch.extend(bytes(size - len(scratch)))
    return np.frombuffer(scratch, dtype=np.uint8, count=size).reshape(shape)


def decode_frames(
    jpegs: Sequence[bytes],
    *,
    fast: bool = False,
    region: CropBox | None = None,
    scratch: bytearray | None = None,
) -> np.ndarray:
    """Decode JPEGs of one size: [F, h, w, 3] uint8 RGB or [F, h, w, 1] grey (grey when the
    first frame is), the whole frames or only `region` of each.

    With the partial-decoding extension (`PARTIAL_DECODING`), only the region (plus a small
    margin) is decoded, with pixels equal to those of a full decode; without it, whole frames
    are decoded and the region is a view.

    `fast` uses libjpeg-turbo's fast DCT and upsampling (gulpio2's choice): quicker, but
    pixels move by several grey levels from what PIL/OpenCV (and the published models) see.
    `scratch`, when given, is grown as needed and decoded into (the result is a view of it).

    Raises:
        ValueError: a frame is not a JPEG, or its size differs from the first frame's.
    """
    height, width, gray = jpeg_frame_size(jpegs[0])
    channels = 1 if gray else 3
    if region is not None and _decode_crop is not None:
        shape = (len(jpegs), region.height, region.width, channels)
        frames = _scratch_array(scratch, shape)
        for i, jpeg in enumerate(jpegs):
            try:
                size = _decode_crop(
                    jpeg, frames[i], region.x, region.y, region.width, region.height, gray, fast
                )
            except ValueError as exc:
                raise ValueError(f"frame {i} of the sample: {exc}") from None
            if size != (width, height):
                raise ValueError(
                    f"frame {i} of the sample is {size[0]}x{size[1]}, the first is {width}x{height}"
                )
        return frames
    frames = _scratch_array(scratch, (len(jpegs), height, width, channels))
    for i, jpeg in enumerate(jpegs):
        try:
            decoded = simplejpeg.decode_jpeg(
                jpeg,
                colorspace="GRAY" if gray else "RGB",
                fastdct=fast,
                fastupsample=fast,
                buffer=frames[i],
            )
        except ValueError as exc:  # also raised when a larger frame does not fit the buffer
            raise ValueError(f"frame {i} of the sample: {exc}") from None
        if decoded.shape[:2] != (height, width):
            raise ValueError(
                f"frame {i} of the sample is {decoded.shape[1]}x{decoded.shape[0]}, "
                f"the first is {width}x{height}"
            )
    if region is None:
        return frames
    return frames[:, region.y : region.y + region.height, region.x : region.x + region.width]


def _resize(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """[F, C, h, w] uint8, C = 3 or 4, channels-last memory → [F, C, size, size], same layout.

    Antialiased bilinear, the filter of PIL's `resize(BILINEAR)` (at most 1 grey level apart);
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
        # One copy makes the crop contiguous (channels-last), mirrored on the way if asked.
        view = torch.from_numpy(crop)
        # (a clone, not .contiguous(): `frames` may be a reused decode buffer)
        copy = view.flip(2) if flip else view.clone(memory_format=torch.contiguous_format)
        pixels = copy.permute(0, 3, 1, 2)
        return pixels if same_size else _resize(pixels, size)
    if same_size:
        grey = torch.from_numpy(crop[..., 0].copy())
    else:
        # Grey frames: resize 4 at a time as the channels of one RGBA image (~3x faster).
        groups = -(-count // 4)
        quads = np.empty((groups, box.height, box.width, 4), dtype=np.uint8)
        for channel in range(4):
            part = crop[channel::4, :, :, 0]
            quads[: len(part), :, :, channel] = part
            quads[len(part) :, :, :, channel] = 0
        resized = _resize(torch.from_numpy(quads).permute(0, 3, 1, 2), size)
        grey = resized.contiguous().view(groups * 4, size, size)[:count]
    grey = grey.flip(-1) if flip else grey
    return grey.unsqueeze(1)


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
    """
    channels = frames.shape[-3]
    if channels % len(mean) or len(mean) != len(std):
        raise ValueError(f"{channels} channels but {len(mean)} means and {len(std)} stds")
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
