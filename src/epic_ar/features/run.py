"""A `features` run: check the request, open the output, skip the videos it holds already,
compute the others in this process or in several (one per device), finish the output."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from epic_ar.errors import EpicArError, Parameter
from epic_ar.features.extract import FeatureOptions, Plan, compute_features, make_plan
from epic_ar.features.timeline import check_timeline_settings
from epic_ar.features.writers import FeatureWriter, open_writer
from epic_ar.models import load_checkpoint
from epic_ar.prediction.predict import choose_device, resolve_checkpoint
from epic_ar.progress import Progress

FRAMES_DIR, VIDEOS_DIR = (
    Parameter("frames_dir", metavar="DIR"),
    Parameter("videos_dir", metavar="DIR"),
)
DATA_DIR, LABELS = Parameter("data_dir", metavar="DIR"), Parameter("labels", metavar="FILE")
VIDEOS = Parameter("videos", "videos=[...]", metavar="ID")
METAVARS = {"window_sec": "SEC", "timeline_fps": "FPS", "stride": "N", "clip": "N",
            "batch_size": "N", "devices": "N", "frame_count": "T"}  # fmt: skip
STOP_WAIT = 10.0  # seconds a stopped shard has to shut down before it is killed


@dataclass(frozen=True)
class FeatureRun:
    """What a run did: `videos` in the request, `skipped` already in `out`, the writer's
    one-line `summary`, and (ActionFormer) the config lines that read the features."""

    out: Path
    videos: int
    skipped: int
    summary: str
    config_lines: tuple[str, ...] = ()


def check_options(options: FeatureOptions) -> None:
    """Refuse requests that cannot run, before anything is loaded.

    Raises:
        EpicArError: naming the parameters.
    """
    sources = {FRAMES_DIR: options.frames_dir, VIDEOS_DIR: options.videos_dir,
               DATA_DIR: options.data_dir}  # fmt: skip
    given = [parameter for parameter, value in sources.items() if value is not None]
    if not given:
        raise EpicArError("give one of ", FRAMES_DIR, ", ", VIDEOS_DIR, " or (segments) ", DATA_DIR)
    if len(given) > 1:
        raise EpicArError("give one source of frames, not ", given[0], " and ", given[1])
    if options.data_dir is not None and options.labels is not None:
        raise EpicArError(DATA_DIR, " gives every segment of a gulp directory; ", LABELS,
                          " is for frames or videos")  # fmt: skip
    if options.data_dir is not None and options.format != "segments":
        raise EpicArError(DATA_DIR, " (a gulp directory holds segments, not whole videos) is "
                          "for format segments")  # fmt: skip
    _check_videos(options)
    _check_numbers(options)


def _check_videos(options: FeatureOptions) -> None:
    if options.format == "segments":
        if options.videos:
            raise EpicArError(VIDEOS, " is for the timeline formats; segments come from ", LABELS)
        if options.data_dir is None and options.labels is None:
            raise EpicArError("segments from frames or videos need the labels: ", LABELS)
    elif options.videos and options.labels is not None:
        raise EpicArError("give ", VIDEOS, " or ", LABELS, ", not both")
    elif not options.videos and options.labels is None:
        raise EpicArError("name the videos: ", VIDEOS, " or ", LABELS)


def _check_numbers(options: FeatureOptions) -> None:
    for name, formats in (("window_sec", ("rulstm-lmdb",)), ("stride", ("actionformer",)),
                          ("clip", ("actionformer",)),
                          ("timeline_fps", ("rulstm-lmdb", "actionformer"))):  # fmt: skip
        if getattr(options, name) is not None and options.format not in formats:
            raise EpicArError(Parameter(name, metavar=METAVARS[name]),
                              f" is for format {' and '.join(formats)}, "
                              f"not {options.format}")  # fmt: skip
    check_timeline_settings(timeline_fps=options.timeline_fps, window_sec=options.window_sec,
                            stride=options.stride, clip=options.clip)  # fmt: skip
    for name in ("batch_size", "devices", "frame_count"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise EpicArError(Parameter(name, metavar=METAVARS[name]), f": {value} is not >= 1")


def extract_features(model: str | Path, out: Path, options: FeatureOptions) -> FeatureRun:
    """Write the features of `model` (a checkpoint file or a published name) into `out` in
    `options.format`, skipping the videos `out` holds already (see `features.extract`).

    Raises:
        EpicArError: a bad model, source, video or option, or output that does not match.
    """
    check_options(options)
    choose_device(options.device)  # a machine without the device: not a usage error
    out = Path(out).absolute()  # summaries and ActionFormer's config name it in full
    checkpoint = resolve_checkpoint(
        model, url=options.url, cache_dir=options.cache_dir, allow_flow=True
    )
    network, config = load_checkpoint(checkpoint, trust=options.trust)
    plan = make_plan(checkpoint, network, config, options)
    created = not out.exists()
    writer = open_writer(options.format, out, plan.record, force=options.force)
    try:
        todo = [job for job in plan.jobs if not writer.finished(job.video_id)]
        progress = (Progress(f"features {out.name}", len(todo), unit="videos")
                    if options.progress and todo else None)  # fmt: skip

        def report(videos: int, frames: int) -> None:
            if progress is not None:
                progress.update(videos, frames)

        try:
            if options.devices > 1 and len(todo) > 1:
                run_shards(checkpoint, out, options, [job.video_id for job in todo], report)
            else:
                compute_features(network, plan, todo, writer, options, report)
        finally:
            if progress is not None:
                progress.close()
        writer.finish(list(plan.narration_ids) if options.format == "segments" else None)
    except BaseException:
        _close_after_failure(writer, created, [job.video_id for job in plan.jobs])
        raise
    return FeatureRun(
        out,
        len(plan.jobs),
        len(plan.jobs) - len(todo),
        writer.summary(),
        actionformer_config(out, plan) if options.format == "actionformer" else (),
    )


def _close_after_failure(writer: FeatureWriter, created: bool, video_ids: list[str]) -> None:
    """Close `writer`; remove its output when this run created it and finished no video
    (nothing to resume, so nothing is left behind)."""
    try:
        keep = not created or any(writer.finished(video_id) for video_id in video_ids)
    except EpicArError:
        keep = True
    writer.close()
    if not keep:
        if writer.out.is_dir():
            shutil.rmtree(writer.out, ignore_errors=True)
        else:
            writer.out.unlink(missing_ok=True)


def actionformer_config(out: Path, plan: Plan) -> tuple[str, ...]:
    """The lines of an ActionFormer config's `dataset` section that read these features."""
    record = plan.record
    return (
        "dataset:",
        f"  feat_folder: {out}",
        "  file_prefix: ~",
        "  file_ext: .npz",
        f"  input_dim: {record['feature_size']}",
        f"  feat_stride: {record['feat_stride']}",
        f"  num_frames: {record['num_frames']}",
        f"  default_fps: {record['default_fps']:g}",
    )


