"""The official metrics: a hand-reasoned case with ties, brute-force properties, and
agreement with a re-statement of the official evaluator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from epic_ar.evaluation import metrics as official
from epic_ar.evaluation.metrics import (
    NOT_RANKED,
    accuracy_percent,
    action_ranks,
    challenge_metrics,
    class_ranks,
    top_n_probabilities,
)
from epic_ar.training import metrics as training_metrics
from helpers.official_reference import official_action_ranking

# Four segments, 4 verbs, 3 nouns; every rank below is reasoned out by hand in the comments.
VERB_SCORES = np.array(
    [
        [3, 1, 0, 0],  # A: true verb 0 is highest -> rank 0
        [1, 1, 1, 1],  # B: all tied, true verb 2 -> verbs 0, 1 first (lower ids) -> rank 2
        [0, 0, 5, 0],  # C: true verb 1 -> verb 2 higher, verb 0 tied with lower id -> rank 2
        [0, 2, 1, 0],  # D: true verb 3 -> verbs 1, 2 higher, verb 0 tied lower id -> rank 3
    ],
    dtype=np.float32,
)
NOUN_SCORES = np.array(
    [
        [0, 2, 1],  # A: true noun 1 highest -> rank 0
        [5, 5, 0],  # B: true noun 1 tied with noun 0 (lower id) -> rank 1
        [1, 0, 3],  # C: true noun 0, noun 2 higher -> rank 1
        [0, 0, 0],  # D: true noun 2, nouns 0, 1 tied with lower ids -> rank 2
    ],
    dtype=np.float32,
)
VERBS = np.array([0, 2, 1, 3])
NOUNS = np.array([1, 1, 0, 2])
# Actions, ranked by the product of probabilities, ties by action id (verb * 1000 + noun):
# A: (0, 1) has the highest product -> 0.
# B: verbs uniform, nouns 0 and 1 tie: 8 pairs tie for first; of them 0, 1, 1000, 1001 and
#    2000 have lower ids than the true 2001 -> 5 (just outside the top 5).
# C: true (1, 0) has logit sum 1; pairs with verb 2 (sums 8, 6, 5) and pairs with noun 2
#    and verbs 0, 1, 3 (sum 3) are higher -> 6, plus (0, 0) tied with a lower id -> 7.
# D: 6 pairs with verbs 1 or 2 are higher; (0, 0..2) and (3, 0..1) tie with lower ids -> 11.
ACTION_RANKS = [0, 5, 7, 11]


def test_class_ranks_of_the_hand_case() -> None:
    assert class_ranks(VERB_SCORES, VERBS).tolist() == [0, 2, 2, 3]
    assert class_ranks(NOUN_SCORES, NOUNS).tolist() == [0, 1, 1, 2]


def test_action_ranks_of_the_hand_case() -> None:
    assert action_ranks(VERB_SCORES, NOUN_SCORES, VERBS, NOUNS).tolist() == ACTION_RANKS
    # The chunking must not change anything.
    chunked = action_ranks(VERB_SCORES, NOUN_SCORES, VERBS, NOUNS, chunk_rows=1)
    assert chunked.tolist() == ACTION_RANKS


def hand_case_metrics(
    tail_verbs: np.ndarray | None,
    tail_nouns: np.ndarray | None,
    unseen_participants: np.ndarray | None,
) -> tuple[dict[str, float], list[str]]:
    """The metrics of the hand case; its participants are P01, P02, P02, P03."""
    return challenge_metrics(
        class_ranks(VERB_SCORES, VERBS),
        class_ranks(NOUN_SCORES, NOUNS),
        np.array(ACTION_RANKS),
        verb_labels=VERBS,
        noun_labels=NOUNS,
        participant_ids=np.array(["P01", "P02", "P02", "P03"]),
        tail_verbs=tail_verbs,
        tail_nouns=tail_nouns,
        unseen_participants=unseen_participants,
    )


def test_metrics_of_the_hand_case() -> None:
    metrics, notes = hand_case_metrics(
        tail_verbs=np.array([0, 2]),  # segments A, B
        tail_nouns=np.array([1]),  # segments A, B
        unseen_participants=np.array(["P01", "P03"]),  # segments A, D
    )
    assert notes == []
    assert metrics == {
        "all_action_accuracy_at_1": 25.0,
        "all_action_accuracy_at_5": 25.0,  # B is rank 5: the tie rule keeps it out
        "all_noun_accuracy_at_1": 25.0,
        "all_noun_accuracy_at_5": 100.0,
        "all_verb_accuracy_at_1": 25.0,
        "all_verb_accuracy_at_5": 100.0,
        "tail_action_accuracy_at_1": 50.0,  # A hit, B miss
        "tail_noun_accuracy_at_1": 50.0,
        "tail_verb_accuracy_at_1": 50.0,
        "unseen_action_accuracy_at_1": 50.0,  # A hit, D miss
        "unseen_noun_accuracy_at_1": 50.0,
        "unseen_verb_accuracy_at_1": 50.0,
    }
    assert list(metrics) == sorted(metrics)


def test_groups_without_tables_or_segments_are_left_out_with_a_note() -> None:
    metrics, notes = hand_case_metrics(
        tail_verbs=np.array([0]),
        tail_nouns=None,  # no noun table: neither tail noun nor tail action
        unseen_participants=np.array(["P99"]),  # nobody unseen among these segments
    )
    assert "tail_verb_accuracy_at_1" in metrics
    assert "tail_noun_accuracy_at_1" not in metrics
    assert "tail_action_accuracy_at_1" not in metrics
    assert not any(name.startswith("unseen_") for name in metrics)
    assert len(notes) == 3 and all("unseen" in note for note in notes)


def test_true_action_outside_the_top_n_candidates_is_never_a_hit() -> None:
    verbs = np.array([[4.0, 3.0, 2.0, 1.0]])
    nouns = np.array([[1.0, 0.0]])
    ranks = action_ranks(verbs, nouns, np.array([2]), np.array([0]), top_n=2)
    assert ranks.tolist() == [NOT_RANKED]
    assert accuracy_percent(ranks, 5) == 0.0


def test_top_n_probabilities_sum_to_one_over_the_kept_classes() -> None:
    scores = np.array([[0.0, 3.0, 1.0, 3.0, -2.0]])
    probs, ids = top_n_probabilities(scores, 3)
    assert ids.tolist() == [[1, 3, 2]]  # 3.0 tie -> lower id first
    expected = np.exp([3.0, 3.0, 1.0]) / np.exp([3.0, 3.0, 1.0]).sum()
    np.testing.assert_allclose(probs[0], expected, rtol=1e-15)


def test_accuracy_uses_the_official_float_operations() -> None:
    ranks = np.array([0] * 3 + [7] * 9665)  # 3 hits of 9668
    assert accuracy_percent(ranks, 1) == float(np.mean(ranks < 1) * 100)
    assert accuracy_percent(ranks, 1) == 3 / 9668 * 100


small_scores = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 7)),
    elements=st.integers(-2, 2).map(float),  # small integers: ties are frequent
)


@settings(max_examples=200, deadline=None)
@given(scores=small_scores, data=st.data())
def test_class_ranks_equal_position_in_a_stable_descending_sort(
    scores: np.ndarray, data: st.DataObject
) -> None:
    n, c = scores.shape
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    order = np.argsort(-scores, axis=1, kind="stable")
    expected = [int(np.flatnonzero(order[i] == labels[i])[0]) for i in range(n)]
    assert class_ranks(scores, labels).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(
    verb=small_scores,
    noun_classes=st.integers(1, 7),
    top_n=st.integers(1, 8),
    data=st.data(),
)
def test_action_ranks_equal_a_brute_force_sort_of_all_candidate_pairs(
    verb: np.ndarray, noun_classes: int, top_n: int, data: st.DataObject
) -> None:
    n, c_v = verb.shape
    noun = data.draw(
        hnp.arrays(np.float64, (n, noun_classes), elements=st.integers(-2, 2).map(float))
    )
    verbs = np.array(data.draw(st.lists(st.integers(0, c_v - 1), min_size=n, max_size=n)))
    nouns = np.array(data.draw(st.lists(st.integers(0, noun_classes - 1), min_size=n, max_size=n)))
    pv, v_ids = top_n_probabilities(verb, top_n)
    pn, n_ids = top_n_probabilities(noun, top_n)
    expected = []
    for i in range(n):
        pairs = sorted(
            (-(pv[i, a] * pn[i, b]), int(v_ids[i, a]) * 1000 + int(n_ids[i, b]))
            for a in range(pv.shape[1])
            for b in range(pn.shape[1])
        )
        ids = [action for _, action in pairs]
        true = int(verbs[i]) * 1000 + int(nouns[i])
        expected.append(ids.index(true) if true in ids else NOT_RANKED)
    assert action_ranks(verb, noun, verbs, nouns, top_n=top_n).tolist() == expected


def test_action_top5_agrees_with_the_official_ranking_on_continuous_scores() -> None:
    rng = np.random.default_rng(7)
    n = 500
    verb = rng.standard_normal((n, 97)).astype(np.float32)
    noun = rng.standard_normal((n, 300)).astype(np.float32)
    verbs, nouns = rng.integers(0, 97, n), rng.integers(0, 300, n)
    verb[np.arange(n), verbs] += 3  # put true actions in the top 5 often
    noun[np.arange(n), nouns] += 3
    official = official_action_ranking(verb, noun)
    truth = verbs * 1000 + nouns
    ours = action_ranks(verb, noun, verbs, nouns)
    for k in (1, 5):
        expected = (official[:, :k] == truth[:, None]).any(axis=1)
        np.testing.assert_array_equal(ours < k, expected)
    assert 0.05 < np.mean(ours < 1) < 0.95  # the case exercises both hits and misses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_perfect_and_hopeless_scores(dtype: type) -> None:
    n = 50
    rng = np.random.default_rng(0)
    verbs, nouns = rng.integers(0, 97, n), rng.integers(0, 300, n)
    verb: np.ndarray = np.zeros((n, 97), dtype)
    noun: np.ndarray = np.zeros((n, 300), dtype)
    verb[np.arange(n), verbs] = 10
    noun[np.arange(n), nouns] = 10
    assert (action_ranks(verb, noun, verbs, nouns) == 0).all()
    assert (class_ranks(-verb, verbs) == 96).all()  # the true class scores lowest


def test_training_ranks_equal_the_evaluator_ranks() -> None:
    rng = np.random.default_rng(0)
    verb_scores = rng.integers(0, 6, (64, 97)).astype(np.float32)  # many ties
    noun_scores = rng.normal(size=(64, 300)).astype(np.float32)
    noun_scores[:8] = 0.0  # whole rows tied
    verbs, nouns = rng.integers(0, 97, 64), rng.integers(0, 300, 64)
    rows = np.arange(16, 40)  # true classes score high here: low action ranks
    verb_scores[rows, verbs[rows]] = 9.0
    noun_scores[rows, nouns[rows]] = 4.0
    as_torch = [torch.from_numpy(a) for a in (verb_scores, noun_scores, verbs, nouns)]
    assert np.array_equal(
        training_metrics.class_ranks(as_torch[0], as_torch[2]).numpy(),
        official.class_ranks(verb_scores, verbs),
    )
    ours = training_metrics.action_ranks(as_torch[0], as_torch[1], as_torch[2], as_torch[3]).numpy()
    theirs = official.action_ranks(verb_scores, noun_scores, verbs, nouns)
    assert np.array_equal(np.minimum(ours, 10**6), np.minimum(theirs, 10**6))
    assert (ours < 5).any() and (ours >= 10**6).any()
