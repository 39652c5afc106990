"""Training samples decoded on the model's device (`data.decode=gpu`): the workers ship JPEG
bytes, about 1/25 of the pixels, and the main process decodes, crops, flips and resizes
whole batches there.

A worker draws the sample exactly as the CPU path does (`SegmentDataset`: the same frame
offsets, crop box and flip from the same generator) and returns a `JpegSample` instead of
pixels. `decode_on_device` turns a `JpegBatch` of them into the [B, T, C, S, S] uint8 batch
the CPU path makes:

- decoding with `torchvision.io.decode_jpeg` on the device (nvJPEG on CUDA; libjpeg-turbo
  on the CPU, where its pixels equal the CPU path's decoder);
- each sample's frames cropped to its box and resized to S x S with antialiased bilinear
  interpolation in float32, rounded to uint8 (the CPU path resizes in uint8 fixed point:
  the two differ by at most a grey level here and there, tested);
- mirrored when the sample is flipped (flow: u inverted, as on the CPU).

nvJPEG upsamples 4:2:0 chroma differently from libjpeg-turbo's accurate ("fancy") mode,
which the CPU path and the published models use, so on CUDA RGB pixels differ by more;
`benchmarks/` measures by how much. Flow frames are grey and have no chroma.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch.nn import functional
from torch.utils.data import default_collate

from epic_ar.data.transforms import invert_flow_u
from epic_ar.errors import EpicArError


class JpegSample(NamedTuple):
    """One training sample before decoding: its F frames' JPEG bytes (in the order the CPU
    path decodes them), the crop box (x, y, width, height), whether it is mirrored, and the
    snippet count T. (Named tuples, not dataclasses: Lightning rebuilds them when it moves a
    batch, and refuses frozen dataclasses.)"""

    jpegs: tuple[bytes, ...]
    box: tuple[int, int, int, int]
    flip: bool
    snippets: int


class JpegBatch(NamedTuple):
    """A batch as the workers ship it: the samples, and the metadata collated as the
    standard loader collates it."""

    samples: list[JpegSample]
    metadata: Any


def collate_jpeg_samples(items: Sequence[tuple[JpegSample, dict[str, Any]]]) -> JpegBatch:
    """The DataLoader's `collate_fn` for `JpegSample` items."""
    return JpegBatch([sample for sample, _ in items], default_collate([m for _, m in items]))


def resize_on_device(frames: torch.Tensor, size: int) -> torch.Tensor:
    """[F, C, h, w] uint8 → [F, C, size, size] uint8: antialiased bilinear in float32,
    rounded (CUDA has no uint8 antialiased kernel)."""
    if frames.shape[-2:] == (size, size):
        return frames.clone()
    resized = functional.interpolate(
        frames.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def decode_on_device(
    batch: JpegBatch, size: int, *, grey: bool, device: torch.device
) -> torch.Tensor:
    """[B, T, C, S, S] uint8 on `device` from a `JpegBatch` (S = `size`; C = 3 for RGB, 2L
    for flow snippets of L grey frames).

    Raises:
        EpicArError: a frame is not a JPEG, or a sample's frames differ in size.
    """
    from torchvision.io import ImageReadMode, decode_jpeg  # only where batches are decoded

    mode = ImageReadMode.GRAY if grey else ImageReadMode.RGB
    encoded = [torch.frombuffer(bytearray(jpeg), dtype=torch.uint8)
               for sample in batch.samples for jpeg in sample.jpegs]  # fmt: skip
    try:
        images = decode_jpeg(encoded, mode=mode, device=device)
    except RuntimeError as exc:
        raise EpicArError(f"decoding a batch on {device}: {exc}") from None
    out, start = [], 0
    for sample in batch.samples:
        frames = images[start : start + len(sample.jpegs)]
        start += len(sample.jpegs)
        if len({tuple(frame.shape) for frame in frames}) != 1:
            raise EpicArError(f"the frames of one sample differ in size: {frames[0].shape}, ...")
        x, y, width, height = sample.box
        crop = torch.stack(frames)[:, :, y : y + height, x : x + width]
        resized = resize_on_device(crop, size)
        if sample.flip:
            resized = resized.flip(-1)
            if grey:
                invert_flow_u(resized)
        out.append(resized.reshape(sample.snippets, -1, size, size))
    return torch.stack(out)
