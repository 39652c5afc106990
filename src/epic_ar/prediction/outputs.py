"""What `predict` writes and prints: the JSON or CSV file of every window's top classes,
and a short table of the top-1 action, verb and noun of each window."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path, check_can_write
from epic_ar.prediction.result import VideoPrediction

OUTPUT_SUFFIXES = (".json", ".csv")
CSV_COLUMNS = (
    "start",
    "end",
    "rank",
    "verb_id",
    "verb",
    "verb_p",
    "noun_id",
    "noun",
    "noun_p",
    "action_verb_id",
    "action_noun_id",
    "action",
    "action_p",
)


@dataclass(frozen=True)
class PredictionOutputs:
    """Files `predict` writes (None: not asked for): `out` the predictions (.json or .csv),
    `timeline` the timeline picture (.png), `video_out` the annotated video (.mp4)."""

    out: Path | None = None
    timeline: Path | None = None
    video_out: Path | None = None


def check_outputs(
    outputs: PredictionOutputs, *, force: bool = False, video: Path | None = None
) -> None:
    """Refuse, before any work, outputs of an unknown type, existing files without `force`
    (or folders that cannot be written), and an output that is the input `video`, even
    with `force`.

    Raises:
        EpicArError: naming the file.
    """
    suffixes = {
        "out": (outputs.out, OUTPUT_SUFFIXES, "predictions are written as .json or .csv"),
        "timeline": (outputs.timeline, (".png",), "the timeline is a PNG picture"),
        "video_out": (outputs.video_out, (".mp4",), "the annotated video is an MP4"),
    }
    for path, allowed, what in suffixes.values():
        if path is None:
            continue
        if path.suffix.lower() not in allowed:
            names = " or ".join(allowed)
            raise EpicArError(f"{path}: {what}; give a name ending in {names}")
        check_can_write(path, force=force)
    paths = [p.resolve() for p, _, _ in suffixes.values() if p is not None]
    if len(set(paths)) < len(paths):
        raise EpicArError("two outputs name the same file")
    if video is not None and video.resolve() in paths:
        raise EpicArError(f"{video}: is the input video; write the outputs to other files")


def write_predictions(prediction: VideoPrediction, path: Path, *, force: bool = False) -> Path:
    """Write `prediction` to `path`, atomically: .json (`VideoPrediction.to_json_dict`'s
    layout) or .csv (`prediction_rows`).

    Raises:
        EpicArError: another suffix, or `path` exists without `force`.
    """
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise EpicArError(f"{path}: predictions are written as .json or .csv")
    with atomic_write_path(path, force=force) as temporary, temporary.open("w") as file:
        if suffix == ".json":
            json.dump(prediction.to_json_dict(), file, indent=1, allow_nan=False)
            file.write("\n")
        else:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            writer.writerows(prediction_rows(prediction))
    return path


def prediction_rows(prediction: VideoPrediction) -> list[list[object]]:
    """One row per window and rank (1, 2, ...) in `CSV_COLUMNS` order: the window's
    rank-th verb, noun and action; empty cells past the end of a shorter list (top-k above
    the 97 verbs)."""
    rows: list[list[object]] = []
    for window in prediction.windows:
        ranks = max(len(window.verbs), len(window.nouns), len(window.actions))
        for rank in range(ranks):
            row: list[object] = [window.start, window.end, rank + 1]
            for scores in (window.verbs, window.nouns):
                score = scores[rank] if rank < len(scores) else None
                row += ["", "", ""] if score is None else [score.id, score.name, score.p]
            action = window.actions[rank] if rank < len(window.actions) else None
            if action is None:
                row += ["", "", "", ""]
            else:
                row += [action.verb_id, action.noun_id, action.name, action.p]
            rows.append(row)
    return rows


def format_p(p: float, decimals: int = 3) -> str:
    """A probability for people to read: `decimals` decimals ("0.207"), or, below
    10**-decimals, where those would all be 0, two significant digits in scientific
    notation ("4.2e-05"). An action's p is the product of a verb's and a noun's, so a
    weak model's is often that small. Exactly 0 is "0"."""
    if p == 0:
        return "0"
    if p < 10**-decimals:
        return f"{p:.1e}"
    return f"{p:.{decimals}f}"


def table_lines(prediction: VideoPrediction) -> list[str]:
    """A short table, one line per window: its time range, top-1 action and p, top-1 verb
    and noun with their p (`format_p`)."""
    header = ("start", "end", "action", "p", "verb", "p", "noun", "p")
    cells = [
        (
            f"{w.start:.2f}",
            f"{w.end:.2f}",
            w.actions[0].name if w.actions else "",
            format_p(w.actions[0].p) if w.actions else "",
            w.verbs[0].name if w.verbs else "",
            format_p(w.verbs[0].p) if w.verbs else "",
            w.nouns[0].name if w.nouns else "",
            format_p(w.nouns[0].p) if w.nouns else "",
        )
        for w in prediction.windows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    numeric = {0, 1, 3, 5, 7}  # right-aligned columns

    def line(row: tuple[str, ...]) -> str:
        parts = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(header), *(line(row) for row in cells)]


def summary_lines(
    prediction: VideoPrediction, outputs: PredictionOutputs, *, seconds: float
) -> list[str]:
    """What was done and where its files are: the windows scored, then one line per file."""
    windows = len(prediction.windows)
    lines = [
        f"{prediction.video}: {windows} window{'s' if windows != 1 else ''} of "
        f"{prediction.window:g} s every {prediction.stride:g} s ({prediction.frames} frames at "
        f"{prediction.fps:.5g} fps) scored by {prediction.model} in {seconds:.1f} s"
    ]
    written = [
        ("predictions", outputs.out),
        ("timeline", outputs.timeline),
        ("annotated video", outputs.video_out),
    ]
    lines += [f"{what}: {path}" for what, path in written if path is not None]
    return lines
