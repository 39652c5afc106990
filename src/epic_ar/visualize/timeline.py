"""`predict --timeline`: a video's top-1 verb and noun over time as coloured bands (PNG).

Which window speaks for an instant: `nearest_windows` (the window whose centre is nearest,
ties to the earlier one). The annotated video uses the same rule, so the picture and the
video agree about what is shown when.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path, check_can_write
from epic_ar.prediction.result import ClassScore, VideoPrediction, WindowPrediction

# The picture is always TIMELINE_SIZE pixels (width, height), whatever the video's length:
# a figure of TIMELINE_SIZE / DPI inches saved at DPI, with the axes at fixed places.
TIMELINE_SIZE = (1600, 400)
DPI = 100
# Axes boxes as fractions of the figure (left, bottom, width, height); the legends use the
# figure's right fifth.
VERB_ROW = (0.06, 0.55, 0.74, 0.30)
NOUN_ROW = (0.06, 0.17, 0.74, 0.30)
LEGEND_ENTRIES = 6  # per row: the classes that cover the most time
LABEL_PADDING = 6  # pixels a band must have beside its name for the name to be written
GOLDEN_RATIO_CONJUGATE = 0.6180339887498949


def check_windows(prediction: VideoPrediction) -> np.ndarray:
    """The windows' centres [W] float64 seconds, after checking there is a window and that
    they are in time order (centres non-decreasing) as `predict` makes them.

    Raises:
        EpicArError: no windows, or windows out of order.
    """
    if not prediction.windows:
        raise EpicArError(f"{prediction.video}: the prediction holds no windows to draw")
    centres = np.array([(w.start + w.end) / 2 for w in prediction.windows], dtype=np.float64)
    if np.any(np.diff(centres) < 0):
        raise EpicArError(f"{prediction.video}: the prediction's windows are not in time order")
    return centres


def nearest_windows(times: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each time [N] (seconds), the index of the window whose centre is nearest (ties: the
    earlier window). `centres` [W] seconds, non-decreasing. Returns [N] int64.

    Times before the first centre get the first window and times after the last centre the
    last one, so a video's end that no window covers shows the last window.
    """
    times = np.asarray(times, dtype=np.float64)
    after = np.searchsorted(centres, times, side="left")  # first centre >= t
    later = np.minimum(after, len(centres) - 1)
    earlier = np.maximum(after - 1, 0)
    # Among equal centres the first counts (ties go to the earlier window).
    earlier = np.searchsorted(centres, centres[earlier], side="left")
    take_earlier = (after > 0) & (
        (after == len(centres)) | (times - centres[earlier] <= centres[later] - times)
    )
    return np.where(take_earlier, earlier, later).astype(np.int64)


def window_spans(centres: np.ndarray, duration: float) -> np.ndarray:
    """[W, 2] seconds: the part of [0, `duration`] for which each window is the nearest
    (`nearest_windows`): from the midpoint with the previous centre to the midpoint with the
    next; the first span starts at 0 and the last ends at `duration`."""
    middles = (centres[:-1] + centres[1:]) / 2
    starts = np.concatenate([[0.0], middles])
    stops = np.concatenate([middles, [max(duration, float(centres[-1]))]])
    return np.stack([starts, np.maximum(starts, stops)], axis=1)


def class_colour(class_id: int) -> tuple[float, float, float]:
    """RGB in [0, 1] of a class, the same in every picture: hues spread by the golden ratio,
    so that classes with neighbouring ids get clearly different colours, and saturation and
    brightness cycling with the id (period 3 and 2), so that classes of similar hue mostly
    still differ."""
    hue = (class_id * GOLDEN_RATIO_CONJUGATE) % 1.0
    return colorsys.hsv_to_rgb(hue, (0.9, 0.65, 0.45)[class_id % 3], (0.9, 0.7)[class_id % 2])


@dataclass(frozen=True)
class Band:
    """Consecutive windows with the same top-1 class: `start` to `stop` seconds."""

    class_id: int
    name: str
    start: float
    stop: float


def top1(window: WindowPrediction, kind: str) -> ClassScore:
    """The window's most probable verb or noun (`kind`)."""
    scores = window.verbs if kind == "verb" else window.nouns
    if not scores:
        raise EpicArError(f"window {window.start:g}-{window.end:g} s: no {kind}s to draw")
    return scores[0]


