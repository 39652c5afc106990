"""`epic-ar evaluate ... --report DIR`: an HTML page of where a model is right and wrong.

DIR gets `index.html` and the PNG figures it shows (next to it, so the folder is the
report). With labels: per-class accuracy (verbs; the most frequent nouns) with tail classes
marked, the confusion of the most frequent verbs, per-participant accuracy with unseen
participants marked, the metric table. Without (the test split): what can be seen without
labels, the predicted-class distributions and the model's confidence.
"""

from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar import __version__
from epic_ar.annotations.classes import N_VERBS, read_participant_ids, read_tail_classes
from epic_ar.errors import EpicArError
from epic_ar.evaluation.evaluate import GroupTables, label_rows
from epic_ar.evaluation.results import Results
from epic_ar.fileio.atomic import FORCE
from epic_ar.fileio.paths import (
    check_folder_writable,
    make_folders,
    named_write_errors,
    remove_empty_folders,
)
from epic_ar.visualize import report_plots as plots

NOUNS_SHOWN = 40
VERBS_SHOWN = N_VERBS  # every verb
CONFUSED_VERBS = 20


@dataclass(frozen=True)
class Figure:
    file: str  # PNG name inside the report folder
    title: str
    note: str


def softmax_max(scores: np.ndarray) -> np.ndarray:
    """[N, C] scores → [N] the largest softmax probability of each row."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    top: np.ndarray = (exp.max(axis=1) / exp.sum(axis=1)).astype(np.float64)
    return top


def labelled_figures(
    results: Results, labels: pd.DataFrame, tables: GroupTables, folder: Path
) -> list[Figure]:
    """Draw the label views into `folder`; `labels` are the results' rows, in order."""
    verbs = labels["verb_class"].to_numpy(np.int64)
    nouns = labels["noun_class"].to_numpy(np.int64)
    verb_guess = results.verb_output.argmax(axis=1)
    noun_guess = results.noun_output.argmax(axis=1)
    tail_verbs = read_tail_classes(tables.tail_verbs, "verb") if tables.tail_verbs else None
    tail_nouns = read_tail_classes(tables.tail_nouns, "noun") if tables.tail_nouns else None
    unseen = (
        read_participant_ids(tables.unseen_participants) if tables.unseen_participants else None
    )
    plots.per_class_accuracy(
        verb_guess, verbs, kind="verb", tail=tail_verbs, limit=VERBS_SHOWN,
        path=folder / "verb_accuracy.png",
    )  # fmt: skip
    plots.per_class_accuracy(
        noun_guess, nouns, kind="noun", tail=tail_nouns, limit=NOUNS_SHOWN,
        path=folder / "noun_accuracy.png",
    )  # fmt: skip
    frequent = pd.Series(verbs).value_counts(sort=True).index[:CONFUSED_VERBS]
    plots.confusion_matrix(
        verb_guess, verbs, [int(c) for c in frequent], kind="verb",
        path=folder / "verb_confusion.png",
    )  # fmt: skip
    correct = {"verb": verb_guess == verbs, "noun": noun_guess == nouns}
    correct["action"] = correct["verb"] & correct["noun"]
    plots.per_participant_accuracy(
        correct, labels["participant_id"].astype(str).to_numpy(), unseen=unseen,
        path=folder / "participant_accuracy.png",
    )  # fmt: skip
    return [
        Figure("verb_accuracy.png", "Verbs: top-1 accuracy per class",
               "Every verb of the split, most frequent first; tail classes in orange."),
        Figure("noun_accuracy.png", f"Nouns: the {NOUNS_SHOWN} most frequent",
               "Top-1 accuracy per class, most frequent first; tail classes in orange."),
        Figure("verb_confusion.png", f"Confusion of the {CONFUSED_VERBS} most frequent verbs",
               "Each row is a true verb, normalised to 1; 'other' collects predictions "
               "outside these verbs."),
        Figure("participant_accuracy.png", "Accuracy per participant",
               "Verb, noun and action top-1; unseen participants marked with *."),
    ]  # fmt: skip


