"""Whole-process timings of `epic-ar evaluate`, `fuse` and `submit` against a baseline that
does what the official tools do (benchmarks/official_style_baseline.py), in the same run.

Inputs: synthetic scores for the 9,668 segments of the vendored validation labels
(evaluate, fuse) and for 13,092 segments, the size of the test split (submit). Prints
medians over repeated runs and the speed-up ratios as a Markdown table.

    .venv/bin/python benchmarks/bench_results_toolkit.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from epic_ar.annotations.labels import read_annotations
from epic_ar.evaluation.results import Results, save_results
from epic_ar.evaluation.synthetic import synthetic_results

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "examples" / "annotations" / "EPIC_100_validation.csv"
OUT = ROOT / "benchmarks" / "out"
TEST_SPLIT_SIZE = 13_092


def list_layout(results: Results) -> list[dict[str, object]]:
    data = results.to_dict()
    return [{k: v[i] for k, v in data.items()} for i in range(len(results))]


def prepare() -> dict[str, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    labels = read_annotations(LABELS)
    files = {name: OUT / f"{name}.pt" for name in ("rgb", "flow", "rgb_list", "flow_list")}
    for seed, name in enumerate(("rgb", "flow")):
        results = synthetic_results(labels, signal=2.0, seed=seed)
        save_results(results, files[name], force=True)
        torch.save(list_layout(results), files[f"{name}_list"])
    test_ids = pd.Index(
        [f"P{p:02d}_{v:03d}_{i}" for p, v, i in np.ndindex(24, 10, TEST_SPLIT_SIZE // 240 + 1)][
            :TEST_SPLIT_SIZE
        ]
    )
    test = synthetic_results(pd.DataFrame(index=test_ids), signal=2.0, seed=9)
    files["test"] = OUT / "test.pt"
    files["test_list"] = OUT / "test_list.pt"
    save_results(test, files["test"], force=True)
    torch.save(list_layout(test), files["test_list"])
    return files


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = prepare()
    epic_ar = [sys.executable, "-m", "epic_ar"]
    baseline = [sys.executable, str(ROOT / "benchmarks" / "official_style_baseline.py")]
    cases = [
        (
            "evaluate, 9,668 val segments",
            [*epic_ar, "evaluate", str(files["rgb"]), str(LABELS)],
            [*baseline, "evaluate", str(files["rgb_list"]), str(LABELS)],
        ),
        (
            "fuse 2 files, 9,668 segments",
            [*epic_ar, "fuse", str(files["rgb"]), str(files["flow"]), str(OUT / "f.pt"), "--force"],
            [
                *baseline,
                "fuse",
                str(files["rgb_list"]),
                str(files["flow_list"]),
                str(OUT / "f_list.pt"),
            ],
        ),
        (
            "submit, 13,092 test segments",
            [*epic_ar, "submit", str(files["test"]), str(OUT / "s.zip"), "--force"],
            [*baseline, "submit", str(files["test_list"]), str(OUT / "s_base.zip")],
        ),
    ]
    print("| command (whole process) | epic-ar | official-style | speed-up |\n|---|---|---|---|")
    for title, ours, theirs in cases:
        ours_s = median_seconds(ours, args.repeats)
        theirs_s = median_seconds(theirs, args.repeats)
        print(
            f"| {title} | {ours_s:.2f} s | {theirs_s:.2f} s | {theirs_s / ours_s:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
