"""How far decoding on the device (`data.decode=gpu`) moves pixels from the CPU path, on
frames cut from real photographs (4:2:0 JPEG, as EPIC-KITCHENS' frames).

For each frame: the CPU path's decode (libjpeg-turbo, accurate: what the published models
saw) against `torchvision.io.decode_jpeg` on `--device` (nvJPEG on CUDA), whole frames; then
whole training samples, the CPU path's item against `decode_on_device` for the same draws
(crop, resize to 224, flip). Prints the largest and mean absolute differences in grey
levels and the share of values more than 1 level apart. The issue's rule: decoding on the
device may be the default only if samples stay within 1 grey level.

    .venv/bin/python benchmarks/device_decode_pixels.py --device cuda
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from epic_ar.data.decode import decode_frames
from epic_ar.data.device_decode import JpegBatch, JpegSample, decode_on_device
from epic_ar.data.transforms import (
    RGB_SCALES,
    crop_resize,
    sample_multiscale_crop,
    whole_frame_box,
)
from photo_frames import PHOTOS, panned_segments


def describe(name: str, difference: np.ndarray) -> None:
    apart = 100 * (difference > 1).mean()
    print(f"  {name}: largest {int(difference.max())} grey levels, mean "
          f"{difference.mean():.3f}, more than 1 apart: {apart:.2f}%")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--segments", type=int, default=8)
    args = parser.parse_args()
    device = torch.device(args.device)
    segments = panned_segments(args.segments, 8, width=456, height=256)
    print(f"{args.segments} segments x 8 frames (photographs {', '.join(PHOTOS)}), "
          f"456x256 4:2:0 JPEG, decoded on {device}:")  # fmt: skip
    cpu = np.concatenate([decode_frames(jpegs) for jpegs in segments]).astype(np.int16)
    encoded = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for s in segments for j in s]
    images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    on_device = np.stack([image.permute(1, 2, 0).cpu().numpy() for image in images])
    describe("whole frames", np.abs(on_device.astype(np.int16) - cpu))
    rng = np.random.default_rng(0)
    samples, expected = [], []
    for jpegs in segments:
        box = sample_multiscale_crop(456, 256, RGB_SCALES, 224, rng)
        flip = bool(rng.random() < 0.5)
        pixels = decode_frames(jpegs, region=box, mirror=flip)
        expected.append(crop_resize(pixels, whole_frame_box(pixels), 224))
        samples.append(JpegSample(tuple(jpegs), (box.x, box.y, box.width, box.height), flip, 8))
    got = decode_on_device(JpegBatch(samples, {}), 224, grey=False, device=device).cpu()
    describe("training samples", (got.int() - torch.stack(expected).int()).abs().numpy())


if __name__ == "__main__":
    main()