def label_free_figures(results: Results, folder: Path) -> list[Figure]:
    verb_guess = results.verb_output.argmax(axis=1)
    noun_guess = results.noun_output.argmax(axis=1)
    for kind, guess in (("verb", verb_guess), ("noun", noun_guess)):
        path = folder / f"predicted_{kind}s.png"
        plots.predicted_distribution(guess, kind=kind, limit=40, path=path)
    confidence = {
        "verb": softmax_max(results.verb_output),
        "noun": softmax_max(results.noun_output),
    }
    plots.confidence_histogram(confidence, folder / "confidence.png")
    return [
        Figure("predicted_verbs.png", "Predicted verbs", "How often each verb is the top-1."),
        Figure("predicted_nouns.png", "Predicted nouns", "How often each noun is the top-1."),
        Figure("confidence.png", "Confidence", "The top-1 softmax probability, per segment."),
    ]


def render_html(
    figures: list[Figure], metrics: dict[str, float] | None, provenance: dict[str, str]
) -> str:
    """The report page: provenance, metric table (or why there is none), the figures."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in provenance.items()
    )
    if metrics is not None:
        metric_rows = "".join(
            f"<tr><th>{html.escape(name)}</th><td>{value:.2f}</td></tr>"
            for name, value in sorted(metrics.items())
        )
        metric_part = f"<h2>Metrics (%)</h2><table>{metric_rows}</table>"
    else:
        metric_part = (
            "<h2>No metrics</h2><p>The labels file has no verb or noun classes (the test "
            "split's are not public), so only label-free views are possible.</p>"
        )
    figure_part = "".join(
        f"<h2>{html.escape(f.title)}</h2><p>{html.escape(f.note)}</p>"
        f'<img src="{html.escape(f.file)}" alt="{html.escape(f.title)}">'
        for f in figures
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>epic-ar evaluation report'
        "</title><style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}img{max-width:100%}</style></head><body>"
        f"<h1>Evaluation report</h1><table>{rows}</table>{metric_part}{figure_part}"
        "</body></html>\n"
    )


def check_report_dir(out_dir: Path, *, force: bool) -> None:
    """Refuse early (before any work) a report folder that is a file, that cannot be
    written, or that holds anything already unless `force` (then our files in it are
    replaced, others left alone)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise EpicArError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        what = "a report (index.html)" if (out_dir / "index.html").exists() else "files"
        raise EpicArError(f"{out_dir}: holds {what} already; pass ", FORCE, " to write into it")
    check_folder_writable(out_dir, out_dir if out_dir.is_dir() else out_dir.parent)


def write_report(
    results: Results,
    *,
    results_path: Path,
    labels_path: Path,
    labels: pd.DataFrame,
    tables: GroupTables,
    metrics: dict[str, float] | None,
    out_dir: Path,
    force: bool = False,
) -> list[str]:
    """Write the report into `out_dir` (created if missing; a folder holding files only
    with `force`, and then our files in it are replaced). `labels`: the annotations read
    from `labels_path`; `metrics` None when they hold no classes. Returns the names of the
    files written."""
    check_report_dir(out_dir, force=force)
    segment_labels = label_rows(results, labels, labels_source=str(labels_path))
    provenance = {
        "results": str(results_path.resolve()),
        "labels": str(labels_path.resolve()),
        "segments": str(len(results)),
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "by": f"epic-ar {__version__}",
    }
    created: list[Path] = []
    try:
        with named_write_errors(out_dir):
            created = make_folders(out_dir.parent)
            scratch = tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent)
        with scratch as tmp, named_write_errors(out_dir, Path(tmp)):
            folder = Path(tmp)
            if metrics is not None:
                figures = labelled_figures(results, segment_labels, tables, folder)
            else:
                figures = label_free_figures(results, folder)
            (folder / "index.html").write_text(render_html(figures, metrics, provenance))
            out_dir.mkdir(exist_ok=True)
            names = [f.file for f in figures] + ["index.html"]  # the page last: names the rest
            for name in names:
                (folder / name).replace(out_dir / name)
    finally:
        if not out_dir.exists():
            remove_empty_folders(created)
    return names
