"""Whole-process timings of `epic-ar evaluate`, `fuse` and `submit` against a baseline that
does what the official tools do (benchmarks/official_style_baseline.py), in the same run.

Inputs: synthetic scores for the 9,668 segments of the vendored validation labels
(evaluate, fuse) and for 13,092 segments, the size of the test split (submit). Prints
medians over repeated runs and the speed-up ratios as a Markdown table.

A second table times the parts in one process, on the same arrays, the variants
alternating in each repeat (medians, and medians of the per-repeat ratios):

- action ranking of the validation segments: epic-ar's counting (`action_ranks`) against
  the official evaluator's algorithm (a full argsort of every verb x noun pair,
  tests/helpers/official_reference.py), both ending in action top-1 and top-5;
- writing the submission zip of the test-sized results: `write_submission` against
  create_submission.py's way (nested dicts, `json.dumps`, zip level 5);
- the zip compression alone of that `test.json`, level 1 (epic-ar) against level 5;
- loading a results file: the dict layout against the list layout of the original fuse.py;
- `import torch` in a fresh process, against a whole `epic-ar fuse` (which needs torch for
  `torch.save`).

    .venv/bin/python benchmarks/bench_results_toolkit.py [--repeats 5] [--parts-only]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from epic_ar.annotations.classes import action_ids
from epic_ar.annotations.labels import read_annotations
from epic_ar.evaluation.metrics import accuracy_percent, action_ranks
from epic_ar.evaluation.results import Results, load_results, save_results
from epic_ar.evaluation.submission import SupervisionLevels, submission_json, write_submission
from epic_ar.synthetic.results import synthetic_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers.official_reference import official_action_ranking  # noqa: E402
from official_style_baseline import write_submission_zip  # noqa: E402

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


Timings = dict[str, list[float]]


def interleaved_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> Timings:
    """Seconds of each run in each repeat; the runs alternate within a repeat (after one
    warm-up call each), so that slow phases of a shared machine hit them alike."""
    for run in runs.values():
        run()
    seconds: Timings = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def median_ratio(seconds: Timings, slow: str, fast: str) -> float:
    """Median over repeats of slow's time / fast's time in the same repeat."""
    pairs = zip(seconds[slow], seconds[fast], strict=True)
    return statistics.median(a / b for a, b in pairs)


def ours_action_accuracy(results: Results, verbs: np.ndarray, nouns: np.ndarray) -> list[float]:
    """Action top-1 and top-5 (percent) by epic-ar's counting of the pairs that beat the truth."""
    ranks = action_ranks(results.verb_output, results.noun_output, verbs, nouns)
    return [accuracy_percent(ranks, k) for k in (1, 5)]


def official_action_accuracy(
    results: Results, verbs: np.ndarray, nouns: np.ndarray, block: int = 1000
) -> list[float]:
    """Action top-1 and top-5 (percent) as the official evaluator ranks: a full argsort of
    each segment's 9,700 pairs (in blocks of segments, to bound memory)."""
    ranking = np.concatenate(
        [
            official_action_ranking(
                results.verb_output[i : i + block], results.noun_output[i : i + block]
            )
            for i in range(0, len(results), block)
        ]
    )
    hits = ranking[:, :5] == action_ids(verbs, nouns)[:, None]
    return [float(hits[:, :k].any(axis=1).mean() * 100) for k in (1, 5)]


