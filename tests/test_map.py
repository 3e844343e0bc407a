"""MAP three ways (find_MAP, ALS, SGD): one objective, one optimum, planted truth recovered."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bayesmf import PMF, RatingsData, objective, simulate
from bayesmf.inference import fit
from bayesmf.inference._point import CollapsedFactorsWarning, ConvergenceWarning
from bayesmf.model import build_model, mean_rating, to_unit
from bayesmf.objective import latent_scores
from bayesmf.posterior import param_names

N_FACTORS = 2
FACTOR_SD = math.sqrt(0.75 / math.sqrt(N_FACTORS))  # simulate()'s default factor sd
NOISE = {"identity": 0.5, "logistic": 0.1}


def make_sim(link: str = "identity", biases: bool = True, seed: int = 0, density: float = 0.3):
    return simulate(
        n_users=120, n_items=90, n_factors=N_FACTORS, density=density, noise=NOISE[link],
        seed=seed, link=link, biases=biases,
    )  # fmt: skip


def true_spec(link: str = "identity", biases: bool = True, **kw) -> PMF:
    """The fixed-prior PMF whose priors are the simulation's truth."""
    options = dict(
        n_factors=N_FACTORS, priors="fixed", biases=biases, link=link, sigma=NOISE[link],
        sigma_u=FACTOR_SD, sigma_v=FACTOR_SD, sigma_bias=0.3,
    )  # fmt: skip
    return PMF(**(options | kw))


def point(result):
    """The point estimate's arrays (U, V float64, offsets or None)."""
    a = result.arrays()
    return {
        "U": a.U[0].astype(np.float64),
        "V": a.V[0].astype(np.float64),
        "mu": None if a.mu is None else float(a.mu[0]),
        "user_bias": None if a.user_bias is None else a.user_bias[0],
        "item_bias": None if a.item_bias is None else a.item_bias[0],
        "cutpoints": None if a.cutpoints is None else a.cutpoints[0],
    }


def predict_pairs(result, user_idx, item_idx):
    p = point(result)
    eta = latent_scores(p["U"], p["V"], user_idx, item_idx, mu=p["mu"], user_bias=p["user_bias"], item_bias=p["item_bias"])
    data = result.train
    if result.spec.likelihood == "ordinal":
        return mean_rating(eta, result.spec, data.scale, cutpoints=p["cutpoints"], levels=data.levels)
    return mean_rating(eta, result.spec, data.scale)


def all_cells(data):
    u, i = np.meshgrid(np.arange(data.n_users), np.arange(data.n_items), indexing="ij")
    return u.ravel(), i.ravel()


def held_out_cells(data):
    seen = np.zeros((data.n_users, data.n_items), dtype=bool)
    seen[data.user_idx, data.item_idx] = True
    return np.nonzero(~seen)


def energy(result) -> float:
    spec, data = result.spec, result.train
    p = point(result)
    lam = spec.lambdas(data.scale)
    kw = {}
    if spec.biases:
        kw = dict(mu=p["mu"], user_bias=p["user_bias"], item_bias=p["item_bias"], lambda_bias=lam["lambda_bias"])
    return objective(p["U"], p["V"], data, lam["lambda_u"], lam["lambda_v"], link=spec.link, **kw)


@pytest.fixture(scope="module")
def identity_fits():
    """One simulated problem fitted three ways (find_MAP and ALS to tight tolerances)."""
    sim = make_sim("identity")
    spec = true_spec("identity")
    return {
        "sim": sim,
        "spec": spec,
        "map": fit(spec, sim.data, "map", random_seed=1, progressbar=False, ftol=1e-15, gtol=1e-9),
        "als": fit(spec, sim.data, "als", random_seed=2, progressbar=False, tol=1e-14, max_iter=20_000),
        "sgd": fit(spec, sim.data, "sgd", random_seed=3, progressbar=False),
    }


