"""P(r >= t) on ratings typed in steps: the rating typed is the model's, rounded to the grid.

`bayesmf.predictive.view.ModelView.threshold_cut` maps a threshold to the cut of the
continuous predictive rating: at least 4 whole stars is y >= 3.5, at least 4 on a
half-star scale is y >= 3.75; continuous ratings keep the threshold as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import fake_result, fake_train, known_truth_result
from scipy import stats

from bayesmf.data import RatingsData
from bayesmf.datasets import simulate
from bayesmf.predict import predict
from bayesmf.predictive.view import model_view
from bayesmf.spec import PMF


def _with_ratings(data: RatingsData, rating: np.ndarray, scale: tuple[float, float]) -> RatingsData:
    return RatingsData(data.user_idx, data.item_idx, rating, scale, data.users, data.items)


def _latent_and_sigma(result, data):
    p = result.posterior
    first = {k: p[k].values[0, 0].astype(np.float64) for k in ("U", "V", "mu", "user_bias", "item_bias")}
    eta = (first["U"][data.user_idx] * first["V"][data.item_idx]).sum(axis=1) + first["mu"]
    eta += first["user_bias"][data.user_idx] + first["item_bias"][data.item_idx]
    return eta, float(p["sigma"].values[0, 0])


@pytest.mark.parametrize(
    ("scale", "step", "threshold", "cut"),
    [
        ((1.0, 5.0), 1.0, 4.0, 3.5),
        ((1.0, 5.0), 1.0, 3.7, 3.5),  # at least 3.7 typed stars is at least 4
        ((1.0, 5.0), 1.0, 5.0, 4.5),
        ((0.5, 5.0), 0.5, 4.0, 3.75),
        ((0.5, 5.0), 0.5, 4.2, 4.25),
        ((1.0, 5.0), None, 4.0, 4.0),  # continuous ratings: no correction
    ],
)
def test_p_at_least_is_of_the_rating_as_typed(scale, step, threshold, cut):
    base = fake_train(20, 12, scale=(1.0, 5.0), seed=4)
    rng = np.random.default_rng(0)
    if step is None:
        rating = rng.uniform(*scale, size=base.n_ratings)
    else:
        rating = scale[0] + step * rng.integers(0, round((scale[1] - scale[0]) / step) + 1, size=base.n_ratings)
    train = _with_ratings(base, rating, scale)
    assert (train.levels is None) == (step is None)
    result = fake_result(PMF(n_factors=3, priors="fixed"), method="map", train=train, seed=5)
    pairs = train.subset(np.arange(15))
    eta, sigma = _latent_and_sigma(result, pairs)
    out = predict(result, pairs, threshold=threshold, clip=False, progressbar=False)
    np.testing.assert_allclose(out["p_at_least"], stats.norm.sf(cut, eta, sigma), atol=1e-12)
    # the expected rating is continuous: its probability takes the threshold as it is
    exp = predict(result, pairs, kind="expected", threshold=threshold, clip=False, progressbar=False)
    np.testing.assert_array_equal(exp["p_at_least"], (eta >= threshold).astype(float))
    # the lowest level: certain, once ratings are censored to the scale
    low = predict(result, pairs, threshold=scale[0], progressbar=False)
    np.testing.assert_array_equal(low["p_at_least"], 1.0)


def test_recommend_ranks_and_reports_the_same_probability():
    train = fake_train(20, 12, seed=6)
    result = fake_result(PMF(n_factors=3), n_draws=30, train=train, seed=7)
    user = train.users.to_raw(np.array([0]))[0]
    rec = result.recommend(user, n=5, rank_by="prob", threshold=4.0, exclude_rated=False)
    pairs = pd.DataFrame({"user": user, "item": rec["item"]})
    pred = predict(result, pairs, threshold=4.0, rating_col=None, progressbar=False)
    np.testing.assert_allclose(rec["p_at_least"].to_numpy(), pred["p_at_least"].to_numpy(), rtol=1e-12)
    assert model_view(result).threshold_cut(4.0, "predictive") == 3.5


@pytest.mark.parametrize(("scale", "step"), [((1.0, 5.0), 1.0), ((0.5, 5.0), 0.5)])
def test_p_at_least_is_calibrated_on_typed_ratings_from_the_truth(scale, step):
    """Planted truth: ratings drawn from the model and typed on the grid; P(r >= t) from the
    truth itself must match the share typed at t or more (each pair is one Bernoulli draw)."""
    sim = simulate(n_users=300, n_items=200, n_factors=3, density=0.4, noise=0.8, seed=11)
    latent = sim.data
    typed_rating = np.clip(np.round((latent.rating - scale[0]) / step) * step + scale[0], *scale)
    typed = _with_ratings(latent, typed_rating, scale)
    assert typed.levels is not None
    spec = PMF(n_factors=3, priors="fixed")
    as_typed = known_truth_result(spec, typed, sim.truth, 2)
    as_continuous = known_truth_result(spec, _with_ratings(latent, latent.rating, scale), sim.truth, 2)
    assert as_continuous.train.levels is None
    for threshold in (3.0, 4.0, 5.0):  # levels of both grids, where typed and continuous differ
        hit = (typed_rating >= threshold).astype(float)
        p = predict(as_typed, typed, threshold=threshold, progressbar=False)["p_at_least"].to_numpy()
        se = np.sqrt(np.sum(p * (1 - p))) / len(p)
        assert abs(p.mean() - hit.mean()) < 4 * se, (threshold, p.mean(), hit.mean(), se)
        # the check has power: the continuous model's P(y >= t) misses the typed share
        naive = predict(as_continuous, typed, threshold=threshold, progressbar=False)["p_at_least"].to_numpy()
        assert abs(naive.mean() - hit.mean()) > 10 * se, (threshold, naive.mean(), hit.mean(), se)


@pytest.mark.parametrize(("scale", "step"), [((1.0, 5.0), 1.0), ((0.5, 5.0), 0.5)])
def test_p_at_least_is_the_mass_of_predict_proba_at_or_above_the_threshold(scale, step):
    """Two routes to one number: `predict_proba` gives each level the mass of its rounding bin,
    so its levels at or above t must sum to `predict`'s P(r >= t)."""
    base = fake_train(20, 12, seed=8)
    rng = np.random.default_rng(1)
    rating = scale[0] + step * rng.integers(0, round((scale[1] - scale[0]) / step) + 1, size=base.n_ratings)
    train = _with_ratings(base, rating, scale)
    result = fake_result(PMF(n_factors=3), n_draws=25, train=train, seed=9)
    pairs = train.subset(np.arange(30))
    proba = result.predict_proba(pairs)
    levels = np.asarray(train.levels)
    for threshold in (2.0, 4.0, 5.0):
        cols = [f"p_{lvl:g}" for lvl in levels if lvl >= threshold - 1e-9]
        p = predict(result, pairs, threshold=threshold, progressbar=False)["p_at_least"]
        np.testing.assert_allclose(p.to_numpy(), proba[cols].sum(axis=1).to_numpy(), atol=1e-9)
