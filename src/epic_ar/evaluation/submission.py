"""Challenge submission files: a zip holding one `test.json` with every segment's scores."""

from __future__ import annotations

import gzip
import json
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from epic_ar.annotations.labels import read_annotations
from epic_ar.annotations.splits import split_named_by
from epic_ar.errors import EpicArError, Message, MessagePart, Parameter
from epic_ar.evaluation.results import Results, recorded_splits
from epic_ar.fileio.atomic import atomic_write_path, check_can_write
from epic_ar.fileio.messages import listed

SUBMISSION_VERSION = "0.2"
CHALLENGE = "action_recognition"
SLS_LEVELS = range(6)
TEST_IDS_NAME = "EPIC_100_test_narration_ids.txt.gz"
LABELS = Parameter("labels")  # the annotations of the split the results should cover


@dataclass(frozen=True)
class SupervisionLevels:
    """Scalability/supervision levels declared with a submission (each 0-5).

    pt: pre-training, tl: training labels, td: training data (see `epic-ar submit --help`).
    """

    pt: int = 2
    tl: int = 3
    td: int = 4

    def __post_init__(self) -> None:
        for name in ("pt", "tl", "td"):
            value = getattr(self, name)
            if value not in SLS_LEVELS:
                raise EpicArError(f"sls_{name} must be an integer 0-5, got {value!r}")


def split_mismatch(results: Results, split_ids: np.ndarray) -> str | None:
    """How the results' narration ids differ from the split's ([M] str): how many of the
    split's are missing and how many are extra, with examples; None when they are the same.

    Results ids are unique already (checked on load), so set differences decide it.
    """
    missing = np.setdiff1d(split_ids, results.narration_id)
    extra = np.setdiff1d(results.narration_id, split_ids)
    problems = []
    if len(missing):
        shown = listed(missing, count_more=False)
        problems.append(f"{len(missing)} of {len(split_ids)} segments missing ({shown})")
    if len(extra):
        shown = listed(extra, count_more=False)
        problems.append(f"{len(extra)} narration ids not in the split ({shown})")
    return "; ".join(problems) or None


def check_split_coverage(results: Results, split_ids: np.ndarray, *, split_source: str) -> None:
    """Require the results to hold every narration id of the split exactly once, no others."""
    problems = split_mismatch(results, split_ids)
    if problems:
        raise EpicArError(f"results do not match {split_source}: {problems}")


def submission_split_warning(
    results: Results, *, source: str, labels: Path | None = None
) -> Message | None:
    """Why `results` (read from `source`) may not be the test split, which the challenge
    takes, as one warning line; None when nothing says so.

    With `labels` (the annotations of the split meant), the results must hold each of their
    segments exactly once and no other (else an error), and labels named as another split's
    official file (`split_named_by`) are reported; without, differences from the test
    split's narration ids (`packaged_test_split_ids`) are reported. Either way, a provenance
    recording another split (`recorded_splits`, e.g. "val") is reported.

    Raises:
        EpicArError: `labels` cannot be read, or the results do not cover them exactly.
    """
    problems = [f"its provenance names the {split} split"
                for split in sorted(recorded_splits(results) - {"test"})]  # fmt: skip
    mismatch = None
    if labels is not None:
        split_ids = read_annotations(labels).index.to_numpy(dtype=str)
        check_split_coverage(results, split_ids, split_source=str(labels))
        named = split_named_by(labels)
        if named not in (None, "test"):
            problems.append(f"its segments are those of {labels.name}, the {named} split's")
    else:
        mismatch = split_mismatch(results, packaged_test_split_ids())
    if mismatch is not None:
        problems.append(mismatch)
    if not problems:
        return None
    parts: list[MessagePart] = [
        f"{source} is not the EPIC-KITCHENS-100 test split, which the challenge expects: "
        + "; ".join(problems)
    ]
    if mismatch is not None:
        parts += [" (to check against another split, give its annotations with ", LABELS, ")"]
    return Message(tuple(parts))


def check_submission_path(path: Path, *, force: bool) -> None:
    """Refuse a submission name not ending in .zip (what the challenge takes), or one that
    exists without `force` or cannot be written: before any work."""
    if path.suffix.lower() != ".zip":
        raise EpicArError(f"{path}: a submission is a zip archive; give a name ending in .zip")
    check_can_write(path, force=force)


