"""`epic-ar synthetic-results LABELS OUT`: scores of a pretend model, to try the tools."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.annotations.labels import read_annotations
from epic_ar.evaluation.results import save_results
from epic_ar.fileio.atomic import check_can_write
from epic_ar.synthetic.results import synthetic_results


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "synthetic-results",
        help=help_text,
        description="Write a results file for every segment of LABELS whose scores are "
        "random noise plus SIGNAL on the true class (a random class when LABELS has no "
        "classes): a stand-in for a model, to try fuse/evaluate/submit.",
    )
    parser.add_argument("labels", type=Path, metavar="LABELS", help="official annotations")
    parser.add_argument("out", type=Path, metavar="OUT", help="results file to write")
    parser.add_argument(
        "--signal",
        type=float,
        default=2.5,
        help="logit added to the true class (0: chance; default 2.5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_can_write(args.out, force=args.force)
    results = synthetic_results(
        read_annotations(args.labels), signal=args.signal, seed=args.seed, source=str(args.labels)
    )
    save_results(results, args.out, force=args.force)
    print(f"wrote {args.out} ({len(results)} segments, signal {args.signal}, seed {args.seed})")
    return 0
