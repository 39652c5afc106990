"""`epic-ar show SOURCE OUT`: pictures of segments (a contact sheet, or one segment played)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import positive_float, positive_int
from epic_ar.modality import MODALITIES
from epic_ar.visualize.show import MAX_INPUT_SIZE, ShowOptions, show


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "show",
        help=help_text,
        description="Draw segments to check the data by eye. OUT.png: a contact sheet, one row "
        "per segment (its narration id, narration and verb/noun classes above its frames). "
        "OUT.gif or OUT.mp4: one segment played, every frame. SOURCE: a gulp directory, or "
        "the frames root of the official archives (or folders) with --labels; or, instead of "
        "SOURCE, --videos-dir with --labels.",
    )
    parser.add_argument("source", type=Path, nargs="?", metavar="SOURCE")
    parser.add_argument("out", type=Path, metavar="OUT", help=".png, .gif or .mp4")
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="annotation file: which segments (required for archives and videos; captions from it)",
    )
    parser.add_argument(
        "--videos-dir",
        type=Path,
        metavar="DIR",
        help="instead of SOURCE: read RGB frames from the EPIC-KITCHENS videos under DIR "
        "(DIR/P01/videos/P01_01.MP4); needs --labels",
    )
    parser.add_argument("--ids", nargs="+", metavar="ID", help="narration ids to show")
    parser.add_argument(
        "--random", type=positive_int, metavar="N", help="N random segments (default: the first 4)"
    )
    parser.add_argument("--seed", type=int, default=0, help="for --random and --as-input")
    parser.add_argument(
        "--modality",
        choices=MODALITIES,
        help="default: what the gulp directory holds; rgb for archives",
    )
    parser.add_argument(
        "--frames", type=positive_int, default=8, metavar="N", help="frames per segment on a sheet"
    )
    parser.add_argument(
        "--as-input",
        action="store_true",
        help="show one random training input per segment (multi-scale crop, resize, flip), "
        "instead of the whole frames that test-mode sampling picks",
    )
    parser.add_argument(
        "--input-size",
        type=positive_int,
        default=224,
        metavar="S",
        help="with --as-input: the network's input size in pixels (default 224, the published "
        f"models'; at most {MAX_INPUT_SIZE})",
    )
    parser.add_argument(
        "--flow-as",
        choices=["colour", "uv"],
        default="colour",
        help="flow as colour (hue: direction, brightness: magnitude) or as u and v in grey",
    )
    parser.add_argument(
        "--fps", type=positive_float, help="clip frame rate (default 50 for RGB, 25 for flow)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if (args.source is None) == (args.videos_dir is None):
        args.parser.error(
            "give SOURCE or --videos-dir, not both"
            if args.source
            else "give SOURCE (a gulp directory or frames root) or --videos-dir"
        )
    if args.videos_dir is not None and args.labels is None:
        args.parser.error("--videos-dir needs --labels (which segments)")
    summary = show(
        ShowOptions(
            source=args.source,
            out=args.out,
            labels=args.labels,
            modality=args.modality,
            ids=args.ids,
            random_count=args.random,
            seed=args.seed,
            frame_count=args.frames,
            as_input=args.as_input,
            input_size=args.input_size,
            flow_view=args.flow_as,
            fps=args.fps,
            force=args.force,
            videos_dir=args.videos_dir,
        )
    )
    print(summary)
    return 0
