"""`epic-ar gulp`: store the frames of every annotated segment in a gulp directory.

Crash safety and resumption rest on one rule: chunk i always holds the segments
[i * k, (i + 1) * k) of the annotation file (k = segments per chunk, minus skipped ones),
and becomes visible only when complete (see `writer.write_chunk`). A re-run with the same
inputs therefore only writes the chunks that are missing, and the finished directory is the
same whether or not the job was interrupted. A manifest file records the job's inputs so a
re-run with different ones is refused instead of mixing two jobs; while no chunk is
complete there is nothing to mix, so a job that failed before its first chunk removes what
it wrote, and a manifest without chunks (left by a killed job) is simply replaced.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from epic_ar.annotations.flow_frames import flow_stride, holds_flow_frame_numbers
from epic_ar.annotations.labels import read_annotations
from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.fileio.paths import check_folder_writable, named_write_errors
from epic_ar.gulp.format import (
    DATA_PATTERN,
    MANIFEST_NAME,
    TEMP_PATTERN,
    committed_chunks,
    read_manifest,
    remove_stale_temp_files,
)
from epic_ar.gulp.segments import BadSegmentError, VideoCache, read_segment
from epic_ar.gulp.workers import run_in_workers
from epic_ar.gulp.writer import GulpRecord, write_chunk
from epic_ar.modality import MODALITIES, Modality
from epic_ar.progress import Progress

LOG = logging.getLogger(__name__)
SKIPPED_NAME = "skipped.csv"
LABEL_COLUMNS = ("participant_id", "video_id", "start_frame", "stop_frame")
MAX_FRAME_SIZE = 4096  # pixels; larger is a typing mistake that would exhaust memory


@dataclass(frozen=True)
class GulpJob:
    """What `epic-ar gulp` was asked to do."""

    frames_root: Path
    out_dir: Path
    labels_path: Path
    modality: Modality
    frame_size: int = -1
    segments_per_chunk: int = 100
    workers: int = 1
    skip_bad_segments: bool = False
    check_decodes: bool = True  # decode every frame copied unchanged (resized ones are)


@dataclass
class GulpSummary:
    """What a run did: segments seen and stored now, frames written now, all skips (this run
    and earlier ones), chunks done before."""

    segments_processed: int
    segments_stored: int
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
    existing = read_manifest(job.out_dir)
    if existing == manifest:
        return
    if committed_chunks(job.out_dir):
        if existing is None:
            raise EpicArError(
                f"{job.out_dir}: already holds gulp chunks not written by this job; "
                "use a new output directory"
            )
        changed = [k for k in manifest if existing.get(k) != manifest[k]]
        raise EpicArError(
            f"{job.out_dir}: holds a gulp job with other inputs (differs in "
            f"{', '.join(changed)}); use a new output directory"
        )
    if existing is None and job.out_dir.is_dir() and any(job.out_dir.iterdir()):
        raise EpicArError(
            f"{job.out_dir}: holds other files (not a gulp job's); give a new or empty folder"
        )
    if existing is not None:  # no chunk yet: nothing of that job to keep
        LOG.info("%s: replacing the manifest of a job that stored no chunk", job.out_dir)
        _remove_job_files(job.out_dir)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(path, force=True) as tmp:
        tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def _remove_job_files(out_dir: Path) -> None:
    """Remove what a job writes besides committed chunks (call only when there are none)."""
    if not out_dir.is_dir():
        return
    for path in out_dir.iterdir():
        name = path.name
        ours = (
            name == MANIFEST_NAME  # (skipped.csv is written once all chunks are)
            or (name.startswith(".skipped_") and name.endswith(".json"))
            or TEMP_PATTERN.match(name)
            or DATA_PATTERN.match(name)  # data files whose meta was never committed
        )
        if ours and path.is_file():
            path.unlink(missing_ok=True)


def _clean_up_failed_job(out_dir: Path, created: list[Path]) -> None:
    """After a failure: with no chunk complete, remove the job's files and the folders it
    created (the deepest first, each only if empty); otherwise keep all for a re-run."""
    if committed_chunks(out_dir):
        return
    _remove_job_files(out_dir)
    for folder in created:
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else's files) or already gone
            break


def _folders_to_create(folder: Path) -> list[Path]:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def load_rows(labels_path: Path, modality: Modality | None = None) -> list[dict[str, Any]]:
    """Annotation rows as dicts, in file order, `narration_id` included.

    Raises:
        EpicArError: see `read_annotations`; for `modality` "rgb", the file holds flow
            frame numbers (was converted by `convert-flow-idxs`).
    """
    labels = read_annotations(labels_path, required_columns=LABEL_COLUMNS)
    if modality == "rgb" and holds_flow_frame_numbers(labels):
        raise EpicArError(
            f"{labels_path}: holds flow frame numbers (converted for flow); gulp RGB frames "
            "with the annotations that hold RGB frame numbers"
        )
    if modality == "flow" and not holds_flow_frame_numbers(labels):
        _warn_if_numbers_may_be_rgb(labels_path, labels)
    rows: list[dict[str, Any]] = labels.reset_index().to_dict(orient="records")
    return rows


def _warn_if_numbers_may_be_rgb(labels_path: Path, labels: pd.DataFrame) -> None:
    # Only the 2018 videos' numbers differ (flow at stride 2), and tables converted by the
    # original tool carry no frame_numbers column: nothing tells the two apart for sure.
    stride_two = flow_stride(labels["video_id"], unknown_video_stride=1) == 2
    if stride_two.any():
        LOG.warning(
            "%s: does not say it holds flow frame numbers (no frame_numbers column, which "
            "epic-ar convert-flow-idxs writes); its %d segments of 2018 videos are read as "
            "flow frame numbers. If they are RGB ones, convert the file first",
            labels_path,
            int(stride_two.sum()),
        )


def gulp_chunk(
    job: GulpJob,
    chunk: int,
    rows: list[dict[str, Any]],
    on_segment: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Read, check and write the segments of one chunk; returns (segments stored, frames
    written). `on_segment(1, frames)` follows every segment, stored or skipped."""
    videos = VideoCache(job.frames_root, job.modality)
    records: list[GulpRecord] = []
    skipped: list[list[str]] = []
    try:
        for row in rows:
            frames = 0
            try:
                record = read_segment(
                    row,
                    videos,
                    modality=job.modality,
                    frame_size=job.frame_size,
                    check_decodes=job.check_decodes,
                )
                records.append(record)
                frames = len(record.jpegs)
            except BadSegmentError as exc:
                if not job.skip_bad_segments:
                    raise
                skipped.append([str(row["narration_id"]), str(exc)])
            if on_segment is not None:
                on_segment(1, frames)
    finally:
        videos.close()  # one process may write hundreds of chunks: do not leak descriptors
    sidecar = _skipped_sidecar(job.out_dir, chunk)
    with named_write_errors(job.out_dir, job.out_dir):
        if skipped:  # written before the chunk commits, so a committed chunk always has it
            with atomic_write_path(sidecar, force=True) as tmp:
                tmp.write_bytes(orjson.dumps(skipped))
        else:
            sidecar.unlink(missing_ok=True)
        return len(records), write_chunk(job.out_dir, chunk, records)


