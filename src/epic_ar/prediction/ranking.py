"""A window's scores as ranked verbs, nouns and actions with their probabilities.

Verbs and nouns: `p` is the softmax over all classes of the window's (view-averaged)
scores; classes are ranked by score, highest first (equal scores: lower id first).
Actions are ranked as the official evaluator ranks them: the candidates are the pairs of
the `ACTION_TOP_N` (100) highest-scoring verbs and nouns, ranked by the product of their
probabilities (equal products: lower action id, verb * 1000 + noun, first). An action's
`p` is its verb's `p` times its noun's `p`. (The evaluator's softmax runs over the top 100
scores only; that scales every product of a window by the same factor, so the ranking is
the same.)
"""

from __future__ import annotations

import numpy as np

from epic_ar.annotations.classes import ACTION_TOP_N, action_ids, class_names
from epic_ar.models.config import split_scores
from epic_ar.prediction.result import ActionScore, ClassScore, WindowPrediction
from epic_ar.prediction.windows import Window


def softmax(scores: np.ndarray) -> np.ndarray:
    """[C] probabilities (float64) of [C] scores."""
    values = np.asarray(scores, dtype=np.float64)
    exp = np.exp(values - values.max())
    result: np.ndarray = exp / exp.sum()
    return result


def ranked_ids(scores: np.ndarray, count: int) -> np.ndarray:
    """The ids of the `count` highest `scores` ([C]), highest first (ties: lower id)."""
    return np.argsort(-np.asarray(scores), kind="stable")[:count]


def top_classes(scores: np.ndarray, kind: str, k: int) -> list[ClassScore]:
    """The `k` most probable classes of [C] scores (`kind`: "verb" or "noun")."""
    names = class_names(kind)
    probabilities = softmax(scores)
    return [
        ClassScore(int(c), names[int(c)], float(probabilities[c])) for c in ranked_ids(scores, k)
    ]


def top_actions(
    verb_scores: np.ndarray, noun_scores: np.ndarray, k: int, *, top_n: int = ACTION_TOP_N
) -> list[ActionScore]:
    """The `k` most probable actions of a window's verb [97] and noun [300] scores, ranked
    among the pairs of the `top_n` best verbs and nouns (see the module docstring)."""
    verbs, nouns = ranked_ids(verb_scores, top_n), ranked_ids(noun_scores, top_n)
    verb_p, noun_p = softmax(verb_scores)[verbs], softmax(noun_scores)[nouns]
    products = (verb_p[:, None] * noun_p[None, :]).ravel()
    ids = action_ids(verbs[:, None], nouns[None, :]).ravel()
    order = np.lexsort((ids, -products))[:k]  # by product, then by action id
    verb_names, noun_names = class_names("verb"), class_names("noun")
    ranked = []
    for position in order.tolist():
        verb, noun = int(verbs[position // len(nouns)]), int(nouns[position % len(nouns)])
        name = f"{verb_names[verb]} {noun_names[noun]}"
        ranked.append(ActionScore(verb, noun, name, float(products[position])))
    return ranked


def window_prediction(scores: np.ndarray, window: Window, k: int) -> WindowPrediction:
    """The top-`k` verbs, nouns and actions of one window's [397] scores (97 verbs, then
    300 nouns; logits averaged over views)."""
    verb_scores, noun_scores = split_scores(np.asarray(scores)[None])
    return WindowPrediction(
        start=window.start,
        end=window.end,
        verbs=top_classes(verb_scores[0], "verb", k),
        nouns=top_classes(noun_scores[0], "noun", k),
        actions=top_actions(verb_scores[0], noun_scores[0], k),
    )
