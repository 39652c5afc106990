"""Running `epic-ar train` in tests: overrides that train any packaged config in seconds on the
CPU, the subprocess call, and where Lightning writes a run's logs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.cli import epic_ar_command


def tiny(gulp_root: Path, run_dir: Path, *extra: str) -> list[str]:
    """Overrides that make any packaged config train in seconds on the CPU."""
    return [
        f"data._root_gulp_dir={gulp_root}",
        "model.backbone=resnet18",
        "model.pretrained=null",
        "data.preprocessing.input_size=32",
        "data.test_augmentation.rescale_size=48",
        "data.frame_count=2",
        "data.worker_count=0",
        "learning.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "+trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def train_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`epic-ar train ARGS` in a subprocess with one OpenMP thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*epic_ar_command(), "train", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )


def version_dir(run_dir: Path, version: int = 0) -> Path:
    """Lightning's log folder of a run: RUN_DIR/lightning_logs/version_N."""
    return run_dir / "lightning_logs" / f"version_{version}"