# ---------------------------------------------------------------------------------------------
# Several processes, one per device, each with every N-th video


def shard_device(options: FeatureOptions, shard: int) -> str:
    """The device of shard `shard`: the shard's GPU (round robin) on CUDA, else the CPU."""
    device = choose_device(options.device)
    if device.type != "cuda":
        return str(device)
    return f"cuda:{shard % max(1, torch.cuda.device_count())}"


def run_shards(
    checkpoint: Path,
    out: Path,
    options: FeatureOptions,
    video_ids: list[str],
    report: Any,
) -> None:
    """Compute the features of `video_ids` in `options.devices` spawned processes, video i
    in process i mod N, forwarding their progress to `report`.

    Raises:
        EpicArError: the first error a process met (the others are stopped).
    """
    count = min(options.devices, len(video_ids))
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    stop = context.Event()
    processes: list[Any] = []
    # Ctrl-C is the parent's to handle (it stops the shards): spawned shards inherit the
    # ignored SIGINT, so none of them prints a KeyboardInterrupt traceback of its own.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    # None from signal.signal: the handler was not set from Python; restore the default
    running = count
    try:
        try:
            _start_shards(context, processes, count, checkpoint, out, options, video_ids,
                          (messages, stop))  # fmt: skip
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        while running:
            try:
                kind, *values = messages.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    raise EpicArError("a features process ended without a word") from None
                continue
            if kind == "progress":
                report(*values)
            elif kind == "error":
                raise EpicArError(values[0])
            else:
                running -= 1
    finally:
        stop.set()
        _stop(processes, messages)


def _stop(processes: list[Any], messages: Any) -> None:
    """Wait for the shards, told to stop, to end after their current batch (shutting
    their reading workers down), reading what they still send so that none blocks on a
    full queue; kill any still there after `STOP_WAIT` seconds."""
    deadline = time.monotonic() + STOP_WAIT
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            messages.get(timeout=0.2)
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join()


def _shard_main(
    checkpoint: Path,
    out: Path,
    options: FeatureOptions,
    video_ids: tuple[str, ...],
    threads: int,
    channels: tuple[Any, Any],
) -> None:
    """One process's share (spawned): its videos, on its device. `channels`: the queue
    its progress and end go to, and the event that tells it to stop."""
    messages, stop = channels
    torch.set_num_threads(threads)
    if options.device is not None and options.device.startswith("cuda"):
        torch.cuda.set_device(options.device)  # pinned memory and kernels on its own GPU
    writer: FeatureWriter | None = None
    try:
        network, config = load_checkpoint(checkpoint, trust=options.trust)
        plan = make_plan(checkpoint, network, config, options)
        mine = set(video_ids)
        jobs = [job for job in plan.jobs if job.video_id in mine]
        writer = open_writer(options.format, out, plan.record)
        compute_features(
            network, plan, jobs, writer, options,
            lambda videos, frames: messages.put(("progress", videos, frames)), stop.is_set,
        )  # fmt: skip
        messages.put(("done",))
    except EpicArError as exc:
        messages.put(("error", str(exc)))
    except Exception as exc:
        messages.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if writer is not None:
            writer.close()


def _start_shards(
    context: Any,
    processes: list[Any],
    count: int,
    checkpoint: Path,
    out: Path,
    options: FeatureOptions,
    video_ids: list[str],
    channels: tuple[Any, Any],
) -> None:
    threads = max(1, (os.cpu_count() or 1) // count)
    for shard in range(count):
        shard_options = replace(
            options, videos=tuple(video_ids[shard::count]), labels=None, progress=False,
            device=shard_device(options, shard), force=False,
        )  # fmt: skip
        if options.format == "segments":  # a segment job is a video of the labels' segments
            shard_options = replace(shard_options, videos=(), labels=options.labels)
        args = (checkpoint, out, shard_options, tuple(video_ids[shard::count]), threads, channels)
        # not a daemon: a shard starts DataLoader workers of its own
        process = context.Process(target=_shard_main, args=args)
        process.start()
        processes.append(process)
