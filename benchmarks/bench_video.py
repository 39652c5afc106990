"""Segments read from MP4 videos against the same segments from gulp: samples/s, one core.

The same footage, the same segments, the same draws: `build_dataset` items ([8, 3, 224,
224] uint8, what training and `epic-ar test` consume), in train mode (random offsets,
multi-scale crop, flip) and test mode (centre offsets, centre crop), read

- from gulp: 456x256 JPEGs (libjpeg quality 75, 4:2:0: the size of ffmpeg's `-q:v 4`
  frames, as released; see photo_frames.py);
- from MP4 (`build_dataset(videos_dir=...)`, the official layout `P01/videos/P01_01.MP4`):
  H.264 at 456x256 made from those frames, and at 1920x1080 60 fps, the footage they were
  resized from (swscale bicubic, as the released frames were made from the videos): the
  1080p side decodes 1080p and resizes each frame it keeps to 256 high in the decoder,
  while its gulp side holds the 456x256 frames. That is the honest comparison.

Footage: a camera panning over a textured scene (coarse shapes, mid-frequency texture, fine
grain) with an object crossing it and sensor-like noise, rendered at 1920x1080, 60 fps;
libx264 crf 18, a keyframe every second (as camera footage has), x264's B-frames. Segments
are EPIC-like, 1-4 s (60-240 frames), at random places in one video (they may overlap).
To read 8 frames of a segment the decoder must start at the keyframe before the first and
decode forward through the last (skipping the B-frames nothing refers to); the gulp side
decodes the 8 JPEGs only.

One core: torch and OpenMP 1 thread, decoders single-threaded, no DataLoader workers.
Runs alternate; rates are medians over the repeats, ratios medians of the per-repeat
ratios (each between runs that sat next to each other in time).

With --torchcodec (when `import torchcodec` works: it needs FFmpeg's shared libraries from
the system), the frame reads alone as well, for the same frame indices: PyAV
(`read_frames_at`) against torchcodec's `VideoDecoder.get_frames_at` (CPU, one thread,
exact seeking, decoder kept open; `Resize` to 256 high for 1080p), and how far apart their
pixels are.

    .venv/bin/python benchmarks/bench_video.py [--segments 10] [--seconds 8] [--repeats 3]
        [--crf 18] [--sizes 456x256 1920x1080] [--quick] [--torchcodec]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import av
import numpy as np
import pandas as pd
import simplejpeg
import torch
from PIL import Image

from epic_ar.data import decode
from epic_ar.data.dataset import SegmentDataset, build_dataset
from epic_ar.data.sampling import (
    sample_test_offsets,
    sample_train_offsets,
    snippet_frame_indices,
)
from epic_ar.data.video import _decode_runs, frame_table, read_frames_at, write_video
from epic_ar.gulp.writer import GulpRecord, write_chunk
from photo_frames import PHOTO_QUALITY

OUT = Path(__file__).resolve().parent / "out" / "video"
FPS = 60  # the released rate of 2018-style videos (P01_01): video frame k - 1 is frame k
SIZES = {"456x256": (456, 256), "1920x1080": (1920, 1080)}
GULP_SIZE = SIZES["456x256"]
CRF = 18  # libx264's constant rate factor (lower: higher bitrate, slower decoding)
FRAME_COUNT = 8  # T, as the published models
VIDEO = ("P01", "P01_01")


@dataclass(frozen=True)
class Segment:
    narration_id: str
    start_frame: int  # released frame numbers, 1-based, inclusive
    stop_frame: int

    @property
    def num_frames(self) -> int:
        return self.stop_frame - self.start_frame + 1


@dataclass(frozen=True)
class Data:
    segments: list[Segment]
    labels: Path
    gulp: Path
    videos: dict[str, Path]  # size -> videos folder (P01/videos/P01_01.MP4 under it)
    jpeg_bytes: float  # mean bytes of a gulp frame


# --- footage ----------------------------------------------------------------------------------


def scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """[height, width, 3] uint8: coarse shapes, mid-frequency texture and fine grain."""

    def layer(rows: int, cols: int, resample: Image.Resampling) -> np.ndarray:
        cells = rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8)
        enlarged = Image.fromarray(cells).resize((width, height), resample)
        return np.asarray(enlarged, dtype=np.float32)

    pixels = 0.55 * layer(6, 10, Image.Resampling.BICUBIC)
    pixels += 0.30 * layer(height // 24, width // 24, Image.Resampling.BICUBIC)
    pixels += 0.15 * layer(height // 4, width // 4, Image.Resampling.BILINEAR)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def render(count: int, width: int, height: int, seed: int = 0) -> Iterator[np.ndarray]:
    """`count` [height, width, 3] uint8 frames: the camera pans over the scene along a
    smooth path (0-6 pixels a frame at 1080p) while a disc crosses it; noise of sd 3
    levels on top (a pool of noise images, so that rendering stays cheap)."""
    rng = np.random.default_rng(seed)
    margin_x, margin_y = width // 5, height // 5
    world = scene(rng, width + margin_x, height + margin_y)
    noise = [rng.normal(0, 3, (height, width, 3)).astype(np.int16) for _ in range(8)]
    yy, xx = np.mgrid[:height, :width]
    radius = height // 12
    for index in range(count):
        x = round(margin_x * (0.5 + 0.5 * np.sin(index / 97)))
        y = round(margin_y * (0.5 + 0.5 * np.cos(index / 131)))
        frame = world[y : y + height, x : x + width].astype(np.int16)
        cx = (0.1 + 0.8 * ((index / 150) % 1.0)) * width
        cy = height * (0.5 + 0.25 * np.sin(index / 40))
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = (200, 60, 40)
        frame += noise[int(rng.integers(len(noise)))]
        yield np.clip(frame, 0, 255).astype(np.uint8)


def resized(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` resized by FFmpeg's swscale, bicubic (as `scale=-2:256` made the released
    frames)."""
    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
    small = video_frame.reformat(width=width, height=height, interpolation="BICUBIC")
    return np.asarray(small.to_ndarray())


