"""The ordered probit across routes: spec, PyMC model, predictions, Gibbs against NUTS, bad input.

`tests/test_gibbs_ordinal.py` checks the Gibbs block itself (kernels, SBC, planted truth).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from test_gibbs_ordinal import planted_ordinal

from bayesmf import PMF, IdEncoder, RatingsData
from bayesmf._kernels_predict import ordinal_level_draws
from bayesmf.link import ordinal_probs
from bayesmf.spec import VALID_LINKS

SPEC = PMF(n_factors=2, likelihood="ordinal", link="probit")


# ---------------------------------------------------------------------------------------
# Spec and bad input
# ---------------------------------------------------------------------------------------
def test_ordinal_takes_the_probit_link_and_keeps_its_default():
    """``link="identity"`` stays the ordinal default (ordered logistic); ``"probit"`` is valid and round-trips."""
    assert PMF(likelihood="ordinal").link == "identity"
    assert VALID_LINKS["ordinal"] == ("identity", "probit")
    assert PMF.from_json(SPEC.to_json()) == SPEC
    assert SPEC.noise_sd((1.0, 5.0)) == 1.0


def test_a_meaningless_ordinal_link_lists_the_valid_combinations():
    with pytest.raises(ValueError, match="valid combinations") as err:
        PMF(likelihood="ordinal", link="logistic")
    assert "likelihood='ordinal': link 'identity' or 'probit'" in str(err.value)
    with pytest.raises(ValueError, match=r"sigma=0\.5 has no meaning with likelihood='ordinal', link='probit'"):
        PMF(likelihood="ordinal", link="probit", sigma=0.5)


def test_gibbs_takes_the_ordered_probit_not_the_ordered_logistic():
    """The ordered logistic has no Gibbs block: the route says what it supports."""
    data, _, _ = planted_ordinal(1, 5, 4, [-1.0, 0.0, 1.0], density=1.0)
    with pytest.raises(ValueError, match="link='probit' with likelihood 'bernoulli' or 'ordinal'"):
        PMF(likelihood="ordinal").fit(data, method="gibbs")


@pytest.mark.parametrize("method", ["gibbs", "map", "nuts"])
def test_ratings_off_every_level_grid_are_named(method):
    """A rating on no grid (steps 1 .. 0.1) is named with its row and pair, by every route and by the model."""
    users = IdEncoder("user", np.array(["a", "b"]))
    items = IdEncoder("item", np.array(["x", "y"]))
    data = RatingsData(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([1.0, 3.14, 5.0]), (1.0, 5.0), users, items)
    spec = PMF(n_factors=1, likelihood="ordinal", link="probit", priors="fixed")
    with pytest.raises(ValueError, match=r"rating 3\.14 \(row 1, user 'b', item 'x'\) is on none"):
        spec.fit(data, method=method)
    with pytest.raises(ValueError, match=r"rating 3\.14 \(row 1"):
        spec.build(data)


# ---------------------------------------------------------------------------------------
# The PyMC model and the level maths
# ---------------------------------------------------------------------------------------
def test_pymc_log_likelihood_is_the_ordered_probit():
    """The model's per-rating log-likelihood equals log ordinal_probs(probit) of the observed level (1e-6),
    far-tail levels included, where log of the level probability itself would round to -inf."""
    data, _, _ = planted_ordinal(1, 8, 6, [-1.0, 0.0, 1.0], density=1.0)
    model = PMF(n_factors=2, likelihood="ordinal", link="probit", priors="fixed").build(data)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    point["user_bias"][0] = 40.0  # user 0's ratings far in the upper tail
    logp = model.compile_fn(model.logp(vars=[model["rating"]], sum=False)[0], inputs=model.value_vars,
                            on_unused_input="ignore")(point)
    raw = point["cutpoints_ordered__"]
    cut = np.cumsum(np.r_[raw[0], np.exp(raw[1:])])
    eta = point["user_bias"][data.user_idx] + point["item_bias"][data.item_idx] + np.einsum(
        "nk,nk->n", point["U"][data.user_idx], point["V"][data.item_idx])
    codes = (data.rating - 1).astype(int)
    gap_lo = np.r_[-np.inf, cut][codes] - eta
    gap_hi = np.r_[cut, np.inf][codes] - eta
    # log(Phi(hi) - Phi(lo)) by mirrored log-CDFs (exact where the level sits far in a tail)
    upper = gap_lo + gap_hi > 0
    hi = np.where(upper, special.log_ndtr(-gap_lo), special.log_ndtr(gap_hi))
    lo = np.where(upper, special.log_ndtr(-gap_hi), special.log_ndtr(gap_lo))
    expected = hi + np.log1p(-np.exp(lo - hi))
    np.testing.assert_allclose(logp, expected, rtol=1e-6, atol=1e-8)
    assert np.all(np.isfinite(logp))


@pytest.mark.parametrize("link", ["identity", "probit"])
def test_level_probabilities_sum_to_one_and_follow_the_link(link):
    rng = np.random.default_rng(2)
    eta, cut = rng.normal(0, 2, 200), np.array([-1.0, 0.5, 2.0])
    probs = ordinal_probs(eta, cut, link)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    cdf = special.ndtr if link == "probit" else special.expit
    np.testing.assert_allclose(probs[:, 0], cdf(cut[0] - eta), atol=1e-12)


def test_predictive_level_draws_follow_the_probit_and_can_fail():
    """`ordinal_level_draws` with the probit flag draws levels at ordinal_probs(probit) (chi-square, p > 1e-4).

    20,000 draws at one eta; the same draws with the logistic CDF (the flag off, the broken
    variant for a probit fit) are rejected at p < 1e-10.
    """
    cut = np.array([-1.0, 0.0, 0.8])
    levels = np.array([1.0, 2.0, 3.0, 4.0])
    n = 20_000
    expected = ordinal_probs(np.array([0.3]), cut, "probit")[0] * n
    for probit, passes in ((True, True), (False, False)):
        out = np.empty((n, 1))
        ordinal_level_draws(np.full((1, n), 0.3), np.tile(cut, (n, 1)), levels, probit, np.array([11]), out)
        counts = np.array([(out == lv).sum() for lv in levels])
        pvalue = stats.chisquare(counts, expected).pvalue
        assert (pvalue > 1e-4) if passes else (pvalue < 1e-10), (probit, pvalue)


# ---------------------------------------------------------------------------------------
# Gibbs through fit, predictions
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gibbs_fit():
    """A run-until-converged Gibbs fit (the default) of a small planted ordered probit (fixed priors).

    Fixed priors keep it to a few seconds: with hierarchical ones the factor sd and the
    norm of U V' of this 30 x 24 problem mix slowly, and the run reaches its sweep budget.
    """
    data, _, _ = planted_ordinal(3, 30, 24, [-1.2, -0.3, 0.5, 1.4])
    spec = PMF(n_factors=2, likelihood="ordinal", link="probit", priors="fixed")
    return data, spec.fit(data, method="gibbs", chains=2, random_seed=7, progressbar=False)


def test_gibbs_runs_until_converged_into_the_usual_layout(gibbs_fit):
    """The default run stops converged on the ordinal identified quantities; cutpoints, no mu/sigma; ordered in every draw."""
    _, fit = gibbs_fit
    assert fit.info["converged"] and fit.info["verdict_ok"], fit.info["verdict"]
    post = fit.idata["posterior"]
    assert "cutpoints" in post and "mu" not in post and "sigma" not in post
    cuts = post["cutpoints"].values
    assert cuts.shape[-1] == 4 and np.all(np.diff(cuts, axis=-1) > 0)


def test_predictions_respect_the_level_structure(gibbs_fit):
    """predict_proba rows sum to 1; predict's mean and P(r >= 4) are the level probabilities' mean and tail sum;
    recommend ranks by P(r >= 4)."""
    data, fit = gibbs_fit
    pairs = pd.DataFrame({"user": [0, 5, 29, 3], "item": [0, 23, 7, 100]})  # item 100: unknown (prior)
    proba = fit.predict_proba(pairs, random_seed=1)
    cols = [f"p_{lv:g}" for lv in data.levels]
    probs = proba[cols].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-10)
    pred = fit.predict(pairs, threshold=4.0, random_seed=1)
    np.testing.assert_allclose(pred["p_at_least"], probs[:, 3:].sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(pred["mean"], probs @ data.levels, atol=1e-10)
    top = fit.recommend(0, n=5, rank_by="prob", threshold=4.0, random_seed=1)
    assert len(top) == 5 and top["p_at_least"].is_monotonic_decreasing


@pytest.mark.slow
def test_map_gives_the_layout():
    """MAP (PyMC, fixed priors) fits the ordered probit into the layout, cutpoints ordered."""
    data, _, _ = planted_ordinal(4, 20, 15, [-1.0, 0.0, 1.0])
    fit = PMF(n_factors=2, likelihood="ordinal", link="probit", priors="fixed").fit(data, method="map", progressbar=False)
    post = fit.idata["posterior"]
    assert "cutpoints" in post and "mu" not in post
    assert np.all(np.diff(post["cutpoints"].values, axis=-1) > 0)


# ---------------------------------------------------------------------------------------
# Gibbs against NUTS
# ---------------------------------------------------------------------------------------
def _quantities(post, n_users: int, n_items: int) -> np.ndarray:
    """Per draw: cutpoints less the biases' means (identified), the gaps c_k - c_0, P(r >= 3) at 5 pairs."""
    cut = post["cutpoints"].values.reshape(-1, post["cutpoints"].shape[-1])
    ub = post["user_bias"].values.reshape(-1, n_users)
    ib = post["item_bias"].values.reshape(-1, n_items)
    U = post["U"].values.reshape(-1, n_users, post["U"].shape[-1])
    V = post["V"].values.reshape(-1, n_items, post["V"].shape[-1])
    users, items = np.array([0, 3, 11, 19, 7]), np.array([0, 7, 9, 3, 14])
    eta = ub[:, users] + ib[:, items] + np.einsum("suk,suk->su", U[:, users], V[:, items])
    tail = 1.0 - ordinal_probs(eta, cut[:, None, :], "probit")[..., :2].sum(axis=-1)
    return np.column_stack([cut - (ub.mean(1) + ib.mean(1))[:, None], cut[:, 1:] - cut[:, :1], tail])


