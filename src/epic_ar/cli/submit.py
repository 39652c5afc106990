"""`epic-ar submit RESULTS OUT.zip`: write a challenge submission."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.main import command_flags
from epic_ar.evaluation.results import load_results
from epic_ar.evaluation.submission import (
    SupervisionLevels,
    check_submission_path,
    submission_split_warning,
    write_submission,
)

LOG = logging.getLogger("epic_ar.submit")
SLS_PT_HELP = """Pre-training level (default 2):
  0 no pre-training; 1 public image datasets; 2 public image and video datasets;
  3 self-supervised on public data;
  4 self-supervised on public data and EPIC-KITCHENS; 5 private data."""
SLS_TL_HELP = """Training-label level (default 3):
  0 no supervision; 1 weak, video-level (narrations/classes, no times);
  2 weak, temporal (narration timestamps too); 3 full temporal (start/stop frames);
  4 full spatio-temporal (also spatial labels from pre-trained detectors/segmenters);
  5 full spatio-temporal+ (also prior knowledge beyond the labels)."""
SLS_TD_HELP = """Training-data level (default 4):
  0 zero-shot (class knowledge only); 1 few-shot (<= 5 examples per class);
  2 efficient (a random, unoptimised sample of <= 25%% of train);
  3 the full train split; 4 train+val;
  5 train+val plus other labelled or unlabelled data."""


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "submit",
        help=help_text,
        formatter_class=argparse.RawTextHelpFormatter,
        # Raw text keeps the SLS tables' lines: the other texts carry their own line breaks.
        description="Write the zip to upload to the EPIC-KITCHENS-100 action recognition\n"
        "challenge: one test.json with the verb and noun scores of every segment, and the\n"
        "supervision levels (SLS) of the method; see https://github.com/epic-kitchens/sls.",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS", help="results file")
    parser.add_argument("out", type=Path, metavar="OUT.zip", help="submission zip to write")
    parser.add_argument(
        "--sls-pt", type=int, choices=range(6), default=2, metavar="N", help=SLS_PT_HELP
    )
    parser.add_argument(
        "--sls-tl", type=int, choices=range(6), default=3, metavar="N", help=SLS_TL_HELP
    )
    parser.add_argument(
        "--sls-td", type=int, choices=range(6), default=4, metavar="N", help=SLS_TD_HELP
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="F",
        help="annotations of the split (e.g. EPIC_100_test_timestamps.csv): check\n"
        "that every segment is present exactly once and none is extra; without it,\n"
        "RESULTS are compared with the test split's narration ids (shipped with\n"
        "epic-ar) and a difference is a warning",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT.zip if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    levels = SupervisionLevels(pt=args.sls_pt, tl=args.sls_tl, td=args.sls_td)
    check_submission_path(args.out, force=args.force)
    results = load_results(args.results)
    warning = submission_split_warning(results, source=str(args.results), labels=args.labels)
    if warning is not None:
        LOG.warning("%s", warning.render(command_flags("submit").get))
    write_submission(results, args.out, levels, force=args.force)
    size_mb = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({len(results)} segments, {size_mb:.1f} MB, sls_pt={levels.pt} "
        f"sls_tl={levels.tl} sls_td={levels.td}) in {time.perf_counter() - start:.1f} s"
    )
    return 0
