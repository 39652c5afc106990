"""`epic-ar gulp-check`: verify every chunk of a gulp directory."""

from __future__ import annotations

import contextlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import simplejpeg

from epic_ar.errors import EpicArError
from epic_ar.gulp.format import (
    DATA_PATTERN,
    committed_chunks,
    data_path,
    meta_path,
    unfinished_gulp,
)
from epic_ar.gulp.reader import is_frame_record, read_chunk_meta, require_directory
from epic_ar.progress import Progress


def check_chunk(directory: Path, chunk: int, decode: bool = True) -> tuple[list[str], int]:
    """Problems found in one chunk (one line each) and the number of frames checked.

    Checks that the meta parses, every record lies inside the data file, records cover the
    file exactly, padding bytes are NUL, `num_frames` agrees with the records and, with
    `decode`, that every record decodes as a JPEG.
    """
    meta_file, data_file = meta_path(directory, chunk), data_path(directory, chunk)
    try:
        meta = read_chunk_meta(meta_file)
    except EpicArError as exc:
        return [str(exc)], 0
    if not data_file.is_file():
        return [f"{data_file}: missing (its meta file exists)"], 0
    data = data_file.read_bytes()
    problems: list[str] = []
    frames = 0
    covered = 0
    for segment_id, entry in meta.items():
        infos = entry["frame_info"]
        where = f"{data_file.name}: segment {segment_id}"
        meta_data = (entry["meta_data"] or [{}])[0]
        declared = meta_data.get("num_frames")
        if declared is not None and declared not in (len(infos), len(infos) / 2):
            problems.append(f"{where}: num_frames {declared} but {len(infos)} records")
        for index, info in enumerate(infos):
            frames += 1
            if not is_frame_record(info):
                problems.append(
                    f"{where} frame {index}: record {info!r} is not [offset, pad, length]"
                )
                continue
            offset, pad, length = info
            record = data[offset : offset + length]
            if offset + length > len(data) or pad > 3 or length <= pad:
                problems.append(
                    f"{where} frame {index}: record [{offset}, +{length}) "
                    f"outside the file ({len(data)} bytes) or bad padding"
                )
                continue
            covered += length
            if record[length - pad :] != b"\0" * pad:
                problems.append(f"{where} frame {index}: padding is not NUL bytes")
            if decode:
                try:
                    simplejpeg.decode_jpeg(record[: length - pad], colorspace="GRAY")
                except ValueError as exc:
                    problems.append(f"{where} frame {index}: does not decode ({exc})")
    if covered != len(data):
        problems.append(f"{data_file}: records cover {covered} of its {len(data)} bytes")
    return problems, frames


def _check_chunk_task(args: tuple[Path, int, bool]) -> tuple[list[str], int]:
    return check_chunk(*args)


def check_gulp_directory(directory: Path, *, workers: int = 1, decode: bool = True) -> list[str]:
    """Every problem of every chunk of `directory` (empty: all good)."""
    require_directory(directory)
    chunks = committed_chunks(directory)
    if not chunks:
        raise EpicArError(f"{directory}: not a gulp directory (no meta_*.gmeta files)")
    problems = [
        f"{path}: has no meta file (interrupted write? re-run the gulp command)"
        for path in sorted(directory.iterdir())
        if (match := DATA_PATTERN.match(path.name)) and int(match.group(1)) not in chunks
    ]
    unfinished = unfinished_gulp(directory)
    if unfinished is not None:
        problems.append(unfinished)
    progress = Progress("gulp-check", len(chunks), unit="chunks")
    tasks = [(directory, chunk, decode) for chunk in chunks]
    with contextlib.ExitStack() as stack:
        mapper = stack.enter_context(ProcessPoolExecutor(workers)).map if workers > 1 else map
        for chunk_problems, frames in mapper(_check_chunk_task, tasks):
            problems += chunk_problems
            progress.update(1, frames)
    progress.close()
    return problems
