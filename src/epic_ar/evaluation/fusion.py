"""Late fusion of results files: average the verb and noun scores segment by segment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from epic_ar import __version__
from epic_ar.errors import EpicArError
from epic_ar.evaluation.results import PROVENANCE_KEY, SCORE_KEYS, Results
from epic_ar.fileio.messages import listed


def align_to(reference: Results, other: Results, *, names: tuple[str, str]) -> Results:
    """`other` reordered to the narration-id order of `reference`.

    Raises:
        EpicArError: the two id sets differ (counts and up to 5 ids missing on each side).
    """
    ref_ids, other_ids = reference.narration_id, other.narration_id
    only_ref = np.setdiff1d(ref_ids, other_ids)
    only_other = np.setdiff1d(other_ids, ref_ids)
    if len(only_ref) or len(only_other):
        raise EpicArError(
            f"narration ids differ: {names[0]} has {len(ref_ids)}, {names[1]} has "
            f"{len(other_ids)}; {len(only_ref)} missing from {names[1]}"
            f"{' (' + listed(only_ref, count_more=False) + ')' if len(only_ref) else ''}, "
            f"{len(only_other)} missing from {names[0]}"
            f"{' (' + listed(only_other, count_more=False) + ')' if len(only_other) else ''}"
        )
    sorter = np.argsort(other_ids)
    rows = sorter[np.searchsorted(other_ids, ref_ids, sorter=sorter)]
    return other.take(rows)


def fuse_results(
    results: Sequence[Results],
    *,
    names: Sequence[str],
    weights: Sequence[float] | None = None,
) -> Results:
    """Average the scores of several results files, segment by segment.

    Args:
        results: two or more results over the same segments, in any order.
        names: a name per input (file path), for error messages.
        weights: one non-negative weight per input (weighted mean); None: plain mean.

    Returns:
        Results in the order of the first input, its other keys kept, scores in the
        inputs' common float dtype. The plain mean is `np.stack(...).mean(0)`, as the
        original `fuse.py` computes it. Its provenance lists each input's name and
        provenance (None when the input has none) and the weights.
    """
    if len(results) < 2:
        raise EpicArError(f"fusing needs two or more results files; got {len(results)}")
    if weights is not None:
        if len(weights) != len(results):
            raise EpicArError(f"got {len(weights)} weights for {len(results)} results files")
        if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise EpicArError(f"weights must be finite, >= 0 and not all 0; got {list(weights)}")
    first = results[0]
    aligned = [first] + [
        align_to(first, other, names=(names[0], name))
        for other, name in zip(results[1:], names[1:], strict=True)
    ]
    fused: dict[str, np.ndarray] = {}
    for key in SCORE_KEYS:
        stacked = np.stack([getattr(r, key) for r in aligned])
        dtype = np.result_type(*[getattr(r, key).dtype for r in aligned])
        if weights is None:
            fused[key] = stacked.mean(axis=0)
        else:
            fused[key] = np.average(stacked, axis=0, weights=np.asarray(weights, np.float64))
        fused[key] = fused[key].astype(dtype, copy=False)
    record = {
        "made_by": f"epic-ar {__version__} fuse",
        "weights": None if weights is None else [float(w) for w in weights],
        "inputs": [
            {"file": name, PROVENANCE_KEY: r.extra.get(PROVENANCE_KEY)}
            for r, name in zip(results, names, strict=True)
        ],
    }
    extra = {**first.extra, PROVENANCE_KEY: record}
    return Results(fused["verb_output"], fused["noun_output"], first.narration_id.copy(), extra)
