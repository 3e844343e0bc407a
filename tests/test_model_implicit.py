"""The dense PyMC model of implicit feedback: its log density, its limits, planted truth by NUTS."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmf import PMF, as_implicit, interactions_from_dataframe
from bayesmf.confidence import confidence_weights
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.link import IMPLICIT_SCALE
from bayesmf.model_implicit import MAX_DENSE_PAIRS, dense_targets
from tests.helpers import fake_train


def _data(seed: int = 0) -> RatingsData:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"user": rng.integers(0, 6, 40), "item": rng.integers(0, 5, 40), "n": rng.integers(1, 4, 40)})
    return interactions_from_dataframe(df, value="n")


def test_fixed_prior_log_density_equals_numpy() -> None:
    """logp at a random point = weighted normal likelihood over EVERY pair + the priors."""
    data = _data()
    spec = PMF(n_factors=2, priors="fixed", likelihood="implicit", confidence="log", confidence_scale=3.0)
    model = spec.build(data)
    assert {rv.name for rv in model.free_RVs} == {"U", "V", "user_bias", "item_bias", "mu"}
    rng = np.random.default_rng(1)
    point = {
        "U": rng.normal(0, 0.3, (data.n_users, 2)),
        "V": rng.normal(0, 0.3, (data.n_items, 2)),
        "user_bias": rng.normal(0, 0.2, data.n_users),
        "item_bias": rng.normal(0, 0.2, data.n_items),
        "mu": 0.2,
    }
    eta = point["mu"] + point["user_bias"][:, None] + point["item_bias"][None, :] + point["U"] @ point["V"].T
    y = np.zeros((data.n_users, data.n_items))
    w = np.ones_like(y)
    y[data.user_idx, data.item_idx] = 1.0
    w[data.user_idx, data.item_idx] = 1.0 + 3.0 * np.log1p(np.asarray(data.rating))
    sigma = spec.noise_sd(IMPLICIT_SCALE)
    expected = stats.norm.logpdf(y, eta, sigma / np.sqrt(w)).sum()
    expected += stats.norm.logpdf(point["U"], 0, spec.sigma_u).sum() + stats.norm.logpdf(point["V"], 0, spec.sigma_v).sum()
    expected += stats.norm.logpdf(np.concatenate([point["user_bias"], point["item_bias"]]), 0, spec.sigma_bias).sum()
    assert float(model.compile_logp()(point)) == pytest.approx(float(expected), rel=1e-9)
    # a variant that left the unobserved pairs out would differ: they carry weight
    partial = stats.norm.logpdf(y, eta, sigma / np.sqrt(w))[data.user_idx, data.item_idx].sum()
    assert abs(partial - stats.norm.logpdf(y, eta, sigma / np.sqrt(w)).sum()) > 1.0


def test_hierarchical_model_has_the_rating_models_priors() -> None:
    data = _data()
    implicit = PMF(n_factors=2, likelihood="implicit").build(data)
    rating = PMF(n_factors=2, factor_prior="shared").build(fake_train(6, 5))
    assert [rv.name for rv in implicit.free_RVs] == [rv.name for rv in rating.free_RVs]
    assert implicit["preference"].ndim == 2
    # mu's prior is on the response scale [0, 1] whatever scale the data carry
    stars = as_implicit(fake_train(6, 5), value="rating")
    relabeled = RatingsData(stars.user_idx, stars.item_idx, stars.rating, (1.0, 5.0), stars.users, stars.items)
    model = PMF(n_factors=2, likelihood="implicit").build(relabeled)
    point = model.initial_point() | {"mu": np.array(0.3)}
    assert float(model.compile_logp(vars=[model["mu"]])(point)) == pytest.approx(stats.norm.logpdf(0.3, 0.5, 0.5))


def test_dense_targets_and_refusals() -> None:
    data = _data()
    spec = PMF(likelihood="implicit", confidence_scale=2.0)
    y, w = dense_targets(spec, data)
    assert y.sum() == data.n_ratings and np.all(w[y == 0] == 1.0)
    assert np.allclose(w[data.user_idx, data.item_idx], confidence_weights(spec, data.rating))
    n = int(np.sqrt(MAX_DENSE_PAIRS)) + 1
    big = RatingsData(
        np.array([0]), np.array([0]), np.array([1.0]), IMPLICIT_SCALE,
        IdEncoder("user", np.arange(n)), IdEncoder("item", np.arange(n)),
    )
    with pytest.raises(ValueError, match=rf"{n} x {n} = {n * n:,}.*method='gibbs'"):
        spec.build(big)
    twice = RatingsData(
        np.array([0, 0]), np.array([1, 1]), np.array([1.0, 2.0]), IMPLICIT_SCALE,
        IdEncoder("user", np.array([7])), IdEncoder("item", np.array([3, 4])),
    )
    with pytest.raises(ValueError, match="user 7, item 4"):
        spec.build(twice)
    with pytest.raises(ValueError, match=r"value -1\.0 at position 0"):
        spec.build(RatingsData(np.array([0]), np.array([0]), np.array([-1.0]), IMPLICIT_SCALE, twice.users, twice.items))


@pytest.mark.slow
def test_nuts_recovers_planted_choice_probabilities() -> None:
    """Choices drawn as Bernoulli(eta): the posterior of eta covers the planted eta.

    The Gaussian likelihood is a working model of 0/1 data with E[y] = eta, and the
    confidences are ~1 (alpha tiny), so the posterior mean of eta is a shrunk least-squares
    fit of the choices. Bounds, calibrated on the seed (mean z^2 about 1.0, 90 % coverage
    about 0.89): mean z^2 < 2, coverage in [0.75, 0.98]. The same check against a permuted
    truth gives mean z^2 above 3, so it can fail.
    """
    pm = pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    rng = np.random.default_rng(3)
    nu, ni, K = 40, 30, 2
    U, V = rng.normal(0, 0.35, (nu, K)), rng.normal(0, 0.35, (ni, K))
    b, c = rng.normal(0, 0.1, nu), rng.normal(0, 0.15, ni)
    eta = np.clip(0.35 + b[:, None] + c[None, :] + U @ V.T, 0.02, 0.98)
    u, i = np.nonzero(rng.random((nu, ni)) < eta)
    data = interactions_from_dataframe(pd.DataFrame({"user": u, "item": i}))
    assert data.n_users == nu and data.n_items == ni  # every id chose something
    spec = PMF(n_factors=K, likelihood="implicit", confidence_scale=1e-6)
    with spec.build(data):
        tree = pm.sample(
            draws=300, tune=300, chains=2, nuts_sampler="nutpie", random_seed=1, progressbar=False,
            var_names=["U", "V", "mu", "user_bias", "item_bias", "sigma"],
        )
    post = tree["posterior"].to_dataset()
    S = post.sizes["chain"] * post.sizes["draw"]
    draws = (
        post["mu"].values.reshape(S)[:, None, None]
        + post["user_bias"].values.reshape(S, nu)[:, :, None]
        + post["item_bias"].values.reshape(S, ni)[:, None, :]
        + np.einsum("suk,sik->sui", post["U"].values.reshape(S, nu, K), post["V"].values.reshape(S, ni, K))
    )
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    z2 = float((((mean - eta) / sd) ** 2).mean())
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    coverage = float(((eta >= lo) & (eta <= hi)).mean())
    assert z2 < 2.0, z2
    assert 0.75 <= coverage <= 0.98, coverage
    wrong = rng.permutation(eta.ravel()).reshape(eta.shape)
    assert float((((mean - wrong) / sd) ** 2).mean()) > 2.0


@pytest.mark.slow
@pytest.mark.parametrize("priors", ["hierarchical", "fixed"])
def test_nuts_on_the_dense_model_agrees_with_gibbs(priors: str) -> None:
    """Two independent routes to one posterior: NUTS on this model and the Gibbs sampler.

    Counts 1-3 with confidence 1 + 2 r. Compared: the posterior mean of eta per pair (mean
    |difference| over the pairs, in units of the posterior sd; about 0.03 when checked),
    its posterior sd (ratio about 1.0) and sigma. Bounds 0.2, [0.85, 1.15] and 5 % leave
    room for Monte Carlo error at these chain lengths. Fixed priors with ``sigma`` given;
    a noise sd that differs between the routes (0.22 against 1) gives 2.5 and 2.8 on the
    first two, so the check can fail.
    """
    pm = pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    rng = np.random.default_rng(3)
    nu, ni, K = 40, 30, 2
    U, V = rng.normal(0, 0.35, (nu, K)), rng.normal(0, 0.35, (ni, K))
    eta = np.clip(0.35 + rng.normal(0, 0.1, nu)[:, None] + rng.normal(0, 0.15, ni)[None, :] + U @ V.T, 0.02, 0.98)
    u, i = np.nonzero(rng.random((nu, ni)) < eta)
    data = interactions_from_dataframe(pd.DataFrame({"user": u, "item": i, "n": rng.integers(1, 4, len(u))}), value="n")
    spec = PMF(n_factors=K, likelihood="implicit", confidence_scale=2.0, priors=priors, sigma=0.3 if priors == "fixed" else None)
    names = ["U", "V", "mu", "user_bias", "item_bias", "sigma"]
    with spec.build(data):
        tree = pm.sample(draws=500, tune=500, chains=2, nuts_sampler="nutpie", random_seed=1, progressbar=False, var_names=names)
    gibbs = spec.fit(data, method="gibbs", draws=1000, chains=2, random_seed=1, progressbar=False, factor_draws=None)

    def eta_draws(post: Any) -> tuple[np.ndarray, np.ndarray]:
        S = post.sizes["chain"] * post.sizes["draw"]
        flat = {k: post[k].values.reshape(S, *post[k].shape[2:]).astype(float) for k in names}
        e = flat["mu"][:, None, None] + flat["user_bias"][:, :, None] + flat["item_bias"][:, None, :]
        return e + np.einsum("suk,sik->sui", flat["U"], flat["V"]), flat["sigma"]

    (nuts_eta, nuts_sigma), (gibbs_eta, gibbs_sigma) = eta_draws(tree["posterior"].to_dataset()), eta_draws(gibbs.posterior)
    sd = nuts_eta.std(axis=0)
    assert np.abs(nuts_eta.mean(axis=0) - gibbs_eta.mean(axis=0)).mean() / sd.mean() < 0.2
    assert 0.85 < (gibbs_eta.std(axis=0) / sd).mean() < 1.15
    assert abs(gibbs_sigma.mean() / nuts_sigma.mean() - 1.0) < 0.05
