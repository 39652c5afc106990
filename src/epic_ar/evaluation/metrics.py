"""The EPIC-KITCHENS-100 action recognition metrics, as the official evaluator defines them.

Every metric is a top-k accuracy of a ranking, so each segment is reduced to the 0-based
rank of its true class (rank < k means a top-k hit). Ranks are computed by counting, not
by sorting whole score matrices, which keeps the evaluation of the full validation set
well under a second.

Ties: classes with equal scores are ranked by ascending class id, and actions with equal
probability products by ascending action id. This is deterministic, unlike the official
evaluator's `argsort()[::-1]`, whose order among equal scores depends on numpy's sort
implementation; for scores without ties (any real model) both agree exactly.
"""

from __future__ import annotations

import numpy as np

from epic_ar.annotations.classes import ACTION_TOP_N, action_ids

# The rank given to a true action that is not among the top-N x top-N candidate pairs.
NOT_RANKED = np.iinfo(np.int64).max


def class_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each segment's true class when its scores are sorted descending.

    Args:
        scores: [N, C] float scores.
        labels: [N] int true class ids in [0, C).

    Returns:
        [N] int64: classes scoring higher, plus equal-scoring classes with a lower id.
    """
    rows = np.arange(len(labels))
    true_scores = scores[rows, labels][:, None]
    higher = np.count_nonzero(scores > true_scores, axis=1)
    lower_id = np.arange(scores.shape[1])[None, :] < labels[:, None]
    tied_before = np.count_nonzero((scores == true_scores) & lower_id, axis=1)
    ranks: np.ndarray = (higher + tied_before).astype(np.int64)
    return ranks


def top_n_probabilities(scores: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over each segment's `top_n` highest scores only.

    Args:
        scores: [N, C] float scores.
        top_n: how many classes to keep per segment (all C when C <= top_n).

    Returns:
        probabilities [N, K] float64 and their class ids [N, K] int64, K = min(top_n, C),
        ordered by descending score (ties: ascending class id).
    """
    keep = min(top_n, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    top = np.take_along_axis(scores, order, axis=1).astype(np.float64)
    exp = np.exp(top - top[:, :1])  # column 0 holds each row's maximum
    return exp / exp.sum(axis=1, keepdims=True), order.astype(np.int64)


def action_ranks(
    verb_scores: np.ndarray,
    noun_scores: np.ndarray,
    verb_labels: np.ndarray,
    noun_labels: np.ndarray,
    *,
    top_n: int = ACTION_TOP_N,
    chunk_rows: int = 256,
) -> np.ndarray:
    """0-based rank of each segment's true action among the official action candidates.

    Candidates are the pairs of the `top_n` highest-scoring verbs and nouns, scored by the
    product of their probabilities (softmax over those `top_n` scores only), ranked by
    descending product (ties: ascending action id).

    Args:
        verb_scores: [N, C_v] float; noun_scores: [N, C_n] float.
        verb_labels, noun_labels: [N] int true classes.
        chunk_rows: segments per block of [chunk_rows, K_v, K_n] float64 products.

    Returns:
        [N] int64 ranks; `NOT_RANKED` where the true verb or noun is not a candidate.
    """
    verb_probs, verb_ids = top_n_probabilities(verb_scores, top_n)
    noun_probs, noun_ids = top_n_probabilities(noun_scores, top_n)
    verb_hit = verb_ids == verb_labels[:, None]
    noun_hit = noun_ids == noun_labels[:, None]
    ranked = verb_hit.any(axis=1) & noun_hit.any(axis=1)
    verb_pos, noun_pos = verb_hit.argmax(axis=1), noun_hit.argmax(axis=1)
    true_actions = action_ids(verb_labels, noun_labels)

    ranks = np.full(len(verb_labels), NOT_RANKED, dtype=np.int64)
    for start in range(0, len(ranks), chunk_rows):
        block = slice(start, start + chunk_rows)
        rows = np.arange(len(ranks[block]))
        pv, pn = verb_probs[block], noun_probs[block]
        products = pv[:, :, None] * pn[:, None, :]  # [B, K_v, K_n]
        # The same multiplication as in `products`, so the true pair compares equal to itself.
        true_product = (pv[rows, verb_pos[block]] * pn[rows, noun_pos[block]])[:, None, None]
        block_ranks = np.count_nonzero(products > true_product, axis=(1, 2))
        ties = np.flatnonzero(np.count_nonzero(products == true_product, axis=(1, 2)) > 1)
        if len(ties):
            tied_ids = action_ids(
                verb_ids[block][ties][:, :, None], noun_ids[block][ties][:, None, :]
            )
            tied = products[ties] == true_product[ties]
            before = tied & (tied_ids < true_actions[block][ties][:, None, None])
            block_ranks[ties] += np.count_nonzero(before, axis=(1, 2))
        ranks[block] = np.where(ranked[block], block_ranks, NOT_RANKED)
    return ranks


def accuracy_percent(ranks: np.ndarray, k: int) -> float:
    """Top-k accuracy in percent: the share of `ranks` ([N] int) below `k`, times 100.

    Computed as `(hits / N) * 100`, the same float operations as the official evaluator,
    so printed values agree to the last digit.
    """
    return float(np.count_nonzero(ranks < k) / len(ranks) * 100)


def challenge_metrics(
    verb_ranks: np.ndarray,
    noun_ranks: np.ndarray,
    action_ranks_: np.ndarray,
    *,
    verb_labels: np.ndarray,
    noun_labels: np.ndarray,
    participant_ids: np.ndarray,
    tail_verbs: np.ndarray | None,
    tail_nouns: np.ndarray | None,
    unseen_participants: np.ndarray | None,
) -> tuple[dict[str, float], list[str]]:
    """The official metrics from per-segment ranks ([N] int each).

    Returns:
        metrics named as the official evaluator names them (`all_verb_accuracy_at_1`,
        `tail_action_accuracy_at_1`, `unseen_noun_accuracy_at_1`, ...), in percent, and
        notes on groups left out (no table given, or no segment of the group present).
    """
    task_ranks = {"verb": verb_ranks, "noun": noun_ranks, "action": action_ranks_}
    metrics: dict[str, float] = {}
    notes: list[str] = []
    for task, ranks in task_ranks.items():
        for k in (1, 5):
            metrics[f"all_{task}_accuracy_at_{k}"] = accuracy_percent(ranks, k)

    tail_masks: dict[str, np.ndarray] = {}
    if tail_verbs is not None:
        tail_masks["verb"] = np.isin(verb_labels, tail_verbs)
    if tail_nouns is not None:
        tail_masks["noun"] = np.isin(noun_labels, tail_nouns)
    if len(tail_masks) == 2:  # an action is tail when its verb or its noun is
        tail_masks["action"] = tail_masks["verb"] | tail_masks["noun"]
    groups: dict[str, dict[str, np.ndarray]] = {"tail": tail_masks}
    if unseen_participants is not None:
        unseen = np.isin(participant_ids, unseen_participants)
        groups["unseen"] = dict.fromkeys(task_ranks, unseen)

    for group, masks in groups.items():
        for task, mask in masks.items():
            if not mask.any():
                notes.append(f"no evaluated segment is in the {group} {task} group; left out")
                continue
            metrics[f"{group}_{task}_accuracy_at_1"] = accuracy_percent(task_ranks[task][mask], 1)
    return dict(sorted(metrics.items())), notes