def collect_skipped(out_dir: Path, chunks: list[int]) -> list[tuple[str, str]]:
    """The segments skipped in `chunks` (narration id, reason), in chunk order."""
    skipped: list[tuple[str, str]] = []
    for chunk in chunks:
        sidecar = _skipped_sidecar(out_dir, chunk)
        if sidecar.is_file():
            skipped += [(nid, reason) for nid, reason in orjson.loads(sidecar.read_bytes())]
    return skipped


def check_job(job: GulpJob) -> None:
    """Refuse a job whose parameters or paths are wrong, before any work.

    Raises:
        EpicArError: naming the parameter or path at fault.
    """
    if job.modality not in MODALITIES:
        raise EpicArError(f"unknown modality {job.modality!r}; choose rgb or flow")
    if job.frame_size != -1 and not 1 <= job.frame_size <= MAX_FRAME_SIZE:
        raise EpicArError(
            f"frame_size must be -1 (keep the source size) or a number of pixels from 1 to "
            f"{MAX_FRAME_SIZE}, not {job.frame_size}"
        )
    for name in ("segments_per_chunk", "workers"):
        if getattr(job, name) < 1:
            raise EpicArError(f"{name} must be at least 1, not {getattr(job, name)}")
    if not job.frames_root.is_dir():
        problem = "is a file, not a directory" if job.frames_root.exists() else "no such directory"
        raise EpicArError(f"{job.frames_root}: {problem} (the frames)")
    if job.out_dir.exists() and not job.out_dir.is_dir():
        raise EpicArError(f"{job.out_dir}: exists and is not a directory (the gulp output)")
    check_folder_writable(job.out_dir, job.out_dir)


