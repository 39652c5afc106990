"""Ranks of the true verb, noun and action in a batch of scores, on the scores' device.

The definitions are those of `epic-ar evaluate` (the official evaluator's): a top-k hit is
a rank below k; classes with equal scores rank by ascending id; actions are the pairs of the
100 highest-scoring verbs and nouns, scored by the product of their probabilities (softmax
over those 100 scores only), ties by ascending action id (`verb * 1000 + noun`). The tests
check that these ranks equal the evaluator's.
"""

from __future__ import annotations

import torch

from epic_ar.annotations.classes import ACTION_TOP_N, action_ids

NOT_RANKED = torch.iinfo(torch.int64).max


def class_ranks(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B, C] scores, [B] true classes → [B] int64 0-based ranks of the true classes."""
    true_scores = scores.gather(1, labels[:, None])
    higher = (scores > true_scores).sum(dim=1)
    lower_id = torch.arange(scores.shape[1], device=scores.device)[None, :] < labels[:, None]
    tied_before = ((scores == true_scores) & lower_id).sum(dim=1)
    return higher + tied_before


def _top_probabilities(scores: torch.Tensor, top_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over each row's `top_n` best scores: ([B, K] float64, [B, K] class ids)."""
    keep = min(top_n, scores.shape[1])
    order = torch.sort(-scores, dim=1, stable=True).indices[:, :keep]
    top = scores.gather(1, order).to(torch.float64)
    exp = torch.exp(top - top[:, :1])
    return exp / exp.sum(dim=1, keepdim=True), order


def action_ranks(
    verb_scores: torch.Tensor,
    noun_scores: torch.Tensor,
    verb_labels: torch.Tensor,
    noun_labels: torch.Tensor,
    top_n: int = ACTION_TOP_N,
) -> torch.Tensor:
    """[B] int64 ranks of the true actions; `NOT_RANKED` when the true verb or noun is not
    among the `top_n` candidates."""
    verb_probs, verb_ids = _top_probabilities(verb_scores, top_n)
    noun_probs, noun_ids = _top_probabilities(noun_scores, top_n)
    verb_hit, noun_hit = verb_ids == verb_labels[:, None], noun_ids == noun_labels[:, None]
    ranked = verb_hit.any(dim=1) & noun_hit.any(dim=1)
    rows = torch.arange(len(verb_labels), device=verb_scores.device)
    true_verb = verb_probs[rows, verb_hit.to(torch.uint8).argmax(dim=1)]
    true_noun = noun_probs[rows, noun_hit.to(torch.uint8).argmax(dim=1)]
    products = verb_probs[:, :, None] * noun_probs[:, None, :]  # [B, K_v, K_n]
    true_product = (true_verb * true_noun)[:, None, None]
    ids = action_ids(verb_ids[:, :, None], noun_ids[:, None, :])
    true_ids = action_ids(verb_labels, noun_labels)[:, None, None]
    before = (products > true_product) | ((products == true_product) & (ids < true_ids))
    ranks = before.sum(dim=(1, 2))
    return torch.where(ranked, ranks, torch.full_like(ranks, NOT_RANKED))