def merged_bands(best: Sequence[ClassScore], spans: np.ndarray) -> list[Band]:
    """Runs of consecutive windows with the same top-1 class, each as one band."""
    bands: list[Band] = []
    for score, (start, stop) in zip(best, spans.tolist(), strict=True):
        if bands and bands[-1].class_id == score.id:
            bands[-1] = Band(score.id, score.name, bands[-1].start, stop)
        else:
            bands.append(Band(score.id, score.name, start, stop))
    return bands


def _draw_row(
    renderer: RendererAgg,
    axes: Axes,
    best: Sequence[ClassScore],
    spans: np.ndarray,
    duration: float,
    kind: str,
) -> None:
    """One row of bands (each window's span in its class colour, opacity = p), names written
    on the merged bands they fit on, and a legend of the classes covering the most time."""
    colours = [(*class_colour(s.id), float(np.clip(s.p, 0.0, 1.0))) for s in best]
    ranges = [(float(a), float(b - a)) for a, b in spans]
    axes.broken_barh(ranges, (0, 1), facecolors=colours, linewidth=0, antialiased=False)
    axes.set_xlim(0, duration)
    axes.set_ylim(0, 1)
    axes.set_yticks([0.5], [f"top-1\n{kind}"])
    for band in merged_bands(best, spans):
        text = axes.text(
            (band.start + band.stop) / 2, 0.5, band.name, ha="center", va="center", fontsize=9
        )
        left, right = axes.transData.transform([(band.start, 0), (band.stop, 0)])[:, 0]
        if text.get_window_extent(renderer).width + 2 * LABEL_PADDING > right - left:
            text.remove()  # too narrow: the legend names the frequent classes instead
    covered: dict[int, float] = {}
    names = {s.id: s.name for s in best}
    for score, (start, stop) in zip(best, spans.tolist(), strict=True):
        covered[score.id] = covered.get(score.id, 0.0) + stop - start
    ranked = sorted(covered, key=lambda c: (-covered[c], c))
    handles = [Patch(color=class_colour(c), label=names[c]) for c in ranked[:LEGEND_ENTRIES]]
    more = len(ranked) - LEGEND_ENTRIES
    title = f"{kind}s ({more} more)" if more > 0 else f"{kind}s"
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
        title=title, title_fontsize=8, frameon=False,
    )  # fmt: skip


def timeline_figure(prediction: VideoPrediction) -> Figure:
    """The timeline of `prediction` (see `write_timeline`) as a matplotlib figure."""
    centres = check_windows(prediction)
    duration = prediction.frames / prediction.fps if prediction.fps > 0 else 0.0
    spans = window_spans(centres, duration)
    duration = float(spans[-1, 1])
    figure = Figure(figsize=(TIMELINE_SIZE[0] / DPI, TIMELINE_SIZE[1] / DPI), dpi=DPI)
    renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]
    verb_axes = figure.add_axes(VERB_ROW)
    noun_axes = figure.add_axes(NOUN_ROW, sharex=verb_axes)
    verb_axes.tick_params(labelbottom=False)
    for axes, kind in ((verb_axes, "verb"), (noun_axes, "noun")):
        best = [top1(w, kind) for w in prediction.windows]
        _draw_row(renderer, axes, best, spans, duration, kind)
    noun_axes.set_xlabel("time (s)")
    figure.suptitle(
        f"{Path(prediction.video).name}: {prediction.model}, windows of {prediction.window:g} s "
        f"every {prediction.stride:g} s; opacity = probability",
        fontsize=10,
    )
    return figure


def write_timeline(prediction: VideoPrediction, path: Path, *, force: bool = False) -> Path:
    """Draw the top-1 verb and noun of every window over time into the PNG `path`.

    Two rows of coloured bands, verbs above nouns, along the video's time in seconds (0 to
    frames / fps). Each instant shows the window whose centre is nearest to it
    (`nearest_windows`): a window's band runs from the midpoint with the previous window's
    centre to the midpoint with the next one, the first from 0 and the last to the video's
    end. A band's colour is its class's (`class_colour`, fixed per class id) and its opacity
    is the class's probability p. Consecutive windows with the same class make one band,
    named on the band when the name fits; a legend beside each row names the classes that
    cover the most time. The picture is always `TIMELINE_SIZE` pixels (1600 x 400).

    Raises:
        EpicArError: `path` does not end in .png, exists without `force`, or cannot be
            written; the prediction has no windows.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise EpicArError(f"{path}: the timeline is a PNG picture; give a name ending in .png")
    check_can_write(path, force=force)  # before drawing
    figure = timeline_figure(prediction)
    with atomic_write_path(path, force=force) as temporary:
        figure.savefig(temporary, dpi=DPI, format="png")
    return path
