"""Prediction and recommendation on an implicit-feedback fit (hand-built posterior, no sampler)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmf import PMF, PredictOptions, interactions_from_dataframe
from bayesmf.posterior import make_posterior
from bayesmf.predict import predict, predict_draws, predict_proba
from bayesmf.recommend import rank_items, recommend
from bayesmf.results import FitResult
from tests.helpers import fake_draws


@pytest.fixture(scope="module")
def fit() -> FitResult:
    rng = np.random.default_rng(0)
    n_users, n_items = 12, 15
    cells = rng.random((n_users, n_items)) < 0.3
    cells[:, 0] = True  # every user chose something
    cells[0, :] = True
    cells[0, -3:] = False  # user 0 has a few unchosen items
    u, i = np.nonzero(cells)
    df = pd.DataFrame({"user": u + 100, "item": i + 500, "n": rng.integers(1, 5, len(u))})
    train = interactions_from_dataframe(df, value="n")
    spec = PMF(n_factors=2, likelihood="implicit")
    draws = fake_draws(spec, train, n_chains=2, n_draws=40, seed=3, factor_sd=0.4, sigma=0.3)
    draws["mu"] = 0.2 + 0.05 * rng.standard_normal(draws["mu"].shape)
    return FitResult(spec, make_posterior(spec, train, draws), "gibbs", train)


def _eta(fit: FitResult, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(S, P) scores computed directly from the posterior arrays."""
    a = fit.arrays()
    uidx, iidx = fit.train.users.to_index(users), fit.train.items.to_index(items)
    dots = np.einsum("spk,spk->sp", a.U[:, uidx].astype(float), a.V[:, iidx].astype(float))
    return a.mu[:, None] + a.user_bias[:, uidx] + a.item_bias[:, iidx] + dots


def _all_pairs(fit: FitResult) -> pd.DataFrame:
    users, items = fit.train.users.classes, fit.train.items.classes
    return pd.DataFrame({"user": np.repeat(users, len(items)), "item": np.tile(items, len(users))})


def test_predict_gives_p_chosen_on_zero_one(fit: FitResult) -> None:
    pairs = _all_pairs(fit)
    eta = _eta(fit, pairs.user.to_numpy(), pairs.item.to_numpy())
    assert (eta < 0).any() and (eta > 1).any()  # the clipping matters here
    out = predict(fit, pairs, prob=0.8, threshold=0.5)
    assert out.attrs["kind"] == "expected"
    chosen = np.clip(eta, 0.0, 1.0)
    np.testing.assert_allclose(out["mean"], chosen.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(out["sd"], chosen.std(axis=0, ddof=1), rtol=1e-6, atol=1e-12)
    lower, upper = np.quantile(chosen, [0.1, 0.9], axis=0)
    np.testing.assert_allclose(out["lower"], lower, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out["upper"], upper, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out["p_at_least"], (chosen >= 0.5).mean(axis=0))
    raw = predict(fit, pairs, clip=False)
    np.testing.assert_allclose(raw["mean"], eta.mean(axis=0), rtol=1e-10)
    assert raw["lower"].min() < 0  # clip=False: the raw score, not clipped to [0, 1]


def test_predictive_kind_is_the_censored_working_normal(fit: FitResult) -> None:
    pairs = _all_pairs(fit).iloc[:20]
    eta = _eta(fit, pairs.user.to_numpy(), pairs.item.to_numpy())
    sigma = fit.arrays().sigma[:, None]
    out = predict(fit, pairs, kind="predictive")
    a, b = (0.0 - eta) / sigma, (1.0 - eta) / sigma
    censored = stats.norm.cdf(b) - stats.norm.cdf(a)  # P(0 < y < 1)
    mean = eta * censored + sigma * (stats.norm.pdf(a) - stats.norm.pdf(b)) + stats.norm.sf(b)
    np.testing.assert_allclose(out["mean"], mean.mean(axis=0), rtol=1e-8)
    assert out["lower"].min() >= 0.0 and out["upper"].max() <= 1.0
    with pytest.raises(ValueError, match="kind='expected'"):
        predict(fit, pairs, kind="predictive", threshold=0.5)
    with pytest.raises(ValueError, match=r"threshold=4\.0 is outside"):
        predict(fit, pairs, threshold=4.0)


def test_predict_proba_and_draws(fit: FitResult) -> None:
    pairs = _all_pairs(fit).iloc[::7]
    chosen = np.clip(_eta(fit, pairs.user.to_numpy(), pairs.item.to_numpy()), 0, 1)
    proba = predict_proba(fit, pairs)
    assert list(proba.columns) == ["user", "item", "p_0", "p_1", "new_user", "new_item"]
    np.testing.assert_allclose(proba["p_1"], chosen.mean(axis=0))
    np.testing.assert_allclose(proba["p_0"] + proba["p_1"], 1.0)
    draws = predict_draws(fit, pairs, n_draws=80)
    np.testing.assert_allclose(draws, chosen, rtol=1e-10)


def test_recommend_ranks_unchosen_items_by_p_chosen(fit: FitResult) -> None:
    user = 100
    chosen_items = set(fit.train.items.to_raw(fit.train.item_idx[fit.train.user_idx == 0]).tolist())
    candidates = np.array([j for j in fit.train.items.classes.tolist() if j not in chosen_items])
    eta = _eta(fit, np.full(len(candidates), user), candidates)
    out = recommend(fit, user, n=3, prob=0.8, random_seed=1)
    ratings_like = ["user", "rank", "item", "mean", "sd", "median", "lower", "upper", "p_at_least", "score"]
    assert list(out.columns) == [*ratings_like, "new_user", "new_item"]
    assert out.attrs["kind"] == "expected" and out.attrs["threshold"] == 0.5
    mean = np.clip(eta, 0, 1).mean(axis=0)
    assert out["item"].tolist() == candidates[np.argsort(-mean, kind="stable")].tolist()
    np.testing.assert_allclose(out["score"], np.sort(mean)[::-1])
    lower = recommend(fit, user, n=3, rank_by="lower", prob=0.8, random_seed=1)
    bound = np.quantile(eta, 0.1, axis=0)  # unclipped: no ties at 0
    assert lower["item"].tolist() == candidates[np.argsort(-bound, kind="stable")].tolist()
    np.testing.assert_allclose(lower["score"], np.sort(bound)[::-1], rtol=1e-8)
    a = recommend(fit, [user, 101], n=3, rank_by="thompson", random_seed=5)
    b = recommend(fit, [user, 101], n=3, rank_by="thompson", random_seed=5)
    pd.testing.assert_frame_equal(a, b)
    prob = recommend(fit, user, n=3, rank_by="prob", threshold=0.3)
    assert np.all(np.diff(prob["score"]) <= 0)
    np.testing.assert_allclose(prob["score"], prob["p_at_least"])


def test_recommend_refusals_name_the_problem(fit: FitResult) -> None:
    with pytest.raises(ValueError, match="kind='expected'"):
        recommend(fit, 100, rank_by="prob", kind="predictive")
    with pytest.raises(ValueError, match=r"threshold=4\.0 is outside"):
        recommend(fit, 100, threshold=4.0)
    ranked = dict((u, items) for u, items, _ in rank_items(fit, [(100, fit.train.items.classes[-3:])], n=2))
    top = recommend(fit, 100, n=2, items=fit.train.items.classes[-3:], exclude_rated=False)
    assert ranked[100].tolist() == top["item"].tolist()
    opts = PredictOptions(kind="auto", threshold="auto")
    assert opts.for_model(fit.spec).kind == "expected" and opts.for_model(PMF()).threshold == 4.0
