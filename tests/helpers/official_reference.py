"""A direct re-statement of the official C1-Action-Recognition evaluator's algorithm.

Slow and memory-hungry on purpose (full argsorts of every action pair), used only to check
that `epic_ar.evaluation.metrics` gives the same numbers. Note the official code calls
scipy's `softmax` without an axis, i.e. over the whole [N, 100] array at once.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _softmax_whole_array(x: np.ndarray) -> np.ndarray:
    exp = np.exp(x - np.max(x))
    probs: np.ndarray = exp / np.sum(exp)
    return probs


def _top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argsort(scores)[:, ::-1][:, :n]
    return idx, scores[np.arange(len(scores))[:, None], idx]


def official_action_ranking(verb: np.ndarray, noun: np.ndarray, top_n: int = 100) -> np.ndarray:
    """[N, top_n] action ids ranked as the official evaluator ranks them."""
    top_verbs, top_verb_scores = _top(verb, top_n)
    top_nouns, top_noun_scores = _top(noun, top_n)
    pv = _softmax_whole_array(top_verb_scores)
    pn = _softmax_whole_array(top_noun_scores)
    products = (pv[:, :, None] * pn[:, None, :]).reshape(len(verb), -1)
    ranked = products.argsort(axis=-1)[:, ::-1][:, :top_n]
    vi, ni = np.unravel_index(ranked, (pv.shape[1], pn.shape[1]))
    rows = np.arange(len(verb))[:, None]
    ranking: np.ndarray = top_verbs[rows, vi] * 1000 + top_nouns[rows, ni]
    return ranking


def _topk(ranking: np.ndarray, labels: np.ndarray, ks: tuple[int, ...]) -> list[float]:
    tp = ranking[:, : max(ks)] == labels.reshape(-1, 1)
    return [float(tp[:, :k].max(1).mean() * 100) for k in ks]


def official_metrics(
    verb: np.ndarray,
    noun: np.ndarray,
    labels: pd.DataFrame,
    tail_verbs: np.ndarray,
    tail_nouns: np.ndarray,
    unseen: np.ndarray,
    chunk: int = 1000,
) -> dict[str, float]:
    """The 12 official metrics; `labels` rows aligned with the score rows."""
    action_rank = np.concatenate(
        [
            official_action_ranking(verb[i : i + chunk], noun[i : i + chunk])
            for i in range(0, len(verb), chunk)
        ]
    )
    ranks = {
        "verb": verb.argsort(axis=-1)[:, ::-1],
        "noun": noun.argsort(axis=-1)[:, ::-1],
        "action": action_rank,
    }
    truth = {
        "verb": labels["verb_class"].to_numpy(),
        "noun": labels["noun_class"].to_numpy(),
    }
    truth["action"] = truth["verb"] * 1000 + truth["noun"]
    out: dict[str, float] = {}
    for task, ranking in ranks.items():
        for k, acc in zip((1, 5), _topk(ranking, truth[task], (1, 5)), strict=True):
            out[f"all_{task}_accuracy_at_{k}"] = acc
    tail_v = np.isin(truth["verb"], tail_verbs)
    tail_n = np.isin(truth["noun"], tail_nouns)
    masks = {"verb": tail_v, "noun": tail_n, "action": tail_v | tail_n}
    unseen_mask = labels["participant_id"].isin(unseen).to_numpy()
    for task in ranks:
        out[f"tail_{task}_accuracy_at_1"] = _topk(
            ranks[task][masks[task]], truth[task][masks[task]], (1,)
        )[0]
        out[f"unseen_{task}_accuracy_at_1"] = _topk(
            ranks[task][unseen_mask], truth[task][unseen_mask], (1,)
        )[0]
    return out


def official_submission_text(
    verb: np.ndarray, noun: np.ndarray, ids: np.ndarray, sls: tuple[int, int, int] = (2, 3, 4)
) -> str:
    """The `test.json` text the official create_submission.py writes (json.dumps of dicts)."""
    return json.dumps(
        {
            "version": "0.2",
            "challenge": "action_recognition",
            "sls_pt": sls[0],
            "sls_tl": sls[1],
            "sls_td": sls[2],
            "results": {
                str(i): {
                    "verb": {str(c): float(s) for c, s in enumerate(v)},
                    "noun": {str(c): float(s) for c, s in enumerate(n)},
                }
                for v, n, i in zip(verb, noun, ids, strict=True)
            },
        }
    )
