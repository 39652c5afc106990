"""Inputs and timed runs of `bench_features.py` (see its docstring): the published
checkpoints with random weights, synthetic footage, and each run as a callable returning
a `Sample` (seconds, items)."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import lmdb
import numpy as np
import torch

from epic_ar.compat.lightning_config import current_config
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.errors import EpicArError
from epic_ar.features import extract
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
TSN_RUNS = ("TSN model load", "TSN, snippet cache on", "TSN, snippet cache off")
SAME_WITHIN = 1e-4  # the cache changes only how the backbone's inputs are batched


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


@dataclass(frozen=True)
class TsnCheck:
    difference: float  # the largest |cache on - cache off| in the outputs
    snippets: tuple[int, int]  # through the backbone per call: cache on, cache off


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


def published_checkpoint(path: Path, name: str, seed: int = 0) -> Path:
    """A published checkpoint's layout and config (`name`: "tsm_rgb", "tsn_rgb": ResNet-50,
    8 frames, input 224, rescale 256) with random weights: no pretrained download."""
    config = json.loads(HYPER_PARAMETERS.read_text())[name]
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


def lmdb_rows(out: Path) -> dict[bytes, np.ndarray]:
    """Every key of an LMDB output -> its value as float32 (the features' encoding;
    the settings and markers are compared as bytes through it too)."""
    env = lmdb.open(str(out), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {
                key: np.frombuffer(value, dtype=np.uint8 if key.startswith(b"__") else np.float32)
                for key, value in txn.cursor()
            }
    finally:
        env.close()


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
    checkpoint: Path,
    options: FeatureOptions,
    footage: Footage,
    scratch: Path,
    outputs: list[dict[bytes, np.ndarray]] | None = None,
) -> Callable[[], Sample]:
    """`extract_features` into a new output each time (removed after counting; an LMDB
    output's rows appended to `outputs` first when given)."""
    calls = iter(range(1_000_000))

    def run() -> Sample:
        out = scratch / f"out-{checkpoint.stem}-{next(calls)}"
        device = torch.device(options.device or "cpu")
        seconds = timed(device, lambda: extract_features(checkpoint, out, options))
        features = written_features(out, options.format, footage.video_ids)
        if outputs is not None:
            outputs.append(lmdb_rows(out))
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


def tsn_runs(
    checkpoint: Path,
    options: FeatureOptions,
    footage: Footage,
    scratch: Path,
    outputs: tuple[list[dict[bytes, np.ndarray]], list[dict[bytes, np.ndarray]]],
) -> dict[str, Callable[[], Sample]]:
    """`TSN_RUNS`: the model load; `extract_features` as shipped; and the same with the
    snippet cache off, each window's frames through the backbone (TSM's computation).
    Their outputs go to `outputs` (cache on, cache off) to be compared."""
    cache_on = pipeline_run(checkpoint, options, footage, scratch, outputs[0])
    per_window = pipeline_run(checkpoint, options, footage, scratch, outputs[1])

    def cache_off() -> Sample:
        with mock.patch.object(extract, "SNIPPET_MODELS", ()):
            return per_window()

    return dict(zip(TSN_RUNS, (load_run(checkpoint), cache_on, cache_off), strict=True))


def backbone_inputs(checkpoint: Path, options: FeatureOptions, batch: int) -> tuple[int, int]:
    """Snippets a call puts through the backbone with the cache on (each once per video)
    and off (T per window), counted in the views the pipeline reads (no model run)."""
    model, config = load_checkpoint(checkpoint)
    plan = make_plan(checkpoint, model, config, options)
    counts = []
    for snippets in (True, False):  # views: [u, C, S, S] snippets, or [b, T, C, S, S]
        batches = ViewBatches(
            plan.jobs, plan.settings, batch, timeline=plan.timeline, snippets=snippets
        )
        dims = 1 if snippets else 2
        counts.append(sum(int(np.prod(item.views.shape[:dims])) for item in batches))
    return counts[0], counts[1]


def largest_difference(
    outputs: tuple[list[dict[bytes, np.ndarray]], list[dict[bytes, np.ndarray]]],
) -> float:
    """The largest |cache on - cache off| over every value of every repeat's two outputs.

    Raises:
        SystemExit: keys that differ, or a difference over `SAME_WITHIN`.
    """
    largest = 0.0
    for on, off in zip(*outputs, strict=True):
        if on.keys() != off.keys():
            raise SystemExit(f"TSN: the outputs differ in keys {sorted(on.keys() ^ off.keys())}")
        for key, value in on.items():
            if value.shape != off[key].shape:
                raise SystemExit(f"TSN: {key!r} holds {value.shape} and {off[key].shape}")
            difference = np.abs(value.astype(np.float64) - off[key].astype(np.float64))
            largest = max(largest, float(difference.max(initial=0.0)))
    if largest > SAME_WITHIN:
        raise SystemExit(f"TSN: cache on and off differ by up to {largest:.3g} > {SAME_WITHIN:g}")
    return largest