# -- one objective -------------------------------------------------------------------------
@pytest.mark.parametrize(("link", "biases"), [("identity", True), ("identity", False), ("logistic", True)])
def test_objective_is_sigma2_times_negative_log_posterior(link, biases):
    """E(a) - E(b) = -sigma^2 (log p(a | R) - log p(b | R)) at random points a, b."""
    sim = make_sim(link, biases=biases)
    spec = true_spec(link, biases=biases, sigma_bias=0.4)  # lambda_bias != lambda_u
    data = sim.data
    model = build_model(spec, data)
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    lam = spec.lambdas(data.scale)
    s2 = spec.noise_sd(data.scale) ** 2
    rng = np.random.default_rng(5)
    values, energies = [], []
    for _ in range(4):
        p = {
            "U": rng.normal(0, 0.7, (data.n_users, N_FACTORS)),
            "V": rng.normal(0, 0.7, (data.n_items, N_FACTORS)),
        }
        kw = {}
        if biases:
            p.update(
                mu=np.asarray(rng.normal(3.5 if link == "identity" else 0.5, 0.3)),
                user_bias=rng.normal(0, 0.4, data.n_users),
                item_bias=rng.normal(0, 0.4, data.n_items),
            )
            kw = dict(mu=p["mu"], user_bias=p["user_bias"], item_bias=p["item_bias"], lambda_bias=lam["lambda_bias"])
        values.append(float(logp(p)))
        energies.append(objective(p["U"], p["V"], data, lam["lambda_u"], lam["lambda_v"], link=link, **kw))
    values, energies = np.array(values), np.array(energies)
    np.testing.assert_allclose(energies - energies[0], -s2 * (values - values[0]), rtol=1e-9, atol=1e-8)
    assert np.ptp(energies) > 1.0  # the points differ, so the check has teeth


def test_objective_by_hand():
    sim = make_sim()
    data = sim.data
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(data.n_users, 2)), rng.normal(size=(data.n_items, 2))
    b, c = rng.normal(size=data.n_users), rng.normal(size=data.n_items)
    pred = 3.0 + b[data.user_idx] + c[data.item_idx] + np.sum(U[data.user_idx] * V[data.item_idx], axis=1)
    expected = 0.5 * np.sum((data.rating - pred) ** 2) + 0.5 * 2.0 * np.sum(U**2) + 0.5 * 3.0 * np.sum(V**2)
    expected += 0.5 * 4.0 * (np.sum(b**2) + np.sum(c**2))
    got = objective(U, V, data, 2.0, 3.0, mu=3.0, user_bias=b, item_bias=c, lambda_bias=4.0)
    assert got == pytest.approx(expected, rel=1e-12)
    # logistic: squared error on the [0, 1] scale
    unit = to_unit(data.rating, data.scale, "logistic")
    pred = 1 / (1 + np.exp(-np.sum(U[data.user_idx] * V[data.item_idx], axis=1)))
    expected = 0.5 * np.sum((unit - pred) ** 2) + 0.5 * (np.sum(U**2) + np.sum(V**2))
    assert objective(U, V, data, 1.0, 1.0, link="logistic") == pytest.approx(expected, rel=1e-12)


def test_objective_rejects_bad_input():
    data = make_sim().data
    U, V = np.zeros((data.n_users, 2)), np.zeros((data.n_items, 2))
    with pytest.raises(ValueError, match="rows"):
        objective(U[:-1], V, data, 1.0, 1.0)
    with pytest.raises(ValueError, match="together"):
        objective(U, V, data, 1.0, 1.0, user_bias=np.zeros(data.n_users))
    with pytest.raises(ValueError, match="lambda_u"):
        objective(U, V, data, -1.0, 1.0)
    with pytest.raises(ValueError, match="'identity', 'logistic'"):
        objective(U, V, data, 1.0, 1.0, link="probit")


# -- ALS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("biases", [True, False])
def test_als_objective_never_increases(biases):
    sim = make_sim(biases=biases, seed=4)
    result = fit(true_spec(biases=biases), sim.data, "als", random_seed=0, progressbar=False, tol=1e-12, max_iter=3000)
    history = np.array(result.info["objective"])
    assert len(history) > 20
    assert np.all(np.diff(history) <= 1e-12 * history[1:])
    assert history[-1] < 0.5 * history[0]
    # the reported objective is the objective of the stored estimates (U, V kept as float32)
    assert energy(result) == pytest.approx(history[-1], rel=1e-6)
    assert result.info["converged"] is True


