"""Batched ranking by lower bound and P(r >= t) (bayesmf.batched_ranking): recommend's lists, exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import fake_result
from scipy.special import ndtr

from bayesmf import batched_ranking as br
from bayesmf._kernels_ranking import TABLE_STEP, pair_sums, phi_table
from bayesmf.options import PredictOptions
from bayesmf.predictive.view import model_view
from bayesmf.spec import PMF
from bayesmf.topn import evaluate_topn

K_TOP = 6


@pytest.fixture(scope="module")
def fit():
    """A concentrated random posterior (items really differ), 3 factors, biases, 80 draws."""
    return fake_result(PMF(n_factors=3), n_users=25, n_items=70, n_draws=40, seed=11, factor_sd=0.8, jitter=0.25)


def _unrated(result):
    train = result.train
    users = list(range(train.n_users))
    return users, [np.setdiff1d(np.arange(train.n_items), train.item_idx[train.user_idx == u]) for u in users]


def _assert_same(fast, slow, ties_too=True):
    """Scores equal to 1e-12; items equal wherever the score is not tied with another in the list.

    ``ties_too``: tied items too (both rank ties in candidate order).
    """
    assert len(fast) == len(slow)
    for (fi, fs), (si, ss) in zip(fast, slow, strict=True):
        np.testing.assert_allclose(fs, ss, rtol=0, atol=1e-12)
        tied = np.abs(ss[:, None] - ss[None, :]) <= 1e-12
        distinct = tied.sum(axis=1) == 1
        np.testing.assert_array_equal(fi[distinct], si[distinct])
        if ties_too:
            np.testing.assert_array_equal(fi, si)


@pytest.mark.parametrize(
    ("rank_by", "options"),
    [
        ("lower", {"prob": 0.9}),
        ("lower", {"prob": 0.5, "clip": False}),
        ("lower", {"prob": 0.98}),
        ("prob", {"threshold": 4.0}),
        ("prob", {"threshold": 3.2, "clip": False}),
        ("prob", {"threshold": 4.9}),
        ("lower", {"kind": "expected"}),
        ("lower", {"kind": "expected", "clip": False, "prob": 0.6}),
        ("prob", {"kind": "expected", "threshold": 3.5}),
        ("prob", {"kind": "expected", "threshold": 4.5, "clip": False}),
    ],
)
def test_bounds_ranking_equals_recommends_user_by_user(fit, monkeypatch, rank_by, options):
    monkeypatch.setattr(br, "BATCH_BUDGET", 3 * fit.train.n_items)  # batches of 3 users
    users, cands = _unrated(fit)
    opts = PredictOptions(unknown="raise", **options)
    assert br.bounds_apply(model_view(fit), opts, rank_by)
    fast = br.top_by_bounds(fit, users, cands, K_TOP, rank_by, opts)
    slow = br.per_user(fit, users, cands, K_TOP, rank_by, opts)
    _assert_same(fast, slow)


def test_pruning_scores_few_candidates_exactly_and_a_broken_margin_is_caught(fit, monkeypatch):
    users, cands = _unrated(fit)
    n_pairs = sum(len(c) for c in cands)
    scored = []
    exact = br.exact_summary

    def counting(result, view, user_idx, item_idx, *args, **kw):
        scored.append(len(user_idx))
        return exact(result, view, user_idx, item_idx, *args, **kw)

    monkeypatch.setattr(br, "exact_summary", counting)
    for rank_by, opts in (
        ("lower", PredictOptions(unknown="raise")),
        ("prob", PredictOptions(threshold=4.0, unknown="raise")),
        ("lower", PredictOptions(kind="expected", unknown="raise")),
        ("prob", PredictOptions(kind="expected", threshold=4.0, unknown="raise")),
    ):
        scored.clear()
        br.top_by_bounds(fit, users, cands, K_TOP, rank_by, opts)
        # "lower": k + SEED_EXTRA seeds per user plus the kept; both far below every pair
        assert sum(scored) < 0.6 * n_pairs, (rank_by, sum(scored), n_pairs)
    # the comparison has power: a margin that prunes candidates of the top k changes the lists
    monkeypatch.setattr(br, "exact_summary", exact)
    monkeypatch.setattr(br, "_PROB_SLACK", -0.05)
    opts = PredictOptions(threshold=4.0, unknown="raise")
    broken = br.top_by_bounds(fit, users, cands, K_TOP, "prob", opts)
    with pytest.raises(AssertionError):
        _assert_same(broken, br.per_user(fit, users, cands, K_TOP, "prob", opts))


def test_ties_at_the_bottom_of_a_clipped_scale_keep_recommends_order(fit):
    users, cands = _unrated(fit)
    # P(r >= low) is 1 for every pair; the 99.98 % interval's lower end is clipped to low for most
    for rank_by, opts in (
        ("prob", PredictOptions(threshold=1.0, unknown="raise")),
        ("lower", PredictOptions(prob=0.9998, unknown="raise")),
        ("prob", PredictOptions(threshold=1.0, kind="expected", unknown="raise")),
    ):
        fast = br.top_by_bounds(fit, users[:6], cands[:6], K_TOP, rank_by, opts)
        slow = br.per_user(fit, users[:6], cands[:6], K_TOP, rank_by, opts)
        for (fi, fs), (si, ss) in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(fi, si)  # stable order among the ties
            np.testing.assert_array_equal(fs, ss)
        if rank_by == "prob":
            assert all((s == 1.0).all() for _, s in fast)


def test_few_candidates_and_an_empty_candidate_set(fit):
    opts = PredictOptions(unknown="raise")
    cands = [np.array([3, 9]), np.array([], dtype=np.int64), np.arange(0, 70, 7)]
    for rank_by in ("lower", "prob"):
        o = opts if rank_by == "lower" else PredictOptions(threshold=4.0, unknown="raise")
        fast = br.top_by_bounds(fit, [0, 1, 2], cands, K_TOP, rank_by, o)
        _assert_same(fast, br.per_user(fit, [0, 1, 2], cands, K_TOP, rank_by, o))
        assert [len(items) for items, _ in fast] == [2, 0, K_TOP]


def test_kernel_bounds_bracket_the_mixture_cdf_and_the_draw_counts_and_moments_are_the_draws():
    rng = np.random.default_rng(3)
    S, n_users, n_items, K = 17, 4, 150, 3
    U = rng.normal(0, 1, (S, n_users, K)).astype(np.float32)
    V = rng.normal(0, 1, (S, n_items, K)).astype(np.float32)
    mu, ub, ib = rng.normal(3, 0.1, S), rng.normal(0, 0.5, (S, n_users)), rng.normal(0, 0.5, (S, n_items))
    sd = rng.uniform(0.3, 1.2, S)
    users = np.array([2, 0, 3])
    eta = (
        np.einsum("suk,sik->sui", U[:, users].astype(np.float64), V.astype(np.float64))
        + mu[:, None, None] + ub[:, users][:, :, None] + ib[:, None, :]
    )  # (S, B, J)
    x = np.array([2.5, 3.0, 3.7])
    lo, hi = np.empty((3, n_items)), np.empty((3, n_items))
    for sign in (1.0, -1.0):
        pair_sums(U, V, mu, ub, ib, True, True, True, users, 1, x, sign, 1.0 / sd, phi_table(), 1e-9, lo, hi)
        exact = ndtr(sign * (x[None, :, None] - eta) / sd[:, None, None]).sum(axis=0)
        assert (lo <= exact + 1e-12).all() and (exact <= hi + 1e-12).all()
        # each term's bracket is one grid step wide: at most phi(0) * step
        assert (hi - lo).max() <= S * 0.3990 * TABLE_STEP
        assert (hi - lo).max() > 0
        # mode 2: counts of draws on each side of x, with a margin that only a draw that close can fall in
        pair_sums(U, V, mu, ub, ib, True, True, True, users, 2, x, sign, 1.0 / sd, phi_table(), 1e-9, lo, hi)
        d = sign * (x[None, :, None] - eta)
        np.testing.assert_array_equal(lo, (d > 0).sum(axis=0))
        np.testing.assert_array_equal(hi, (d >= 0).sum(axis=0))
        pair_sums(U, V, mu, ub, ib, True, True, True, users, 2, x, sign, 1.0 / sd, phi_table(), 0.5, lo, hi)
        np.testing.assert_array_equal(lo, (d > 0.5).sum(axis=0))
        np.testing.assert_array_equal(hi, (d >= -0.5).sum(axis=0))
    pair_sums(U, V, mu, ub, ib, True, True, True, users, 0, x, 1.0, 1.0 / sd, phi_table(), 1e-9, lo, hi)
    np.testing.assert_allclose(lo, eta.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(hi, (eta**2).sum(axis=0), rtol=1e-12)
    # absent terms are skipped, whatever the arrays hold
    pair_sums(U, V, mu, ub, ib, False, False, False, users, 0, x, 1.0, 1.0 / sd, phi_table(), 1e-9, lo, hi)
    np.testing.assert_allclose(lo, (eta - mu[:, None, None] - ub[:, users][:, :, None] - ib[:, None, :]).sum(axis=0), rtol=1e-10, atol=1e-12)


def test_which_options_are_batched(fit):
    view = model_view(fit)
    assert br.bounds_apply(view, PredictOptions(), "lower")
    assert not br.bounds_apply(view, PredictOptions(interval="hdi"), "lower")
    assert br.bounds_apply(view, PredictOptions(interval="hdi"), "prob")
    assert br.bounds_apply(view, PredictOptions(kind="expected"), "lower")
    assert not br.bounds_apply(view, PredictOptions(kind="expected", interval="hdi"), "lower")
    assert not br.bounds_apply(view, PredictOptions(), "thompson")
    logistic = fake_result(PMF(n_factors=2, link="logistic"), n_users=5, n_items=8, n_draws=5)
    assert not br.bounds_apply(model_view(logistic), PredictOptions(), "lower")
    # kind="auto" is the predictive rating for a rating model, as recommend resolves it
    users, cands = _unrated(fit)
    auto = PredictOptions(kind="auto", threshold="auto", unknown="raise")
    for rank_by in ("lower", "prob"):
        fast = br.rank_candidates(fit, users, cands, K_TOP, rank_by, auto)
        slow = br.per_user(fit, users, cands, K_TOP, rank_by, auto)
        for a, (b, _) in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)
    assert br.bounds_apply(view, auto.for_model(fit.spec), "prob") and not br.bounds_apply(view, auto, "prob")
    with pytest.raises(ValueError, match="rank_by='thompson'"):
        br.top_by_bounds(fit, [0], [np.arange(5)], 2, "thompson", PredictOptions())
    with pytest.raises(ValueError, match="needs a threshold"):
        br.top_by_bounds(fit, [0], [np.arange(5)], 2, "prob", PredictOptions())


@pytest.mark.parametrize("rank_by", ["lower", "prob"])
def test_evaluate_topn_batched_equals_user_by_user(fit, monkeypatch, rank_by):
    train = fit.train
    rng = np.random.default_rng(5)
    rows = [(u, j, float(rng.integers(1, 6))) for u in range(train.n_users) for j in rng.choice(train.n_items, 6, replace=False)]
    test = pd.DataFrame(
        {"user": train.users.to_raw(np.array([r[0] for r in rows])), "item": train.items.to_raw(np.array([r[1] for r in rows])),
         "rating": [r[2] for r in rows]}
    )
    kw = {"k": 5, "rank_by": rank_by, "threshold": 4.0, "random_seed": 0, "progressbar": False, "unknown": "raise"}
    with pytest.warns(UserWarning, match="Krichene"):
        sampled = evaluate_topn(fit, test, candidates="sampled", n_negatives=20, **kw)
    calls = []
    bounds = br.top_by_bounds
    monkeypatch.setattr(br, "top_by_bounds", lambda *a, **k: calls.append(a[4]) or bounds(*a, **k))
    batched = evaluate_topn(fit, test, **kw)
    assert calls == [rank_by]  # the batched path ranked them
    assert batched.per_user["precision"].between(0, 1).all() and len(batched.per_user) > 10
    monkeypatch.setattr(br, "bounds_apply", lambda *a: False)
    pd.testing.assert_frame_equal(evaluate_topn(fit, test, **kw).per_user, batched.per_user)
    with pytest.warns(UserWarning, match="Krichene"):
        slow = evaluate_topn(fit, test, candidates="sampled", n_negatives=20, **kw)
    pd.testing.assert_frame_equal(slow.per_user, sampled.per_user)
    pd.testing.assert_frame_equal(slow.summary, sampled.summary)


def test_a_single_draw_fit_ranks_as_recommend():
    """A MAP plug-in (one draw): one normal per pair, one draw of eta."""
    mapfit = fake_result(PMF(n_factors=3), n_users=12, n_items=50, method="map", seed=4)
    users, cands = _unrated(mapfit)
    assert model_view(mapfit).n_samples == 1
    for rank_by, opts in (
        ("lower", PredictOptions(unknown="raise")),
        ("prob", PredictOptions(threshold=3.5, unknown="raise")),
        ("lower", PredictOptions(kind="expected", unknown="raise")),
        ("prob", PredictOptions(kind="expected", threshold=3.5, unknown="raise")),
    ):
        fast = br.top_by_bounds(mapfit, users, cands, K_TOP, rank_by, opts)
        _assert_same(fast, br.per_user(mapfit, users, cands, K_TOP, rank_by, opts))
