"""Convert RGB frame numbers to optical-flow frame numbers.

Flow was extracted with a temporal stride of 2 for the 2018 videos (2-digit suffix,
`P01_01`) and of 1 for the 2020 videos (3-digit suffix, `P01_101`). Frame numbers are
1-based: flow frame = (rgb frame - 1) // stride + 1.

A converted table gets a `frame_numbers` column holding "flow". Converting twice would
halve the 2018 videos' numbers twice and silently point at the wrong frames, and nothing in
the numbers themselves tells the two apart, so that column is the record: a table holding
it is refused by the conversion, and by the readers that need RGB frame numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.annotations.labels import check_frame_numbers, read_annotations, require_columns
from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path, check_can_write

FRAME_NUMBERS_COLUMN = "frame_numbers"
FLOW_NUMBERS = "flow"
STRIDES = (1, 2)
# The video number's digits give the year: P01_01 (2018), P01_101 (2020).
_VIDEO_NUMBER = r"^P\d+_(\d+)$"
_STRIDE_OF_DIGITS = {2: 2, 3: 1}


class UnknownVideoError(EpicArError):
    """A video whose name does not say which flow stride it was extracted with."""


def holds_flow_frame_numbers(labels: pd.DataFrame) -> bool:
    """Whether `labels` says it holds flow frame numbers (a converted table)."""
    if FRAME_NUMBERS_COLUMN not in labels.columns:
        return False
    return bool((labels[FRAME_NUMBERS_COLUMN].astype(str) == FLOW_NUMBERS).any())


def flow_stride(
    video_ids: pd.Series, *, unknown_video_stride: int | None = None, source: str = "annotations"
) -> np.ndarray:
    """[N] int: 2 for 2018 videos (`P01_01`), 1 for 2020 videos (`P01_101`), and
    `unknown_video_stride` for videos named otherwise.

    Raises:
        UnknownVideoError: a video named otherwise and no `unknown_video_stride` (names the
            first such video, its segment and `source`).
    """
    if unknown_video_stride is not None and unknown_video_stride not in STRIDES:
        raise EpicArError(f"unknown_video_stride must be 1 or 2, not {unknown_video_stride}")
    digits = video_ids.astype(str).str.extract(_VIDEO_NUMBER, expand=False).str.len()
    stride = np.array(digits.map(_STRIDE_OF_DIGITS).to_numpy(dtype=np.float64, na_value=np.nan))
    unknown = np.isnan(stride)
    if unknown.any():
        if unknown_video_stride is None:
            row = int(np.argmax(unknown))
            raise UnknownVideoError(
                f"{source}: video {video_ids.iloc[row]!r} (segment {video_ids.index[row]}) is "
                "not named like an EPIC-KITCHENS video (P01_01: 2018, flow stride 2; P01_101: "
                "2020, stride 1), so its flow stride is unknown"
            )
        stride[unknown] = unknown_video_stride
    return stride.astype(np.int64)


def to_flow_frame_numbers(
    labels: pd.DataFrame, *, unknown_video_stride: int | None = None, source: str = "annotations"
) -> pd.DataFrame:
    """A copy of `labels` with every column whose name ends in `frame` converted, and the
    `frame_numbers` column set to "flow".

    Raises:
        EpicArError: `labels` already holds flow frame numbers, has a bad frame number, or
            (`UnknownVideoError`) a video of unknown stride (see `flow_stride`).
    """
    if holds_flow_frame_numbers(labels):
        raise EpicArError(
            f"{source}: already holds flow frame numbers (its {FRAME_NUMBERS_COLUMN} column "
            f"says {FLOW_NUMBERS}); converting again would give the wrong frames"
        )
    converted = check_frame_numbers(labels.copy(), source=source)
    stride = flow_stride(
        labels["video_id"], unknown_video_stride=unknown_video_stride, source=source
    )
    for column in [c for c in labels.columns if str(c).endswith("frame")]:
        values = converted[column]
        if len(values) and not pd.api.types.is_integer_dtype(values):  # start/stop: checked
            raise EpicArError(
                f"{source}: column {column!r} is named like a frame number but holds "
                f"{values.iloc[0]!r}, not whole numbers; rename it or make it whole numbers"
            )
        converted[column] = (values.to_numpy() - 1) // stride + 1
    converted[FRAME_NUMBERS_COLUMN] = FLOW_NUMBERS
    return converted


def convert_annotation_file(
    source: Path,
    target: Path,
    *,
    force: bool = False,
    unknown_video_stride: int | None = None,
) -> int:
    """Write `target` (.csv or .pkl, by its suffix) with flow frame numbers; returns rows.

    Raises:
        EpicArError: see `read_annotations` and `to_flow_frame_numbers`; `target` exists
            (without `force`) or cannot be written.
    """
    if target.suffix not in (".csv", ".pkl"):
        raise EpicArError(f"{target}: output must end in .csv or .pkl")
    check_can_write(target, force=force)
    labels = read_annotations(source)
    require_columns(labels, ["video_id", "start_frame", "stop_frame"], source=str(source))
    converted = to_flow_frame_numbers(
        labels, unknown_video_stride=unknown_video_stride, source=str(source)
    )
    with atomic_write_path(target, force=force) as tmp:
        if target.suffix == ".csv":
            converted.to_csv(tmp)
        else:
            converted.to_pickle(tmp)
    return len(converted)
