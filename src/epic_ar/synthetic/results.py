"""Synthetic results for trying the toolkit without a trained model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from epic_ar.annotations.classes import N_NOUNS, N_VERBS
from epic_ar.errors import EpicArError
from epic_ar.evaluation.results import Results


def synthetic_results(
    labels: pd.DataFrame, *, signal: float, seed: int, source: str = "labels"
) -> Results:
    """Scores of a pretend model: Gaussian noise plus `signal` on the true class.

    Args:
        labels: annotation rows indexed by narration id; with `verb_class`/`noun_class`
            columns the true classes get the signal, without them (test split) a random class.
        signal: added to the true class logit; 0 gives chance level, ~2.5 about 50% top-1.
        seed: random seed; the same seed gives the same scores.
        source: what `labels` came from, for messages (e.g. its file).

    Returns:
        Results with [N, 97] and [N, 300] float32 logits in annotation order.

    Raises:
        EpicArError: `labels` has no rows (naming `source`).
    """
    if labels.empty:
        raise EpicArError(f"{source}: no segments to make results for")
    rng = np.random.default_rng(seed)
    n = len(labels)
    rows = np.arange(n)
    scores = {}
    for key, column, n_classes in (
        ("verb_output", "verb_class", N_VERBS),
        ("noun_output", "noun_class", N_NOUNS),
    ):
        logits = rng.standard_normal((n, n_classes), dtype=np.float32)
        if column in labels.columns:
            true = labels[column].to_numpy(dtype=np.int64)
        else:
            true = rng.integers(0, n_classes, n)
        logits[rows, true] += np.float32(signal)
        scores[key] = logits
    return Results(
        scores["verb_output"], scores["noun_output"], labels.index.to_numpy(dtype=str), {}
    )
