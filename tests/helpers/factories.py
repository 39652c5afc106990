"""Small results and label files made in a test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from epic_ar.evaluation.results import Results


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
