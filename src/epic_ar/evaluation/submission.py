"""Challenge submission files: a zip holding one `test.json` with every segment's scores."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.evaluation.results import Results
from epic_ar.fileio.atomic import atomic_write_path

SUBMISSION_VERSION = "0.2"
CHALLENGE = "action_recognition"
SLS_LEVELS = range(6)


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


def check_split_coverage(results: Results, split_ids: np.ndarray, *, split_source: str) -> None:
    """Require the results to hold every narration id of the split exactly once, no others.

    Results ids are unique already (checked on load), so set differences decide it.
    """
    missing = np.setdiff1d(split_ids, results.narration_id)
    extra = np.setdiff1d(results.narration_id, split_ids)
    problems = []
    if len(missing):
        shown = ", ".join(missing[:5].tolist()) + (", ..." if len(missing) > 5 else "")
        problems.append(f"{len(missing)} of {len(split_ids)} segments missing ({shown})")
    if len(extra):
        shown = ", ".join(extra[:5].tolist()) + (", ..." if len(extra) > 5 else "")
        problems.append(f"{len(extra)} narration ids not in the split ({shown})")
    if problems:
        raise EpicArError(f"results do not match {split_source}: {'; '.join(problems)}")


def _scores_json(rows: list[list[float]], keys: list[str]) -> list[str]:
    # Python floats print with repr, as json.dumps writes them: one float per class.
    return ["{" + ", ".join(map("".join, zip(keys, map(repr, row), strict=True))) + "}"
            for row in rows]


def submission_json(results: Results, levels: SupervisionLevels) -> str:
    """The `test.json` text: the same JSON as the official `create_submission.py` writes.

    Scores are written as Python floats (float32 values widened to float64), keyed by the
    class id as a string, in the layout
    `{"version", "challenge", "sls_pt", "sls_tl", "sls_td", "results": {narration_id:
    {"verb": {"0": s, ...}, "noun": {"0": s, ...}}}}`.
    """
    header: dict[str, Any] = {
        "version": SUBMISSION_VERSION,
        "challenge": CHALLENGE,
        "sls_pt": levels.pt,
        "sls_tl": levels.tl,
        "sls_td": levels.td,
    }
    # json.dumps of the whole nested dict takes ~4x longer; the text is built from the
    # same pieces json would emit (", " and ": " separators, repr floats).
    verb_keys = [f'"{i}": ' for i in range(results.verb_output.shape[1])]
    noun_keys = [f'"{i}": ' for i in range(results.noun_output.shape[1])]
    verbs = _scores_json(results.verb_output.astype(np.float64).tolist(), verb_keys)
    nouns = _scores_json(results.noun_output.astype(np.float64).tolist(), noun_keys)
    ids = [json.dumps(str(i)) for i in results.narration_id.tolist()]
    entries = ", ".join(
        f'{i}: {{"verb": {v}, "noun": {n}}}' for i, v, n in zip(ids, verbs, nouns, strict=True)
    )
    return json.dumps(header)[:-1] + ', "results": {' + entries + "}}"


def write_submission(
    results: Results, path: Path, levels: SupervisionLevels, *, force: bool = False
) -> None:
    """Write the submission zip (one `test.json`, deflated) atomically."""
    text = submission_json(results, levels)
    with atomic_write_path(path, force=force) as tmp, zipfile.ZipFile(
        tmp, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
    ) as archive:
        archive.writestr("test.json", text)
