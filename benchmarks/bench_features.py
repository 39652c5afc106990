"""Features/s of `epic-ar features` for TSM-ResNet50 RGB, against the model alone.

One run, the same checkpoint and footage for every row, the runs alternating within each
repeat; rates are medians over the repeats, ratios medians of the per-repeat ratios (each
against the model-alone run of the same repeat, which runs right after the first pipeline
run):

- `extract_features` (the library call behind `epic-ar features`, model load included) in
  each `--formats` format: rulstm-lmdb, the heaviest (30 features per second of video,
  each from the 1 s before it), and actionformer (one feature per 16/30 s, each from
  32/30 s), reading the released frames from tar archives (`frames_dir`) and reading the
  MP4 (`videos_dir`). Features counted in the output it wrote;
- the model alone: `VideoModel.pooled_features` of one of the pipeline's batches,
  preloaded and normalised on the device ([B, 8, 3, 224, 224] float32, the pipeline's
  pixels and memory layout; float16 autocast on CUDA, as the pipeline): the rate the
  pipeline could reach if reading cost nothing;
- reading alone: the pipeline's test views of the same windows (`ViewBatches`: decode,
  resize to 256 high, centre crop 224, [B, 8, 3, 224, 224] uint8), in this process on
  one torch thread (as a DataLoader worker reads), without the model;
- the model load `extract_features` does first (`load_checkpoint` and the checkpoint's
  sha256, which the output records), to subtract from the pipeline's wall time.

Checkpoint: the published TSM-RGB config (ResNet-50, 8 frames, 224 crops of frames
rescaled to 256) with random weights, in the published file layout. Footage:
`epic_ar.synthetic.dataset` videos at the released 456x256, 2018 ids (P01_01, ...; 60
fps), written as official tar archives of JPEGs and as H.264 MP4s of the same frames. Its
frames (a smooth background, one small moving object) decode faster than camera footage,
so the reading rates are upper bounds. `--seconds` is approximate (the generator places
segments of whole frames); the "footage" line above the table gives the lengths made.

    .venv/bin/python benchmarks/bench_features.py [--device cpu|cuda] [--seconds 0.5]
        [--videos 1] [--repeats 3] [--batch 8] [--workers N] [--formats rulstm-lmdb ...]

The defaults (0.53 s of video: 16 RULSTM features per call) fit a 2-core CPU in about 5
minutes. On a GPU (not measured yet):

    .venv/bin/python benchmarks/bench_features.py --device cuda --seconds 20 --videos 8 \\
        --workers 8 --batch 32 --formats rulstm-lmdb actionformer
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import torch

from epic_ar.compat.lightning_config import current_config
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.errors import EpicArError
from epic_ar.features.extract import FeatureOptions, Plan, file_digest, make_plan
from epic_ar.features.jobs import ViewBatches
from epic_ar.features.run import extract_features
from epic_ar.features.writers import FeatureFormat
from epic_ar.models.checkpoint import input_spec, load_checkpoint
from epic_ar.models.config import model_config_from_dict
from epic_ar.models.video_model import VideoModel, build_model
from epic_ar.synthetic.dataset import SyntheticConfig, check_splits, plan_videos, write_dataset
from epic_ar.training.run_config import parse_data_config

ROOT = Path(__file__).resolve().parents[1]
HYPER_PARAMETERS = ROOT / "tests" / "data" / "reference" / "official_hyper_parameters.json"
FORMATS: tuple[FeatureFormat, ...] = ("rulstm-lmdb", "actionformer")
SOURCES = ("tar", "MP4")
VIDEO_FPS = 60  # synthetic 2018 videos, as released


@dataclass(frozen=True)
class Sample:
    seconds: float
    items: int  # features, or views read


@dataclass(frozen=True)
class Footage:
    frames_dir: Path  # official tar archives
    videos_dir: Path  # P01/videos/P01_01.MP4
    video_ids: tuple[str, ...]
    frame_counts: tuple[int, ...]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds of `work()`, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


# --- inputs -----------------------------------------------------------------------------------


def published_tsm_checkpoint(path: Path, seed: int = 0) -> Path:
    """The published TSM-RGB checkpoint's layout and config (ResNet-50, 8 frames, input
    224, rescale 256) with random weights: no pretrained download."""
    config = json.loads(HYPER_PARAMETERS.read_text())["tsm_rgb"]
    config["model"]["pretrained"] = None
    resolved = current_config(config)
    torch.manual_seed(seed)
    model = build_model(model_config_from_dict(dict(resolved["model"])), input_spec(resolved))
    state = {f"model.{key}": value for key, value in model.state_dict().items()}
    torch.save({"hyper_parameters": config, "state_dict": state}, path)
    return path


def synthetic_config(seconds: float, videos: int) -> SyntheticConfig:
    """`videos` 2018-style videos (P01_01, P02_01, ...) of about `seconds` each: short
    segments back to back (one moving object each). The generator needs an unseen
    participant, so there are at least two; the seed is the first whose random split
    gives every split a segment (the generator refuses others)."""
    segments = max(3, round(seconds * 4))
    # a video: 1-5 frames, then each segment with the 0-5 frames after it (`length + 2.5`
    # on average), then 2 more
    length = max(3, round((seconds * VIDEO_FPS - 5) / segments - 2.5))
    for seed in range(100):
        config = SyntheticConfig(
            participants=max(2, videos), videos_per_participant=1, segments_per_video=segments,
            min_frames=length, max_frames=length, layouts=("tar", "videos"), seed=seed,
        )  # fmt: skip
        try:
            check_splits(plan_videos(config, np.random.default_rng(seed)))
        except EpicArError:
            continue
        return config
    raise SystemExit(f"no seed below 100 splits {segments} segments a video: ask for more")


def make_footage(folder: Path, seconds: float, videos: int) -> Footage:
    data = folder / "data"
    written = write_dataset(data, synthetic_config(seconds, videos))
    chosen = written[:videos]
    return Footage(
        data / "frames_tar",
        data / "videos",
        tuple(video.video_id for video in chosen),
        tuple(video.num_frames for video in chosen),
    )


def written_features(out: Path, format: FeatureFormat, video_ids: tuple[str, ...]) -> int:
    """Features in an output, counted in what was written."""
    if format == "actionformer":
        return sum(int(np.load(out / f"{video}.npz")["feats"].shape[0]) for video in video_ids)
    env = lmdb.open(str(out), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return sum(1 for key in txn.cursor().iternext(values=False) if key.endswith(b".jpg"))
    finally:
        env.close()


# --- runs -------------------------------------------------------------------------------------


def pipeline_run(
    checkpoint: Path, options: FeatureOptions, footage: Footage, scratch: Path
) -> Callable[[], Sample]:
    """`extract_features` into a new output each time (removed after counting)."""
    calls = iter(range(1_000_000))

    def run() -> Sample:
        out = scratch / f"out-{next(calls)}"
        device = torch.device(options.device or "cpu")
        seconds = timed(device, lambda: extract_features(checkpoint, out, options))
        features = written_features(out, options.format, footage.video_ids)
        shutil.rmtree(out)
        return Sample(seconds, features)

    return run


def reading_run(plan: Plan, batch: int) -> Callable[[], Sample]:
    """The pipeline's views of every window, read in this process without the model, on
    one torch thread as in a DataLoader worker (on a busy machine two threads can wait
    on each other for whole time slices in every small copy)."""

    def run() -> Sample:
        views = 0

        def read() -> None:
            nonlocal views
            for item in ViewBatches(plan.jobs, plan.settings, batch, timeline=plan.timeline):
                views += len(item.views)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return Sample(timed(torch.device("cpu"), read), views)
        finally:
            torch.set_num_threads(threads)

    return run


def pipeline_batch(
    plan: Plan, config: dict[str, Any], batch: int, device: torch.device
) -> torch.Tensor:
    """The first `batch` views of `plan` (fewer if it has fewer), stacked and normalised on
    `device` as the pipeline does it: [B, 8, 3, 224, 224] float32 in the pipeline's memory
    layout (the CPU's convolutions run a channels-last batch at another speed than a
    contiguous one; `torch.stack` keeps the views' layout where `torch.cat` would not)."""
    views: list[torch.Tensor] = []
    for item in ViewBatches(plan.jobs, plan.settings, batch, timeline=plan.timeline):
        views.extend(item.views.unbind(0))
        if len(views) >= batch:
            break
    data = parse_data_config(dict(config.get("data", {})))
    module = EpicDataModule(data, modality=plan.modality, batch_size=batch)
    return module.normalize(torch.stack(views[:batch]).to(device))


def model_run(model: VideoModel, frames: torch.Tensor, amp: bool) -> Callable[[], Sample]:
    """`pooled_features` of one preloaded, normalised batch."""
    device = frames.device
    autocast = (
        torch.autocast("cuda", dtype=torch.float16)
        if device.type == "cuda" and amp
        else contextlib.nullcontext()
    )

    def forward() -> None:
        with torch.inference_mode(), autocast:
            model.pooled_features(frames).float().cpu()

    def run() -> Sample:
        return Sample(timed(device, forward), len(frames))

    return run


def load_run(checkpoint: Path) -> Callable[[], Sample]:
    """What `extract_features` does before reading: load the model, hash the file."""

    def load() -> None:
        load_checkpoint(checkpoint)
        file_digest(checkpoint)

    def run() -> Sample:
        return Sample(timed(torch.device("cpu"), load), 0)

    return run


# --- report -----------------------------------------------------------------------------------


def rate(sample: Sample) -> float:
    return sample.items / sample.seconds


def number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-amp", dest="amp", action="store_false",
                        help="on CUDA, float32 instead of float16 autocast")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=0.5, help="about, per video")
    parser.add_argument("--videos", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader processes (one per video at most)")  # fmt: skip
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=["rulstm-lmdb"])
    args = parser.parse_args()
    device = torch.device(args.device)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_features_") as temp:
        folder = Path(temp)
        start = time.perf_counter()
        checkpoint = published_tsm_checkpoint(folder / "tsm_rgb.ckpt")
        footage = make_footage(folder, args.seconds, args.videos)
        print(f"checkpoint and footage written in {time.perf_counter() - start:.0f} s")
        rows, baseline, shape = measure(args, device, checkpoint, footage, folder)
    describe(args, device, footage, load_before)
    print_table(args, device, rows, baseline, shape)


