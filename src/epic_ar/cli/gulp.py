"""`epic-ar gulp FRAMES OUT LABELS {rgb,flow}`: store segment frames in a gulp directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import add_workers_argument, positive_int
from epic_ar.gulp.format import unfinished_gulp
from epic_ar.gulp.ingest import MAX_FRAME_SIZE, SKIPPED_NAME, GulpJob, run_gulp
from epic_ar.gulp.segments import JPEG_QUALITY
from epic_ar.modality import MODALITIES
from epic_ar.progress import format_duration

DESCRIPTION = """\
Store the frames of every segment of LABELS in a gulp directory OUT (the gulpio2 format
of the original project: data_<i>.gulp + meta_<i>.gmeta chunks), ready for training.

FRAMES may hold each video in any of these layouts, detected per video:
  FRAMES/P01/P01_01/frame_0000000001.jpg         (flow: FRAMES/P01/P01_01/u/..., v/...)
  FRAMES/P01/rgb_frames/P01_01/frame_...jpg      (flow: FRAMES/P01/flow_frames/P01_01/u/...)
  FRAMES/P01/rgb_frames/P01_01.tar               (the downloaded archives, read in place;
                                                  flow: FRAMES/P01/flow_frames/P01_01.tar)
RGB segments store frames start_frame..stop_frame; flow segments store the u/v pairs of
frames start_frame..stop_frame-1, interleaved u1, v1, u2, v2, ...

For flow, LABELS must hold flow frame numbers: convert the official RGB frame numbers first
with `epic-ar convert-flow-idxs EPIC_100_train.pkl EPIC_100_train_flow.pkl`.

Every frame is checked to decode (as strictly as training reads it): a missing or corrupt
frame stops the job, naming the file or archive member, unless --on-missing skip. Frames
resized by --frame-size are decoded anyway; for frames stored unchanged the check makes the
job several times slower, and --no-decode-check skips it (`epic-ar gulp-check` can decode
every stored frame later).

Interrupting the command (Ctrl-C, even SIGKILL) loses at most the chunks being written:
re-run the same command to finish the job. A finished job is not redone. A job that fails
before its first chunk is complete leaves OUT as it found it."""


def frame_size(text: str) -> int:
    """argparse type of --frame-size: -1, or a number of pixels from 1 to MAX_FRAME_SIZE."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value != -1 and not 1 <= value <= MAX_FRAME_SIZE:
        raise argparse.ArgumentTypeError(
            f"{value}: give a number of pixels from 1 to {MAX_FRAME_SIZE}, or -1 to keep "
            "the source size"
        )
    return value


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "gulp",
        help=help_text,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("frames", type=Path, metavar="FRAMES", help="root of the frames")
    parser.add_argument("out", type=Path, metavar="OUT", help="gulp directory to write")
    parser.add_argument(
        "labels",
        type=Path,
        metavar="LABELS",
        help="annotations (.csv or .pkl); for flow, with flow frame numbers",
    )
    parser.add_argument("modality", choices=MODALITIES)
    parser.add_argument(
        "--frame-size",
        type=frame_size,
        default=-1,
        metavar="N",
        help="resize so the shorter side is N pixels (antialiased bilinear, "
        f"re-encoded at JPEG quality {JPEG_QUALITY}); frames already that size "
        "and the default -1 store the source JPEG bytes unchanged",
    )
    parser.add_argument(
        "--segments-per-chunk",
        type=positive_int,
        default=100,
        metavar="K",
        help="segments per chunk file (default 100)",
    )
    add_workers_argument(parser)
    parser.add_argument(
        "--on-missing",
        choices=("error", "skip"),
        default="error",
        help="a missing or broken frame, a bad frame range or an unknown video: "
        f"stop with an error (default), or skip the segment and list it in "
        f"OUT/{SKIPPED_NAME}",
    )
    parser.add_argument(
        "--no-decode-check",
        action="store_true",
        help="do not decode the frames stored unchanged to check them (faster; only the "
        "JPEG markers and header are checked)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    job = GulpJob(
        frames_root=args.frames,
        out_dir=args.out,
        labels_path=args.labels,
        modality=args.modality,
        frame_size=args.frame_size,
        segments_per_chunk=args.segments_per_chunk,
        workers=args.workers,
        skip_bad_segments=args.on_missing == "skip",
        check_decodes=not args.no_decode_check,
    )
    try:
        summary = run_gulp(job)
    except KeyboardInterrupt:
        unfinished = unfinished_gulp(args.out)
        if unfinished is None:  # nothing was kept
            raise
        print(f"epic-ar gulp: interrupted: {unfinished}", file=sys.stderr)
        return 130
    if summary.chunks_already_done == summary.chunks_total:
        print(f"{args.out}: all {summary.chunks_total} chunks already complete; nothing to do")
    else:
        print(
            f"gulped {summary.segments_stored} segments ({summary.frames_written} frames) "
            f"into {args.out} in {format_duration(summary.seconds)}"
            + (
                f"; resumed after {summary.chunks_already_done} of {summary.chunks_total} chunks"
                if summary.chunks_already_done
                else ""
            )
        )
    if summary.skipped:
        print(f"skipped {len(summary.skipped)} segments, listed in {args.out / SKIPPED_NAME}:")
        for narration_id, reason in summary.skipped[:5]:
            print(f"  {narration_id}: {reason}")
    return 0
