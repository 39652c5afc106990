"""`epic-ar convert-flow-idxs IN OUT`: RGB frame numbers to flow frame numbers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.annotations.flow_frames import (
    FRAME_NUMBERS_COLUMN,
    STRIDES,
    UnknownVideoError,
    convert_annotation_file,
)
from epic_ar.errors import EpicArError

DESCRIPTION = f"""\
Write a copy of an annotation file whose *frame columns hold flow frame numbers:
flow = (rgb - 1) // stride + 1, stride 2 for the 2018 videos (P01_01) and 1 for the 2020
videos (P01_101). Needed before `epic-ar gulp ... flow`.

OUT gets an extra column {FRAME_NUMBERS_COLUMN} holding "flow". An input that has it was
converted already and is refused (converting twice gives the wrong frames), as is a video
not named like P01_01 / P01_101 unless --unknown-video-stride says its stride. Frame
numbers must be whole numbers from 1."""


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "convert-flow-idxs",
        help=help_text,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, metavar="IN", help="annotations (.csv or .pkl)")
    parser.add_argument("target", type=Path, metavar="OUT", help="output (.csv or .pkl)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.add_argument(
        "--unknown-video-stride",
        type=int,
        choices=STRIDES,
        metavar="{1,2}",
        help="flow stride of the videos not named like P01_01 (2) or P01_101 (1); "
        "by default such a video is an error",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        rows = convert_annotation_file(
            args.source,
            args.target,
            force=args.force,
            unknown_video_stride=args.unknown_video_stride,
        )
    except UnknownVideoError as exc:
        raise EpicArError(f"{exc}; give it with --unknown-video-stride 1 or 2") from exc
    print(f"wrote {args.target} ({rows} segments, flow frame numbers)")
    return 0
