"""`epic-ar features MODEL OUT --format ...`: features for anticipation and detection models."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import (
    add_checkpoint_arguments,
    non_negative_int,
    positive_float,
    positive_int,
)
from epic_ar.features import FORMATS


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "features",
        help=help_text,
        description="Write a model's features in the formats downstream models read. The "
        "feature of a window or segment is the backbone's globally pooled output (what the "
        "classifier takes: 2,048 values for ResNet-50) of its test views, as `epic-ar test` "
        "samples and preprocesses a segment (the checkpoint's frame count, test transform "
        "and normalisation), averaged: TSN over the snippets, TSM over the last stage's "
        "time steps, TRN over the per-frame backbone features (the relation module is left "
        "out). rulstm-lmdb: an LMDB database OUT with a float32 vector under "
        "'{video}_frame_{n:010d}.jpg' for every frame n >= 1 of a --fps timeline, each from "
        "the --window-sec seconds ending at n/fps, never a later frame (anticipation must "
        "not see the future), as RULSTM and C2-Action-Detection's BMN read them. "
        "actionformer: a folder OUT of {video}.npz files holding 'feats' float32 [T, C], "
        "feature i from timeline frames [i*stride, i*stride + clip) (ActionFormer's EPIC "
        "config: feat_stride 16, num_frames 32, default_fps 30). segments: one .npz file "
        "OUT of 'narration_id' [N] and 'features' [N, C], one per annotated segment. Each "
        "video is committed whole: a rerun skips the finished ones, also after a kill.",
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a checkpoint file, or a published name (tsn_rgb, tsm_flow, ...: downloaded "
        "once into ~/.cache/epic-ar/checkpoints)",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="the database, folder or file")
    parser.add_argument("--format", choices=FORMATS, required=True)
    source = parser.add_argument_group("what to read")
    source.add_argument(
        "--frames-dir",
        type=Path,
        metavar="DIR",
        help="released JPEG frames in any layout `epic-ar gulp` reads (tar archives read in "
        "place, or folders); flow models read flow frames",
    )
    source.add_argument(
        "--videos-dir",
        type=Path,
        metavar="DIR",
        help="the videos, DIR/P01/videos/P01_01.MP4 (RGB models only)",
    )
    source.add_argument(
        "--datadir",
        dest="data_dir",
        type=Path,
        metavar="DIR",
        help="segments only: a gulp directory (every segment it holds)",
    )
    source.add_argument("--videos", nargs="+", metavar="ID", help="video ids, e.g. P01_01 P01_02")
    source.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="an annotation file: every video it names (timeline formats) or its segments "
        "(segments)",
    )
    timeline = parser.add_argument_group("timeline")
    timeline.add_argument(
        "--fps",
        dest="timeline_fps",  # the library's parameter
        type=positive_float,
        metavar="FPS",
        help="timeline rate (default 30, as RULSTM and ActionFormer)",
    )
    timeline.add_argument(
        "--window-sec",
        type=positive_float,
        metavar="SEC",
        help="rulstm-lmdb: the window before each time step (default 1.0)",
    )
    timeline.add_argument(
        "--stride",
        type=positive_int,
        metavar="N",
        help="actionformer: timeline frames between features (default 16)",
    )
    timeline.add_argument(
        "--clip",
        type=positive_int,
        metavar="N",
        help="actionformer: timeline frames per feature (default 32)",
    )
    parser.add_argument(
        "--frames",
        dest="frame_count",
        type=positive_int,
        metavar="T",
        help="snippets per window or segment, TSN only (default: the checkpoint's frame "
        "count; TSM and TRN run with the count they were built with)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, metavar="N",
                        help="windows or segments per forward pass (default 8)")  # fmt: skip
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        default=min(4, os.cpu_count() or 1),
        metavar="N",
        help="processes reading frames (videos are shared out whole)",
    )
    parser.add_argument("--device", metavar="DEV",
                        help="cpu, cuda, cuda:1 (default: cuda when available)")  # fmt: skip
    parser.add_argument("--no-amp", dest="amp", action="store_false",
                        help="on CUDA, compute in float32 (default: float16 autocast)")  # fmt: skip
    parser.add_argument(
        "--devices",
        type=positive_int,
        default=1,
        metavar="N",
        help="processes, each with every N-th video (on CUDA, one GPU each)",
    )
    parser.add_argument("--force", action="store_true", help="start OUT again")
    add_checkpoint_arguments(parser, published=True)
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from epic_ar.cli.main import command_flags, error_message
    from epic_ar.errors import EpicArError
    from epic_ar.features.extract import FeatureOptions
    from epic_ar.features.run import check_options, extract_features
    from epic_ar.training.logging_setup import quiet_lightning

    quiet_lightning()
    options = FeatureOptions(
        format=args.format,
        frames_dir=args.frames_dir,
        videos_dir=args.videos_dir,
        data_dir=args.data_dir,
        videos=tuple(args.videos or ()),
        labels=args.labels,
        timeline_fps=args.timeline_fps,
        window_sec=args.window_sec,
        stride=args.stride,
        clip=args.clip,
        frame_count=args.frame_count,
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
        amp=args.amp,
        devices=args.devices,
        force=args.force,
        trust=args.trust,
        url=args.url,
    )
    try:  # a request that cannot run is a usage error (exit 2), named by its flags
        check_options(options)
    except EpicArError as exc:
        args.parser.error(error_message(exc, command_flags("features")))
    start = time.monotonic()
    result = extract_features(args.model, args.out, options)
    seconds = time.monotonic() - start
    done = result.videos - result.skipped
    skipped = f" ({result.skipped} finished before, skipped)" if result.skipped else ""
    print(f"features of {done} video{'s' if done != 1 else ''} in {seconds:.1f} s{skipped}")
    print(result.summary)
    if result.config_lines:
        print("ActionFormer config (dataset section):")
        print("\n".join(result.config_lines))
    return 0