def measure(
    args: argparse.Namespace, device: torch.device, checkpoint: Path, footage: Footage,
    folder: Path,
) -> tuple[dict[str, list[Sample]], list[Sample], list[int]]:  # fmt: skip
    """Samples of every run, the runs alternating; the model-alone run once per repeat,
    after the first pipeline run."""
    model, config = load_checkpoint(checkpoint)
    model = model.eval().to(device)
    runs: dict[str, Callable[[], Sample]] = {"model load": load_run(checkpoint)}
    plans = []
    for format in args.formats:
        for source in SOURCES:
            options = FeatureOptions(
                format=format, videos=footage.video_ids, batch_size=args.batch,
                workers=args.workers, device=args.device, amp=args.amp, progress=False,
                frames_dir=footage.frames_dir if source == "tar" else None,
                videos_dir=footage.videos_dir if source == "MP4" else None,
            )  # fmt: skip
            plan = make_plan(checkpoint, model, config, options)
            plans.append(plan)
            runs[f"reading alone, {format}, {source}"] = reading_run(plan, args.batch)
            runs[f"{format}, {source}"] = pipeline_run(checkpoint, options, footage, folder)
    # warm-up: the reads (tar indexes, page cache) and one forward pass
    for name, run in runs.items():
        if name.startswith("reading"):
            run()
    frames = pipeline_batch(plans[0], config, args.batch, device)
    baseline_run = model_run(model, frames, args.amp)
    model_run(model, frames[:1], args.amp)()
    samples: dict[str, list[Sample]] = {name: [] for name in runs}
    baseline: list[Sample] = []
    for repeat in range(args.repeats):
        for index, (name, run) in enumerate(runs.items()):
            samples[name].append(run())
            show(repeat, name, samples[name][-1])
            if index == 2:  # after the first pipeline run
                baseline.append(baseline_run())
                show(repeat, "model alone", baseline[-1])
    return samples, baseline, list(frames.shape)


