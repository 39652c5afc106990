"""The figures of the evaluation report (matplotlib, drawn off-screen into PNG files).

Top-1 here is the argmax class; an action is right when both its verb and its noun are (the
official action top-1: the pair of highest probability product is the pair of argmaxes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from epic_ar.annotations.classes import class_names

RIGHT_COLOUR, TAIL_COLOUR, UNSEEN_COLOUR = "#4c72b0", "#dd8452", "#c44e52"
DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    _pyplot().close(figure)


def per_class_accuracy(
    predicted: np.ndarray,
    labels: np.ndarray,
    *,
    kind: str,
    tail: np.ndarray | None,
    limit: int,
    path: Path,
) -> list[int]:
    """Bar chart of top-1 accuracy (%) for the `limit` most frequent classes of `labels`
    ([N] int), most frequent first, tail classes in another colour. Returns those classes."""
    classes, counts = np.unique(labels, return_counts=True)
    order = np.lexsort((classes, -counts))[:limit]
    shown, shown_counts = classes[order], counts[order]
    accuracy = [100 * float(np.mean(predicted[labels == c] == c)) for c in shown]
    in_tail = np.isin(shown, tail) if tail is not None else np.zeros(len(shown), bool)
    names = class_names(kind)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(6.0, 0.28 * len(shown) + 1.5), 4.2))
    colours = [TAIL_COLOUR if t else RIGHT_COLOUR for t in in_tail]
    axes.bar(range(len(shown)), accuracy, color=colours)
    labels_text = [
        f"{names.get(int(c), c)} ({n})" for c, n in zip(shown, shown_counts, strict=True)
    ]
    axes.set_xticks(range(len(shown)), labels_text, rotation=90, fontsize=7)
    axes.set_ylim(0, 100)
    axes.set_ylabel("top-1 accuracy (%)")
    tail_note = "; tail in orange" if tail is not None else ""
    axes.set_title(f"{kind}s, most frequent first (segments){tail_note}", fontsize=10)
    _save(figure, path)
    return [int(c) for c in shown]


def confusion_matrix(
    predicted: np.ndarray, labels: np.ndarray, classes: Sequence[int], *, kind: str, path: Path
) -> np.ndarray:
    """Row-normalised confusion of `classes` (rows: true class, columns: predicted; a last
    column for predictions outside `classes`). Returns the [K, K+1] matrix (rows sum to 1)."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes) + 1))
    for true, guess in zip(labels, predicted, strict=True):
        if int(true) in index:
            matrix[index[int(true)], index.get(int(guess), len(classes))] += 1
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    names = class_names(kind)
    plt = _pyplot()
    side = 0.32 * len(classes) + 2.5
    figure, axes = plt.subplots(figsize=(side + 1.2, side))
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ticks = [names.get(c, str(c)) for c in classes]
    axes.set_xticks(range(len(classes) + 1), [*ticks, "other"], rotation=90, fontsize=7)
    axes.set_yticks(range(len(classes)), ticks, fontsize=7)
    axes.set_xlabel(f"predicted {kind}")
    axes.set_ylabel(f"true {kind}")
    axes.set_title(f"the {len(classes)} most frequent {kind}s, rows normalised")
    figure.colorbar(image, ax=axes, fraction=0.04)
    _save(figure, path)
    return matrix


def per_participant_accuracy(
    correct: dict[str, np.ndarray],
    participants: np.ndarray,
    *,
    unseen: np.ndarray | None,
    path: Path,
) -> dict[str, dict[str, float]]:
    """Grouped bars: top-1 accuracy (%) of each `correct` part ([N] bool: verb, noun,
    action) for each participant, unseen participants' names marked. Returns the values."""
    people = sorted(set(participants.tolist()))
    values = {
        person: {part: 100 * float(right[participants == person].mean())
                 for part, right in correct.items()}
        for person in people
    }  # fmt: skip
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(people) + 1.5), 4.0))
    width = 0.8 / len(correct)
    for offset, part in enumerate(correct):
        xs = np.arange(len(people)) + (offset - (len(correct) - 1) / 2) * width
        axes.bar(xs, [values[p][part] for p in people], width, label=part)
    is_unseen = set(unseen.tolist()) if unseen is not None else set()
    tick_labels = [f"{p}*" if p in is_unseen else p for p in people]
    axes.set_xticks(range(len(people)), tick_labels, rotation=90, fontsize=8)
    for tick, person in zip(axes.get_xticklabels(), people, strict=True):
        if person in is_unseen:
            tick.set_color(UNSEEN_COLOUR)
    axes.set_ylim(0, 100)
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title("per participant" + ("; * (red): unseen in training" if is_unseen else ""))
    axes.legend(fontsize=8)
    _save(figure, path)
    return values


def predicted_distribution(predicted: np.ndarray, *, kind: str, limit: int, path: Path) -> None:
    """Label-free: how often each class is the top-1 prediction (the `limit` most often)."""
    classes, counts = np.unique(predicted, return_counts=True)
    order = np.lexsort((classes, -counts))[:limit]
    names = class_names(kind)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(6.0, 0.28 * len(order) + 1.5), 4.0))
    axes.bar(range(len(order)), 100 * counts[order] / len(predicted), color=RIGHT_COLOUR)
    ticks = [names.get(int(c), str(c)) for c in classes[order]]
    axes.set_xticks(range(len(order)), ticks, rotation=90, fontsize=7)
    axes.set_ylabel("share of segments (%)")
    axes.set_title(f"top-1 predicted {kind}s (the {len(order)} most often predicted)")
    _save(figure, path)


def confidence_histogram(confidence: dict[str, np.ndarray], path: Path) -> None:
    """Label-free: histograms of the top-1 softmax probability ([N] float per part)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.0, 3.6))
    bins = np.linspace(0, 1, 21)
    for part, values in confidence.items():
        axes.hist(values, bins=bins, alpha=0.6, label=part)
    axes.set_xlabel("top-1 softmax probability")
    axes.set_ylabel("segments")
    axes.set_title("how sure the model is")
    axes.legend(fontsize=8)
    _save(figure, path)