@pytest.mark.slow
def test_gibbs_agrees_with_nuts():
    """Two independent routes to one posterior: NUTS on the PyMC model and the Gibbs sampler.

    20 x 15 users x items, half observed, 4 levels, rank 1, fixed priors. Per quantity
    (`_quantities`: 10), the posterior means must agree within 0.25 posterior sd and the
    sds within 25 %: room for the Monte Carlo error of 2 x 500 NUTS draws and 2 x 1000
    Gibbs draws. When checked: largest gap 0.062 sd, sd ratios 0.97-1.02; a Gibbs sampler
    whose cutpoints never move gave a gap of 1.6 sd (and sd ratio 0 on the cutpoints).
    """
    data, _, _ = planted_ordinal(4, 20, 15, [-1.0, 0.0, 1.0], K=1)
    spec = PMF(n_factors=1, likelihood="ordinal", link="probit", priors="fixed")
    nuts = spec.fit(data, method="nuts", draws=500, tune=500, chains=2, random_seed=1, progressbar=False)
    gibbs = spec.fit(data, method="gibbs", draws=1000, thin=5, chains=2, random_seed=1, progressbar=False)
    q_nuts = _quantities(nuts.idata["posterior"], 20, 15)
    q_gibbs = _quantities(gibbs.idata["posterior"], 20, 15)
    sd = q_nuts.std(axis=0)
    gap = np.abs(q_nuts.mean(axis=0) - q_gibbs.mean(axis=0)) / sd
    ratio = q_gibbs.std(axis=0) / sd
    assert np.all(gap < 0.25), gap
    assert np.all((ratio > 0.75) & (ratio < 1.25)), ratio
