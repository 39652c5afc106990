"""The demo: the results half of the pipeline on the real validation labels, step by step.

Each step runs the real `epic-ar` command in a subprocess and prints it first, so the
output doubles as a tutorial. Until training lands, two pretend models ("RGB" and "flow")
stand in for trained ones.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from epic_ar.errors import EpicArError

DEFAULT_LABELS = Path("examples/annotations/EPIC_100_validation.csv")


@dataclass(frozen=True)
class DemoArtefacts:
    rgb_results: Path
    flow_results: Path
    fused_results: Path
    metrics: Path
    submission: Path


def _run_step(index: int, total: int, title: str, args: list[str]) -> str:
    print(f"\n[{index}/{total}] {title}\n$ epic-ar {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "epic_ar", *args], capture_output=True, text=True, check=False
    )
    sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        raise EpicArError(f"demo step {index} ({title}) failed with exit {completed.returncode}")
    print(completed.stdout.rstrip())
    print(f"      ({time.perf_counter() - start:.1f} s)", flush=True)
    return completed.stdout


def run_demo(out_dir: Path, *, labels: Path = DEFAULT_LABELS) -> DemoArtefacts:
    """Generate, fuse, evaluate and submit results for the segments of `labels`.

    Writes into `out_dir` (created; existing demo files are overwritten) and returns where
    each artefact is.
    """
    if not labels.is_file():
        raise EpicArError(
            f"{labels}: no such file; run the demo from the repository root or pass "
            "--labels path/to/EPIC_100_validation.csv"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    art = DemoArtefacts(
        rgb_results=out_dir / "rgb_val_results.pt",
        flow_results=out_dir / "flow_val_results.pt",
        fused_results=out_dir / "fused_val_results.pt",
        metrics=out_dir / "fused_val_metrics.json",
        submission=out_dir / "submission.zip",
    )
    labels_arg = str(labels)
    steps: list[tuple[str, list[str]]] = [
        (
            "pretend RGB model: scores for every validation segment",
            [
                "synthetic-results",
                labels_arg,
                str(art.rgb_results),
                "--signal",
                "2.2",
                "--seed",
                "1",
                "--force",
            ],
        ),
        (
            "pretend flow model",
            [
                "synthetic-results",
                labels_arg,
                str(art.flow_results),
                "--signal",
                "1.8",
                "--seed",
                "2",
                "--force",
            ],
        ),
        ("evaluate RGB alone", ["evaluate", str(art.rgb_results), labels_arg, "--format", "json"]),
        (
            "fuse RGB and flow (mean of scores)",
            [
                "fuse",
                str(art.rgb_results),
                str(art.flow_results),
                str(art.fused_results),
                "--force",
            ],
        ),
        (
            "evaluate the fusion",
            ["evaluate", str(art.fused_results), labels_arg, "--format", "json"],
        ),
        (
            "write the challenge submission",
            [
                "submit",
                str(art.fused_results),
                str(art.submission),
                "--labels",
                labels_arg,
                "--force",
            ],
        ),
    ]
    start = time.perf_counter()
    outputs = [
        _run_step(i, len(steps), title, args) for i, (title, args) in enumerate(steps, start=1)
    ]
    rgb_metrics, fused_metrics = json.loads(outputs[2]), json.loads(outputs[4])
    art.metrics.write_text(json.dumps(fused_metrics, indent=2) + "\n")
    key = "all_action_accuracy_at_1"
    print(
        f"\nDone in {time.perf_counter() - start:.0f} s. Action top-1: RGB "
        f"{rgb_metrics[key]:.2f}% -> fused {fused_metrics[key]:.2f}%.\n"
        f"  RGB results:    {art.rgb_results}\n"
        f"  flow results:   {art.flow_results}\n"
        f"  fused results:  {art.fused_results}\n"
        f"  fused metrics:  {art.metrics}\n"
        f"  submission:     {art.submission}"
    )
    return art
