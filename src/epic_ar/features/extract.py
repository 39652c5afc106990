"""`features`: a model's pooled backbone features of whole videos on a timeline (RULSTM's
LMDB, ActionFormer's npz files) or of annotated segments, written one video at a time.

The feature of a window or segment is `VideoModel.pooled_features` of its test views (the
test-mode sampler with the checkpoint's frame count, the checkpoint's test transform and
normalisation, as `epic-ar test` scores a segment), averaged over the views: 2,048 values
for a ResNet-50. TSN averages over the snippets, TSM over the last stage's time steps, TRN
over the per-frame backbone features (its relation module is left out).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from epic_ar.data.config import DataConfig
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.dataset import SegmentDataset
from epic_ar.data.segment_sources import is_gulp_directory
from epic_ar.data.views import ViewSettings, config_view_settings
from epic_ar.errors import EpicArError, Parameter
from epic_ar.features.jobs import (
    SnippetKey,
    Timeline,
    TimelineKind,
    VideoJob,
    ViewBatch,
    ViewBatches,
)
from epic_ar.features.videos import open_videos, video_ids_of_labels
from epic_ar.features.writers import FeatureFormat, FeatureWriter
from epic_ar.modality import Modality, config_modality
from epic_ar.models.video_model import VideoModel
from epic_ar.prediction.predict import choose_device
from epic_ar.training.run_config import parse_data_config
from epic_ar.training.scoring import ScoringOptions, test_dataset, with_frame_source

# Models whose feature is the mean of per-snippet features: on a timeline, each snippet goes
# through the backbone once, however many windows sample it.
SNIPPET_MODELS = ("TSN", "MTRN")
Report = Callable[[int, int], None]  # (videos finished, source frames read) since the last call


@dataclass(frozen=True)
class FeatureOptions:
    """What `features` computes and from where.

    Source: `frames_dir` (any layout `gulp` reads, tar archives included) or `videos_dir`
    (`DIR/P01/videos/P01_01.MP4`, RGB only) with `videos` (ids) or `labels` (every video
    of an annotation file; for "segments", its segments); "segments" also reads a gulp
    directory `data_dir`. `timeline_fps`: RULSTM/ActionFormer timeline rate (None: 30).
    `window_sec`: RULSTM's window before each time step (None: 1.0 s). `stride`, `clip`:
    ActionFormer's, in timeline frames (None: 16, 32). `frame_count`: snippets per window or
    segment (TSN only; None: the checkpoint's `data.frame_count`). `batch_size`: windows or
    segments per forward pass. `workers`: DataLoader processes reading frames (videos are
    shared out whole).
    `device`: "cpu", "cuda", "cuda:1" (None: cuda when available); `amp`: float16
    autocast on CUDA. `devices`: processes, each with its share of the videos (on CUDA one
    GPU each). `force`: start the output again. `cache_dir`, `url`, `trust`: as `predict`.
    """

    format: FeatureFormat
    frames_dir: Path | None = None
    videos_dir: Path | None = None
    data_dir: Path | None = None
    videos: tuple[str, ...] = ()
    labels: Path | None = None
    timeline_fps: float | None = None  # None: the defaults of `Timeline`
    window_sec: float | None = None
    stride: int | None = None
    clip: int | None = None
    frame_count: int | None = None
    batch_size: int = 8
    workers: int = 2
    device: str | None = None
    amp: bool = True
    devices: int = 1
    force: bool = False
    progress: bool = True
    trust: bool = False
    url: str | None = None
    cache_dir: Path | None = None


@dataclass(frozen=True)
class Plan:
    """Everything a process needs to compute its share: the model's views, the jobs."""

    data: DataConfig  # the checkpoint's, without its participant or segment limits
    settings: ViewSettings
    modality: Modality
    jobs: list[VideoJob]
    timeline: Timeline | None
    dataset: SegmentDataset | None
    narration_ids: tuple[str, ...]  # segments: the output's order
    record: dict[str, Any]  # stored with the output; a resumed run must match it


def timeline_of(options: FeatureOptions) -> Timeline | None:
    if options.format == "segments":
        return None
    kind: TimelineKind = "rulstm" if options.format == "rulstm-lmdb" else "actionformer"
    default = Timeline(kind)

    def chosen(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    return Timeline(
        kind,
        fps=chosen(options.timeline_fps, default.fps),
        window_sec=chosen(options.window_sec, default.window_sec),
        stride=chosen(options.stride, default.stride),
        clip=chosen(options.clip, default.clip),
    )


def file_digest(path: Path) -> str:
    """sha256 of a file (a checkpoint: the same weights resume the same output)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_plan(
    checkpoint: Path, model: VideoModel, config: dict[str, Any], options: FeatureOptions
) -> Plan:
    """The views, jobs and record of a run of `model` (loaded from `checkpoint`)."""
    modality = config_modality(config.get("modality", "RGB"), "config: modality")
    data = parse_data_config(dict(config.get("data", {})))
    data = replace(data, participants=None, max_segments=None)
    frame_count = options.frame_count or data.frame_count
    model.set_frame_count(frame_count)
    settings = config_view_settings(data, modality=modality, frame_count=frame_count)
    timeline = timeline_of(options)
    record: dict[str, Any] = {
        "format": options.format,
        "checkpoint_sha256": file_digest(checkpoint),
        "modality": modality,
        "model_type": model.config.type,
        "feature_size": model.feature_size,
        "frame_count": frame_count,
        "snippet_length": settings.snippet_length,
        "source": source_kind(options),
    }
    if timeline is None:
        dataset, jobs, ids = segment_jobs(data, modality, frame_count, options)
        # other segments (labels, frames) make another file: never merge parts of both
        record["segments_sha256"] = segments_digest(dataset, options)
        return Plan(data, settings, modality, jobs, None, dataset, ids, record)
    video_ids = list(options.videos) or video_ids_of_labels(_required(options.labels))
    sources = open_videos(
        video_ids, modality, frames_dir=options.frames_dir, videos_dir=options.videos_dir
    )
    jobs = [VideoJob(source.video_id, source=source) for source in sources]
    if timeline.kind == "rulstm":
        record.update(timeline_fps=timeline.fps, window_sec=timeline.window_sec)
    else:  # the names ActionFormer's config uses
        record.update(feat_stride=timeline.stride, num_frames=timeline.clip,
                      default_fps=timeline.fps)  # fmt: skip
    return Plan(data, settings, modality, jobs, timeline, None, (), record)


def segments_digest(dataset: SegmentDataset, options: FeatureOptions) -> str:
    """sha256 of what a segments file holds features of: each segment's id, video and
    frame count, the label file's bytes and where the frames are read from."""
    digest = hashlib.sha256()
    table, rows = dataset.table, dataset.rows
    for name, video, count in zip(table.narration_id[rows], table.video_id[rows],
                                  table.num_frames[rows], strict=True):  # fmt: skip
        digest.update(f"{name}\t{video}\t{count}\n".encode())
    source = options.data_dir or options.frames_dir or options.videos_dir
    digest.update(str(Path(source).resolve() if source is not None else "").encode())
    if options.labels is not None:
        digest.update(file_digest(options.labels).encode())
    return digest.hexdigest()


def source_kind(options: FeatureOptions) -> str:
    """What frames are read: "videos" (MP4), "frames" (released JPEGs) or "gulp"."""
    if options.videos_dir is not None:
        return "videos"
    return "gulp" if options.data_dir is not None else "frames"


def _required(labels: Path | None) -> Path:
    if labels is None:
        raise EpicArError("give the videos (video ids, or a labels file naming them)")
    return labels


def segment_jobs(
    data: Any, modality: Modality, frame_count: int, options: FeatureOptions
) -> tuple[SegmentDataset, list[VideoJob], tuple[str, ...]]:
    """The test dataset of the segments, and one job per video of their indices.

    Raises:
        EpicArError: `options.data_dir` is not a gulp directory (a folder of several, such
            as the one holding `rgb_train` and `rgb_validation`, does not say which).
    """
    if options.data_dir is not None and not is_gulp_directory(options.data_dir):
        held = sorted(p.name for p in options.data_dir.glob("*") if is_gulp_directory(p))
        hint = f" (it holds {', '.join(held)}: give one of them)" if held else ""
        raise EpicArError(Parameter("data_dir", metavar="DIR"),
                          f": {options.data_dir} is not a gulp directory{hint}")  # fmt: skip
    scoring = ScoringOptions(
        split="val",
        frame_count=frame_count,
        data_dir=options.data_dir,
        frames_dir=options.frames_dir,
        videos_dir=options.videos_dir,
        labels=options.labels,
        batch_size=options.batch_size,
    )
    dataset = test_dataset(with_frame_source(data, modality, scoring), modality, scoring)
    videos = dataset.table.video_id[dataset.rows]
    names = dataset.table.narration_id[dataset.rows]
    jobs = []
    for video in dict.fromkeys(videos.tolist()):
        items = np.flatnonzero(videos == video)
        jobs.append(VideoJob(str(video), items=tuple(items.tolist()),
                             names=tuple(names[items].tolist())))  # fmt: skip
    return dataset, jobs, tuple(names.tolist())


def compute_features(
    model: VideoModel,
    plan: Plan,
    jobs: list[VideoJob],
    writer: FeatureWriter,
    options: FeatureOptions,
    report: Report | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Compute and commit the features of `jobs`, one whole video at a time; `stop`,
    asked before each batch, ends the run early (the reading workers shut down)."""
    module = EpicDataModule(plan.data, modality=plan.modality, batch_size=options.batch_size)
    device = choose_device(options.device)
    model = model.eval().to(device)
    autocast = (
        torch.autocast("cuda", dtype=torch.float16)
        if device.type == "cuda" and options.amp
        else contextlib.nullcontext()
    )
    batches = ViewBatches(
        jobs,
        plan.settings,
        options.batch_size,
        timeline=plan.timeline,
        dataset=plan.dataset,
        snippets=plan.timeline is not None and model.config.type in SNIPPET_MODELS,
    )
    workers = min(options.workers, len(jobs))
    loader = DataLoader(batches, batch_size=None, num_workers=workers,
                        pin_memory=device.type == "cuda")  # fmt: skip
    pending: dict[int, list[np.ndarray]] = {}
    snippets: dict[int, dict[SnippetKey, torch.Tensor]] = {}  # job -> features of its snippets
    for batch in loader:
        assert isinstance(batch, ViewBatch)
        if stop is not None and stop():
            return
        features = pending.setdefault(batch.job, [])
        views = batch.views.to(device, non_blocking=True)
        inputs = module.normalize(views) if len(views) else views.float()
        with torch.inference_mode(), autocast:
            if batch.windows:
                cache = snippets.setdefault(batch.job, {})
                if len(inputs):
                    computed = model.snippet_features(inputs).float()
                    cache.update(zip(batch.snippets, computed, strict=True))
                means = [
                    torch.stack([cache[key] for key in keys]).mean(0) for keys in batch.windows
                ]
                features.append(torch.stack(means).cpu().numpy())
                for key in [key for key in cache if key[0] < batch.keep_from]:
                    del cache[key]
            elif len(inputs):  # one view per window or segment (see ViewBatches)
                features.append(model.pooled_features(inputs).float().cpu().numpy())
        done = 0
        if batch.last:
            job = jobs[batch.job]
            chunks = pending.pop(batch.job)
            snippets.pop(batch.job, None)
            rows = np.concatenate(chunks) if chunks else np.zeros((0, model.feature_size))
            writer.commit(job.video_id, rows, list(job.names) if job.names else None)
            done = 1
        if report is not None:
            report(done, batch.frames)
