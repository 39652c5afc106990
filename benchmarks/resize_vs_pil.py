"""How far the training resize (`crop_resize`: torch's antialiased bilinear on uint8) is from
PIL's `crop(...).resize(..., BILINEAR)`, pixel by pixel: the share of pixels that are equal,
one grey level apart, two levels apart, and further.

Both compute the same filter; they differ only in fixed-point rounding. The statistic is
counted over every output pixel of many seeded random cases (the same numbers on every run
with the same torch and Pillow versions), in three sets:

- `tests`: the inputs of the property test in tests/test_transforms.py (the README's
  statistic): 64x48 textured frames (random colours on an 8x12 grid, bicubic-enlarged, plus
  noise of sd 6 levels), 1 or 3 channels, 1-9 frames, a multiscale crop resized to 24 or
  32 pixels;
- `tests-every-crop`: the same distribution without the sampling noise of the crop choice:
  every (channels, output size, crop size, crop position) once per round, one new frame
  each, so its shares are the expectation over the crops (test_transforms.py checks its
  bound on one round). One crop size dominates: 36x42 to 32x32 differs in ~24% of pixels;
- `epic-textured`: EPIC-sized 456x256 textured frames, the training crops of EPIC frames
  (RGB scales for colour, flow scales for grey) resized to 224;
- `epic-photo`: the same crops of 456x256 windows of a photograph (matplotlib's sample
  `grace_hopper.jpg`, installed with matplotlib), in colour and as grey.

Each set stops once it has compared `--pixels` output pixels (default 7.7 million).

    .venv/bin/python benchmarks/resize_vs_pil.py [--pixels 7.7e6] [--seed 0] [--sets tests ...]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from matplotlib import cbook
from PIL import Image

from epic_ar.data.decode import CropBox
from epic_ar.data.transforms import (
    FLOW_SCALES,
    RGB_SCALES,
    crop_resize,
    fixed_crop_offsets,
    multiscale_crop_sizes,
    sample_multiscale_crop,
)

EPIC_WIDTH, EPIC_HEIGHT, EPIC_INPUT = 456, 256, 224
# (rng, channels) -> one [256, 456, channels] uint8 frame
FrameSource = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Case:
    frames: np.ndarray  # [F, H, W, C] uint8, C = 1 or 3
    box: CropBox
    size: int  # output side, pixels


def textured(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """[H, W, C] uint8: smooth random colours plus sensor-like noise (the tests' frames)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (8, 12, channels), dtype=np.uint8)
    image = Image.fromarray(coarse[..., 0] if channels == 1 else coarse)
    smooth = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC), dtype=float)
    noisy = smooth.reshape(height, width, channels) + rng.normal(0, 6, (height, width, channels))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def property_test_cases(seed: int) -> Iterator[Case]:
    """The distribution of `test_crop_resize_matches_pil_within_rounding`'s inputs."""
    rng = np.random.default_rng(seed)
    while True:
        case_seed = int(rng.integers(0, 2**32 - 1))
        channels = int(rng.choice([1, 3]))
        count = int(rng.integers(1, 10))
        size = int(rng.choice([24, 32]))
        frames = np.stack([textured(48, 64, channels, case_seed + i) for i in range(count)])
        box = sample_multiscale_crop(64, 48, RGB_SCALES, size, np.random.default_rng(case_seed))
        yield Case(frames, box, size)


def every_test_crop(seed: int) -> Iterator[Case]:
    """Rounds over every crop the test distribution can draw, each with one new frame."""
    frame_seed = seed * 10**6
    while True:
        for channels in (1, 3):
            for size in (24, 32):
                for width, height in multiscale_crop_sizes(64, 48, RGB_SCALES, size):
                    for x, y in fixed_crop_offsets(64, 48, width, height):
                        frame_seed += 1
                        frame = textured(48, 64, channels, frame_seed)[None]
                        yield Case(frame, CropBox(x, y, width, height), size)