def show(repeat: int, name: str, sample: Sample) -> None:
    print(f"  repeat {repeat + 1}: {name}: {sample.items} in {sample.seconds:.2f} s", flush=True)


def describe(
    args: argparse.Namespace, device: torch.device, footage: Footage, load_before: float
) -> None:
    seconds = ", ".join(f"{count / VIDEO_FPS:.2f}" for count in footage.frame_counts)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"\ndevice: {name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{os.cpu_count()} cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(
        f"footage: {len(footage.video_ids)} video(s) of {seconds} s, 456x256 at {VIDEO_FPS} fps; "
        f"batch {args.batch}, {min(args.workers, len(footage.video_ids))} DataLoader "
        f"worker(s); {'float16 autocast' if device.type == 'cuda' and args.amp else 'float32'}; "
        f"medians of {args.repeats}"
    )


def print_table(
    args: argparse.Namespace,
    device: torch.device,
    samples: dict[str, list[Sample]],
    baseline: list[Sample],
    shape: list[int],
) -> None:
    load = samples["model load"]
    base_rate = statistics.median(rate(s) for s in baseline)
    print(f"\n| TSM-ResNet50 RGB, {device.type}, batch {args.batch} | features | s per call "
          "| features/s | features/s without model load | / model alone |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print(f"| model alone, a pipeline batch preloaded {shape} "
          f"| {baseline[0].items} | {number(statistics.median(s.seconds for s in baseline))} "
          f"| {number(base_rate)} | | 1 |")  # fmt: skip
    for format in args.formats:
        for source in SOURCES:
            runs = samples[f"{format}, {source}"]
            net = [s.items / (s.seconds - lo.seconds) for s, lo in zip(runs, load, strict=True)]
            ratios = [rate(s) / rate(b) for s, b in zip(runs, baseline, strict=True)]
            print(f"| `{format}` from {source} | {runs[0].items} "
                  f"| {number(statistics.median(s.seconds for s in runs))} "
                  f"| {number(statistics.median(rate(s) for s in runs))} "
                  f"| {number(statistics.median(net))} "
                  f"| {statistics.median(ratios):.2f} |")  # fmt: skip
    for format in args.formats:
        for source in SOURCES:
            runs = samples[f"reading alone, {format}, {source}"]
            ratios = [rate(s) / rate(b) for s, b in zip(runs, baseline, strict=True)]
            print(f"| reading alone (views, no model), `{format}` windows from {source} "
                  f"| {runs[0].items} | {number(statistics.median(s.seconds for s in runs))} "
                  f"| {number(statistics.median(rate(s) for s in runs))} | "
                  f"| {statistics.median(ratios):.1f} |")  # fmt: skip
    print(f"| model load (`load_checkpoint` + sha256 of the file), in every call | "
          f"| {number(statistics.median(s.seconds for s in load))} | | | |")  # fmt: skip


if __name__ == "__main__":
    main()
