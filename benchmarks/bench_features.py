"""Features/s of `epic-ar features` for TSM-ResNet50 RGB, against the model alone; and for
TSN-ResNet50 RGB with its snippet cache on and off.

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
  sha256, which the output records), to subtract from the pipeline's wall time;
- TSN (on by default; `--no-tsn` leaves it out): `extract_features` in rulstm-lmdb from
  tar as shipped, where each snippet of a video goes through the backbone once however
  many windows sample it (a window's feature is the mean of its snippets'), and the same
  with that cache off (`epic_ar.features.extract.SNIPPET_MODELS` patched to `()` for that
  run only): every window's 8 frames through the backbone, the per-window computation TSM
  needs. The two outputs must hold the same keys and values within 1e-4 (the maximum
  difference is printed); the ratio is the median of the per-repeat ratios.

Checkpoints: the published TSM-RGB and TSN-RGB configs (ResNet-50, 8 frames, 224 crops of
frames rescaled to 256) with random weights, in the published file layout. Footage:
`epic_ar.synthetic.dataset` videos at the released 456x256, 2018 ids (P01_01, ...; 60
fps), written as official tar archives of JPEGs and as H.264 MP4s of the same frames. Its
frames (a smooth background, one small moving object) decode faster than camera footage,
so the reading rates are upper bounds. `--seconds` is approximate (the generator places
segments of whole frames); the "footage" line above the table gives the lengths made.

    .venv/bin/python benchmarks/bench_features.py [--device cpu|cuda] [--seconds 0.5]
        [--videos 1] [--repeats 3] [--batch 8] [--workers N] [--formats rulstm-lmdb ...]
        [--no-tsn]

The defaults (0.53 s of video: 16 RULSTM features per call) fit a 2-core CPU in about 3
minutes (longer when it is busy). On a GPU (not measured yet):

    .venv/bin/python benchmarks/bench_features.py --device cuda --seconds 20 --videos 8 \\
        --workers 8 --batch 32 --formats rulstm-lmdb actionformer
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench_features_runs import (
    FORMATS,
    SAME_WITHIN,
    SOURCES,
    TSN_RUNS,
    VIDEO_FPS,
    Footage,
    Sample,
    TsnCheck,
    backbone_inputs,
    largest_difference,
    load_run,
    make_footage,
    model_run,
    pipeline_batch,
    pipeline_run,
    published_checkpoint,
    reading_run,
    tsn_runs,
)
from epic_ar.features.extract import FeatureOptions, make_plan
from epic_ar.models.checkpoint import load_checkpoint

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
    parser.add_argument("--no-tsn", dest="tsn", action="store_false",
                        help="leave out TSN with its snippet cache on and off")  # fmt: skip
    args = parser.parse_args()
    device = torch.device(args.device)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_features_") as temp:
        folder = Path(temp)
        start = time.perf_counter()
        checkpoint = published_checkpoint(folder / "tsm_rgb.ckpt", "tsm_rgb")
        if args.tsn:
            published_checkpoint(folder / "tsn_rgb.ckpt", "tsn_rgb")
        footage = make_footage(folder, args.seconds, args.videos)
        print(f"checkpoints and footage written in {time.perf_counter() - start:.0f} s")
        rows, baseline, shape, tsn = measure(args, device, checkpoint, footage, folder)
    describe(args, device, footage, load_before)
    print_table(args, device, rows, baseline, shape)
    if tsn is not None:
        print_tsn_table(args, device, rows, tsn)


def measure(
    args: argparse.Namespace, device: torch.device, checkpoint: Path, footage: Footage,
    folder: Path,
) -> tuple[dict[str, list[Sample]], list[Sample], list[int], TsnCheck | None]:  # fmt: skip
    """Samples of every run, the runs alternating; the model-alone run once per repeat,
    after the first pipeline run; the TSN runs (`folder / "tsn_rgb.ckpt"`) last."""
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
    outputs: tuple[list[dict[bytes, np.ndarray]], list[dict[bytes, np.ndarray]]] = ([], [])
    snippets = (0, 0)
    if args.tsn:  # rulstm-lmdb from tar
        tsn_options = FeatureOptions(
            format="rulstm-lmdb", videos=footage.video_ids, batch_size=args.batch,
            workers=args.workers, device=args.device, amp=args.amp, progress=False,
            frames_dir=footage.frames_dir,
        )  # fmt: skip
        tsn_checkpoint = folder / "tsn_rgb.ckpt"
        runs.update(tsn_runs(tsn_checkpoint, tsn_options, footage, folder, outputs))
        # also the TSN reads' warm-up
        snippets = backbone_inputs(tsn_checkpoint, tsn_options, args.batch)
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
    tsn = TsnCheck(largest_difference(outputs), snippets) if args.tsn else None
    return samples, baseline, list(frames.shape), tsn


def show(repeat: int, name: str, sample: Sample) -> None:
    print(f"  repeat {repeat + 1}: {name}: {sample.items} in {sample.seconds:.2f} s", flush=True)


def print_tsn_table(
    args: argparse.Namespace, device: torch.device, samples: dict[str, list[Sample]], tsn: TsnCheck
) -> None:
    load, on, off = (samples[name] for name in TSN_RUNS)
    print(f"\n| TSN-ResNet50 RGB, {device.type}, batch {args.batch}, `rulstm-lmdb` from tar "
          "| features | snippets through the backbone | s per call | features/s "
          "| features/s without model load | / cache off |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    names = ("snippet cache on (as shipped)", "snippet cache off (every window's 8 frames)")
    for name, runs, snippets in zip(names, (on, off), tsn.snippets, strict=True):
        net = [s.items / (s.seconds - lo.seconds) for s, lo in zip(runs, load, strict=True)]
        ratios = [rate(s) / rate(o) for s, o in zip(runs, off, strict=True)]
        print(f"| {name} | {runs[0].items} | {snippets} "
              f"| {number(statistics.median(s.seconds for s in runs))} "
              f"| {number(statistics.median(rate(s) for s in runs))} "
              f"| {number(statistics.median(net))} "
              f"| {statistics.median(ratios):.2f} |")  # fmt: skip
    print(f"| model load (`load_checkpoint` + sha256 of the file), in every call | | "
          f"| {number(statistics.median(s.seconds for s in load))} | | | |")  # fmt: skip
    print(f"\nTSN outputs, snippet cache on against off: the same keys; largest difference "
          f"{tsn.difference:.3g} over every value of every repeat "
          f"(allowed: {SAME_WITHIN:g})")  # fmt: skip


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
