"""`epic-ar test CHECKPOINT RESULTS --split val|test`: score a split with a trained model."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from epic_ar.annotations.classes import N_VERBS


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "test",
        help=help_text,
        description="Score every segment of a split with a checkpoint (epic-ar's or one of the "
        "published ones) and write a results file for fuse / evaluate / submit, one row per "
        "segment in annotation order. Test-time augmentation: --clips K evenly shifted "
        "samplings and --crops 3 (left, centre, right), scores averaged before softmax.",
    )
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    parser.add_argument("results", type=Path, metavar="RESULTS", help="results file to write")
    parser.add_argument("--split", choices=["val", "test"], required=True)
    parser.add_argument(
        "--n-frames",
        type=int,
        help="frames per segment (TSN only; default: the config's test_frame_count, else "
        "frame_count)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--datadir", help="replaces data._root_gulp_dir stored in the checkpoint")
    parser.add_argument(
        "--frames-dir",
        type=Path,
        metavar="DIR",
        help="read the frames from the official archives (or folders) under DIR, as "
        "epic-ar gulp does, instead of gulp directories; needs --labels",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="with --frames-dir: the split's official annotation file (RGB frame numbers, "
        "e.g. EPIC_100_test_timestamps.pkl)",
    )
    parser.add_argument(
        "--trn-eval",
        choices=["expected", "sampled"],
        help="TRN only: how to evaluate the random relation subsets; expected (the default) "
        "is deterministic, sampled draws them as the original did",
    )
    parser.add_argument("--clips", type=int, default=1)
    parser.add_argument("--crops", type=int, choices=[1, 3], default=1)
    parser.add_argument("--devices", type=int, default=1, help="processes (DDP) to score with")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument(
        "--trust", action="store_true", help="load a checkpoint naming code outside the allow-list"
    )
    parser.add_argument("--force", action="store_true", help="overwrite RESULTS")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from epic_ar.errors import EpicArError
    from epic_ar.evaluation.results import Results, save_results
    from epic_ar.models import load_checkpoint
    from epic_ar.training.testing import ScoringOptions, score_split

    if (args.frames_dir is None) != (args.labels is None):
        raise EpicArError("--frames-dir and --labels go together")
    if args.results.exists() and not args.force:
        raise EpicArError(f"{args.results} exists (pass --force to overwrite)")
    start = time.monotonic()
    model, config = load_checkpoint(args.checkpoint, data_dir=args.datadir, trust=args.trust)
    settings = ScoringOptions(
        split=args.split,
        frame_count=args.n_frames,
        batch_size=args.batch_size,
        clips=args.clips,
        crops=args.crops,
        devices=args.devices,
        accelerator=args.accelerator,
        workers=args.workers,
        frames_dir=args.frames_dir,
        labels=args.labels,
        trn_eval=args.trn_eval,
    )
    scored = score_split(model, config, settings)
    if not scored.writer:
        return 0  # DDP: rank 0 writes the file
    results = Results(scored.scores[:, :N_VERBS], scored.scores[:, N_VERBS:], scored.narration_id)
    save_results(results, args.results, force=args.force)
    print(f"scored {len(results)} {args.split} segments in {time.monotonic() - start:.1f} s "
          f"({args.clips} clip(s) x {args.crops} crop(s)): {args.results}")  # fmt: skip
    return 0