def epic_cases(seed: int, frame: FrameSource) -> Iterator[Case]:
    """EPIC-sized frames, alternately colour and grey, each with a training crop to 224."""
    rng = np.random.default_rng(seed)
    for index in itertools.count():
        channels = 3 if index % 2 == 0 else 1
        scales = RGB_SCALES if channels == 3 else FLOW_SCALES
        box = sample_multiscale_crop(EPIC_WIDTH, EPIC_HEIGHT, scales, EPIC_INPUT, rng)
        yield Case(frame(rng, channels)[None], box, EPIC_INPUT)


def textured_frame(rng: np.random.Generator, channels: int) -> np.ndarray:
    return textured(EPIC_HEIGHT, EPIC_WIDTH, channels, int(rng.integers(0, 2**32 - 1)))


def photo_frames() -> FrameSource:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # 600 x 512
    with Image.open(str(path)) as photo:
        colour, grey = np.asarray(photo.convert("RGB")), np.asarray(photo.convert("L"))

    def frame(rng: np.random.Generator, channels: int) -> np.ndarray:
        y = int(rng.integers(0, colour.shape[0] - EPIC_HEIGHT + 1))
        x = int(rng.integers(0, colour.shape[1] - EPIC_WIDTH + 1))
        window = (colour if channels == 3 else grey[..., None])[
            y : y + EPIC_HEIGHT, x : x + EPIC_WIDTH
        ]
        return np.ascontiguousarray(window)

    return frame


def pil_crop_resize(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """[H, W, C] uint8 → [size, size, C] uint8 with PIL (what the original's transforms do)."""
    image = Image.fromarray(frame[..., 0] if frame.shape[2] == 1 else frame)
    cropped = image.crop((box.x, box.y, box.x + box.width, box.y + box.height))
    resized = np.asarray(cropped.resize((size, size), Image.Resampling.BILINEAR))
    return resized.reshape(size, size, frame.shape[2])


@dataclass
class Tally:
    """Output pixels by |ours - PIL|: index 0, 1, 2 and 3 (for 3 or more levels)."""

    counts: np.ndarray
    cases: int = 0
    worst_case_share: float = 0.0  # the largest share of differing pixels in one case

    @property
    def pixels(self) -> int:
        return int(self.counts.sum())

    def add(self, case: Case) -> None:
        ours = crop_resize(case.frames, case.box, case.size).numpy().transpose(0, 2, 3, 1)
        theirs = np.stack([pil_crop_resize(f, case.box, case.size) for f in case.frames])
        difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        self.counts += np.bincount(np.minimum(difference, 3).ravel(), minlength=4)
        self.cases += 1
        self.worst_case_share = max(self.worst_case_share, float((difference > 0).mean()))


def measure(cases: Iterator[Case], pixels: float) -> Tally:
    tally = Tally(np.zeros(4, dtype=np.int64))
    while tally.pixels < pixels:
        tally.add(next(cases))
    return tally


def report(name: str, tally: Tally, seconds: float) -> str:
    share = tally.counts / tally.pixels * 100
    return (
        f"{name:16s} {tally.pixels / 1e6:5.2f}M pixels, {tally.cases:5d} cases: "
        f"{share[0]:.2f}% equal, {share[1]:.2f}% 1 level apart, "
        f"{tally.counts[2]} pixels 2 levels apart, {tally.counts[3]} further; "
        f"worst case {tally.worst_case_share * 100:.1f}% differing  ({seconds:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pixels", type=float, default=7.7e6, help="per set (default 7.7e6)")
    parser.add_argument("--seed", type=int, default=0)
    sets = ("tests", "tests-every-crop", "epic-textured", "epic-photo")
    parser.add_argument("--sets", nargs="+", choices=sets, default=list(sets))
    args = parser.parse_args()
    sources: dict[str, Callable[[], Iterator[Case]]] = {
        "tests": lambda: property_test_cases(args.seed),
        "tests-every-crop": lambda: every_test_crop(args.seed),
        "epic-textured": lambda: epic_cases(args.seed, textured_frame),
        "epic-photo": lambda: epic_cases(args.seed, photo_frames()),
    }
    print("crop_resize (torch, antialiased bilinear, uint8) against PIL crop + resize(BILINEAR)")
    for name in args.sets:
        start = time.perf_counter()
        tally = measure(sources[name](), args.pixels)
        print(report(name, tally, time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