def test_map_and_als_reach_the_same_optimum(identity_fits):
    e_map, e_als = energy(identity_fits["map"]), energy(identity_fits["als"])
    assert abs(e_map - e_als) / e_als <= 1e-6
    data = identity_fits["sim"].data
    u, i = all_cells(data)  # every cell, rated or not
    np.testing.assert_allclose(
        predict_pairs(identity_fits["map"], u, i), predict_pairs(identity_fits["als"], u, i), atol=1e-4, rtol=0
    )
    # SGD minimizes the same function: it gets close to, never below, that minimum
    e_sgd = energy(identity_fits["sgd"])
    assert e_als * (1 - 1e-9) <= e_sgd <= 1.02 * e_als


def test_map_agrees_with_als_without_biases():
    sim = make_sim(biases=False, seed=6)
    spec = true_spec(biases=False)
    by_map = fit(spec, sim.data, "map", random_seed=1, progressbar=False, ftol=1e-15, gtol=1e-9)
    by_als = fit(spec, sim.data, "als", random_seed=1, progressbar=False, tol=1e-14, max_iter=20_000)
    assert abs(energy(by_map) - energy(by_als)) / energy(by_als) <= 1e-6
    u, i = all_cells(sim.data)
    np.testing.assert_allclose(predict_pairs(by_map, u, i), predict_pairs(by_als, u, i), atol=1e-4, rtol=0)


# -- planted truth ----------------------------------------------------------------------------
def _rmse_ratio(sim, result) -> float:
    """RMSE of the MAP mean vs the noiseless truth on held-out cells, over the global mean's."""
    u, i = held_out_cells(sim.data)
    truth = sim.true_mean(u, i)
    rmse = np.sqrt(np.mean((predict_pairs(result, u, i) - truth) ** 2))
    baseline = np.sqrt(np.mean((np.mean(sim.data.rating) - truth) ** 2))
    return float(rmse / baseline)


@pytest.mark.parametrize("method", ["map", "als", "sgd"])
def test_identity_link_recovers_planted_truth(identity_fits, method):
    result = identity_fits[method]
    assert result.info["collapsed"] is False
    assert _rmse_ratio(identity_fits["sim"], result) < 0.6


@pytest.mark.parametrize("method", ["map", "sgd"])
def test_logistic_link_recovers_planted_truth(method):
    sim = make_sim("logistic", seed=2)
    result = fit(true_spec("logistic"), sim.data, method, random_seed=0, progressbar=False)
    assert _rmse_ratio(sim, result) < 0.6


