"""`epic-ar demo [DIR]`: the main job end to end on an embedded default."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.demo import DEFAULT_LABELS, run_demo


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=help_text,
        description="Generate results for two pretend models on the validation set, fuse "
        "them, evaluate, and write a submission zip, printing each epic-ar command it runs.",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=Path("demo_output"),
        metavar="DIR",
        help="where to write; its demo files are overwritten (default: demo_output)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        default=DEFAULT_LABELS,
        help=f"validation annotations (default: {DEFAULT_LABELS})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.out_dir, labels=args.labels)
    return 0
