"""`FitResult.thin`: evenly spaced draws of each chain, the rest of the fit as it was."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fake_result

from bayesmf import PMF, load, simulate
from bayesmf.posterior import SCALAR_GROUP


@pytest.fixture(scope="module")
def sim():
    return simulate(n_users=40, n_items=30, n_factors=2, density=0.3, seed=1)


@pytest.fixture(scope="module")
def gibbs(sim):
    # 2 chains x 90 kept draws, the posterior holding every 2nd (factor_draws=45), with warm-up groups
    return PMF(n_factors=2).fit(
        sim.data, method="gibbs", draws=90, thin=1, tune=20, chains=2, factor_draws=45,
        keep_warmup=True, random_seed=3, progressbar=False,
    )


def test_every_keeps_every_kth_draw_of_every_group_with_the_posteriors_draws(gibbs):
    light = gibbs.thin(every=4)
    assert light.n_chains == 2 and light.n_draws == 12  # draws 0, 4, ..., 44 of 45
    for name in ("U", "V", "sigma", "user_bias", "sigma_factor_user", "factor_mean_item"):
        np.testing.assert_array_equal(light.posterior[name].values, gibbs.posterior[name].values[:, ::4])
    stats = light.idata["sample_stats"].to_dataset()
    np.testing.assert_array_equal(
        stats["log_likelihood_sum"].values, gibbs.idata["sample_stats"].to_dataset()["log_likelihood_sum"].values[:, ::4]
    )
    np.testing.assert_array_equal(light.posterior["draw"].values, np.arange(12))
    # the warm-up and every sweep's scalars are kept whole
    for group in ("warmup_posterior", SCALAR_GROUP):
        assert light.idata[group].to_dataset().sizes == gibbs.idata[group].to_dataset().sizes


def test_posterior_draws_still_name_their_sweep_in_the_scalar_group(gibbs):
    """Posterior draw d is scalar draw d * draw_spacing, before and after thinning."""
    for fit in (gibbs, gibbs.thin(every=3), gibbs.thin(every=3).thin(every=2)):
        scalars = fit.idata[SCALAR_GROUP].to_dataset()
        spacing = scalars.attrs["draw_spacing"]
        assert fit.info["draw_spacing"] == spacing
        np.testing.assert_array_equal(
            fit.posterior["sigma"].values, scalars["sigma"].values[:, :: spacing][:, : fit.n_draws]
        )
    assert gibbs.thin(every=3).thin(every=2).info["thinned"] == 6
    assert gibbs.thin(every=3).info["draws"] == 15 and gibbs.info["draws"] == 45


def test_draws_gives_at_most_so_many_evenly_spaced(gibbs):
    assert gibbs.thin(draws=10).n_draws == 9  # step ceil(45 / 10) = 5: draws 0, 5, ..., 40
    assert gibbs.thin(draws=45) is gibbs and gibbs.thin(draws=1000) is gibbs
    assert gibbs.thin(draws=1).n_draws == 1


def test_the_fit_it_came_from_is_unchanged(gibbs):
    before = gibbs.posterior["U"].values.copy()
    info = dict(gibbs.info)
    gibbs.thin(every=5)
    assert gibbs.n_draws == 45 and gibbs.info == info
    np.testing.assert_array_equal(gibbs.posterior["U"].values, before)


def test_predictions_are_those_of_the_kept_draws(sim, gibbs):
    pairs = sim.data.to_dataframe().head(20)
    light = gibbs.thin(every=5)
    post = gibbs.posterior
    u, i = sim.data.user_idx[:20], sim.data.item_idx[:20]
    eta = (  # (chain, draw, pair): the mean rating of each draw
        post["mu"].values[..., None]
        + post["user_bias"].values[:, :, u]
        + post["item_bias"].values[:, :, i]
        + np.einsum("cdpk,cdpk->cdp", post["U"].values[:, :, u], post["V"].values[:, :, i])
    )
    expected = eta[:, ::5].reshape(-1, 20).mean(axis=0)
    got = light.predict(pairs, kind="expected", clip=False)["mean"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # the kernels score in float32
    assert not np.allclose(got, eta.reshape(-1, 20).mean(axis=0), rtol=1e-4)  # all draws give other means


def test_a_thinned_fit_saves_and_loads(tmp_path, gibbs):
    light = gibbs.thin(every=5)
    light.save(tmp_path / "light.nc")
    back = load(tmp_path / "light.nc")
    assert back.n_draws == light.n_draws
    np.testing.assert_array_equal(back.posterior["V"].values, light.posterior["V"].values)


def test_a_map_fit_comes_back_as_it_is():
    fit = fake_result(PMF(n_factors=2, priors="fixed"), method="als")
    assert fit.thin(draws=10) is fit and fit.thin(every=3) is fit


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"exactly one of draws= and every= \(got draws=None, every=None\)"),
        ({"draws": 5, "every": 2}, r"exactly one of draws= and every="),
        ({"every": 0}, r"every"),
        ({"draws": -3}, r"draws"),
        ({"every": 2.5}, r"every"),
    ],
)
def test_bad_arguments_are_named(gibbs, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gibbs.thin(**kwargs)
