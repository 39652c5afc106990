"""Evaluate a results file against the official labels: the 12 challenge metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.annotations.classes import (
    N_NOUNS,
    N_VERBS,
    packaged_table,
    read_participant_ids,
    read_tail_classes,
)
from epic_ar.annotations.labels import read_annotations, require_columns
from epic_ar.errors import EpicArError, Message, Parameter
from epic_ar.evaluation.metrics import action_ranks, challenge_metrics, class_ranks
from epic_ar.evaluation.results import Results, load_results
from epic_ar.fileio.kinds import ANNOTATIONS, WrongKindError
from epic_ar.fileio.messages import listed
from epic_ar.fileio.paths import require_file

LOG = logging.getLogger(__name__)

LABEL_COLUMNS = ("participant_id", "verb_class", "noun_class")
TAIL_VERBS_CSV = "EPIC_100_tail_verbs.csv"
TAIL_NOUNS_CSV = "EPIC_100_tail_nouns.csv"


@dataclass(frozen=True)
class GroupTables:
    """The paths of the tables defining the tail and unseen groups (None: group left out)."""

    tail_verbs: Path | None
    tail_nouns: Path | None
    unseen_participants: Path | None


def unseen_participants_csv_name(labels_path: Path) -> str:
    """Official name of the unseen-participants table of the split `labels_path` belongs to."""
    split = "test" if "test" in labels_path.name.lower() else "validation"
    return f"EPIC_100_unseen_participant_ids_{split}.csv"


def resolve_group_tables(
    labels_path: Path,
    *,
    tail_verbs: Path | None = None,
    tail_nouns: Path | None = None,
    unseen_participants: Path | None = None,
    use_packaged: bool = False,
    note: Callable[[Message], None] | None = None,
) -> GroupTables:
    """Fill in tables not given explicitly from the labels file's folder.

    A table not given and not found next to the labels is taken from the copies shipped
    with epic-ar when `use_packaged`, otherwise its group is left out, with a note passed
    to `note` (default: logged as a warning).
    """
    require_file(labels_path)  # no notes about the folder of labels that are not there
    defaults = {
        "tail verbs": (tail_verbs, TAIL_VERBS_CSV),
        "tail nouns": (tail_nouns, TAIL_NOUNS_CSV),
        "unseen participants": (unseen_participants, unseen_participants_csv_name(labels_path)),
    }
    resolved: list[Path | None] = []
    for what, (given, name) in defaults.items():
        if given is not None:
            role = f"(given for the {what} table)"
            require_file(given, f"file {role}", missing=f"no such file {role}")
            resolved.append(given)
            continue
        candidate = labels_path.parent / name
        if candidate.is_file():
            resolved.append(candidate)
        elif use_packaged:
            resolved.append(packaged_table(name))
        else:
            (note or _log_warning)(
                Message(
                    (
                        f"{candidate} not found next to the labels; {what} metrics left out "
                        "(give the file, or ",
                        Parameter("use_packaged", "use_packaged=True"),
                        " for the official copy)",
                    )
                )
            )
            resolved.append(None)
    return GroupTables(*resolved)


def _log_warning(text: Message) -> None:
    LOG.warning("%s", text)


def read_evaluation_inputs(results_path: Path, labels_path: Path) -> tuple[Results, pd.DataFrame]:
    """The results to evaluate and the labels to evaluate them against (`read_annotations`).

    Raises:
        WrongKindError: either file is of another kind; for annotations where the results
            should be, the message adds that the results come first.
        EpicArError: as `load_results` and `read_annotations` raise.
    """
    try:
        results = load_results(results_path)
    except WrongKindError as exc:
        if exc.found != ANNOTATIONS:
            raise
        hint = "the results come first, then the labels"
        raise WrongKindError(exc.path, exc.found, exc.expected, hint) from None
    return results, read_annotations(labels_path)


def label_rows(results: Results, labels: pd.DataFrame, *, labels_source: str) -> pd.DataFrame:
    """The label rows of the results' segments, in results order.

    Raises:
        EpicArError: some results have no label row (lists up to 5 narration ids).
    """
    rows = labels.index.get_indexer(pd.Index(results.narration_id))
    unknown = results.narration_id[rows < 0]
    if len(unknown):
        raise EpicArError(
            f"{len(unknown)} of {len(results)} results have narration ids not in "
            f"{labels_source}: {listed(unknown, count_more=False)}"
        )
    segment_labels: pd.DataFrame = labels.iloc[rows]
    return segment_labels


def align_labels(results: Results, labels: pd.DataFrame, *, labels_source: str) -> pd.DataFrame:
    """`label_rows`, with a warning when the results cover only part of the labels."""
    segment_labels = label_rows(results, labels, labels_source=labels_source)
    if len(results) < len(labels):
        LOG.warning(
            "results cover %d of %d segments of %s; evaluating those %d only",
            len(results),
            len(labels),
            labels_source,
            len(results),
        )
    return segment_labels


def _class_column(labels: pd.DataFrame, column: str, n_classes: int, source: str) -> np.ndarray:
    values = labels[column]
    if not pd.api.types.is_integer_dtype(values):
        raise EpicArError(f"{source}: column '{column}' must hold integer class ids")
    array = values.to_numpy(dtype=np.int64)
    bad = (array < 0) | (array >= n_classes)
    if bad.any():
        raise EpicArError(
            f"{source}: {column} {array[bad][0]} of segment {labels.index[bad][0]} is "
            f"outside [0, {n_classes})"
        )
    return array


def has_class_labels(labels: pd.DataFrame) -> bool:
    """Whether annotations hold classes (the test split's do not)."""
    return "verb_class" in labels.columns or "noun_class" in labels.columns


def evaluate_results(
    results: Results, labels: pd.DataFrame, tables: GroupTables, *, labels_source: str
) -> tuple[dict[str, float], list[str]]:
    """The official metrics (percent, sorted by name) of `results` against `labels` (as
    `read_annotations` returns them; `labels_source` names them in messages).

    Returns:
        metrics and notes on groups left out.
    """
    try:
        require_columns(labels, LABEL_COLUMNS, source=labels_source)
    except EpicArError as exc:
        if has_class_labels(labels):
            raise
        # no classes at all: perhaps the test split's annotations
        raise EpicArError(
            f"{exc}; the labels of the test split are not public (write a submission with "
            "`epic-ar submit` instead)"
        ) from None
    segment_labels = align_labels(results, labels, labels_source=labels_source)
    verbs = _class_column(segment_labels, "verb_class", N_VERBS, labels_source)
    nouns = _class_column(segment_labels, "noun_class", N_NOUNS, labels_source)
    return challenge_metrics(
        class_ranks(results.verb_output, verbs),
        class_ranks(results.noun_output, nouns),
        action_ranks(results.verb_output, results.noun_output, verbs, nouns),
        verb_labels=verbs,
        noun_labels=nouns,
        participant_ids=segment_labels["participant_id"].astype(str).to_numpy(),
        tail_verbs=read_tail_classes(tables.tail_verbs, "verb") if tables.tail_verbs else None,
        tail_nouns=read_tail_classes(tables.tail_nouns, "noun") if tables.tail_nouns else None,
        unseen_participants=(
            read_participant_ids(tables.unseen_participants) if tables.unseen_participants else None
        ),
    )


def format_metrics(metrics: dict[str, float], fmt: str) -> str:
    """`yaml`: one `name: value` line per metric, sorted (as the official evaluator prints);
    `json`: one JSON object."""
    ordered = dict(sorted(metrics.items()))
    if fmt == "json":
        return json.dumps(ordered, indent=2)
    if fmt == "yaml":
        return "\n".join(f"{name}: {value!r}" for name, value in ordered.items())
    raise EpicArError(f"unknown format {fmt!r}; choose yaml or json")
