"""`epic-ar synth OUT`: a synthetic EPIC-shaped dataset (frames + annotations)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import int_at_least, non_negative_int, positive_int
from epic_ar.synthetic.dataset import LAYOUTS, SyntheticConfig, write_dataset
from epic_ar.synthetic.render import VIDEO_CRF


def add_parser(subparsers: Any, help_text: str) -> None:
    defaults = SyntheticConfig()
    parser = subparsers.add_parser(
        "synth",
        help=help_text,
        description="Write RGB and optical-flow frames (in the layouts `epic-ar gulp` reads), "
        "optionally the videos as MP4s, and annotation files in the official schema, for "
        "trying the pipeline without the real data. Each segment shows an object whose "
        "colour and shape follow its noun and whose motion follows its verb, so models can "
        "learn the classes. Deterministic per --seed.",
    )
    parser.add_argument("out", type=Path, metavar="OUT")
    parser.add_argument(
        "--participants",
        type=int_at_least(2),
        default=defaults.participants,
        help="at least 2: the last one is unseen (validation and test only)",
    )
    parser.add_argument(
        "--videos-per-participant", type=positive_int, default=defaults.videos_per_participant
    )
    parser.add_argument(
        "--segments-per-video", type=positive_int, default=defaults.segments_per_video
    )
    parser.add_argument(
        "--frame-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        default=(defaults.frame_width, defaults.frame_height),
        help="frame width and height (default 456 256, as EPIC)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=(defaults.min_frames, defaults.max_frames),
        help="RGB frames per segment",
    )
    parser.add_argument(
        "--verbs", type=int, default=defaults.verbs, help="verb classes used (ids 0..V-1)"
    )
    parser.add_argument(
        "--nouns", type=int, default=defaults.nouns, help="noun classes used (ids 0..N-1)"
    )
    parser.add_argument(
        "--layout",
        nargs="+",
        choices=LAYOUTS,
        default=list(defaults.layouts),
        help="frame layouts to write (default: tar, as downloaded); videos: also every video "
        "as H.264 MP4, OUT/videos/P01/videos/P01_01.MP4, as downloaded (with any of the others)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed)
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = SyntheticConfig(
        participants=args.participants,
        videos_per_participant=args.videos_per_participant,
        segments_per_video=args.segments_per_video,
        frame_width=args.frame_size[0],
        frame_height=args.frame_size[1],
        min_frames=args.frames[0],
        max_frames=args.frames[1],
        verbs=args.verbs,
        nouns=args.nouns,
        layouts=tuple(args.layout),
        seed=args.seed,
    )
    start = time.perf_counter()
    videos = write_dataset(args.out, config, force=args.force)
    segments = sum(len(v.segments) for v in videos)
    print(
        f"wrote {segments} segments of {len(videos)} videos in {time.perf_counter() - start:.1f} s"
    )
    print(f"  annotations: {args.out / 'annotations'}")
    for layout in config.layouts:
        if layout == "videos":
            print(f"  videos (H.264 MP4, crf {VIDEO_CRF}): {args.out / 'videos'}")
        else:
            print(f"  frames ({layout}): {args.out / ('frames_' + layout)}")
    return 0
