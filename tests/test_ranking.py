"""Ranking metrics (bayesmf.ranking, bayesmf.beyond_accuracy) on cases computed by hand; the tie-broken top k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayesmf.ranking import (
    average_precision_at_k,
    catalogue_coverage,
    hit_rate_at_k,
    mean_popularity,
    metrics_from_hits,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    top_k_tiebroken,
)

L3, L6 = math.log2(3), math.log2(6)  # discounts of ranks 2 and 5 are 1/log2(3), 1/log2(6)

# ranked 10, 20, 30, 40, 50; relevant 20, 50, 70 (70 is never ranked): R = 3
RANKED = [10, 20, 30, 40, 50]
RELEVANT = [20, 50, 70]


def _all(ranked, relevant, k):
    return {
        "precision": precision_at_k(ranked, relevant, k),
        "recall": recall_at_k(ranked, relevant, k),
        "ndcg": ndcg_at_k(ranked, relevant, k),
        "ap": average_precision_at_k(ranked, relevant, k),
        "rr": reciprocal_rank(ranked, relevant, k),
        "hit": hit_rate_at_k(ranked, relevant, k),
    }


def test_hand_computed_at_5():
    # hits h = 0 1 0 0 1
    got = _all(RANKED, RELEVANT, 5)
    assert got["precision"] == pytest.approx(2 / 5)
    assert got["recall"] == pytest.approx(2 / 3)
    # DCG = 1/log2(3) + 1/log2(6); ideal over min(5, 3) = 3 ranks: 1 + 1/log2(3) + 1/log2(4)
    # = (0.630930 + 0.386853) / (1 + 0.630930 + 0.5) = 1.017783 / 2.130930
    assert got["ndcg"] == pytest.approx((1 / L3 + 1 / L6) / (1 + 1 / L3 + 0.5))
    assert got["ndcg"] == pytest.approx(0.477624, abs=1e-6)
    # AP@5 = (P@2 + P@5) / min(5, 3) = (1/2 + 2/5) / 3 = 0.3
    assert got["ap"] == pytest.approx(0.3)
    assert got["rr"] == pytest.approx(1 / 2)  # first hit at rank 2
    assert got["hit"] == 1.0


def test_hand_computed_at_2_and_1():
    # top 2: h = 0 1
    got = _all(RANKED, RELEVANT, 2)
    assert got["precision"] == pytest.approx(1 / 2)
    assert got["recall"] == pytest.approx(1 / 3)
    # DCG = 1/log2(3); ideal over min(2, 3) = 2 ranks: 1 + 1/log2(3)
    assert got["ndcg"] == pytest.approx((1 / L3) / (1 + 1 / L3))  # 0.38685
    # AP@2 = P@2 / min(2, 3) = (1/2) / 2
    assert got["ap"] == pytest.approx(0.25)
    assert got["rr"] == pytest.approx(0.5)
    # top 1: no hit at all
    assert _all(RANKED, RELEVANT, 1) == {"precision": 0, "recall": 0, "ndcg": 0, "ap": 0, "rr": 0, "hit": 0}


def test_k_larger_than_the_list():
    # k = 10 > 5 items: the missing ranks are misses
    got = _all(RANKED, RELEVANT, 10)
    assert got["precision"] == pytest.approx(2 / 10)  # still divided by k
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["ndcg"] == pytest.approx((1 / L3 + 1 / L6) / (1 + 1 / L3 + 0.5))  # ideal capped at R = 3
    assert got["ap"] == pytest.approx((1 / 2 + 2 / 5) / 3)  # min(10, 3) = 3
    assert reciprocal_rank(RANKED, RELEVANT) == pytest.approx(0.5)  # k=None: whole list


def test_perfect_list_and_more_relevant_than_k():
    assert _all([1, 2, 3], [3, 2, 1], 3) == {"precision": 1, "recall": 1, "ndcg": 1, "ap": 1, "rr": 1, "hit": 1}
    # R = 4 > k = 2, both slots relevant: AP = (1 + 1) / min(2, 4) = 1, NDCG = 1, recall 2/4
    assert average_precision_at_k([1, 2], [1, 2, 3, 4], 2) == pytest.approx(1.0)
    assert ndcg_at_k([1, 2], [1, 2, 3, 4], 2) == pytest.approx(1.0)
    assert recall_at_k([1, 2], [1, 2, 3, 4], 2) == pytest.approx(0.5)


def test_no_relevant_items():
    got = _all(RANKED, [], 3)
    # normalisers with R: undefined; the others: 0
    assert math.isnan(got["recall"]) and math.isnan(got["ndcg"]) and math.isnan(got["ap"])
    assert got["precision"] == 0 and got["rr"] == 0 and got["hit"] == 0
    # an empty list with relevant items: every metric 0
    assert _all([], [1], 3) == {"precision": 0, "recall": 0, "ndcg": 0, "ap": 0, "rr": 0, "hit": 0}


def test_string_ids_and_duplicate_relevant_ids():
    assert precision_at_k(np.array(["a", "b", "c"], dtype=object), ["c", "c", "z"], 3) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "b", "c"], ["c", "c", "z"], 3) == pytest.approx(1 / 2)  # R = 2 distinct


def test_matrix_form_matches_the_single_list_functions():
    rng = np.random.default_rng(0)
    k, n_users = 6, 40
    hits = rng.random((n_users, k)) < 0.3
    n_rel = hits.sum(axis=1) + rng.integers(0, 4, n_users)
    out = metrics_from_hits(hits, n_rel)
    for u in range(n_users):
        # rebuild a list: item i at rank i + 1, relevant = its hits plus unranked extras
        ranked = np.arange(k)
        relevant = list(np.flatnonzero(hits[u])) + [100 + e for e in range(n_rel[u] - hits[u].sum())]
        single = _all(ranked, relevant, k)
        for name, value in single.items():
            np.testing.assert_allclose(out[name][u], value, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("fn", [precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k, hit_rate_at_k, reciprocal_rank])
def test_bad_k(fn):
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        fn(RANKED, RELEVANT, 0)
    with pytest.raises(ValueError, match="got -3"):
        fn(RANKED, RELEVANT, -3)
    with pytest.raises(TypeError, match=r"k must be an integer >= 1, got 2\.5"):
        fn(RANKED, RELEVANT, 2.5)
    with pytest.raises(TypeError, match="got True"):
        fn(RANKED, RELEVANT, True)


def test_bad_lists():
    with pytest.raises(ValueError, match="repeats item 20"):
        precision_at_k([10, 20, 20], [20], 3)
    with pytest.raises(ValueError, match=r"ranked must be a 1-d .* shape \(2, 2\)"):
        precision_at_k([[1, 2], [3, 4]], [1], 2)
    with pytest.raises(ValueError, match="user 0 has 2 hits but n_relevant=1"):
        metrics_from_hits([[True, True]], [1])
    with pytest.raises(ValueError, match="hits must be"):
        metrics_from_hits([True, False], [1])


# -- beyond accuracy ------------------------------------------------------------------------
def test_catalogue_coverage():
    # items 0, 1, 2 appear in some list: 3 of 10
    assert catalogue_coverage([[0, 1], [1, 2]], 10) == pytest.approx(0.3)
    assert catalogue_coverage(np.array([[0, 1], [1, 0]]), 2) == 1.0
    assert catalogue_coverage([[0, 1], []], 4) == pytest.approx(0.5)  # ragged, one empty


def test_mean_popularity_and_novelty():
    counts = np.array([10, 5, 1, 0])
    lists = [[0, 1], [2, 3]]
    # per list: (10 + 5) / 2 = 7.5 and (1 + 0) / 2 = 0.5; mean 4.0
    assert mean_popularity(lists, counts) == pytest.approx(4.0)
    # n_users = 10: -log2 share = 0 (10/10), 1 (5/10), log2(10) (1/10), log2(10) (0 counts as 1)
    # per list: (0 + 1) / 2 = 0.5 and log2(10); mean (0.5 + 3.321928) / 2
    assert novelty(lists, counts, 10) == pytest.approx((0.5 + math.log2(10)) / 2)
    # empty lists are left out of the mean
    assert mean_popularity([[0], []], counts) == pytest.approx(10.0)


def test_beyond_accuracy_bad_input():
    with pytest.raises(ValueError, match=r"list 1 holds 7, not an item index in 0\.\.3"):
        catalogue_coverage([[0], [7]], 4)
    with pytest.raises(ValueError, match=r"holds -1"):
        mean_popularity([[0, -1]], [1, 2])
    with pytest.raises(ValueError, match=r"holds 1\.5"):
        mean_popularity([[1.5]], [1, 2])
    with pytest.raises(ValueError, match="n_items must be >= 1, got 0"):
        catalogue_coverage([[0]], 0)
    with pytest.raises(ValueError, match="exceeds n_users=3"):
        novelty([[0]], [5, 1], 3)
    with pytest.raises(TypeError, match=r"n_users must be an integer >= 1, got 2\.0"):
        novelty([[0]], [1, 1], 2.0)
    with pytest.raises(ValueError, match="every list is empty"):
        mean_popularity([[], []], [1, 2])
    with pytest.raises(ValueError, match="lists is empty"):
        catalogue_coverage([], 3)
    with pytest.raises(ValueError, match="item_counts"):
        mean_popularity([[0]], [-1, 2])


# -- reference implementation --------------------------------------------------------------
def test_agreement_with_trec_eval():
    """pytrec_eval (trec_eval's C code) on random lists; skipped when it is not installed."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(1)
    qrels, runs, cases = {}, {}, {}
    for q in range(60):
        ranked = rng.permutation(50)[: rng.integers(1, 25)]
        relevant = rng.choice(50, size=rng.integers(1, 15), replace=False)
        name = f"q{q}"
        qrels[name] = {f"d{j}": int(j in set(relevant.tolist())) for j in range(50)}
        # distinct scores, so trec_eval's own tie-break never matters
        runs[name] = {f"d{j}": float(len(ranked) - i) for i, j in enumerate(ranked)}
        cases[name] = (ranked, relevant)
    for k in (1, 5, 10, 20):
        measures = {f"P_{k}", f"recall_{k}", f"ndcg_cut_{k}", f"map_cut_{k}", f"success_{k}", "recip_rank"}
        ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(runs)
        for name, (ranked, relevant) in cases.items():
            r, mine = len(relevant), _all(ranked, relevant, k)
            t = ref[name]
            assert mine["precision"] == pytest.approx(t[f"P_{k}"], abs=1e-12)
            assert mine["recall"] == pytest.approx(t[f"recall_{k}"], abs=1e-12)
            assert mine["ndcg"] == pytest.approx(t[f"ndcg_cut_{k}"], abs=1e-12)
            # trec_eval's map_cut divides by R, ours by min(k, R)
            assert mine["ap"] * min(k, r) / r == pytest.approx(t[f"map_cut_{k}"], abs=1e-12)
            assert mine["hit"] == t[f"success_{k}"]
            assert reciprocal_rank(ranked, relevant) == pytest.approx(t["recip_rank"], abs=1e-12)


def test_top_k_tiebroken_is_a_sort_by_score_mean_and_key():
    """Against a full lexicographic sort, on scores with many ties; the mean is asked for tied
    candidates that can reach the top k only, and not at all without ties."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        score = rng.integers(0, 4, n) / 4.0
        mean = rng.integers(0, 3, n).astype(float)
        key = rng.permutation(n)
        k = int(rng.integers(1, n + 2))
        asked: list[np.ndarray] = []

        def tie_mean(rows, mean=mean, asked=asked):
            asked.append(rows)
            return mean[rows]

        got = top_k_tiebroken(score, k, tie_mean, key)
        expected = np.lexsort((key, -mean, -score))[:k]
        np.testing.assert_array_equal(got, expected)
        kth = np.sort(score)[::-1][min(k, n) - 1]
        if asked:
            rows = asked[0]
            assert len(asked) == 1 and (score[rows] >= kth).all()
            assert all((score[rows] == score[r]).sum() >= 2 for r in rows)
        else:
            assert len(np.unique(score[score >= kth])) == (score >= kth).sum()


def test_top_k_tiebroken_with_rng_shuffles_only_what_the_mean_leaves_tied():
    score = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    mean = np.array([0.2, 0.9, 0.2, 0.2, 5.0])
    firsts = {int(top_k_tiebroken(score, 2, lambda r: mean[r], rng=np.random.default_rng(s))[1]) for s in range(40)}
    for s in range(40):
        assert top_k_tiebroken(score, 1, lambda r: mean[r], rng=np.random.default_rng(s))[0] == 1
    assert firsts == {0, 2, 3}  # 40 draws miss one of three equally likely items with prob < 1e-6
