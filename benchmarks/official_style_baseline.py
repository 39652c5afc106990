"""Baseline for the benchmark: the work the official tools do, in one process.

`evaluate`: like C1-Action-Recognition's evaluate.py: import torch, `torch.load` a
list-of-dicts results file, collate, rank every verb/noun pair with a full argsort
(tests/helpers/official_reference.py re-states that algorithm), print the metrics.
`submit`: like create_submission.py: load, build the nested dict, `json.dumps`, zip at
level 5. `fuse`: like the original fuse.py: load, sort by id, average, save the list layout.

Only ever run on files the benchmark itself just wrote (it uses weights_only=False, as the
original tools do).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.official_reference import official_metrics, official_submission_text


def load_collated(path: Path) -> dict[str, np.ndarray]:
    items: list[dict[str, Any]] = torch.load(path, weights_only=False)
    return {key: np.array([item[key] for item in items]) for key in items[0]}


def evaluate(results_path: Path, labels_path: Path) -> None:
    folder = labels_path.parent
    labels = pd.read_csv(labels_path).set_index("narration_id")
    results = load_collated(results_path)
    metrics = official_metrics(
        results["verb_output"],
        results["noun_output"],
        labels.loc[results["narration_id"]],
        pd.read_csv(folder / "EPIC_100_tail_verbs.csv")["verb"].to_numpy(),
        pd.read_csv(folder / "EPIC_100_tail_nouns.csv")["noun"].to_numpy(),
        pd.read_csv(folder / "EPIC_100_unseen_participant_ids_validation.csv")[
            "participant_id"
        ].to_numpy(),
    )
    print("\n".join(f"{k}: {v}" for k, v in sorted(metrics.items())))


def write_submission_zip(verb: np.ndarray, noun: np.ndarray, ids: np.ndarray, out: Path) -> None:
    """create_submission.py's writing: nested dicts, `json.dumps`, zip at level 5."""
    text = official_submission_text(verb, noun, ids)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=5) as zf:
        zf.writestr("test.json", text)


def submit(results_path: Path, out: Path) -> None:
    results = load_collated(results_path)
    write_submission_zip(
        results["verb_output"], results["noun_output"], results["narration_id"], out
    )


def fuse(paths: list[Path], out: Path) -> None:
    loaded = [load_collated(p) for p in paths]
    ordered = [{k: v[np.argsort(r["narration_id"])] for k, v in r.items()} for r in loaded]
    fused = dict(ordered[0])
    for key in ("verb_output", "noun_output"):
        fused[key] = np.stack([r[key] for r in ordered]).mean(axis=0)
    n = len(fused["narration_id"])
    torch.save([{k: v[i] for k, v in fused.items()} for i in range(n)], out)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    paths = [Path(a) for a in args]
    if command == "evaluate":
        evaluate(*paths)
    elif command == "submit":
        submit(*paths)
    elif command == "fuse":
        fuse(paths[:-1], paths[-1])
