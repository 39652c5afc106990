"""`epic-ar predict MODEL VIDEO`: a model's top verbs, nouns and actions over any video."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import add_checkpoint_arguments, positive_float, positive_int


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "predict",
        help=help_text,
        description="Run an RGB model on a video, in windows of --window seconds every "
        "--stride seconds, and list each window's most probable verbs, nouns and actions. "
        "Window k covers the frames n with k*stride <= n/fps < k*stride + window; windows "
        "running past the end are dropped, and a video shorter than one window is one "
        "window. Each window is scored exactly as `epic-ar test` scores a segment made of "
        "its frames (the checkpoint's frame count, test views and normalisation; scores "
        "averaged over views before the softmax). Frames not 256 pixels high are first "
        "resized to 256 high (FFmpeg's bicubic scaler, width rounded to even: 1920x1080 -> "
        "456x256), as the released EPIC-KITCHENS frames were. Verb and noun p: softmax over "
        "all classes; actions: pairs of the 100 best verbs and nouns ranked by the product "
        "of their p, as the official evaluator ranks them. Without --out, prints one line "
        "per window.",
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a checkpoint file (epic-ar's or a published one), or a published name "
        "(tsn_rgb, trn_rgb, tsm_rgb: downloaded once into $XDG_CACHE_HOME/epic-ar/"
        "checkpoints, default ~/.cache/epic-ar/checkpoints); flow models cannot run on video",
    )
    parser.add_argument(
        "video",
        type=Path,
        metavar="VIDEO",
        help="a video file FFmpeg decodes (MP4, MKV, ...; its stream's average frame rate), "
        "or a folder of JPEG/PNG frames sorted by name (needs --fps)",
    )
    parser.add_argument(
        "--window",
        type=positive_float,
        default=2.0,
        metavar="SEC",
        help="length of a window in seconds (default 2.0)",
    )
    parser.add_argument(
        "--stride",
        type=positive_float,
        default=1.0,
        metavar="SEC",
        help="seconds from one window's start to the next (default 1.0)",
    )
    parser.add_argument(
        "--fps",
        type=positive_float,
        metavar="FPS",
        help="frame rate of a folder of frames (a video file has its own)",
    )
    parser.add_argument(
        "--top-k",
        type=positive_int,
        default=5,
        metavar="K",
        help="verbs, nouns and actions listed per window (default 5)",
    )
    parser.add_argument(
        "--clips",
        type=positive_int,
        default=1,
        metavar="K",
        help="test-time views as in test: K evenly shifted samplings of each window",
    )
    parser.add_argument(
        "--crops",
        type=int,
        choices=[1, 3],
        default=1,
        help="test-time views as in test: 1 (centre) or 3 (left, centre, right) crops",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        metavar="N",
        help="windows scored at once (default 8)",
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write every window's top-K to FILE.json (see the docs for its layout) or "
        "FILE.csv (one row per window and rank)",
    )
    parser.add_argument(
        "--video-out",
        type=Path,
        metavar="FILE",
        help="write FILE.mp4: the input with the current window's top-3 actions drawn on "
        "every frame",
    )
    parser.add_argument(
        "--timeline",
        type=Path,
        metavar="FILE",
        help="write FILE.png: the top-1 verb and noun over time as coloured bands",
    )
    add_checkpoint_arguments(parser, published=True)
    parser.add_argument("--force", action="store_true", help="overwrite output files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from epic_ar.prediction.frames import open_frame_source
    from epic_ar.prediction.outputs import (
        PredictionOutputs,
        check_outputs,
        summary_lines,
        table_lines,
        write_predictions,
    )
    from epic_ar.prediction.predict import PredictOptions, predict
    from epic_ar.visualize.annotated_video import SHOWN_ACTIONS, write_annotated_video
    from epic_ar.visualize.timeline import write_timeline

    outputs = PredictionOutputs(args.out, args.timeline, args.video_out)
    check_outputs(outputs, force=args.force, video=args.video)
    options = PredictOptions(
        window=args.window,
        stride=args.stride,
        fps=args.fps,
        # the annotated video shows the top 3 actions, whatever the lists' length
        top_k=max(args.top_k, SHOWN_ACTIONS) if args.video_out else args.top_k,
        clips=args.clips,
        crops=args.crops,
        batch_size=args.batch_size,
        device=args.device,
        trust=args.trust,
        url=args.url,
    )
    start = time.monotonic()
    prediction = predict(args.model, args.video, options)
    seconds = time.monotonic() - start
    # The annotated video first: it decodes the input again, and any failure there must
    # leave no other output behind.
    if args.video_out is not None:
        source = open_frame_source(args.video, fps=args.fps)
        frames = (frame for _, frame in source.frames(height=None))
        write_annotated_video(prediction, frames, args.video_out, force=args.force)
    prediction = prediction.top(args.top_k)
    if args.timeline is not None:
        write_timeline(prediction, args.timeline, force=args.force)
    if args.out is not None:
        write_predictions(prediction, args.out, force=args.force)
    else:
        print("\n".join(table_lines(prediction)))
    print("\n".join(summary_lines(prediction, outputs, seconds=seconds)))
    return 0