def plan_segments(rng: np.random.Generator, count: int, total_frames: int) -> list[Segment]:
    """`count` segments of 1-4 s (at most the video), at uniformly random places."""
    segments = []
    for s in range(count):
        length = int(rng.integers(FPS, min(4 * FPS, total_frames) + 1))
        start = int(rng.integers(1, total_frames - length + 2))
        segments.append(Segment(f"{VIDEO[1]}_{s}", start, start + length - 1))
    return segments


def video_path(videos: Path) -> Path:
    participant, video = VIDEO
    return videos / participant / "videos" / f"{video}.MP4"


def make_data(out: Path, args: argparse.Namespace) -> Data:
    """Render the footage once: the 1080p MP4 from it, the 456x256 frames resized from it
    as a 456x256 MP4 and as gulp JPEGs; the segments as a label file and a gulp chunk."""
    total = round(args.seconds * FPS)
    small: list[np.ndarray] = []

    def full_size_frames() -> Iterator[np.ndarray]:
        for frame in render(total, *SIZES["1920x1080"]):
            small.append(resized(frame, *GULP_SIZE))
            yield frame

    videos = {size: out / f"videos_{size}" for size in SIZES}
    options = {"crf": str(args.crf)}
    write_video(video_path(videos["1920x1080"]), full_size_frames(), FPS, options=options)
    write_video(video_path(videos["456x256"]), small, FPS, options=options)
    jpegs = [
        bytes(
            simplejpeg.encode_jpeg(
                frame, quality=PHOTO_QUALITY, colorspace="RGB", colorsubsampling="420"
            )
        )
        for frame in small
    ]
    segments = plan_segments(np.random.default_rng(1), args.segments, total)
    labels = out / "labels.csv"
    write_labels(labels, segments)
    gulp = out / "gulp"
    write_gulp(gulp, segments, jpegs)
    return Data(segments, labels, gulp, videos, statistics.mean(map(len, jpegs)))


