"""``PMF(likelihood="bernoulli")`` through every route: spec and data errors, layout, Gibbs vs NUTS.

The Gibbs block itself (truncated normals, SBC, planted truth) is tested in
`tests/test_gibbs_probit.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special

from bayesmf import PMF, IdEncoder, RatingsData
from bayesmf.binary import BINARY_SCALE, binarize, check_binary
from bayesmf.posterior import param_names
from bayesmf.spec import VALID_LINKS


def _labels(seed: int = 0, n_users: int = 30, n_items: int = 20, K: int = 2, density: float = 0.5):
    """0/1 data from a planted probit model; returns (data, true eta)."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(0, 0.8, (n_users, K)), rng.normal(0, 0.8, (n_items, K))
    eta = 0.2 + rng.normal(0, 0.4, n_users)[:, None] + rng.normal(0, 0.4, n_items)[None, :] + U @ V.T
    cells = rng.random((n_users, n_items)) < density
    cells[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    cells[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(cells)
    y = (rng.random(u.size) < special.ndtr(eta[u, i])).astype(float)
    users = IdEncoder("user", np.arange(100, 100 + n_users, dtype=np.int64))
    items = IdEncoder("item", np.arange(500, 500 + n_items, dtype=np.int64))
    return RatingsData(u, i, y, BINARY_SCALE, users, items), eta


# ---------------------------------------------------------------------------------------
# Spec and data errors
# ---------------------------------------------------------------------------------------
def test_link_defaults_to_the_likelihoods_own():
    assert PMF(likelihood="bernoulli").link == "probit"
    assert PMF().link == "identity"
    assert PMF(likelihood="ordinal").link == "identity"
    spec = PMF(likelihood="bernoulli", priors="fixed")
    assert PMF.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(("likelihood", "link"), [("bernoulli", "identity"), ("bernoulli", "logistic"),
                                                  ("normal", "probit"), ("ordinal", "logistic"),
                                                  ("implicit", "probit")])
def test_a_link_that_means_nothing_lists_the_valid_combinations(likelihood, link):
    with pytest.raises(ValueError, match="valid combinations") as err:
        PMF(likelihood=likelihood, link=link)
    message = str(err.value)
    assert f"link={link!r}" in message and f"likelihood={likelihood!r}" in message
    for name, links in VALID_LINKS.items():
        assert f"likelihood={name!r}" in message
        assert all(repr(choice) in message for choice in links)


def test_sigma_has_no_meaning_for_the_probit():
    with pytest.raises(ValueError, match=r"sigma=0\.5 has no meaning"):
        PMF(likelihood="bernoulli", sigma=0.5)


@pytest.mark.parametrize("method", ["gibbs", "map", "nuts", "advi"])
def test_non_binary_value_is_named_with_its_row(method):
    data, _ = _labels()
    values = np.array(data.rating)
    values[7] = 4.0
    bad = RatingsData(data.user_idx, data.item_idx, values, (0.0, 5.0), data.users, data.items)
    spec = PMF(n_factors=2, likelihood="bernoulli", priors="fixed" if method == "map" else "hierarchical")
    user = int(data.users.to_raw(data.user_idx[7:8])[0])
    with pytest.raises(ValueError, match=rf"row 7 \(user {user}, .*holds 4\.0.*binarize"):
        spec.fit(bad, method=method, progressbar=False)
    with pytest.raises(ValueError, match="row 7"):
        spec.build(bad)


@pytest.mark.parametrize("method", ["als", "sgd"])
def test_routes_without_a_bernoulli_likelihood_say_what_they_support(method):
    data, _ = _labels()
    with pytest.raises(ValueError, match=f"method='{method}' does not support .*likelihood='bernoulli'"):
        PMF(likelihood="bernoulli", priors="fixed").fit(data, method=method)


def test_binarize_ratings_and_frames():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"user": rng.integers(0, 9, 40), "item": np.arange(40), "rating": rng.integers(1, 6, 40)})
    ratings = RatingsData.from_dataframe(frame, user="user", item="item", scale=(1, 5))
    before = frame.copy()
    out = binarize(frame, threshold=4)
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified
    np.testing.assert_array_equal(out["rating"], (frame["rating"] >= 4).astype(float))
    binary = binarize(ratings, threshold=4)
    assert binary.scale == BINARY_SCALE and binary.users is ratings.users and binary.items is ratings.items
    np.testing.assert_array_equal(binary.rating, (ratings.rating >= 4).astype(float))
    check_binary(binary)
    with pytest.raises(ValueError, match=r"threshold=6 must lie in \(1, 5\]"):
        binarize(ratings, threshold=6)
    with pytest.raises(ValueError, match="threshold=1 must lie"):
        binarize(ratings, threshold=1)
    with pytest.raises(ValueError, match="no column 'stars'"):
        binarize(frame, threshold=4, rating_col="stars")


