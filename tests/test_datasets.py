"""Tests of bayesmf.datasets: simulation from the PMF model, MovieLens loaders."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmf.datasets import Simulation, simulate


# -- simulate ------------------------------------------------------------------------------
def test_simulate_shapes_coverage_and_density():
    sim = simulate(n_users=60, n_items=40, n_factors=2, density=0.15, seed=3)
    assert isinstance(sim, Simulation)
    data = sim.data
    assert (data.n_users, data.n_items) == (60, 40)
    assert data.n_ratings == round(0.15 * 60 * 40)
    assert data.user_counts().min() >= 1 and data.item_counts().min() >= 1
    pairs = data.user_idx * 40 + data.item_idx
    assert len(np.unique(pairs)) == data.n_ratings  # without replacement
    assert sim.truth["U"].shape == (60, 2) and sim.truth["V"].shape == (40, 2)
    assert sim.truth["user_bias"].shape == (60,) and sim.truth["item_bias"].shape == (40,)
    assert sim.n_factors == 2
    low, high = data.scale
    assert low <= data.rating.min() and data.rating.max() <= high
    assert data.levels is None  # continuous ratings


def test_simulate_coverage_when_density_is_tiny():
    sim = simulate(n_users=30, n_items=70, density=0.001, seed=0)
    assert sim.data.user_counts().min() >= 1 and sim.data.item_counts().min() >= 1
    assert sim.data.n_ratings == 70


def test_simulate_is_deterministic_under_seed():
    a, b, c = simulate(seed=5), simulate(seed=5), simulate(seed=6)
    np.testing.assert_array_equal(a.data.rating, b.data.rating)
    np.testing.assert_array_equal(a.data.user_idx, b.data.user_idx)
    np.testing.assert_array_equal(a.truth["U"], b.truth["U"])
    assert not np.array_equal(a.data.rating, c.data.rating)


def test_simulate_residuals_have_the_planted_noise_and_signal_sd():
    sim = simulate(n_users=400, n_items=300, n_factors=4, density=0.2, noise=0.7, seed=1)
    data = sim.data
    residual = data.rating - sim.true_mean(data.user_idx, data.item_idx)
    n = data.n_ratings
    # sd of a normal sample: standard error ~ sigma / sqrt(2n); allow 5 se
    assert abs(residual.std() - 0.7) < 5 * 0.7 / np.sqrt(2 * n)
    assert abs(residual.mean()) < 5 * 0.7 / np.sqrt(n)
    # default factor_sd makes U.V have sd ~0.75 (the truth, over all cells)
    dot = sim.truth["U"] @ sim.truth["V"].T
    assert 0.6 < dot.std() < 0.9
    assert float(sim.truth["sigma"]) == 0.7


def test_simulate_biases_off_and_truth_readonly():
    sim = simulate(n_users=20, n_items=20, biases=False, seed=0)
    assert float(sim.truth["mu"]) == 0.0
    assert not sim.truth["user_bias"].any() and not sim.truth["item_bias"].any()
    with pytest.raises(ValueError):
        sim.truth["U"][0, 0] = 1.0
    eta = sim.truth["U"][sim.data.user_idx] * sim.truth["V"][sim.data.item_idx]
    np.testing.assert_allclose(sim.true_mean(sim.data.user_idx, sim.data.item_idx), eta.sum(axis=1))


def test_simulate_popularity_skew_concentrates_ratings():
    flat = simulate(n_users=300, n_items=200, density=0.05, seed=2).data.item_counts()
    skewed = simulate(n_users=300, n_items=200, density=0.05, popularity_skew=1.2, seed=2).data.item_counts()
    top = lambda c: np.sort(c)[-20:].sum() / c.sum()  # share of the 10% most rated items  # noqa: E731
    assert top(skewed) > 2 * top(flat)


def test_simulate_logistic_link():
    sim = simulate(n_users=100, n_items=80, density=0.2, noise=0.05, link="logistic", seed=0)
    data = sim.data
    assert data.scale == (1.0, 5.0)
    assert data.rating.min() >= 1.0 and data.rating.max() <= 5.0
    mean = sim.true_mean(data.user_idx, data.item_idx)
    assert np.all((mean > 1.0) & (mean < 5.0))
    # noise is on [0, 1]: residual sd in rating units ~ 4 * 0.05 (a little less from clipping)
    assert 0.15 < (data.rating - mean).std() < 0.22
    # mu is the typical rating: the latent mean is its logit on [0, 1]
    np.testing.assert_allclose(float(sim.truth["mu"]), np.log(0.625 / 0.375))


def test_simulate_declared_scale():
    sim = simulate(n_users=30, n_items=30, noise=0.1, scale=(-10, 20), seed=0)
    assert sim.data.scale == (-10.0, 20.0)
    with pytest.raises(ValueError, match=r"scale=\(3, 4\)"):
        simulate(n_users=30, n_items=30, scale=(3, 4), seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"density": 0.0}, ValueError, "density"),
        ({"density": 1.5}, ValueError, "1.5"),
        ({"noise": -1.0}, ValueError, "-1.0"),
        ({"n_users": 0}, ValueError, "n_users"),
        ({"n_factors": 2.5}, TypeError, "2.5"),
        ({"link": "probit"}, ValueError, "probit"),
        ({"scale": (5, 1)}, ValueError, r"\(5, 1\)"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate(**kwargs)
