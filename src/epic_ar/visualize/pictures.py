"""Segments as pictures for a person to check (`epic-ar show`): which segments, their frames as
RGB images (flow colour-coded or as u/v greyscale), and a caption from their annotations.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.annotations.classes import class_names
from epic_ar.annotations.labels import SOURCE_ATTR, read_annotations
from epic_ar.data.dataset import SegmentDataset, build_dataset
from epic_ar.data.decode import decoded_pixels
from epic_ar.data.sampling import sample_test_offsets, snippet_frame_indices
from epic_ar.data.segment_sources import is_gulp_directory
from epic_ar.errors import EpicArError, Parameter
from epic_ar.modality import Modality
from epic_ar.visualize.flow_colours import FlowView, flow_pictures


@dataclass(frozen=True)
class ShownSegment:
    """One segment ready to draw: `frames` [F, H, W, 3] uint8 and its caption."""

    narration_id: str
    caption: str
    frames: np.ndarray


@dataclass(frozen=True)
class Selection:
    """The segments to show: a training-mode dataset holding them, their table rows in it,
    and their annotations (indexed by narration id, in the order to show)."""

    dataset: SegmentDataset
    table_rows: list[int]
    annotations: pd.DataFrame


def select_segments(
    source: Path | None,
    modality: Modality | None,
    labels: Path | None,
    *,
    ids: Sequence[str] | None = None,
    random_count: int | None = None,
    seed: int = 0,
    frame_count: int = 8,
    input_size: int = 224,
    videos_dir: Path | None = None,
) -> Selection:
    """`ids`, else `random_count` random segments, else the first 4, of `source`: a gulp
    directory (annotations: its stored metadata; modality None: what it holds), or frame
    archives with `labels` (only the chosen segments' archives are indexed); or, with
    `source` None, of the videos under `videos_dir` with `labels` (only the chosen
    segments' videos are opened)."""
    if source is not None and is_gulp_directory(source):
        dataset = build_dataset(source, modality, frame_count, labels=labels, input_size=input_size)
        gulp = dataset.segments.gulp  # type: ignore[union-attr]
        stored = [str(i) for i in dataset.table.narration_id]
        chosen = known_ids(ids, stored, str(source)) or choose_ids(stored, random_count, seed)
        rows = pd.DataFrame([gulp.meta(i) for i in chosen], index=pd.Index(chosen))
    elif labels is None:
        if videos_dir is not None:
            raise EpicArError(f"{videos_dir}: to read videos, pass ", Parameter("labels"))
        raise EpicArError(
            f"{source}: not a gulp directory; to read frame archives, pass ", Parameter("labels")
        )
    else:
        everything = read_annotations(labels)
        listed = [str(i) for i in everything.index]
        chosen = known_ids(ids, listed, str(labels)) or choose_ids(listed, random_count, seed)
        rows = everything.loc[chosen]
        rows.attrs[SOURCE_ATTR] = str(labels)  # messages about these rows name the file
        dataset = build_dataset(
            source, modality, frame_count, labels=rows, input_size=input_size,
            videos_dir=videos_dir,
        )  # fmt: skip
    position = {str(n): i for i, n in enumerate(dataset.table.narration_id)}
    return Selection(dataset, [position[i] for i in chosen], rows)


def known_ids(ids: Sequence[str] | None, listed: Sequence[str], source: str) -> list[str]:
    """`ids` (none: []) after checking each is `listed`; an unknown one names close matches."""
    known = set(listed)
    for wanted in ids or []:
        if wanted not in known:
            close = difflib.get_close_matches(wanted, sorted(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EpicArError(f"{source}: no segment {wanted!r}{hint}")
    return list(ids or [])


def choose_ids(all_ids: Sequence[str], random_count: int | None, seed: int) -> list[str]:
    """`random_count` ids drawn without replacement (in their stored order), or the first 4."""
    if not all_ids:
        raise EpicArError("no segments to show")
    if random_count is None:
        return list(all_ids[:4])
    if random_count < 1:
        raise EpicArError(f"random_count: {random_count!r} is not an integer >= 1")
    count = min(random_count, len(all_ids))
    picked = np.sort(np.random.default_rng(seed).choice(len(all_ids), count, replace=False))
    return [all_ids[i] for i in picked]


def caption(narration_id: str, row: pd.Series) -> str:
    """'P01_01_1  "turn on tap"  verb 6 turn-on, noun 10 tap' (the parts the row holds)."""
    parts = [narration_id]
    if isinstance(row.get("narration"), str):
        parts.append(f'"{row["narration"]}"')
    for kind in ("verb", "noun"):
        value = row.get(f"{kind}_class")
        if value is not None and not pd.isna(value):
            name = class_names(kind).get(int(value), "?")
            parts.append(f"{kind} {int(value)} {name}")
    return "  ".join(parts)


def sampled_frames(
    dataset: SegmentDataset,
    row: int,
    *,
    flow_view: FlowView = "colour",
    as_input: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """[F, H, W, 3] uint8 pictures of segment `row` (a table row), F = the dataset's frame
    count: the frames test-mode sampling picks (whole frames), or with `as_input` one
    random training input (crop, resize, flip; the network's pixels before normalisation)."""
    count = dataset.frame_count
    if as_input:
        position = int(np.flatnonzero(dataset.rows == row)[0])
        frames = dataset[(position, seed)][0].numpy()  # [T, C, S, S]
        if dataset.modality == "rgb":
            return np.ascontiguousarray(frames.transpose(0, 2, 3, 1))
        return flow_pictures(frames[:, 0], frames[:, 1], flow_view)
    num_frames = int(dataset.table.num_frames[row])
    indices = snippet_frame_indices(sample_test_offsets(num_frames, count, 1), 1, num_frames)
    return frames_at(dataset, row, indices, flow_view)


def frames_at(
    dataset: SegmentDataset, row: int, indices: np.ndarray, flow_view: FlowView = "colour"
) -> np.ndarray:
    """[F, H, W, 3] uint8 whole frames `indices` of segment `row` (flow: pictures of pairs)."""
    try:
        decoded = decoded_pixels(dataset.segments.read_frames(row, indices))
    except (ValueError, EpicArError) as exc:
        raise EpicArError(f"segment {dataset.table.narration_id[row]}: {exc}") from exc
    if dataset.modality == "rgb":
        return decoded
    return flow_pictures(decoded[0::2, ..., 0], decoded[1::2, ..., 0], flow_view)