# ---------------------------------------------------------------------------------------
# Every route gives the layout
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("priors", ["hierarchical", "fixed"])
def test_gibbs_and_map_give_the_layout_without_sigma(priors):
    data, _ = _labels()
    spec = PMF(n_factors=2, likelihood="bernoulli", priors=priors)
    names = set(param_names(spec))
    assert "sigma" not in names and "mu" in names
    fit = spec.fit(data, method="gibbs", draws=50, tune=50, chains=2, random_seed=0, progressbar=False)
    assert set(fit.idata["posterior"].data_vars) == names
    assert np.isfinite(fit.idata["sample_stats"]["log_likelihood_sum"].values).all()
    assert (fit.idata["sample_stats"]["log_likelihood_sum"].values < 0).all()
    if priors == "fixed":
        point = spec.fit(data, method="map", random_seed=0, progressbar=False)
        assert set(point.idata["posterior"].data_vars) == names


def test_pymc_log_likelihood_is_the_probit_one():
    """The model's rating term equals sum log Phi((2y - 1) eta), also where Phi rounds to 0 or 1."""
    data, _ = _labels(n_users=6, n_items=5)
    spec = PMF(n_factors=2, likelihood="bernoulli", priors="fixed")
    model = spec.build(data)
    rng = np.random.default_rng(2)
    point = {"U": rng.normal(0, 3, (6, 2)), "V": rng.normal(0, 3, (5, 2)), "mu": np.asarray(4.0),
             "user_bias": rng.normal(0, 4, 6), "item_bias": rng.normal(0, 4, 5)}
    eta = (point["mu"] + point["user_bias"][data.user_idx] + point["item_bias"][data.item_idx]
           + np.sum(point["U"][data.user_idx] * point["V"][data.item_idx], axis=1))
    expected = special.log_ndtr((2 * data.rating - 1) * eta).sum()
    assert np.abs(eta).max() > 9  # far enough that 1 - Phi(eta) rounds in float64
    logp = model.compile_logp(vars=[model["rating"]], sum=True)
    free = {v.name: point[v.name] for v in model.value_vars}
    np.testing.assert_allclose(logp(free), expected, rtol=1e-9)


@pytest.mark.slow
def test_advi_and_nuts_give_the_layout():
    data, _ = _labels()
    spec = PMF(n_factors=2, likelihood="bernoulli")
    for method, kw in (("advi", {"n": 500}), ("nuts", {"draws": 50, "tune": 50, "chains": 1})):
        fit = spec.fit(data, method=method, random_seed=0, progressbar=False, **kw)
        assert set(fit.idata["posterior"].data_vars) == set(param_names(spec))


# ---------------------------------------------------------------------------------------
# Gibbs vs NUTS
# ---------------------------------------------------------------------------------------
def _probability_draws(post: Any) -> np.ndarray:
    S = post.sizes["chain"] * post.sizes["draw"]
    flat = {k: post[k].values.reshape(S, *post[k].shape[2:]).astype(float) for k in ("U", "V", "mu", "user_bias", "item_bias")}
    eta = flat["mu"][:, None, None] + flat["user_bias"][:, :, None] + flat["item_bias"][:, None, :]
    return special.ndtr(eta + np.einsum("suk,sik->sui", flat["U"], flat["V"]))


@pytest.mark.slow
@pytest.mark.parametrize("priors", ["hierarchical", "fixed"])
def test_gibbs_agrees_with_nuts(priors):
    """Two independent routes to one posterior: NUTS on the PyMC model and the Gibbs sampler.

    30 x 20 users x items, half observed, rank 2. Compared per pair: the posterior mean of
    P(y = 1) (mean |difference| in units of the posterior sd) and its posterior sd (mean
    ratio), and the posterior mean of the user-bias sd (hierarchical). Bounds 0.15,
    [0.8, 1.25] and 10 % leave room for Monte Carlo error at these chain lengths: when
    checked, fixed priors gave 0.020 and 1.001, hierarchical ones 0.03-0.06, 0.99-1.13 and
    1.06 over Gibbs seeds (the factor sd mixes slowly; NUTS had no divergences). A Gibbs
    sampler with latent noise precision 2 instead of 1 gave 0.21 (fixed) and 2.6, 1.76, 49
    (hierarchical), so the check can fail.
    """
    data, _ = _labels(seed=4)
    spec = PMF(n_factors=2, likelihood="bernoulli", priors=priors)
    nuts = spec.fit(data, method="nuts", draws=1000, tune=1000, chains=2, random_seed=1, progressbar=False)
    gibbs = spec.fit(data, method="gibbs", draws=2000, thin=5, chains=2, random_seed=1, progressbar=False, factor_draws=None)
    p_nuts, p_gibbs = _probability_draws(nuts.idata["posterior"]), _probability_draws(gibbs.idata["posterior"])
    sd = p_nuts.std(axis=0)
    gap = float(np.abs(p_nuts.mean(axis=0) - p_gibbs.mean(axis=0)).mean() / sd.mean())
    ratio = float((p_gibbs.std(axis=0) / sd).mean())
    assert gap < 0.15, gap
    assert 0.8 < ratio < 1.25, ratio
    if priors == "hierarchical":
        a, b = (float(f.idata["posterior"]["sigma_user_bias"].mean()) for f in (nuts, gibbs))
        assert abs(b / a - 1.0) < 0.1, (a, b)
