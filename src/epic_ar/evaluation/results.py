"""Results files: per-segment verb and noun scores keyed by narration id.

Two layouts are accepted, as by the official challenge tools:

- dict of arrays: `{"verb_output": [N, 97] float, "noun_output": [N, 300] float,
  "narration_id": [N] str, ...}`;
- list of per-segment dicts: `[{"verb_output": [97], "noun_output": [300],
  "narration_id": str, ...}, ...]`.

Other keys are kept. Results are always written in the dict layout with `torch.save`.
Files that epic-ar writes also hold `provenance`: how the scores were made, as plain values
(`epic-ar test`: checkpoint, data, frame count, views; `epic-ar fuse`: its inputs' records
and weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from epic_ar.annotations.classes import N_NOUNS, N_VERBS
from epic_ar.errors import EpicArError
from epic_ar.evaluation.serialization import load_data_file
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.fileio.kinds import RESULTS, RESULTS_KEYS, refuse_other_kind
from epic_ar.fileio.messages import listed

REQUIRED_KEYS = RESULTS_KEYS  # verb_output, noun_output, narration_id
SCORE_KEYS = REQUIRED_KEYS[:2]
N_CLASSES = {"verb_output": N_VERBS, "noun_output": N_NOUNS}
PROVENANCE_KEY = "provenance"


@dataclass
class Results:
    """Scores of N segments.

    Attributes:
        verb_output: [N, 97] float scores (logits; any monotonic score works for ranking).
        noun_output: [N, 300] float scores.
        narration_id: [N] str, unique.
        extra: other keys of the file, kept as loaded (arrays with N rows move with the
            segments when results are reordered).
    """

    verb_output: np.ndarray
    noun_output: np.ndarray
    narration_id: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.narration_id)

    def take(self, rows: np.ndarray) -> Results:
        """The results of `rows` ([M] int indices), in that order."""
        n = len(self)
        extra = {
            key: _take_rows(value, rows) if _has_rows(value, n) else value
            for key, value in self.extra.items()
        }
        return Results(
            self.verb_output[rows], self.noun_output[rows], self.narration_id[rows], extra
        )

    def to_dict(self) -> dict[str, Any]:
        """The dict layout, as written to disk."""
        return {
            "verb_output": self.verb_output,
            "noun_output": self.noun_output,
            "narration_id": self.narration_id,
            **self.extra,
        }


def _has_rows(value: Any, n: int) -> bool:
    return isinstance(value, (np.ndarray, list, tuple)) and len(value) == n


def _take_rows(value: Any, rows: np.ndarray) -> Any:
    if isinstance(value, np.ndarray):
        return value[rows]
    return [value[i] for i in rows.tolist()]


def recorded_splits(results: Results) -> set[str]:
    """The splits `results` were scored on by their provenance: the `split` of an `epic-ar
    test` record, and those of the inputs of an `epic-ar fuse` record (fused files fused
    again too); empty for files that record none (other tools')."""
    splits: set[str] = set()
    pending = [results.extra.get(PROVENANCE_KEY)]
    seen: set[int] = set()  # a pickle may hold a record that contains itself
    while pending:
        record = pending.pop()
        if not isinstance(record, Mapping) or id(record) in seen:
            continue
        seen.add(id(record))
        if isinstance(record.get("split"), str):
            splits.add(record["split"])
        inputs = record.get("inputs")
        if isinstance(inputs, list):
            pending += [entry.get(PROVENANCE_KEY) for entry in inputs if isinstance(entry, Mapping)]
    return splits


def load_results(path: Path) -> Results:
    """Read and validate a results file (any layout, torch or pickle serialisation).

    Raises:
        WrongKindError: `path` holds another kind of file (annotations, a checkpoint, an
            ONNX model, a submission), by its first bytes.
        EpicArError: naming `path` and the problem: unreadable or unsafe content, missing
            keys, wrong shapes, N differing between keys, non-finite scores or repeated ids.
    """
    try:
        return results_from_object(load_data_file(path), source=str(path))
    except EpicArError as exc:
        refuse_other_kind(path, RESULTS, exc)
        raise


def results_from_object(obj: Any, *, source: str) -> Results:
    """Validate the object stored in a results file and convert it to `Results`."""
    if isinstance(obj, Mapping):
        data = dict(obj)
    elif isinstance(obj, (list, tuple)):
        data = _collate(obj, source)
    else:
        raise EpicArError(
            f"{source}: holds a {type(obj).__name__}; expected a dict of arrays or a list "
            "of per-segment dicts"
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        found = ", ".join(map(str, data)) or "none"
        raise EpicArError(f"{source}: missing key(s) {', '.join(missing)} (found: {found})")
    scores = {key: _as_score_array(data.pop(key), key, source) for key in SCORE_KEYS}
    narration_id = _as_id_array(data.pop("narration_id"), source)
    # Tensors become arrays so that extra per-segment values move with their segments.
    extra = {key: _to_numpy(value) if _is_tensor(value) else value for key, value in data.items()}
    results = Results(scores["verb_output"], scores["noun_output"], narration_id, extra)
    validate_results(results, source=source)
    return results


def _collate(items: Sequence[Any], source: str) -> dict[str, Any]:
    if not items:
        raise EpicArError(f"{source}: holds an empty list; no segments")
    first = items[0]
    if not isinstance(first, Mapping):
        raise EpicArError(f"{source}: item 0 is a {type(first).__name__}, expected a dict")
    keys = list(first)
    columns: dict[str, list[Any]] = {key: [] for key in keys}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or set(item) != set(keys):
            raise EpicArError(
                f"{source}: item {index} does not have the keys of item 0 ({', '.join(keys)})"
            )
        for key in keys:
            columns[key].append(item[key])
    collated: dict[str, Any] = {}
    for key, values in columns.items():
        if key in REQUIRED_KEYS:
            collated[key] = values
            continue
        try:
            collated[key] = np.asarray(values)
        except (ValueError, TypeError):  # ragged or odd values stay a list
            collated[key] = values
    for key in SCORE_KEYS:
        if key in collated:
            collated[key] = _stack_rows(collated[key], key, source)
    return collated


def _stack_rows(rows: list[Any], key: str, source: str) -> np.ndarray:
    arrays = [_to_numpy(row) for row in rows]
    expected = N_CLASSES[key]
    for index, row in enumerate(arrays):
        if row.shape != (expected,):
            raise EpicArError(
                f"{source}: item {index}: {key} has shape {list(row.shape)}; expected [{expected}]"
            )
    return np.stack(arrays)


def _is_tensor(value: Any) -> bool:
    # Tensors only come from torch files; recognised without importing torch ourselves.
    return type(value).__module__ == "torch" and hasattr(value, "numpy")


def _to_numpy(value: Any) -> np.ndarray:
    if _is_tensor(value):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)


def _as_score_array(value: Any, key: str, source: str) -> np.ndarray:
    try:
        array = _to_numpy(value)
    except (ValueError, TypeError) as exc:
        raise EpicArError(f"{source}: {key} is not a numeric array ({exc})") from exc
    expected = N_CLASSES[key]
    if array.ndim != 2 or array.shape[1] != expected:
        raise EpicArError(
            f"{source}: {key} has shape {list(array.shape)}; expected [N, {expected}]"
        )
    if array.dtype.kind not in "fiu":
        raise EpicArError(f"{source}: {key} has dtype {array.dtype}; expected float scores")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def _as_id_array(value: Any, source: str) -> np.ndarray:
    ids = _to_numpy(value) if not isinstance(value, (list, tuple)) else np.asarray(value, object)
    if ids.ndim != 1:
        raise EpicArError(f"{source}: narration_id has shape {list(ids.shape)}; expected [N]")
    if ids.dtype.kind != "U":
        bad = next((i for i, v in enumerate(ids.tolist()) if not isinstance(v, str)), None)
        if bad is not None:
            raise EpicArError(
                f"{source}: narration_id[{bad}] is a {type(ids[bad]).__name__} "
                f"({ids[bad]!r}); narration ids must be strings"
            )
        ids = ids.astype(str)
    return ids


def validate_results(results: Results, *, source: str) -> None:
    """Check N agrees across keys, scores are finite and narration ids are unique."""
    n = len(results.narration_id)
    rows = {key: len(getattr(results, key)) for key in SCORE_KEYS}
    if any(count != n for count in rows.values()):
        raise EpicArError(
            f"{source}: N differs between keys: verb_output has {rows['verb_output']} rows, "
            f"noun_output {rows['noun_output']}, narration_id {n}"
        )
    if n == 0:
        raise EpicArError(f"{source}: holds no segments (N = 0)")
    for key in SCORE_KEYS:
        finite = np.isfinite(getattr(results, key))
        if not finite.all():
            bad_rows = np.flatnonzero(~finite.all(axis=1))
            first = int(bad_rows[0])
            raise EpicArError(
                f"{source}: {key} has non-finite values (NaN/inf) in {len(bad_rows)} rows, "
                f"first at row {first} (narration id {results.narration_id[first]})"
            )
    unique, counts = np.unique(results.narration_id, return_counts=True)
    if len(unique) != n:
        repeated = unique[counts > 1]
        rows_of_first = np.flatnonzero(results.narration_id == repeated[0]).tolist()
        raise EpicArError(
            f"{source}: {len(repeated)} narration id(s) appear more than once, "
            f"e.g. {repeated[0]} (rows {listed(rows_of_first, count_more=False)})"
        )


def save_results(results: Results, path: Path, *, force: bool = False) -> None:
    """Write `results` in the dict layout with `torch.save`, atomically.

    Scores and ids are stored as numpy arrays, the layout the official tools read.
    Refuses to overwrite an existing `path` unless `force`.
    """
    import torch

    validate_results(results, source="results to write")
    with atomic_write_path(path, force=force) as tmp:
        torch.save(results.to_dict(), tmp)
