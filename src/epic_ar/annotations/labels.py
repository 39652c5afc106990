"""Read the official annotation files (`EPIC_100_*.csv` or the pandas pickles `*.pkl`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from epic_ar.compat.pandas_pickles import read_pandas_pickle
from epic_ar.errors import EpicArError
from epic_ar.fileio.kinds import ANNOTATIONS, refuse_other_kind
from epic_ar.fileio.messages import one_line
from epic_ar.fileio.paths import os_reason, require_file

# Columns holding frame numbers: 1-based whole numbers wherever an annotation file has them.
FRAME_COLUMNS = ("start_frame", "stop_frame")
# Larger frame numbers are typing mistakes (EPIC's longest video has ~0.4 million frames);
# refusing them keeps every consumer within int32 and away from absurd allocations.
MAX_FRAME_NUMBER = 2**31 - 1
# The `attrs` key naming the file that rows passed on in place of it were read from, for
# messages about them (pandas keeps `attrs` in subsets; it also pickles them, so a frame that
# is written out again must not carry one).
SOURCE_ATTR = "source"


def _read_annotation_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EpicArError(f"{path}: not a readable CSV file ({one_line(exc)})") from exc


def _describe(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "empty"
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_frame_numbers(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """`frame`, its `FRAME_COLUMNS` made int64 (in place), after checking that every value
    is a whole number in [1, MAX_FRAME_NUMBER] (frame numbers are 1-based).

    Raises:
        EpicArError: naming `source`, the first bad row (position and narration id), the
            column and the value: text ("abc"), a fraction (12.5), an empty cell, < 1.
    """
    for column in [c for c in FRAME_COLUMNS if c in frame.columns]:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values.dtype):
            numbers = np.full(len(values), np.nan)
        else:
            numeric = pd.to_numeric(values, errors="coerce")
            numbers = np.asarray(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
        with np.errstate(invalid="ignore"):
            bad = ~((numbers >= 1) & (numbers <= MAX_FRAME_NUMBER) & (numbers == np.floor(numbers)))
        if bad.any():
            row = int(np.argmax(bad))
            raise EpicArError(
                f"{source}: {column} of segment {frame.index[row]} (data row {row + 1}) is "
                f"{_describe(values.iloc[row])}, not a frame number (a whole number from 1 to "
                f"{MAX_FRAME_NUMBER})"
            )
        if values.dtype != np.int64:
            frame[column] = numbers.astype(np.int64)
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, source: str) -> None:
    """Raise an EpicArError naming `source` and the missing ones unless all `columns` exist."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise EpicArError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(map(str, frame.columns)) or 'none'})"
        )


def read_annotations(path: Path, *, required_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read an official annotation file into a DataFrame indexed by `narration_id`.

    Accepts the CSV form (`EPIC_100_validation.csv`) and the pandas pickle form
    (`EPIC_100_validation.pkl`, already indexed by `narration_id`), recognised by content:
    a file starting with a pickle protocol header is read as a pickle whatever its suffix.

    `start_frame` / `stop_frame`, where present, are checked (`check_frame_numbers`) and
    returned as int64.

    Raises:
        WrongKindError: `path` holds another kind of file (results, a checkpoint, ...).
        EpicArError: the file is missing, a folder or unreadable, lacks `narration_id` or
            one of `required_columns`, repeats a narration id, or has a bad frame number.
    """
    require_file(path)
    try:
        with path.open("rb") as file:
            head = file.read(2)
    except OSError as exc:
        raise EpicArError(f"{path}: cannot read ({os_reason(exc)})") from exc
    is_pickle = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    try:
        frame = read_pandas_pickle(path) if is_pickle else _read_annotation_csv(path)
        if "narration_id" in frame.columns:
            frame = frame.set_index("narration_id")
        elif frame.index.name != "narration_id":
            raise EpicArError(f"{path}: no 'narration_id' column or index")
    except EpicArError as exc:
        refuse_other_kind(path, ANNOTATIONS, exc)  # a results file, a checkpoint, ...: say so
        raise
    frame.index = frame.index.astype(str)
    require_columns(frame, required_columns, source=str(path))
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise EpicArError(
            f"{path}: narration id {duplicated[0]!r} appears more than once "
            f"({len(duplicated)} repeated rows)"
        )
    check_identifiers(frame, source=str(path))
    return check_frame_numbers(frame, source=str(path))


IDENTIFIER_COLUMNS = ("participant_id", "video_id")


def check_identifiers(frame: pd.DataFrame, *, source: str) -> None:
    """Refuse an empty `participant_id` or `video_id` where the column exists: it would
    name a folder "nan" when the frames are looked for.

    Raises:
        EpicArError: naming `source`, the first such segment and the column.
    """
    for column in IDENTIFIER_COLUMNS:
        if column not in frame.columns:
            continue
        values = frame[column]
        empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            row = int(empty.argmax())
            raise EpicArError(f"{source}: segment {frame.index[row]}: {column} is empty")