def _rank_corr(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


@pytest.mark.slow
def test_ordinal_map_recovers_planted_ranking():
    """Ratings rounded to 1..5 stars; the ordinal MAP ranks held-out cells like the truth."""
    sim = make_sim("identity", seed=7, density=0.35)
    data = sim.data
    stars = RatingsData(
        data.user_idx, data.item_idx, np.clip(np.round(data.rating), 1, 5), (1.0, 5.0), data.users, data.items
    )
    spec = PMF(n_factors=N_FACTORS, priors="fixed", likelihood="ordinal", sigma_u=1.0, sigma_v=1.0, sigma_bias=1.0)
    result = fit(spec, stars, "map", random_seed=0, progressbar=False)
    assert "mu" not in result.posterior and "cutpoints" in result.posterior
    assert np.all(np.diff(point(result)["cutpoints"]) > 0)
    u, i = held_out_cells(stars)
    truth = sim.true_mean(u, i)
    # baseline: additive user-mean + item-mean predictor from the same stars
    global_mean = stars.rating.mean()
    user_mean = np.bincount(stars.user_idx, stars.rating, stars.n_users) / stars.user_counts()
    item_mean = np.bincount(stars.item_idx, stars.rating, stars.n_items) / stars.item_counts()
    baseline = user_mean[u] + item_mean[i] - global_mean
    ours = _rank_corr(predict_pairs(result, u, i), truth)
    theirs = _rank_corr(baseline, truth)
    assert ours > 0.8
    assert ours > theirs + 0.15


# -- results, warnings, reproducibility -------------------------------------------------------
def test_point_results_have_the_layout(identity_fits):
    spec = identity_fits["spec"]
    for method in ("map", "als", "sgd"):
        result = identity_fits[method]
        assert result.method == method and result.is_map
        assert (result.n_chains, result.n_draws) == (1, 1)
        assert set(result.posterior.data_vars) == set(param_names(spec))
        assert result.posterior["sigma"].item() == pytest.approx(spec.noise_sd(result.train.scale))
        for key in ("fit_seconds", "iterations", "objective", "converged"):
            assert key in result.info, (method, key)
        assert result.info["converged"] is True


def test_same_seed_same_fit():
    sim = make_sim(seed=8)
    spec = true_spec()
    for method in ("als", "sgd"):
        a = fit(spec, sim.data, method, random_seed=11, progressbar=False)
        b = fit(spec, sim.data, method, random_seed=11, progressbar=False)
        np.testing.assert_array_equal(a.arrays().U, b.arrays().U)


def test_collapsed_factors_warn():
    sim = make_sim(seed=9)
    spec = PMF(n_factors=N_FACTORS, priors="fixed", sigma=0.5, sigma_u=1e-4, sigma_v=1e-4)
    with pytest.warns(CollapsedFactorsWarning, match="collapsed"):
        result = fit(spec, sim.data, "als", random_seed=0, progressbar=False)
    assert result.info["collapsed"] is True


def test_iteration_limits_warn():
    sim = make_sim(seed=10)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        result = fit(true_spec(), sim.data, "als", max_iter=2, tol=1e-12, progressbar=False, random_seed=0)
    assert result.info["converged"] is False
    with pytest.warns(ConvergenceWarning, match="epochs=2"):
        fit(true_spec(), sim.data, "sgd", epochs=2, tol=1e-12, progressbar=False, random_seed=0)


# -- bad input --------------------------------------------------------------------------------
def test_spec_rejects_bad_options():
    with pytest.raises(ValueError, match=">= 1"):
        PMF(n_factors=0)
    with pytest.raises(TypeError, match="integer"):
        PMF(n_factors=2.5)  # type: ignore[arg-type]
    for name in ("sigma", "sigma_u", "sigma_v", "sigma_bias"):
        with pytest.raises(ValueError, match=name):
            PMF(**{name: 0.0})
        with pytest.raises(ValueError, match=name):
            PMF(**{name: -1.0})
    with pytest.raises(ValueError, match="'fixed', 'hierarchical'"):
        PMF(priors="flat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'identity', 'logistic'"):
        PMF(link="cauchit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'normal', 'ordinal'"):
        PMF(likelihood="poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="known"):
        PMF.from_dict({"n_factor": 3})
    with pytest.raises(ValueError, match="sigma2"):
        PMF(hyperpriors={"sigma2": (0.0, 1.0)})
    with pytest.raises(ValueError, match="'shared', 'per_side'"):
        PMF(factor_prior="wishart")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priors='fixed'"):
        PMF(priors="fixed", factor_prior="per_side")
    assert PMF.from_json(PMF(factor_prior="per_side").to_json()).factor_prior == "per_side"


def test_fit_rejects_unsupported_combinations():
    data = make_sim().data
    for method in ("map", "als", "sgd"):
        with pytest.raises(ValueError, match="priors='fixed'"):
            fit(PMF(priors="hierarchical"), data, method)
    with pytest.raises(ValueError, match="link='identity'"):
        fit(PMF(priors="fixed", link="logistic"), data, "als")
    with pytest.raises(ValueError, match="likelihood='normal'"):
        fit(PMF(priors="fixed", likelihood="ordinal"), data, "sgd")
    with pytest.raises(ValueError, match="'map', 'als', 'sgd'"):
        fit(PMF(priors="fixed"), data, "lbfgs")


def test_fit_rejects_empty_data_and_bad_route_options():
    data = make_sim().data
    empty = data.subset(np.zeros(data.n_ratings, dtype=bool))
    spec = true_spec()
    for method in ("map", "als", "sgd"):
        with pytest.raises(ValueError, match="empty"):
            fit(spec, empty, method)
    with pytest.raises(ValueError, match="max_iter"):
        fit(spec, data, "als", max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        fit(spec, data, "als", tol=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        fit(spec, data, "sgd", learning_rate=0.0)
    with pytest.raises(ValueError, match="decay"):
        fit(spec, data, "sgd", decay=-0.1)
    with pytest.raises(ValueError, match="maxeval"):
        fit(spec, data, "map", maxeval=0)
    with pytest.raises(TypeError, match="n_sweeps"):
        fit(spec, data, "als", n_sweeps=3)


def test_sgd_diverging_step_is_reported():
    data = make_sim().data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to inf
        with pytest.raises(FloatingPointError, match="learning_rate"):
            fit(true_spec(), data, "sgd", learning_rate=50.0, progressbar=False, random_seed=0)
