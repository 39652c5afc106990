"""`epic-ar gulp`: store the frames of every annotated segment in a gulp directory.

Crash safety and resumption rest on one rule: chunk i always holds the segments
[i * k, (i + 1) * k) of the annotation file (k = segments per chunk, minus skipped ones),
and becomes visible only when complete (see `writer.write_chunk`). A re-run with the same
inputs therefore only writes the chunks that are missing, and the finished directory is the
same whether or not the job was interrupted. A manifest file records the job's inputs so a
re-run with different ones is refused instead of mixing two jobs.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from epic_ar.annotations.labels import read_annotations
from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.gulp.format import committed_chunks, remove_stale_temp_files
from epic_ar.gulp.segments import BadSegmentError, VideoCache, read_segment
from epic_ar.gulp.writer import GulpSegment, write_chunk
from epic_ar.progress import Progress

LOG = logging.getLogger(__name__)
MANIFEST_NAME = ".epic_ar_gulp.json"
SKIPPED_NAME = "skipped.csv"
LABEL_COLUMNS = ("participant_id", "video_id", "start_frame", "stop_frame")
MODALITIES = ("rgb", "flow")


@dataclass(frozen=True)
class GulpJob:
    """What `epic-ar gulp` was asked to do."""

    frames_root: Path
    out_dir: Path
    labels_path: Path
    modality: str
    frame_size: int = -1
    segments_per_chunk: int = 100
    workers: int = 1
    skip_bad_segments: bool = False


@dataclass
class GulpSummary:
    """What a run did: segments/frames processed now, all skips, chunks done before."""

    segments_processed: int
    frames_written: int
    skipped: list[tuple[str, str]]
    chunks_total: int
    chunks_already_done: int
    seconds: float


def _skipped_sidecar(out_dir: Path, chunk: int) -> Path:
    return out_dir / f".skipped_{chunk}.json"


def _manifest(job: GulpJob, rows: list[dict[str, Any]]) -> dict[str, Any]:
    # The identity of the job's output: which segments, which frames, how they are stored.
    segments = orjson.dumps(
        [[r["narration_id"], r["video_id"], r["start_frame"], r["stop_frame"]] for r in rows],
        default=str,
    )
    return {
        "format": "gulpio2",
        "modality": job.modality,
        "frame_size": job.frame_size,
        "segments_per_chunk": job.segments_per_chunk,
        "segments": len(rows),
        "segments_sha256": hashlib.sha256(segments).hexdigest(),
    }


def _check_or_write_manifest(job: GulpJob, manifest: dict[str, Any]) -> None:
    path = job.out_dir / MANIFEST_NAME
    if path.is_file():
        existing = orjson.loads(path.read_bytes())
        if existing != manifest:
            changed = [k for k in manifest if existing.get(k) != manifest[k]]
            raise EpicArError(
                f"{job.out_dir}: holds a gulp job with other inputs (differs in "
                f"{', '.join(changed)}); use a new output directory"
            )
        return
    if committed_chunks(job.out_dir):
        raise EpicArError(
            f"{job.out_dir}: already holds gulp chunks not written by this job; "
            "use a new output directory"
        )
    job.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(path, force=True) as tmp:
        tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def load_rows(labels_path: Path) -> list[dict[str, Any]]:
    """Annotation rows as dicts, in file order, `narration_id` included."""
    labels = read_annotations(labels_path, required_columns=LABEL_COLUMNS)
    rows: list[dict[str, Any]] = labels.reset_index().to_dict(orient="records")
    return rows


SegmentDone = Callable[[int, int], None]  # (segments, frames) just processed


def gulp_chunk(
    job: GulpJob, chunk: int, rows: list[dict[str, Any]], on_segment: SegmentDone | None = None
) -> int:
    """Read, check and write the segments of one chunk; returns the frames written."""
    videos = VideoCache(job.frames_root, job.modality)
    segments: list[GulpSegment] = []
    skipped: list[list[str]] = []
    try:
        for row in rows:
            frames = 0
            try:
                segment = read_segment(
                    row, videos, modality=job.modality, frame_size=job.frame_size
                )
                segments.append(segment)
                frames = len(segment.jpegs)
            except BadSegmentError as exc:
                if not job.skip_bad_segments:
                    raise
                skipped.append([str(row["narration_id"]), str(exc)])
            if on_segment is not None:
                on_segment(1, frames)
    finally:
        videos.close()  # one process may write hundreds of chunks: do not leak descriptors
    sidecar = _skipped_sidecar(job.out_dir, chunk)
    if skipped:  # written before the chunk commits, so a committed chunk always has it
        with atomic_write_path(sidecar, force=True) as tmp:
            tmp.write_bytes(orjson.dumps(skipped))
    else:
        sidecar.unlink(missing_ok=True)
    return write_chunk(job.out_dir, chunk, segments)


_PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>
# The worker processes' channel for progress messages, set by the pool's initializer.
_progress_queue: Any = None


def _init_worker(queue: Any) -> None:
    global _progress_queue  # noqa: PLW0603 - per-process state of the worker pool
    _progress_queue = queue
    # A worker must never outlive a killed parent: at exit it would wait forever to flush
    # progress messages nobody reads, and it would go on gulping meanwhile. Chunks are
    # committed by rename, so dying mid-chunk leaves only a temp file the next run removes.
    queue.cancel_join_thread()
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    spawner = multiprocessing.parent_process()
    parent = spawner.pid if spawner is not None else os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - unusual C libraries
        return
    if os.getppid() != parent:  # the parent died before prctl took effect (or at start-up)
        os._exit(1)


def _report_to_parent(segments: int, frames: int) -> None:
    _progress_queue.put((segments, frames))


def _gulp_chunk_in_worker(job: GulpJob, chunk: int, rows: list[dict[str, Any]]) -> int:
    return gulp_chunk(job, chunk, rows, _report_to_parent)


def _run_in_workers(
    job: GulpJob, tasks: dict[int, list[dict[str, Any]]], progress: Progress
) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with ProcessPoolExecutor(
        max_workers=job.workers, mp_context=context, initializer=_init_worker, initargs=(queue,)
    ) as pool:
        pending: set[Future[int]] = {
            pool.submit(_gulp_chunk_in_worker, job, chunk, rows) for chunk, rows in tasks.items()
        }
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            while not queue.empty():
                progress.update(*queue.get())
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                pool.shutdown(wait=False, cancel_futures=True)
                raise failed.exception()  # type: ignore[misc]


def collect_skipped(out_dir: Path, chunks: int) -> list[tuple[str, str]]:
    skipped: list[tuple[str, str]] = []
    for chunk in range(chunks):
        sidecar = _skipped_sidecar(out_dir, chunk)
        if sidecar.is_file():
            skipped += [(nid, reason) for nid, reason in orjson.loads(sidecar.read_bytes())]
    return skipped


def run_gulp(job: GulpJob) -> GulpSummary:
    """Gulp the segments of `job.labels_path`, resuming where an earlier run stopped."""
    if job.modality not in MODALITIES:
        raise EpicArError(f"unknown modality {job.modality!r}; choose rgb or flow")
    if job.segments_per_chunk < 1 or job.workers < 1:
        raise EpicArError("--segments-per-chunk and -j must be at least 1")
    if not job.frames_root.is_dir():
        raise EpicArError(f"{job.frames_root}: no such directory (FRAMES)")
    rows = load_rows(job.labels_path)
    if not rows:
        raise EpicArError(f"{job.labels_path}: no segments")
    _check_or_write_manifest(job, _manifest(job, rows))
    remove_stale_temp_files(job.out_dir)
    k = job.segments_per_chunk
    plan = {chunk: rows[chunk * k : (chunk + 1) * k] for chunk in range((len(rows) + k - 1) // k)}
    done = set(committed_chunks(job.out_dir)) & set(plan)
    tasks = {chunk: chunk_rows for chunk, chunk_rows in plan.items() if chunk not in done}
    progress = Progress(f"gulp {job.modality}", sum(len(r) for r in tasks.values()))
    if tasks:
        if done:
            LOG.info("resuming: %d of %d chunks already complete", len(done), len(plan))
        if job.workers == 1 or len(tasks) == 1:
            for chunk, chunk_rows in tasks.items():
                gulp_chunk(job, chunk, chunk_rows, progress.update)
        else:
            _run_in_workers(job, tasks, progress)
        progress.close()
    skipped = collect_skipped(job.out_dir, len(plan))
    if job.skip_bad_segments:
        table = pd.DataFrame(skipped, columns=["narration_id", "reason"])
        with atomic_write_path(job.out_dir / SKIPPED_NAME, force=True) as tmp:
            table.to_csv(tmp, index=False)
    return GulpSummary(
        segments_processed=progress.done,
        frames_written=progress.extra,
        skipped=skipped,
        chunks_total=len(plan),
        chunks_already_done=len(done),
        seconds=progress.elapsed,
    )