def packaged_test_split_ids() -> np.ndarray:
    """The 13092 narration ids of the EPIC-KITCHENS-100 test split ([M] str), in the
    official order: the `narration_id` column of `EPIC_100_test_timestamps.csv` (CC BY-NC
    4.0, see `annotations/tables/license.txt`), shipped with epic-ar."""
    packaged = resources.files("epic_ar.annotations") / "tables" / TEST_IDS_NAME
    return np.array(gzip.decompress(packaged.read_bytes()).decode().split())


# Below this magnitude orjson writes floats differently from Python's repr ("1e-5" or
# "0.00001" for "1e-05"); rows holding such a value are formatted with repr instead.
_ORJSON_SAME_AS_REPR_FROM = 1e-4
_SEGMENTS_PER_CHUNK = 512


def _score_objects(scores: np.ndarray) -> list[str]:
    """Each row of `scores` ([M, C]) as the text `json.dumps` writes for
    `{"0": float(s_0), ..., "C-1": float(s_C-1)}`: keys in class order, repr floats."""
    values = scores.astype(np.float64)
    keys = [f'"{i}": ' for i in range(values.shape[1])]
    magnitude = np.abs(values)
    tiny = (magnitude < _ORJSON_SAME_AS_REPR_FROM) & (magnitude > 0)
    needs_repr: list[bool] = (np.count_nonzero(tiny, axis=1) > 0).tolist()
    objects = []
    for row, slow in zip(values.tolist(), needs_repr, strict=True):
        numbers = map(repr, row) if slow else orjson.dumps(row)[1:-1].decode().split(",")
        objects.append("{" + ", ".join(map(str.__add__, keys, numbers)) + "}")
    return objects


def _results_chunks(results: Results) -> Iterator[str]:
    """The text of the `"results"` object's entries, a few hundred segments at a time."""
    for start in range(0, len(results), _SEGMENTS_PER_CHUNK):
        rows = slice(start, start + _SEGMENTS_PER_CHUNK)
        verbs = _score_objects(results.verb_output[rows])
        nouns = _score_objects(results.noun_output[rows])
        ids = [json.dumps(str(i)) for i in results.narration_id[rows].tolist()]
        entries = ", ".join(
            f'{i}: {{"verb": {v}, "noun": {n}}}' for i, v, n in zip(ids, verbs, nouns, strict=True)
        )
        yield entries if start == 0 else ", " + entries


def _submission_pieces(results: Results, levels: SupervisionLevels) -> Iterator[str]:
    header: dict[str, Any] = {
        "version": SUBMISSION_VERSION,
        "challenge": CHALLENGE,
        "sls_pt": levels.pt,
        "sls_tl": levels.tl,
        "sls_td": levels.td,
    }
    yield json.dumps(header)[:-1] + ', "results": {'
    yield from _results_chunks(results)
    yield "}}"


def submission_json(results: Results, levels: SupervisionLevels) -> str:
    """The `test.json` text: the same text as the official `create_submission.py` writes.

    That is `json.dumps` of `{"version", "challenge", "sls_pt", "sls_tl", "sls_td",
    "results": {narration_id: {"verb": {"0": s, ...}, "noun": {"0": s, ...}}}}` with
    scores as Python floats (float32 values widened to float64); built here from
    orjson-formatted numbers, much faster than `json.dumps` of nested dicts.
    """
    return "".join(_submission_pieces(results, levels))


def write_submission(
    results: Results, path: Path, levels: SupervisionLevels, *, force: bool = False
) -> None:
    """Write the submission zip (one `test.json`, deflated) atomically.

    The JSON is compressed piece by piece in a second thread (zlib releases the GIL), so
    formatting and compression overlap. `path` must end in .zip (`check_submission_path`).
    """
    check_submission_path(path, force=force)
    with (
        atomic_write_path(path, force=force) as tmp,
        zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("test.json", mode="w") as member,
        ThreadPoolExecutor(max_workers=1) as writer,
    ):
        pending: Future[int] | None = None
        for piece in _submission_pieces(results, levels):
            data = piece.encode()
            if pending is not None:
                pending.result()
            pending = writer.submit(member.write, data)
        if pending is not None:
            pending.result()
