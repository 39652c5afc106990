"""`epic-ar download NAME [DIR]`: fetch a published checkpoint and check that it loads."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.models.published import PUBLISHED_URLS, download_published


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "download",
        help=help_text,
        description="Download one of the six published EPIC-KITCHENS-100 checkpoints, check "
        "that it loads into the model its config describes, and store it as DIR/NAME.ckpt.",
    )
    names = sorted(PUBLISHED_URLS)
    parser.add_argument("name", choices=names, metavar="NAME", help=f"one of {', '.join(names)}")
    parser.add_argument(
        "directory",
        type=Path,
        nargs="?",
        default=Path("checkpoints"),
        metavar="DIR",
        help="where to store it (default: ./checkpoints)",
    )
    parser.add_argument("--url", help="fetch from this URL instead (a mirror, or file://...)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = download_published(args.name, args.directory, url=args.url, force=args.force)
    print(f"{args.name}: checked and stored as {path}")
    return 0
