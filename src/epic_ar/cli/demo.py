"""`epic-ar demo [DIR]`: the whole pipeline on generated data, every command printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.demo import FULL, QUICK, run_demo


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=help_text,
        description="Generate a small EPIC-shaped dataset (RGB and flow frames, train/val/test "
        "labels), gulp it, train a small TSN on each modality, score val and test, fuse, "
        "evaluate with the challenge metrics and write a submission zip. Each step is the "
        "epic-ar command printed before it; nothing is downloaded. About 4 minutes on 2 CPU "
        "cores.",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=Path("demo_output"),
        metavar="DIR",
        help="where to write (default: demo_output); an earlier demo's outputs there are "
        "replaced, any other non-empty folder is refused",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few segments and one epoch: every step, in about a minute (the models "
        "learn little)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.out_dir, size=QUICK if args.quick else FULL)
    return 0
