"""Training data loader: samples/s against the JPEG decode bound and the original pipeline.

One run, one core (torch and OpenMP limited to 1 thread), same gulp directories for all:

- decode bound: libjpeg-turbo decoding alone (accurate settings) of the frames a sample
  needs (RGB 8x1 frames; flow 8x5 u/v pairs = 80 greyscale frames), read from memory;
- ours: `build_dataset(..., train=True)` items ([T, C, 224, 224] uint8): accurate decoding
  of the crop region only, RGB rows resized as they are decoded (the default when the C
  extension is built); the crop decoded, then resized by torch (`ours_torch_resize`, the
  same bytes); whole frames (`ours_full_decode`); fast decoding of the crop region; test
  mode too;
- the original pipeline re-created (`original_style_loader.py`: gulpio2 per-frame reads,
  PIL group transforms, normalisation in the worker);
- both through a real DataLoader with 2 workers (batch 16).

The runs alternate; rates are medians over the repeats, and ratios are medians of the
per-repeat ratios (each between runs that sat next to each other in time).

Frames are 456x256 JPEGs (RGB with 4:2:0 chroma, as the official frames). Three runs:

- rgb, flow: synthetic photo-like texture, generated so that decoding runs at about the
  rate of real EPIC-KITCHENS frames (~2,400 RGB, ~3,700 grey frames/s per core);
- photos: RGB frames cut from real photographs (scikit-image's bundled samples, the `bench`
  extra) by a moving crop, a camera pan (benchmarks/photo_frames.py); the decode bound is
  measured on those frames, like the others.

    .venv/bin/python benchmarks/bench_loader.py [--segments 24] [--samples 60] [--repeats 7]
        [--runs rgb flow photos]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import simplejpeg
import torch
from PIL import Image
from torch.utils.data import DataLoader

from epic_ar.data import decode
from epic_ar.data.dataset import SeededShuffleSampler, build_dataset
from epic_ar.gulp import GulpDirectory
from epic_ar.gulp.writer import GulpRecord, write_chunk
from original_style_loader import OriginalStyleTrainDataset
from photo_frames import PHOTO_QUALITY, PHOTOS, panned_segments

OUT = Path(__file__).resolve().parent / "out" / "loader"
WIDTH, HEIGHT = 456, 256


def textured_frame(rng: np.random.Generator, channels: int, mid: float, detail: float) -> bytes:
    """A JPEG with coarse shapes, some mid-frequency texture and fine noise."""

    def upsampled(rows: int, cols: int, filter_: Image.Resampling) -> np.ndarray:
        small = rng.integers(0, 255, (rows, cols, channels), dtype=np.uint8)
        image = Image.fromarray(small[..., 0] if channels == 1 else small)
        resized = np.asarray(image.resize((WIDTH, HEIGHT), filter_), dtype=np.float64)
        return resized.reshape(HEIGHT, WIDTH, channels)

    pixels = (1 - mid) * upsampled(16, 28, Image.Resampling.BICUBIC)
    pixels += mid * upsampled(HEIGHT // 4, WIDTH // 4, Image.Resampling.BILINEAR)
    pixels += rng.normal(0, detail, pixels.shape)
    image = np.clip(pixels, 0, 255).astype(np.uint8)
    if channels == 1:
        return bytes(simplejpeg.encode_jpeg(image, quality=90, colorspace="GRAY"))
    # 4:2:0 chroma, as in the official frames (extracted by ffmpeg from yuv420p video)
    return bytes(
        simplejpeg.encode_jpeg(image, quality=85, colorspace="RGB", colorsubsampling="420")
    )


def make_gulp(directory: Path, modality: str, segments: int, frames: int) -> None:
    """`segments` segments of `frames` frames (flow: pairs), 8 distinct images per segment."""
    rng = np.random.default_rng(0)
    channels, detail, per_frame = (3, 6.0, 1) if modality == "rgb" else (1, 2.0, 2)
    stored = []
    for _ in range(segments):
        distinct = [textured_frame(rng, channels, 0.5, detail) for _ in range(8)]
        stored.append([distinct[i % 8] for i in range(per_frame * frames)])
    write_segments(directory, modality, stored)


def make_photo_gulp(directory: Path, segments: int, frames: int) -> None:
    """`segments` RGB segments of `frames` frames cut from real photographs (a camera pan
    over each; benchmarks/photo_frames.py), every frame a distinct JPEG."""
    write_segments(directory, "rgb", panned_segments(segments, frames, width=WIDTH, height=HEIGHT))


def write_segments(directory: Path, modality: str, segments: list[list[bytes]]) -> None:
    """One gulp chunk holding `segments` (each a list of JPEGs: RGB frames, or u/v pairs
    interleaved for flow), segment s named P01_01_s."""
    stored = []
    for s, jpegs in enumerate(segments):
        size = [HEIGHT, WIDTH, 3] if modality == "rgb" else [HEIGHT, WIDTH]
        frames = len(jpegs) if modality == "rgb" else len(jpegs) // 2
        meta = {
            "narration_id": f"P01_01_{s}",
            "participant_id": "P01",
            "video_id": "P01_01",
            "verb_class": s % 97,
            "noun_class": s % 300,
            "num_frames": frames,
            "frame_size": size,
        }
        stored.append(GulpRecord(f"P01_01_{s}", meta, jpegs))
    directory.mkdir(parents=True, exist_ok=True)
    write_chunk(directory, 0, stored)


Rates = dict[str, list[float]]


def interleaved_rates(runs: dict[str, Callable[[], int]], repeats: int) -> Rates:
    """Items/s of each run in each repeat; runs alternate within each repeat (after a
    warm-up), so that slow phases of a noisy machine hit them all alike."""
    for run in runs.values():
        run()
    rates: Rates = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            items = run()
            rates[name].append(items / (time.perf_counter() - start))
    return rates


def median_rate(rates: Rates, name: str) -> float:
    return statistics.median(rates[name])


def median_ratio(rates: Rates, name: str, baseline: str) -> float:
    """The median over repeats of name's rate / baseline's rate in the same repeat."""
    return statistics.median(a / b for a, b in zip(rates[name], rates[baseline], strict=True))


def decode_run(directory: Path, frames_per_sample: int, samples: int) -> Callable[[], int]:
    """Decoding (accurate) `frames_per_sample` stored frames for each of `samples` samples
    (segments in turn), from memory: the same amount of work as a run of items."""
    gulp = GulpDirectory(directory)
    segments = gulp.segment_ids
    jpegs = [
        jpeg
        for sample in range(samples)
        for jpeg in gulp.read_jpegs(
            segments[sample % len(segments)], list(range(frames_per_sample))
        )
    ]
    gray = simplejpeg.decode_jpeg_header(jpegs[0])[2] == "Gray"

    def run() -> int:
        for jpeg in jpegs:
            simplejpeg.decode_jpeg(jpeg, colorspace="GRAY" if gray else "RGB")
        return samples

    return run


def items_run(dataset: Any, samples: int) -> Callable[[], int]:
    """`samples` items, with the same random draws in every run: keys with fixed seeds for
    ours, a reseeded global generator for the original (which draws from `random`)."""
    seeded_keys = not isinstance(dataset, OriginalStyleTrainDataset)
    keys = [(i % len(dataset), i) if seeded_keys else i % len(dataset) for i in range(samples)]

    def run() -> int:
        random.seed(0)
        for key in keys:
            dataset[key]
        return len(keys)

    return run


def without_extension_functions(run: Callable[[], int], *names: str) -> Callable[[], int]:
    """`run` with the extension functions `names` of `epic_ar.data.decode` set to None (as
    when the extension lacks them), restored afterwards."""

    def without() -> int:
        saved = {name: getattr(decode, name) for name in names}
        for name in names:
            setattr(decode, name, None)
        try:
            return run()
        finally:
            for name, function in saved.items():
                setattr(decode, name, function)

    return without


def full_decode_run(run: Callable[[], int]) -> Callable[[], int]:
    """`run` without the C extension (whole frames decoded, numpy packing)."""
    return without_extension_functions(run, "_decode_crop", "_split_quads", "_decode_crops_resized")


def separate_resize_run(run: Callable[[], int]) -> Callable[[], int]:
    """`run` with the extension decoding RGB crops and torch resizing them afterwards,
    instead of the extension resizing each row as it is decoded (the same bytes)."""
    return without_extension_functions(run, "_decode_crops_resized")


def bundled_libjpeg_run(run: Callable[[], int]) -> Callable[[], int]:
    """`run` with the C extension decoding through the libjpeg-turbo Pillow bundles (3.x)
    instead of the one it was built against (the system's; `run` itself if there is none)."""
    bundled = decode.bundled_libjpeg()

    def with_bundled_library() -> int:
        if bundled is None or not decode.PARTIAL_DECODING:
            return run()
        previous = decode.libjpeg_path()  # before switching: the library the others use
        decode.use_libjpeg(bundled)
        try:
            return run()
        finally:
            decode.use_libjpeg(previous)

    return with_bundled_library


def time_shares(dataset: Any, samples: int) -> dict[str, float]:
    """Shares of the time of `samples` items spent decoding (`decode_frames`,
    `decode_grey_quads`), resizing (`_resize`), and both at once (`decode_resized`, RGB
    crops resized as they are decoded), from one cProfile'd run: cumulative
    time of those functions over the run's total. The profiler's own cost lands on the
    Python code around them, so the shares are slight underestimates."""
    run = items_run(dataset, samples)
    run()  # warm-up, as for the timed runs
    profile = cProfile.Profile()
    profile.runcall(run)
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())  # the sum of own times: the whole run
    parts = {
        "decode": ("decode_frames", "decode_grey_quads"),
        "resize": ("_resize",),
        "decode_resized": ("decode_resized",),
    }
    return {
        part: sum(
            entry[3]
            for (path, _, function), entry in stats.items()
            if function in names and path.endswith(("decode.py", "transforms.py"))
        )
        / total
        for part, names in parts.items()
    }