def run_gulp(job: GulpJob) -> GulpSummary:
    """Gulp the segments of `job.labels_path`, resuming where an earlier run stopped.

    Raises:
        EpicArError: bad parameters, inputs or output (see `check_job`, `load_rows`), a bad
            segment (unless `job.skip_bad_segments`), or the output cannot be written.
            With no chunk complete, the output is left as it was found.
    """
    check_job(job)
    rows = load_rows(job.labels_path, job.modality)
    if not rows:
        raise EpicArError(f"{job.labels_path}: no segments")
    created = _folders_to_create(job.out_dir)
    try:
        return _run(job, rows)
    except BaseException:
        _clean_up_failed_job(job.out_dir, created)
        raise


def _run(job: GulpJob, rows: list[dict[str, Any]]) -> GulpSummary:
    with named_write_errors(job.out_dir, job.out_dir):
        _check_or_write_manifest(job, _manifest(job, rows))
        remove_stale_temp_files(job.out_dir)
    k = job.segments_per_chunk
    plan = {chunk: rows[chunk * k : (chunk + 1) * k] for chunk in range((len(rows) + k - 1) // k)}
    done = set(committed_chunks(job.out_dir)) & set(plan)
    tasks = {chunk: chunk_rows for chunk, chunk_rows in plan.items() if chunk not in done}
    progress = Progress(f"gulp {job.modality}", sum(len(r) for r in tasks.values()))
    results: list[tuple[int, int]] = []
    if tasks:
        if done:
            LOG.info("resuming: %d of %d chunks already complete", len(done), len(plan))
        try:
            if job.workers == 1 or len(tasks) == 1:
                for chunk, chunk_rows in tasks.items():
                    results.append(gulp_chunk(job, chunk, chunk_rows, progress.update))
            else:
                calls = [(gulp_chunk, (job, c, chunk_rows)) for c, chunk_rows in tasks.items()]
                results = run_in_workers(calls, min(job.workers, len(tasks)), progress.update)
        except BaseException:
            if progress.stream.isatty():  # the error goes on a line of its own
                progress.stream.write("\n")
            raise
        progress.close()
    skipped = collect_skipped(job.out_dir, sorted(plan))
    if job.skip_bad_segments:
        table = pd.DataFrame(skipped, columns=["narration_id", "reason"])
        with atomic_write_path(job.out_dir / SKIPPED_NAME, force=True) as tmp:
            table.to_csv(tmp, index=False)
    return GulpSummary(
        segments_processed=sum(len(chunk_rows) for chunk_rows in tasks.values()),
        segments_stored=sum(stored for stored, _ in results),
        frames_written=sum(frames for _, frames in results),
        skipped=skipped,
        chunks_total=len(plan),
        chunks_already_done=len(done),
        seconds=progress.elapsed,
    )
