"""`epic-ar gulp-check DIR`: verify a gulp directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import add_workers_argument
from epic_ar.errors import EpicArError
from epic_ar.gulp.check import check_gulp_directory


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "gulp-check",
        help=help_text,
        description="Check every chunk of a gulp directory: the meta files parse, records lie "
        "inside their data files and cover them exactly, and every frame decodes. Prints one "
        "line per problem; exits 1 when there is any.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument(
        "--no-decode",
        action="store_true",
        help="check the structure only, without decoding every frame",
    )
    add_workers_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    problems = check_gulp_directory(args.directory, workers=args.workers, decode=not args.no_decode)
    for problem in problems:
        print(problem)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise EpicArError(f"{args.directory}: {count} (listed above)")
    print(f"{args.directory}: all chunks OK")
    return 0
