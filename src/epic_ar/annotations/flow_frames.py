"""Convert RGB frame numbers to optical-flow frame numbers.

Flow was extracted with a temporal stride of 2 for the 2018 videos (2-digit suffix,
`P01_01`) and of 1 for the 2020 videos (3-digit suffix, `P01_101`). Frame numbers are
1-based: flow frame = (rgb frame - 1) // stride + 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.annotations.labels import read_annotations, require_columns
from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path, check_can_write


def flow_stride(video_ids: pd.Series) -> np.ndarray:
    """[N] int: 2 for 2018 videos (`P01_01`), 1 for 2020 videos (`P01_101`)."""
    suffix_length = video_ids.astype(str).str.rsplit("_", n=1).str[-1].str.len()
    return np.where(suffix_length.to_numpy() == 3, 1, 2)


def to_flow_frame_numbers(labels: pd.DataFrame) -> pd.DataFrame:
    """A copy of `labels` with every column whose name ends in `frame` converted."""
    converted: pd.DataFrame = labels.copy()
    stride = flow_stride(labels["video_id"])
    for column in [c for c in labels.columns if str(c).endswith("frame")]:
        converted[column] = (labels[column].to_numpy() - 1) // stride + 1
    return converted


def convert_annotation_file(source: Path, target: Path, *, force: bool = False) -> int:
    """Write `target` (.csv or .pkl, by its suffix) with flow frame numbers; returns rows."""
    if target.suffix not in (".csv", ".pkl"):
        raise EpicArError(f"{target}: output must end in .csv or .pkl")
    check_can_write(target, force=force)
    labels = read_annotations(source)
    require_columns(labels, ["video_id", "start_frame", "stop_frame"], source=str(source))
    converted = to_flow_frame_numbers(labels)
    with atomic_write_path(target, force=force) as tmp:
        if target.suffix == ".csv":
            converted.to_csv(tmp)
        else:
            converted.to_pickle(tmp)
    return len(converted)
