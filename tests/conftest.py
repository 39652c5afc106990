"""Shared fixtures: the real annotations (when present), tiny label files, the CLI runner."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epic_ar.evaluation.results import Results

SHARED_ANNOTATIONS = Path(__file__).resolve().parents[2] / "shared" / "annotations"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_annotations() -> Path:
    """The real EPIC-KITCHENS-100 annotation folder (`../shared/annotations`)."""
    if not (SHARED_ANNOTATIONS / "EPIC_100_validation.csv").is_file():
        pytest.skip(f"real annotations not available at {SHARED_ANNOTATIONS}")
    return SHARED_ANNOTATIONS


@pytest.fixture(scope="session")
def validation_labels_csv() -> Path:
    """The real validation labels: the copy vendored in examples/ (tail/unseen tables beside)."""
    return REPO_ROOT / "examples" / "annotations" / "EPIC_100_validation.csv"


def make_results(n: int, *, seed: int = 0, prefix: str = "P01_01_") -> Results:
    """N segments of random float32 logits with ids `{prefix}{i}`."""
    rng = np.random.default_rng(seed)
    return Results(
        rng.standard_normal((n, 97), dtype=np.float32),
        rng.standard_normal((n, 300), dtype=np.float32),
        np.array([f"{prefix}{i}" for i in range(n)]),
        {},
    )


def write_labels_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    """An annotation CSV in the official column layout (only the columns given)."""
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def epic_ar_command() -> list[str]:
    """The installed console script next to this interpreter (falls back to -m)."""
    script = Path(sys.executable).parent / "epic-ar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "epic_ar"]


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run `epic-ar ARGS...` in a subprocess (cwd: tmp_path); returns the completed process."""

    def run(
        *args: object, cwd: Path = tmp_path, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*epic_ar_command(), *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    return run