def write_labels(path: Path, segments: list[Segment]) -> None:
    participant, video = VIDEO
    rows = [
        {
            "narration_id": s.narration_id,
            "participant_id": participant,
            "video_id": video,
            "start_timestamp": f"00:00:{(s.start_frame - 1) / FPS:05.2f}",
            "stop_timestamp": f"00:00:{(s.stop_frame - 1) / FPS:05.2f}",
            "start_frame": s.start_frame,
            "stop_frame": s.stop_frame,
            "verb_class": i % 97,
            "noun_class": i % 300,
        }
        for i, s in enumerate(segments)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def write_gulp(directory: Path, segments: list[Segment], jpegs: list[bytes]) -> None:
    """One gulp chunk: each segment's frames (released frame k is `jpegs[k - 1]`)."""
    participant, video = VIDEO
    records = []
    for i, s in enumerate(segments):
        meta = {
            "narration_id": s.narration_id,
            "participant_id": participant,
            "video_id": video,
            "start_frame": s.start_frame,
            "stop_frame": s.stop_frame,
            "verb_class": i % 97,
            "noun_class": i % 300,
            "num_frames": s.num_frames,
            "frame_size": [GULP_SIZE[1], GULP_SIZE[0], 3],
        }
        records.append(GulpRecord(s.narration_id, meta, jpegs[s.start_frame - 1 : s.stop_frame]))
    directory.mkdir(parents=True, exist_ok=True)
    write_chunk(directory, 0, records)


# --- timing -----------------------------------------------------------------------------------

Rates = dict[str, list[float]]


def interleaved_rates(runs: dict[str, Callable[[], int]], repeats: int) -> Rates:
    """Items/s of each run in each repeat; runs alternate within each repeat."""
    rates: Rates = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            items = run()
            rates[name].append(items / (time.perf_counter() - start))
    return rates


def median_ratio(rates: Rates, name: str, baseline: str) -> float:
    return statistics.median(a / b for a, b in zip(rates[name], rates[baseline], strict=True))


def seeds(data: Data) -> list[int]:
    """One seed per segment, the same in every run and for both sources (same draws)."""
    return [1000 + i for i in range(len(data.segments))]


def items_run(dataset: SegmentDataset, data: Data) -> Callable[[], int]:
    """Every segment once, as (index, seed) keys: the same draws in every run."""
    position = {str(n): i for i, n in enumerate(dataset.table.narration_id)}
    keys = [
        (position[s.narration_id], seed) for s, seed in zip(data.segments, seeds(data), strict=True)
    ]
    dataset[keys[0]]  # warm-up: frame table read, files in the page cache

    def run() -> int:
        for key in keys:
            dataset[key]
        return len(keys)

    return run


def sample_indices(data: Data, train: bool) -> list[np.ndarray]:
    """The video frames (0-based) each segment's item reads, drawn as `SegmentDataset`
    draws them for the keys of `items_run`."""
    result = []
    for segment, seed in zip(data.segments, seeds(data), strict=True):
        n = segment.num_frames
        if train:
            offsets = sample_train_offsets(n, FRAME_COUNT, 1, np.random.default_rng(seed))
        else:
            offsets = sample_test_offsets(n, FRAME_COUNT, 1)
        result.append(segment.start_frame - 1 + snippet_frame_indices(offsets, 1, n))
    return result


def frames_passed(video: Path, indices: list[np.ndarray]) -> float:
    """Mean frames the decoder goes through per sample: from the keyframe before each run
    of wanted frames through the run's last (as `read_frames_at` plans its reads; the
    B-frames it skips are counted too)."""
    table = frame_table(video)
    counts = [
        sum(stop - start + 1 for start, stop in _decode_runs(table, np.unique(wanted)))
        for wanted in indices
    ]
    return statistics.mean(counts)


def bench_size(size: str, data: Data, repeats: int) -> dict[str, Any]:
    """Samples/s from gulp and from the MP4 of `size`, test and train mode, interleaved."""
    runs = {}
    for mode in ("test", "train"):
        train = mode == "train"
        gulp = build_dataset(data.gulp, "rgb", FRAME_COUNT, train=train, labels=data.labels)
        mp4 = build_dataset(
            None, "rgb", FRAME_COUNT, train=train, labels=data.labels, videos_dir=data.videos[size]
        )
        runs[f"gulp_{mode}"] = items_run(gulp, data)
        runs[f"mp4_{mode}"] = items_run(mp4, data)
    rates = interleaved_rates(runs, repeats)
    video = video_path(data.videos[size])
    passed = {
        mode: frames_passed(video, sample_indices(data, mode == "train"))
        for mode in ("test", "train")
    }
    return {"rates": rates, "passed": passed, "difference": item_difference(size, data)}


def item_difference(size: str, data: Data) -> float:
    """Mean absolute difference, in grey levels, between the test-mode items from MP4 and
    from gulp (H.264 against JPEG, and for 1080p the resize on decoded YUV)."""
    gulp = build_dataset(data.gulp, "rgb", FRAME_COUNT, train=False, labels=data.labels)
    mp4 = build_dataset(
        None, "rgb", FRAME_COUNT, train=False, labels=data.labels, videos_dir=data.videos[size]
    )
    differences = [
        (gulp[i][0].to(torch.int16) - mp4[i][0].to(torch.int16)).abs().float().mean().item()
        for i in range(min(4, len(gulp)))
    ]
    return statistics.mean(differences)


def reads_run(
    read: Callable[[np.ndarray], np.ndarray], requests: list[np.ndarray]
) -> Callable[[], int]:
    def run() -> int:
        for indices in requests:
            read(indices)
        return len(requests)

    return run


def bench_decoders(size: str, data: Data, repeats: int) -> dict[str, Any]:
    """Frame reads alone, the same indices: PyAV (`read_frames_at`) against torchcodec."""
    # By name, so that type checking needs no torchcodec (not a dependency).
    video_decoder = importlib.import_module("torchcodec.decoders").VideoDecoder
    resize = importlib.import_module("torchcodec.transforms").Resize
    video = video_path(data.videos[size])
    info = frame_table(video).info
    width = 2 * round(256 * info.width / (2 * info.height))
    transforms = [resize((256, width))] if info.height != 256 else None
    decoder = video_decoder(
        video,
        num_ffmpeg_threads=1,
        dimension_order="NHWC",
        seek_mode="exact",
        device="cpu",
        transforms=transforms,
    )

    def torchcodec_read(indices: np.ndarray) -> np.ndarray:
        return np.asarray(decoder.get_frames_at(indices.tolist()).data.numpy())

    def pyav_read(indices: np.ndarray) -> np.ndarray:
        return read_frames_at(video, indices, height=256)

    runs = {}
    for mode in ("test", "train"):
        requests = sample_indices(data, mode == "train")
        for name, read in (("pyav", pyav_read), ("torchcodec", torchcodec_read)):
            read(requests[0])  # warm-up
            runs[f"{name}_{mode}"] = reads_run(read, requests)
    rates = interleaved_rates(runs, repeats)
    ours, theirs = (read(sample_indices(data, False)[0]) for read in (pyav_read, torchcodec_read))
    difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
    return {
        "rates": rates,
        "mean_difference": float(difference.mean()),
        "max_difference": int(difference.max()),
        "equal_share": float((difference == 0).mean()),
    }


# --- report -----------------------------------------------------------------------------------


def bitrate(path: Path, frames: int) -> float:
    """Megabits per second of the video file at `path` holding `frames` frames at FPS."""
    return path.stat().st_size * 8 / (frames / FPS) / 1e6


def report_data(data: Data, frames: int, crf: int) -> None:
    lengths = [s.num_frames / FPS for s in data.segments]
    print(
        f"footage: {frames} frames ({frames / FPS:.1f} s) at {FPS} fps; {len(lengths)} segments "
        f"of {min(lengths):.1f}-{max(lengths):.1f} s (mean {statistics.mean(lengths):.1f} s)"
    )
    print(
        f"  gulp:          456x256 JPEG, libjpeg quality {PHOTO_QUALITY} 4:2:0, "
        f"{data.jpeg_bytes / 1000:.1f} kB a frame"
    )
    for size, folder in data.videos.items():
        path = video_path(folder)
        table = frame_table(path)
        gaps = np.diff(np.flatnonzero(table.keyframe))
        gop = int(gaps.max()) if gaps.size else frames
        print(
            f"  MP4 {size:<10} H.264 crf {crf}, keyframe every {gop} frames, "
            f"{bitrate(path, frames):.1f} Mbit/s ({path.stat().st_size / frames / 1000:.1f} kB "
            "a frame)"
        )


def report_size(size: str, result: dict[str, Any], repeats: int) -> None:
    rates, passed = result["rates"], result["passed"]
    print(
        f"\n{size} MP4 against 456x256 gulp, [8, 3, 224, 224] items, 1 core, median of {repeats}:"
    )
    for mode in ("test", "train"):
        gulp = statistics.median(rates[f"gulp_{mode}"])
        mp4 = statistics.median(rates[f"mp4_{mode}"])
        ratio = median_ratio(rates, f"mp4_{mode}", f"gulp_{mode}")
        print(
            f"  {mode:<5}  gulp {gulp:7.1f} samples/s   MP4 {mp4:6.2f} samples/s   "
            f"MP4/gulp {ratio:.3g} (gulp {1 / ratio:.0f}x faster); the decoder goes through "
            f"{passed[mode]:.0f} frames a sample"
        )
    print(
        f"  test items from MP4 and from gulp differ by {result['difference']:.1f} grey levels "
        "on average"
    )


def report_decoders(size: str, result: dict[str, Any], repeats: int) -> None:
    rates = result["rates"]
    print(f"\n{size} frame reads alone, PyAV against torchcodec, 1 core, median of {repeats}:")
    for mode in ("test", "train"):
        pyav = statistics.median(rates[f"pyav_{mode}"])
        theirs = statistics.median(rates[f"torchcodec_{mode}"])
        ratio = median_ratio(rates, f"torchcodec_{mode}", f"pyav_{mode}")
        print(
            f"  {mode:<5}  PyAV {pyav:6.2f} samples/s   torchcodec {theirs:6.2f} samples/s   "
            f"torchcodec/PyAV {ratio:.2f}"
        )
    print(
        f"  pixels (8 frames): {100 * result['equal_share']:.0f}% equal, "
        f"{result['mean_difference']:.2f} levels apart on average, at most "
        f"{result['max_difference']}"
    )


def decoder_line() -> str:
    codec = ".".join(map(str, av.library_versions["libavcodec"]))
    return f"decoder: PyAV {av.__version__} (libavcodec {codec}), one thread"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the footage")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--crf", type=int, default=CRF, help="libx264 crf: lower gives a higher bitrate"
    )
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="4 s, 4 segments, 1 repeat")
    parser.add_argument(
        "--torchcodec", action="store_true", help="also frame reads: PyAV against torchcodec"
    )
    args = parser.parse_args()
    if args.quick:
        args.segments, args.seconds, args.repeats = 4, 4.0, 1
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    print(decoder_line())
    built = "built" if decode.PARTIAL_DECODING else "NOT built: whole frames are decoded"
    print(f"partial-decoding extension (gulp side): {built}")
    start = time.perf_counter()
    data = make_data(OUT, args)
    frames = round(args.seconds * FPS)
    print(f"made the footage, videos and gulp in {time.perf_counter() - start:.0f} s")
    report_data(data, frames, args.crf)
    for size in args.sizes:
        report_size(size, bench_size(size, data, args.repeats), args.repeats)
    if args.torchcodec:
        try:
            importlib.import_module("torchcodec.decoders")
        except (ImportError, RuntimeError, OSError) as error:
            print(f"\ntorchcodec: cannot be imported ({str(error).splitlines()[0]}); skipped")
            return
        version = importlib.metadata.version("torchcodec")
        print(f"\ntorchcodec {version}, CPU, one thread")
        for size in args.sizes:
            report_decoders(size, bench_decoders(size, data, args.repeats), args.repeats)


if __name__ == "__main__":
    main()
