"""`epic-ar evaluate RESULTS LABELS`: the official challenge metrics."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from epic_ar.cli.main import command_flags
from epic_ar.evaluation.evaluate import (
    evaluate_results,
    format_metrics,
    has_class_labels,
    read_evaluation_inputs,
    resolve_group_tables,
)

LOG = logging.getLogger("epic_ar.evaluate")


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help=help_text,
        description="Evaluate a results file against the official labels with the challenge "
        "metrics: verb/noun/action top-1 and top-5 accuracy, tail and unseen top-1 accuracy, "
        "in percent. Actions are ranked as the official evaluator does (softmax over the 100 "
        "highest verb and noun scores, pairs ranked by the product of probabilities).",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS", help="results file")
    parser.add_argument(
        "labels",
        type=Path,
        metavar="LABELS",
        help="official annotations, e.g. EPIC_100_validation.csv or .pkl",
    )
    parser.add_argument(
        "--tail-verb-classes-csv",
        type=Path,
        metavar="F",
        help="default: EPIC_100_tail_verbs.csv next to LABELS",
    )
    parser.add_argument(
        "--tail-noun-classes-csv",
        type=Path,
        metavar="F",
        help="default: EPIC_100_tail_nouns.csv next to LABELS",
    )
    parser.add_argument(
        "--unseen-participant-ids-csv",
        type=Path,
        metavar="F",
        help="default: EPIC_100_unseen_participant_ids_validation.csv (or "
        "_test.csv for test labels) next to LABELS",
    )
    parser.add_argument(
        "--packaged-tables",
        dest="use_packaged",  # the library's parameter
        action="store_true",
        help="use the official tail/unseen tables shipped with epic-ar when "
        "they are not given and not next to LABELS",
    )
    parser.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: one 'name: value' line per metric (default); json: one object",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write DIR/index.html and its figures: per-class and per-participant "
        "accuracy, verb confusion (for a test split without labels: predicted-class "
        "distributions and confidence); DIR must be new or empty unless --force",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --report: write into DIR even if it holds files (replacing index.html and "
        "the figures)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.report is not None:  # before any work, so that nothing is printed in vain
        from epic_ar.visualize.report import check_report_dir

        check_report_dir(args.report, force=args.force)
    # both files read first: a file of the wrong kind is refused before notes on the tables
    results, labels = read_evaluation_inputs(args.results, args.labels)
    tables = resolve_group_tables(
        args.labels,
        tail_verbs=args.tail_verb_classes_csv,
        tail_nouns=args.tail_noun_classes_csv,
        unseen_participants=args.unseen_participant_ids_csv,
        use_packaged=args.use_packaged,
        note=lambda text: LOG.warning(text.render(command_flags("evaluate").get)),
    )
    if args.report is not None and not has_class_labels(labels):
        LOG.warning("%s has no verb/noun classes: no metrics, label-free report only", args.labels)
        metrics = None
    else:
        metrics, notes = evaluate_results(results, labels, tables, labels_source=str(args.labels))
        for note in notes:
            LOG.warning(note)
        print(format_metrics(metrics, args.format))
    if args.report is not None:
        from epic_ar.visualize.report import write_report

        names = write_report(
            results,
            results_path=args.results,
            labels_path=args.labels,
            labels=labels,
            tables=tables,
            metrics=metrics,
            out_dir=args.report,
            force=args.force,
        )
        LOG.info("report: %s (%d figures)", args.report / "index.html", len(names) - 1)
    return 0
