"""Argument types shared by the commands: a bad value is a usage error (exit 2) that names
the flag, before any work starts."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type` for integers >= `minimum` (e.g. 1 for counts, 0 for workers)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not an integer >= {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in some messages
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """An argparse `type`: a finite number > 0 (a rate, a scale)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number > 0")
    return value


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    """`-j/--workers N`: worker processes, at least 1 (default 1)."""
    parser.add_argument(
        "-j",
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes (default 1)",
    )


def add_checkpoint_arguments(parser: argparse.ArgumentParser, *, published: bool) -> None:
    """`--trust`, and with `published` (the command takes a published name) `--url URL`."""
    if published:
        parser.add_argument(
            "--url",
            metavar="URL",
            help="with a published name: fetch it from URL (a mirror, file://)",
        )
    parser.add_argument(
        "--trust", action="store_true", help="load a checkpoint naming code outside the allow-list"
    )