def loader_run(dataset: Any, sampler: Any, batches: int) -> Callable[[], int]:
    loader = DataLoader(
        dataset, batch_size=16, sampler=sampler, num_workers=2, persistent_workers=True
    )

    def run() -> int:
        seen = 0
        for i, (frames, _) in enumerate(loader):
            seen += len(frames)
            if i + 1 == batches:
                break
        return seen

    return run


Run = tuple[Literal["rgb", "flow"], Literal["synthetic", "photos"]]
RUNS: dict[str, Run] = {
    "rgb": ("rgb", "synthetic"),
    "flow": ("flow", "synthetic"),
    "photos": ("rgb", "photos"),
}


def bench_modality(run: Run, args: argparse.Namespace) -> Rates:
    modality, content = run
    directory = OUT / f"{modality}_{content}"
    frames = 60
    if content == "photos":
        make_photo_gulp(directory, args.segments, frames)
    else:
        make_gulp(directory, modality, args.segments, frames)
    per_sample = 8 * (10 if modality == "flow" else 1)
    ours = build_dataset(directory, modality, train=True)
    ours_fast = build_dataset(directory, modality, train=True, fast_decode=True)
    ours_test = build_dataset(directory, modality, train=False)
    original = OriginalStyleTrainDataset(str(directory), flow=modality == "flow")
    n, r = args.samples, args.repeats
    result = interleaved_rates(
        {
            "decode_bound": decode_run(directory, per_sample, n),
            "ours": items_run(ours, n),
            "ours_full_decode": full_decode_run(items_run(ours, n)),
            "ours_torch_resize": separate_resize_run(items_run(ours, n)),
            "ours_bundled_libjpeg": bundled_libjpeg_run(items_run(ours, n)),
            "ours_fast_decode": items_run(ours_fast, n),
            "ours_test_mode": items_run(ours_test, n),
            "original": items_run(original, n),
        },
        r,
    )
    shares = time_shares(ours, n)
    result |= {f"share_{part}": [share] for part, share in shares.items()}
    batches = max(2, 2 * n // 16)
    sampler = SeededShuffleSampler(len(ours))
    result |= interleaved_rates(
        {
            "ours_2_workers": loader_run(ours, sampler, batches),
            "original_2_workers": loader_run(original, None, batches),
        },
        r,
    )
    return result


def mean_jpeg_bytes(directory: Path) -> float:
    """Mean size of the stored frames of a gulp directory, in bytes."""
    gulp = GulpDirectory(directory)
    sizes = [
        len(jpeg)
        for segment in gulp.segment_ids
        for jpeg in gulp.read_jpegs(segment, list(range(gulp.num_frames(segment))))
    ]
    return statistics.mean(sizes)


def fast_decode_shift(directory: Path) -> int:
    """The largest difference, in grey levels, between `fast_decode` pixels (libjpeg-turbo's
    fast DCT and upsampling) and accurate ones, over the first 8 frames of every segment."""
    gulp = GulpDirectory(directory)
    largest = 0
    for segment in gulp.segment_ids:
        jpegs = gulp.read_jpegs(segment, list(range(8)))
        accurate = decode.decode_frames(jpegs).astype(np.int16)
        fast = decode.decode_frames(jpegs, fast=True).astype(np.int16)
        largest = max(largest, int(np.abs(fast - accurate).max()))
    return largest


def report(run: Run, r: Rates, repeats: int) -> None:
    modality, content = run
    shape = "8x1 RGB" if modality == "rgb" else "8x5 flow pairs"
    source = (
        f"photographs {', '.join(PHOTOS)} panned, JPEG quality {PHOTO_QUALITY}"
        if content == "photos"
        else "synthetic texture"
    )
    jpeg_kb = mean_jpeg_bytes(OUT / f"{modality}_{content}") / 1000
    print(f"\n{modality} training samples ({shape}, 456x256 → 224x224, {source}, "
          f"{jpeg_kb:.1f} kB a frame), 1 core, median of {repeats}:")  # fmt: skip
    bound = median_rate(r, "decode_bound")
    frames_per_s = bound * (8 if modality == "rgb" else 80)
    print(f"  decode only:        {frames_per_s:7.0f} frames/s "
          f"= {bound:6.1f} samples/s (bound)")  # fmt: skip
    names = ("ours", "ours_torch_resize", "ours_bundled_libjpeg", "ours_full_decode",
             "ours_fast_decode", "ours_test_mode", "original")  # fmt: skip
    for name in names:
        print(
            f"  {name:<19} {median_rate(r, name):7.1f} samples/s  "
            f"({median_ratio(r, name, 'original'):.2f}x original, "
            f"{100 * median_ratio(r, name, 'decode_bound'):.0f}% of decode bound)"
        )
    shift = fast_decode_shift(OUT / f"{modality}_{content}")
    print(
        f"  fast_decode moves pixels by up to {shift} grey levels (first 8 frames of each segment)"
    )
    slower = 1 - median_ratio(r, "ours_full_decode", "ours")
    change = f"{100 * slower:.0f}% slower" if slower >= 0 else f"{-100 * slower:.0f}% faster"
    print(f"  without the C extension: {change} than with it")
    gain = median_ratio(r, "ours_bundled_libjpeg", "ours")
    print(f"  Pillow's libjpeg-turbo ({decode.bundled_libjpeg()}): {gain:.3f}x the rate with "
          f"the extension's own ({decode.libjpeg_in_use()})")  # fmt: skip
    decode_share, resize_share = r["share_decode"][0], r["share_resize"][0]
    fused_share = r["share_decode_resized"][0]
    rest = 1 - decode_share - resize_share - fused_share
    parts = [("decoding and resizing together", fused_share), ("decoding", decode_share),
             ("resizing", resize_share), ("the rest", rest)]  # fmt: skip
    print(
        "  where ours spends its time (one profiled run): "
        + ", ".join(f"{name} {100 * share:.0f}%" for name, share in parts if share > 0.005)
    )
    if modality == "rgb":  # flow frames are resized by torch either way
        gain = median_ratio(r, "ours", "ours_torch_resize")
        print(
            f"  resizing as the rows are decoded: {gain:.3f}x the rate of decoding, then "
            "resizing with torch (the same bytes)"
        )
    print(
        f"  2 workers:          ours {median_rate(r, 'ours_2_workers'):.1f} samples/s, "
        f"original {median_rate(r, 'original_2_workers'):.1f} samples/s "
        f"({median_ratio(r, 'ours_2_workers', 'original_2_workers'):.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--samples", type=int, default=60, help="samples per timed run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=list(RUNS),
        default=list(RUNS),
        help="rgb, flow: synthetic frames; photos: RGB frames cut from real photographs",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    built = "built" if decode.PARTIAL_DECODING else "NOT built: whole frames are decoded"
    print(f"partial-decoding extension: {built}; libjpeg: {decode.libjpeg_in_use()}")
    for name in args.runs:
        report(RUNS[name], bench_modality(RUNS[name], args), args.repeats)


if __name__ == "__main__":
    main()
