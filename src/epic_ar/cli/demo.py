"""`epic-ar demo [DIR]`: the whole pipeline on generated EPIC-shaped data, one real command a step.

synth -> convert-flow-idxs -> gulp (RGB and flow, three splits) -> show (RGB and flow val) ->
train TSN (RGB, flow) -> test (val, test) -> evaluate -> fuse -> evaluate -> submit ->
predict (the RGB model on one of the videos) -> features (of that video, for RULSTM). Each
command is printed before it runs, so the output doubles as a tutorial, and runs in its own
process as a user would run it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.demo_steps import FULL, QUICK, DemoArtefacts, DemoSize, Step, demo_steps
from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.progress import format_duration

MARKER = ".epic-ar-demo"  # marks a folder as the demo's, which a re-run may clear
OWNED = ("data", "gulp", "runs", "results", "pictures", "report", "submission.zip", "predict",
         "features")  # fmt: skip


def prepare_directory(root: Path) -> None:
    """Make `root` the demo's folder: new, empty, or an earlier demo's (whose outputs go)."""
    if root.exists() and not root.is_dir():
        raise EpicArError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
        raise EpicArError(
            f"{root}: exists and is not an earlier demo's output; choose another folder"
        )
    for name in OWNED:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).touch()


def parse_metrics(text: str, title: str) -> dict[str, float]:
    """The metrics of `epic-ar evaluate`'s default output: one `name: value` line each.

    Raises:
        EpicArError: a line of another form, naming the step `title`.
    """
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        try:
            number = float(value)
        except ValueError:  # no ": ", or not a number after it
            number = None
        if not name or number is None:
            raise EpicArError(f"step {title}: {line!r} is not a 'name: value' metric line")
        metrics[name] = number
    if not metrics:
        raise EpicArError(f"step {title}: printed no metrics")
    return metrics


def run_step(step: Step, index: int, count: int, started: float) -> dict[str, float] | None:
    """Run `step`, the `index`-th (1-based) of `count`, as `python -m epic_ar ...`; the
    metrics it printed for an evaluate step (printed here too, unchanged)."""
    elapsed = format_duration(time.perf_counter() - started)
    print(f"\n[{index}/{count}, {elapsed}] {step.title}", flush=True)
    print(f"$ epic-ar {shlex.join(step.args)}", flush=True)
    capture = step.evaluates is not None
    # An evaluate step's output is read to keep the metrics, and passed on line by line as
    # it comes (unbuffered), so that it shows as it would in a terminal, among its logs.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"} if capture else None
    printed: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "epic_ar", *step.args],
        stdout=subprocess.PIPE if capture else None,
        text=True,
        env=env,
    ) as process:
        for line in process.stdout or ():
            print(line, end="", flush=True)
            printed.append(line)
    if process.returncode != 0:
        raise EpicArError(
            f"step {index} ({step.title}) failed with exit {process.returncode}; "
            "its messages are above"
        )
    if not capture:
        return None
    return parse_metrics("".join(printed), f"{index} ({step.title})")


Scores = dict[str, dict[str, float]]  # model -> its metrics on val


def run_demo(root: Path, *, size: DemoSize = FULL) -> DemoArtefacts:
    """Run every step of the demo into `root` and print a summary; returns where things are."""
    prepare_directory(root)
    art = DemoArtefacts(root)
    steps = demo_steps(art, size)
    started = time.perf_counter()
    scores: Scores = {}
    for index, step in enumerate(steps, start=1):
        metrics = run_step(step, index, len(steps), started)
        if step.evaluates is not None and metrics is not None:
            scores[step.evaluates] = metrics
    with atomic_write_path(art.metrics, force=True) as tmp:
        tmp.write_text(json.dumps(scores["fused"], indent=2) + "\n")
    print_summary(art, scores, size, time.perf_counter() - started)
    return art


def print_summary(art: DemoArtefacts, scores: Scores, size: DemoSize, seconds: float) -> None:
    """The fused val metrics, the action accuracies against chance, and where things are."""
    rgb, flow, fused = (scores[name] for name in ("tsn_rgb", "tsn_flow", "fused"))
    print("\nFused RGB + flow on the validation split:")
    for name, value in fused.items():
        print(f"  {name:<32} {value:6.2f}")
    key = "all_action_accuracy_at_1"
    chance = 100 / (size.verbs * size.nouns)
    print(
        f"\nDone in {format_duration(seconds)}. Action top-1 on val: RGB {rgb[key]:.1f}%, "
        f"flow {flow[key]:.1f}%, fused {fused[key]:.1f}% (chance {chance:.1f}%).\n"
        f"  frames and labels:  {art.data}\n"
        f"  gulp directories:   {art.gulp}\n"
        f"  training runs:      {art.run_dir('rgb')}, {art.run_dir('flow')} "
        "(checkpoints, metrics.csv, TensorBoard)\n"
        f"  results files:      {art.results('*', '{val,test}')}\n"
        f"  fused val metrics:  {art.metrics}\n"
        f"  report:             {art.report / 'index.html'}\n"
        f"  pictures of data:   {art.pictures('rgb')}, {art.pictures('flow')}\n"
        f"  submission:         {art.submission}\n"
        f"  predict on a video: {art.prediction('.json')}, {art.prediction('.png')}\n"
        f"  RULSTM features:    {art.features}"
    )


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=help_text,
        description="Generate a small EPIC-shaped dataset (RGB and flow frames, train/val/test "
        "labels, and the videos as MP4), gulp it, draw some validation segments, train a "
        "small TSN on each modality, score val and test, fuse, evaluate with the challenge "
        "metrics, write a submission zip, run the RGB model on a whole video (predict) and "
        "write its features for an anticipation model (features). "
        "Each step is the "
        "epic-ar command printed before it; nothing is downloaded. About 4 minutes on 2 CPU "
        "cores.",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=Path("demo_output"),
        metavar="DIR",
        help="where to write (default: demo_output); an earlier demo's outputs there are "
        "replaced, any other non-empty folder is refused",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few segments and one epoch: every step, in a minute and a half on a quiet "
        "2-core machine (the models learn little)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.out_dir, size=QUICK if args.quick else FULL)
    return 0
