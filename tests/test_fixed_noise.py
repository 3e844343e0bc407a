"""Hierarchical priors with the noise sd fixed (``PMF(sigma=...)``): scales learned, sigma held.

The calibration of the Gibbs sampler for this model is checked by SBC in ``test_gibbs.py``
(``test_simulation_based_calibration_with_fixed_noise``, slow).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayesmf import PMF
from bayesmf.datasets import simulate
from bayesmf.exceptions import ConvergenceWarning
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.starts import map_start


@pytest.fixture(scope="module")
def data():
    return simulate(n_users=60, n_items=40, n_factors=2, density=0.3, seed=0).data


def _gibbs(spec, data, init="map"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return spec.fit(data, method="gibbs", draws=40, tune=20, chains=2, random_seed=1, progressbar=False, init=init)


@pytest.mark.parametrize("init", ["map", "prior"])
def test_gibbs_holds_a_given_sigma_and_learns_the_scales(data, init):
    fit = _gibbs(PMF(n_factors=2, sigma=0.7), data, init)
    post = fit.posterior
    np.testing.assert_allclose(post["sigma"].values, 0.7)
    scales = [name for name in post.data_vars if str(name).startswith("sigma_")]
    assert {"sigma_factor_user", "sigma_factor_item", "sigma_user_bias", "sigma_item_bias"} <= set(scales)
    for name in scales:
        assert float(post[name].std()) > 0, name  # still learned


def test_without_sigma_the_noise_is_learned(data):
    fit = _gibbs(PMF(n_factors=2), data)
    assert float(fit.posterior["sigma"].std()) > 0
    assert build_problem(PMF(n_factors=2), data).learn_noise
    assert not build_problem(PMF(n_factors=2, sigma=0.7), data).learn_noise
    assert not build_problem(PMF(n_factors=2, priors="fixed"), data).learn_noise


def test_the_fixed_noise_changes_the_fit(data):
    """A larger fixed noise sd weighs the data less: the factors shrink (the learned scale with them)."""
    tight, loose = (_gibbs(PMF(n_factors=2, factor_prior="shared", sigma=s), data) for s in (0.3, 3.0))
    assert float(loose.posterior["sigma_factor"].mean()) < float(tight.posterior["sigma_factor"].mean())


def test_pymc_model_and_its_start_have_no_noise_variable(data):
    spec = PMF(n_factors=2, factor_prior="shared", sigma=0.7)
    model = spec.build(data)
    assert "sigma2" not in {v.name for v in model.free_RVs}
    assert float(model["sigma"].eval()) == pytest.approx(0.7)
    start = map_start(spec, data, random_seed=0)
    assert "sigma2" not in start and "factor_var" in start
    assert "sigma2" in map_start(PMF(n_factors=2, factor_prior="shared"), data, random_seed=0)
