"""`epic-ar` entry point: one subcommand per job; user errors print one line, exit 1."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from epic_ar import __version__
from epic_ar.cli import (
    convert_flow_idxs,
    demo,
    download,
    evaluate,
    fuse,
    gulp,
    gulp_check,
    submit,
    synth,
    synthetic_results,
    testing,
    train,
)
from epic_ar.errors import EpicArError

COMMANDS = (
    synth,
    gulp,
    gulp_check,
    convert_flow_idxs,
    fuse,
    evaluate,
    submit,
    synthetic_results,
    download,
    train,
    testing,
    demo,
)
EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="epic-ar",
        description="Train, test, evaluate and submit action recognition models on "
        "EPIC-KITCHENS-100.",
    )
    parser.add_argument("--version", action="version", version=f"epic-ar {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["train"]:  # Hydra parses its own command line
        return train.run_hydra(arguments[1:])
    args = build_parser().parse_args(arguments)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.run(args))
    except EpicArError as exc:
        print(f"epic-ar {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"epic-ar {args.command}: interrupted", file=sys.stderr)
        return 130