def zip_text(text: bytes, level: int) -> int:
    """Deflate `text` into an in-memory zip as `test.json` at `level`; the zip's size in bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr("test.json", text)
    return buffer.tell()


def torch_import() -> None:
    subprocess.run([sys.executable, "-c", "import torch"], check=True)


def fuse_process(files: dict[str, Path]) -> None:
    """`epic-ar fuse` of the two validation files, as a whole process."""
    fuse = ["fuse", str(files["rgb"]), str(files["flow"]), str(OUT / "f.pt"), "--force"]
    subprocess.run([sys.executable, "-m", "epic_ar", *fuse], check=True, capture_output=True)


def bench_parts(files: dict[str, Path], repeats: int) -> None:
    """The second table: parts of the tools in one process, variants interleaved."""
    val = load_results(files["rgb"])
    labels = read_annotations(LABELS).loc[val.narration_id]
    verbs, nouns = labels["verb_class"].to_numpy(), labels["noun_class"].to_numpy()
    ours_acc = ours_action_accuracy(val, verbs, nouns)
    official_acc = official_action_accuracy(val, verbs, nouns)
    same = "the same" if ours_acc == official_acc else f"DIFFERENT: {official_acc}"
    print(f"\naction top-1 / top-5: epic-ar {ours_acc[0]:.3f} / {ours_acc[1]:.3f}, official {same}")

    test = load_results(files["test"])
    levels = SupervisionLevels()
    ours_zip, official_zip = OUT / "parts_ours.zip", OUT / "parts_official.zip"
    text = submission_json(test, levels).encode()
    seconds = interleaved_seconds(
        {
            "rank_ours": lambda: ours_action_accuracy(val, verbs, nouns),
            "rank_official": lambda: official_action_accuracy(val, verbs, nouns),
            "submit_ours": lambda: write_submission(test, ours_zip, levels, force=True),
            "submit_official": lambda: write_submission_zip(
                test.verb_output, test.noun_output, test.narration_id, official_zip
            ),
            "zip_1": lambda: zip_text(text, 1),
            "zip_5": lambda: zip_text(text, 5),
            "load_dict": lambda: load_results(files["rgb"]),
            "load_list": lambda: load_results(files["rgb_list"]),
            "import_torch": torch_import,
            "fuse_process": lambda: fuse_process(files),
        },
        repeats,
    )
    with zipfile.ZipFile(ours_zip) as a, zipfile.ZipFile(official_zip) as b:
        identical = a.read("test.json") == b.read("test.json")
    sizes = {level: zip_text(text, level) for level in (1, 5)}
    median = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"test.json of both submission writers byte-identical: {identical}")
    print(
        f"\nIn one process, median of {repeats} (ratio: median of per-repeat ratios):\n"
        "| part | epic-ar | official-style | speed-up |\n|---|---|---|---|"
    )
    for title, ours, theirs in (
        (f"action ranking, {len(val):,} val segments", "rank_ours", "rank_official"),
        (f"write the submission zip, {len(test):,} segments", "submit_ours", "submit_official"),
        (f"deflate test.json ({len(text) / 1e6:.0f} MB), level 1 / 5", "zip_1", "zip_5"),
        (f"load results, {len(val):,} segments, dict / list layout", "load_dict", "load_list"),
    ):
        print(
            f"| {title} | {median[ours]:.3f} s | {median[theirs]:.3f} s "
            f"| {median_ratio(seconds, theirs, ours):.1f}x |"
        )
    print(
        f"zip size: level 1 {sizes[1] / 1e6:.1f} MB, level 5 {sizes[5] / 1e6:.1f} MB "
        f"(level 1 is {100 * (sizes[1] / sizes[5] - 1):.0f}% larger)"
    )
    share = statistics.median(
        a / b for a, b in zip(seconds["import_torch"], seconds["fuse_process"], strict=True)
    )
    print(
        f"`import torch` in a fresh process: {median['import_torch']:.2f} s, "
        f"{100 * share:.0f}% of a whole `epic-ar fuse` of 2 files ({median['fuse_process']:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts-only", action="store_true", help="only the in-process table")
    args = parser.parse_args()
    files = prepare()
    if not args.parts_only:
        bench_processes(files, args.repeats)
    bench_parts(files, args.repeats)


def bench_processes(files: dict[str, Path], repeats: int) -> None:
    """The first table: each tool as a whole process, against the official-style one."""
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
        ours_s = median_seconds(ours, repeats)
        theirs_s = median_seconds(theirs, repeats)
        print(
            f"| {title} | {ours_s:.2f} s | {theirs_s:.2f} s | {theirs_s / ours_s:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
