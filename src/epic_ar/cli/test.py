"""`epic-ar test CHECKPOINT RESULTS --split val|test`: score a split with a trained model."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import add_checkpoint_arguments, non_negative_int, positive_int

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "test",
        help=help_text,
        description="Score every segment of a split with a checkpoint (epic-ar's or one of the "
        "published ones) and write a results file for fuse / evaluate / submit, one row per "
        "segment in annotation order. The file records how it was made (checkpoint, data, "
        "frame count, views) under its 'provenance' key. Test-time augmentation: --clips K "
        "evenly shifted samplings and --crops 3 (left, centre, right), scores averaged "
        "before softmax.",
    )
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    parser.add_argument("results", type=Path, metavar="RESULTS", help="results file to write")
    parser.add_argument("--split", choices=["val", "test"], required=True)
    parser.add_argument(
        "--n-frames",
        type=positive_int,
        metavar="N",
        help="frames per segment for the split being scored (TSN only; TRN and TSM run with "
        "the count they were built with). Default, as the original samples them: --split val "
        "uses data.frame_count (8 for the published TSN), --split test uses "
        "data.test_frame_count (25 for the published TSN), else data.frame_count",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, metavar="N")
    parser.add_argument(
        "--datadir",
        dest="data_dir",  # the library's parameter
        type=Path,
        metavar="DIR",
        help="where the split's frames are, whatever the checkpoint stored: the split's own "
        "gulp directory (e.g. /gulp/rgb_validation, as the original's --datadir), or the "
        "folder holding {rgb,flow}_{validation,test} (e.g. /gulp)",
    )
    parser.add_argument(
        "--frames-dir",
        type=Path,
        metavar="DIR",
        help="read the frames from the official archives (or folders) under DIR, as "
        "epic-ar gulp does, instead of gulp directories; needs --labels",
    )
    parser.add_argument(
        "--videos-dir",
        type=Path,
        metavar="DIR",
        help="read RGB frames straight from the EPIC-KITCHENS videos under DIR, in the "
        "download's layout DIR/P01/videos/P01_01.MP4, instead of gulp directories; needs "
        "--labels",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="with --frames-dir or --videos-dir: the split's official annotation file (RGB "
        "frame numbers, e.g. EPIC_100_test_timestamps.pkl)",
    )
    parser.add_argument(
        "--trn-eval",
        choices=["expected", "sampled"],
        help="TRN only: how to evaluate the random relation subsets; expected (the default) "
        "is deterministic, sampled draws them as the original did",
    )
    parser.add_argument("--clips", type=positive_int, default=1, metavar="K")
    parser.add_argument("--crops", type=int, choices=[1, 3], default=1)
    parser.add_argument(
        "--devices", type=positive_int, default=1, metavar="N", help="processes (DDP) to score with"
    )
    parser.add_argument("--accelerator", choices=ACCELERATORS, default="auto")
    parser.add_argument(
        "--workers", type=non_negative_int, default=min(8, os.cpu_count() or 1), metavar="N"
    )
    add_checkpoint_arguments(parser, published=False)
    parser.add_argument("--force", action="store_true", help="overwrite RESULTS")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from epic_ar.annotations.splits import check_labels_split
    from epic_ar.evaluation.results import PROVENANCE_KEY, Results, save_results
    from epic_ar.fileio.atomic import check_can_write
    from epic_ar.models import load_checkpoint
    from epic_ar.models.config import split_scores
    from epic_ar.training.logging_setup import quiet_lightning
    from epic_ar.training.scoring import ScoringOptions, score_split

    quiet_lightning()
    if args.frames_dir is not None and args.videos_dir is not None:
        args.parser.error("give --frames-dir or --videos-dir, not both")
    for flag, value in (("--frames-dir", args.frames_dir), ("--videos-dir", args.videos_dir)):
        if args.data_dir is not None and value is not None:
            args.parser.error(f"give --datadir (gulp directories) or {flag}, not both")
    if args.videos_dir is not None and args.labels is None:
        args.parser.error("--videos-dir needs --labels (the split's annotation file)")
    if args.videos_dir is None and (args.frames_dir is None) != (args.labels is None):
        args.parser.error("--labels goes with --frames-dir or --videos-dir")
    if args.labels is not None:
        check_labels_split(args.labels, args.split)  # EPIC_100_train.pkl for --split val
    check_can_write(args.results, force=args.force)
    start = time.monotonic()
    model, config = load_checkpoint(args.checkpoint, trust=args.trust)
    settings = ScoringOptions(
        split=args.split,
        frame_count=args.n_frames,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        clips=args.clips,
        crops=args.crops,
        devices=args.devices,
        accelerator=args.accelerator,
        workers=args.workers,
        frames_dir=args.frames_dir,
        labels=args.labels,
        videos_dir=args.videos_dir,
        trn_eval=args.trn_eval,
        checkpoint=args.checkpoint,
    )
    scored = score_split(model, config, settings)
    if not scored.writer:
        return 0  # DDP: rank 0 writes the file
    verb_scores, noun_scores = split_scores(scored.scores)
    results = Results(
        verb_scores, noun_scores, scored.narration_id, {PROVENANCE_KEY: scored.record}
    )
    save_results(results, args.results, force=args.force)
    print(f"scored {len(results)} {args.split} segments in {time.monotonic() - start:.1f} s "
          f"({scored.record['frame_count']} frames, {args.clips} clip(s) x {args.crops} "
          f"crop(s)): {args.results}")  # fmt: skip
    return 0
