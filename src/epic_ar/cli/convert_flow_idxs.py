"""`epic-ar convert-flow-idxs IN OUT`: RGB frame numbers to flow frame numbers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.annotations.flow_frames import convert_annotation_file


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "convert-flow-idxs",
        help=help_text,
        description="Write a copy of an annotation file whose *frame columns hold flow frame "
        "numbers: flow = (rgb - 1) // stride + 1, stride 2 for the 2018 videos (P01_01) and 1 "
        "for the 2020 videos (P01_101). Needed before `epic-ar gulp ... flow`.",
    )
    parser.add_argument("source", type=Path, metavar="IN", help="annotations (.csv or .pkl)")
    parser.add_argument("target", type=Path, metavar="OUT", help="output (.csv or .pkl)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = convert_annotation_file(args.source, args.target, force=args.force)
    print(f"wrote {args.target} ({rows} segments, flow frame numbers)")
    return 0
