"""`epic-ar fuse RESULTS... OUT`: average the scores of several results files."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from epic_ar.evaluation.fusion import fuse_results
from epic_ar.evaluation.results import load_results, save_results
from epic_ar.fileio.atomic import check_can_write


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "fuse",
        help=help_text,
        description="Average the verb and noun scores of results files segment by segment "
        "(late fusion). Inputs are aligned by narration id and must cover the same segments; "
        "the output keeps the first file's order and its other keys, and its 'provenance' "
        "lists every input's file and provenance.",
    )
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS",
        help="results files (.pt/.pkl, any layout)",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="fused results file to write")
    parser.add_argument(
        "--weights",
        nargs="+",
        type=float,
        metavar="W",
        help="one weight per RESULTS file (weighted mean); default: plain mean",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if len(args.results) < 2:
        args.parser.error("give two or more RESULTS files, then OUT")
    if args.weights is not None and len(args.weights) != len(args.results):
        args.parser.error(
            f"--weights: got {len(args.weights)} weights for {len(args.results)} RESULTS files"
        )
    start = time.perf_counter()
    check_can_write(args.out, force=args.force)
    inputs = [load_results(path) for path in args.results]
    fused = fuse_results(inputs, names=[str(p) for p in args.results], weights=args.weights)
    save_results(fused, args.out, force=args.force)
    print(
        f"fused {len(inputs)} files ({len(fused)} segments) into {args.out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0
