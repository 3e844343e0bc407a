"""NUTS route: layout, planted truth, determinism, links/likelihoods, SBC and Gibbs agreement (slow).

Compiling a model for nutpie costs 10-30 s on a busy 2-core machine (sampling a tiny model
takes well under a second), so the fast tier shares one fit per model between tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bayesmf import PMF, RatingsData, simulate
from bayesmf.diagnostics import ConvergenceWarning, Diagnosis, identified_quantities
from bayesmf.inference.nuts import fit_nuts, map_start, nutpie_available
from bayesmf.posterior import coords_for, dims_of, param_names

needs_nutpie = pytest.mark.skipif(not nutpie_available(), reason="nutpie not installed")

NOISE = 0.3


@pytest.fixture(scope="module")
def sim():
    return simulate(n_users=50, n_items=40, n_factors=2, density=0.3, noise=NOISE, seed=5)


@pytest.fixture(scope="module")
def train(sim):
    """The simulated ratings less those of user 0 and item 0 (known ids without ratings,
    as in a real split): their MAP rows are exactly 0, which nutpie refuses as a start."""
    data = sim.data
    return data.subset(np.flatnonzero((data.user_idx != 0) & (data.item_idx != 0)))


def _without_divergence_warnings(fit, *args, **kwargs):
    """``fit(*args, **kwargs)`` with NUTS's divergence warning silenced.

    How many divergent transitions a short run happens to have is luck; the tests check
    that they are counted and reported consistently, and what the draws say.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "NUTS .* divergent", ConvergenceWarning)
        return fit(*args, **kwargs)


@pytest.fixture(scope="module")
def nuts_fit(train):
    return _without_divergence_warnings(
        fit_nuts, PMF(n_factors=2), train, draws=150, tune=150, chains=2, random_seed=1, progressbar=False
    )


def _posterior_mean_of_truth_cells(result, sim):
    a = result.arrays()
    users = np.arange(sim.data.n_users)[:, None]
    items = np.arange(sim.data.n_items)[None, :]
    eta = np.einsum("suk,sik->sui", a.U.astype(np.float64), a.V.astype(np.float64))
    if a.mu is not None:
        eta += a.mu[:, None, None]
    if a.user_bias is not None:
        eta += a.user_bias[:, :, None] + a.item_bias[:, None, :]
    return eta.mean(axis=0), sim.true_mean(users, items)


def check_layout(result, spec, data, chains, draws):
    post = result.posterior
    assert sorted(post.data_vars) == sorted(param_names(spec))
    levels = data.levels
    coords = coords_for(spec, data.users, data.items, None if levels is None or spec.likelihood != "ordinal" else len(levels))
    for name in param_names(spec):
        assert post[name].dims == ("chain", "draw", *dims_of(spec, name)), name
        assert np.isfinite(post[name].values).all(), name
    for dim in ("user", "item", "factor"):
        np.testing.assert_array_equal(post[dim].values, coords[dim])
    assert post["U"].dtype == np.float32 and post["V"].dtype == np.float32
    assert post.sizes["chain"] == chains and post.sizes["draw"] == draws
    assert result.method == "nuts"


@needs_nutpie
def test_layout_and_sample_stats(nuts_fit, train):
    spec = PMF(n_factors=2)
    check_layout(nuts_fit, spec, train, chains=2, draws=150)
    ss = nuts_fit.idata["sample_stats"].to_dataset()
    assert {"diverging", "depth"} <= set(ss.data_vars)
    assert ss["diverging"].dims == ("chain", "draw")
    info = nuts_fit.info
    assert info["sampler"] == "nutpie" and info["chains"] == 2 and info["draws"] == 150
    assert info["fit_seconds"] > 0
    assert info["divergences"] == int(ss["diverging"].values.sum())
    # the training data travel with the result
    np.testing.assert_array_equal(nuts_fit.idata["constant_data"]["user_idx"].values, train.user_idx)


@needs_nutpie
def test_planted_truth(nuts_fit, sim):
    mean, truth = _posterior_mean_of_truth_cells(nuts_fit, sim)
    rmse = float(np.sqrt(np.mean((mean - truth) ** 2)))
    baseline = float(np.sqrt(np.mean((sim.data.rating.mean() - truth) ** 2)))
    assert rmse < 0.5 * baseline, (rmse, baseline)
    sigma = float(nuts_fit.posterior["sigma"].mean())
    assert abs(sigma - NOISE) < 0.05, sigma


@needs_nutpie
def test_diagnose_reads_nutpie_stats(nuts_fit):
    diagnosis = nuts_fit.diagnose(n_pairs=10, warn=False)
    assert isinstance(diagnosis, Diagnosis)
    assert diagnosis.sampler["divergences"] == nuts_fit.info["divergences"]
    assert diagnosis.sampler["max_tree_depth"] >= 1
    # the monitored predictions have finite diagnostics from two chains
    assert np.isfinite(diagnosis.table["r_hat"]).all()


@needs_nutpie
def test_save_load_round_trip(nuts_fit, tmp_path):
    import xarray as xr

    from bayesmf import load

    path = nuts_fit.save(tmp_path / "nuts.nc")
    loaded = load(path)
    for group in ("posterior", "sample_stats"):
        xr.testing.assert_identical(loaded.idata[group].to_dataset(), nuts_fit.idata[group].to_dataset())
    assert loaded.info == nuts_fit.info and loaded.method == "nuts"


@needs_nutpie
def test_logistic_link_same_seed_same_draws():
    # noise 0.1 on the [0, 1] scale (the default sigma2 prior has little mass much below)
    sim = simulate(n_users=40, n_items=30, n_factors=2, density=0.4, noise=0.1, seed=2, link="logistic")
    spec = PMF(n_factors=2, link="logistic")
    kwargs = dict(draws=60, tune=100, chains=2, random_seed=11, progressbar=False)
    first = _without_divergence_warnings(fit_nuts, spec, sim.data, **kwargs)
    second = _without_divergence_warnings(fit_nuts, spec, sim.data, **kwargs)
    check_layout(first, spec, sim.data, chains=2, draws=60)
    for name in param_names(spec):
        np.testing.assert_array_equal(first.posterior[name].values, second.posterior[name].values)
    # posterior mean ratings on the rating scale, between the bounds, tracking the truth
    pred = identified_quantities(first, n_pairs=60)["posterior"]
    expected = pred["pred_train"].mean(("chain", "draw")).values
    low, high = sim.data.scale
    assert (expected > low).all() and (expected < high).all()
    labels = [s.split(":") for s in pred["train_pair"].values.tolist()]
    truth = sim.true_mean([int(u) for u, _ in labels], [int(i) for _, i in labels])
    assert stats.pearsonr(expected, truth)[0] > 0.8


def test_ordinal_with_pymc_sampler():
    sim = simulate(n_users=30, n_items=25, n_factors=2, density=0.35, noise=0.3, seed=3)
    low, high = sim.data.scale
    rating = np.clip(np.round(sim.data.rating), low, high)
    data = RatingsData(sim.data.user_idx, sim.data.item_idx, rating, (low, high), sim.data.users, sim.data.items)
    spec = PMF(n_factors=2, likelihood="ordinal")
    result = _without_divergence_warnings(
        fit_nuts, spec, data, draws=100, tune=150, chains=2, cores=1, random_seed=4, progressbar=False,
        nuts_sampler="pymc", target_accept=0.9,
    )  # fmt: skip
    check_layout(result, spec, data, chains=2, draws=100)
    assert result.info["sampler"] == "pymc"
    cut = result.posterior["cutpoints"].values
    assert (np.diff(cut, axis=-1) > 0).all()  # ordered in every draw
    assert "tree_depth" in result.idata["sample_stats"]
    # expected ratings track the truth
    pred = identified_quantities(result, n_pairs=60)["posterior"]
    expected = pred["pred_train"].mean(("chain", "draw")).values
    labels = [s.split(":") for s in pred["train_pair"].values.tolist()]
    truth = sim.true_mean([int(u) for u, _ in labels], [int(i) for _, i in labels])
    assert stats.pearsonr(expected, truth)[0] > 0.7


def test_map_start_is_not_collapsed(sim, train):
    spec = PMF(n_factors=2, factor_prior="shared")
    start = map_start(spec, sim.data, random_seed=0)
    assert {"U", "V", "mu", "user_bias", "item_bias", "sigma2", "factor_var"} <= set(start)
    assert np.sqrt(np.mean(start["U"] ** 2)) > 0.1  # away from the U = V = 0 saddle
    assert 0.5 * NOISE < np.sqrt(start["sigma2"]) < 2 * NOISE
    again = map_start(spec, sim.data, random_seed=0)
    np.testing.assert_array_equal(start["U"], again["U"])
    per_factor = map_start(PMF(n_factors=2, factor_prior="shared", per_factor_scales=True), sim.data, random_seed=0)
    assert per_factor["factor_var"].shape == (2,)
    # a user and an item without ratings start at prior-sized values, not at exactly 0
    partial = map_start(spec, train, random_seed=0)
    for name in ("U", "V", "user_bias", "item_bias"):
        assert np.all(partial[name][0] != 0), name


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"draws": 0}, ValueError, "draws"),
        ({"chains": 1.5}, TypeError, "chains"),
        ({"nuts_sampler": "stan"}, ValueError, "nuts_sampler"),
        ({"init": "zeros"}, ValueError, "init"),
        ({"target_accept": 1.2}, ValueError, "target_accept"),
        ({"initvals": {}}, ValueError, "initvals"),
        ({"step": None}, ValueError, "step"),
    ],
)
def test_bad_options(sim, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_nuts(PMF(n_factors=2), sim.data, progressbar=False, **kwargs)


# ---------------------------------------------------------------------------------------
# slow: simulation-based calibration, agreement with Gibbs
# ---------------------------------------------------------------------------------------
def _swappable_ratings_model(spec, pattern):
    """``build_model(spec, pattern)`` with its observed ratings in a shared variable.

    nutpie then compiles the model once and samples new ratings through
    ``compiled.with_data(sbc_rating=...)``: hundreds of SBC replications cost seconds, where
    a compile per replication would cost minutes.
    """
    import pytensor
    from pymc.model.fgraph import fgraph_from_model, model_from_fgraph, model_observed_rv

    from bayesmf.model import build_model

    model = build_model(spec, pattern)
    fgraph, memo = fgraph_from_model(model)
    observed = memo[model["rating"]]
    rv, value, *dims = observed.owner.inputs
    shared = pytensor.shared(np.asarray(value.data), name="sbc_rating")
    fgraph.replace_all([(observed, model_observed_rv(rv, shared, "rating", *dims))], import_missing=True)
    return model, model_from_fgraph(fgraph, mutate_fgraph=True)


@needs_nutpie
@pytest.mark.slow
def test_sbc_nuts():
    """Simulation-based calibration (Talts et al. 2018) of NUTS on a tiny hierarchical PMF.

    Parameters and ratings are drawn from the model's own prior (``build_model`` +
    ``pm.sample_prior_predictive``); for each replication nutpie samples the posterior and the
    rank of the true value among (thinned) posterior draws is recorded. Under a correct
    sampler the ranks are uniform: checked with a chi-square test per quantity (sigma, the
    mean level, the factor sd, a predicted rating of a rated and of an unrated pair). The
    same ranks against a truth shifted by 25 % must fail the test, so it has power.
    (nutpie's own initialization is used here, not fit_nuts's MAP start: the start does
    not change the stationary distribution being checked.)
    """
    import nutpie
    import pymc as pm

    n_rep, n_bins, thin, draws = 200, 10, 4, 200
    base = simulate(n_users=12, n_items=10, n_factors=2, density=0.5, seed=0).data
    pattern = RatingsData(base.user_idx, base.item_idx, np.full(base.n_ratings, 3.0), (1.0, 5.0), base.users, base.items)
    # the shared factor scale (the prior this check was built on; the default per-side prior
    # is calibrated through the Gibbs SBC in test_gibbs.py)
    spec = PMF(n_factors=2, factor_prior="shared")
    model, sbc_model = _swappable_ratings_model(spec, pattern)
    with model:
        prior = pm.sample_prior_predictive(draws=n_rep, random_seed=2024)
    truth_all = prior["prior"].to_dataset()
    ratings = prior["prior_predictive"].to_dataset()["rating"].values[0]
    compiled = nutpie.compile_pymc_model(sbc_model)

    rated = (int(base.user_idx[0]), int(base.item_idx[0]))
    seen = set(zip(base.user_idx.tolist(), base.item_idx.tolist(), strict=True))
    unrated = next((u, i) for u in range(base.n_users) for i in range(base.n_items) if (u, i) not in seen)

    def quantities(p):
        def pred(u, i):
            return p["mu"] + p["user_bias"][..., u] + p["item_bias"][..., i] + (p["U"][..., u, :] * p["V"][..., i, :]).sum(-1)

        return {
            "sigma": p["sigma"],
            "mean_level": p["mu"] + p["user_bias"].mean(-1) + p["item_bias"].mean(-1),
            "sigma_factor": p["sigma_factor"],
            "pred_rated": pred(*rated),
            "pred_unrated": pred(*unrated),
        }

    names = ("mu", "user_bias", "item_bias", "U", "V", "sigma", "sigma_factor")
    ranks: dict[str, list[int]] = {}
    shifted: dict[str, list[int]] = {}
    for r in range(n_rep):
        truth = quantities({k: truth_all[k].values[0, r] for k in names})
        trace = nutpie.sample(
            compiled.with_data(sbc_rating=ratings[r]), draws=draws, tune=300, chains=2, seed=r, progress_bar=False
        )
        post = trace["posterior"]
        draws_r = quantities({k: post[k].values[:, ::thin].reshape(-1, *post[k].shape[2:]) for k in names})
        for name, value in truth.items():
            ranks.setdefault(name, []).append(int((draws_r[name] < value).sum()))
            off = value * 1.25 if name.startswith("sigma") else value + 0.25 * abs(value) + 0.25
            shifted.setdefault(name, []).append(int((draws_r[name] < off).sum()))
    n_post = 2 * draws // thin

    def p_value(values):
        counts = np.histogram(values, bins=n_bins, range=(-0.5, n_post + 0.5))[0]
        return stats.chisquare(counts).pvalue

    # family-wise 0.001 (Bonferroni over the quantities): a seeded test that must not fail by
    # chance; miscalibration of the size that matters fails by orders of magnitude (below)
    alpha = 0.001 / len(ranks)
    for name in ranks:
        assert p_value(ranks[name]) > alpha, (name, np.histogram(ranks[name], bins=n_bins)[0])
    # the check has teeth: a 25 % miscalibration is caught
    assert p_value(shifted["sigma"]) < alpha
    assert p_value(shifted["pred_rated"]) < alpha


#: identified quantities compared between NUTS and Gibbs (`identified_quantities`)
AGREEMENT_QUANTITIES = ("sigma", "mean_level", "pred_train", "pred_unrated")
#: family-wise chance that two correct samplers fail the comparison (Bonferroni over
#: every mean and sd compared): the test must not fail on an unlucky draw
AGREEMENT_ALPHA = 1e-4
#: the seed of both samplers in the test (other seeds: `agreement_statistics`)
AGREEMENT_SEED = 1


def agreement_statistics(factor_prior, seed):
    r"""Sample one simulated posterior by NUTS and by Gibbs; z-scores of their differences.

    For each identified quantity (`AGREEMENT_QUANTITIES`, 42 numbers) the difference of the
    two posterior means is divided by its Monte Carlo standard error,
    :math:`\sqrt{\mathrm{mcse}_a^2 + \mathrm{mcse}_b^2}` (each run's MCSE from its own
    effective sample size, `arviz.mcse`), and so is the difference of the two posterior sds
    (``mcse(method="sd")``). If both samplers draw from the same posterior, every z is
    about standard normal.

    Returns
    -------
    dict
        ``z_mean``, ``z_sd``: name -> array of z; ``z_sigma_shifted``: z of the noise sd
        against Gibbs's draws scaled by 1.02 (the check's power); ``threshold``: the bound on |z| for a
        family-wise false alarm rate `AGREEMENT_ALPHA`; ``divergences``: NUTS's count,
        for the record only (divergent transitions are what NUTS reports on its way; the
        test checks the posteriors, which divergences would bias if they mattered).
    """
    import arviz as az

    from bayesmf.inference.gibbs import fit_gibbs

    sim = simulate(n_users=60, n_items=50, n_factors=2, density=0.25, noise=0.5, seed=9)
    spec = PMF(n_factors=2, factor_prior=factor_prior)
    nuts = _without_divergence_warnings(
        fit_nuts, spec, sim.data, draws=500, tune=500, chains=4, target_accept=0.9, random_seed=seed,
        progressbar=False,
    )  # fmt: skip
    gibbs = fit_gibbs(spec, sim.data, draws=1000, tune=500, chains=4, random_seed=seed, progressbar=False, factor_draws=None)
    q_nuts = identified_quantities(nuts, n_pairs=20)["posterior"]
    q_gibbs = identified_quantities(gibbs, n_pairs=20)["posterior"]
    z_mean, z_sd = {}, {}
    se_sigma = np.hypot(az.mcse(q_nuts["sigma"]).values, az.mcse(q_gibbs["sigma"]).values)
    # the same statistic against Gibbs's noise sd made 2 % too large: it must fail
    z_shifted = float((q_nuts["sigma"].mean() - 1.02 * q_gibbs["sigma"].mean()).values / se_sigma)
    for name in AGREEMENT_QUANTITIES:
        a, b = q_nuts[name], q_gibbs[name]
        for out, statistic, method in ((z_mean, "mean", "mean"), (z_sd, "std", "sd")):
            diff = getattr(a, statistic)(("chain", "draw")).values - getattr(b, statistic)(("chain", "draw")).values
            se = np.hypot(az.mcse(a, method=method).values, az.mcse(b, method=method).values)
            out[name] = np.atleast_1d(diff / se)
    n_compared = sum(z.size for z in z_mean.values()) + sum(z.size for z in z_sd.values())
    threshold = float(stats.norm.isf(AGREEMENT_ALPHA / (2 * n_compared)))
    return {
        "z_mean": z_mean,
        "z_sd": z_sd,
        "z_sigma_shifted": z_shifted,
        "threshold": threshold,
        "divergences": nuts.info["divergences"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("factor_prior", ["shared", "per_side"])
def test_nuts_agrees_with_gibbs(factor_prior):
    """Two independent samplers of the same posterior agree within Monte Carlo error.

    Every posterior mean and sd of the identified quantities must agree to within a bound
    on |z| set for a family-wise false alarm rate of 1e-4 (about 4.9 standard errors for
    84 comparisons), whatever NUTS's count of divergent transitions (recorded, not
    checked). A sampler off by a few standard errors in one quantity still fails, and so
    does a noise sd off by 2 %.
    """
    import logging

    result = agreement_statistics(factor_prior, AGREEMENT_SEED)
    divergences = result["divergences"]
    logging.getLogger(__name__).info("NUTS had %d divergent transitions", divergences)
    for kind in ("z_mean", "z_sd"):
        for name, z in result[kind].items():
            assert np.all(np.abs(z) < result["threshold"]), (kind, name, z, result["threshold"], divergences)
    # the check has teeth: a noise sd off by 2 % is caught
    assert abs(result["z_sigma_shifted"]) > result["threshold"], result["z_sigma_shifted"]


def test_the_fit_carries_its_verdict(nuts_fit):
    """NUTS results carry diagnose()'s verdict (issue: no fit quoted without one)."""
    diagnosis = nuts_fit.diagnose(warn=False)
    assert nuts_fit.info["verdict_ok"] == diagnosis.ok
    assert nuts_fit.info["verdict"] == diagnosis.verdict
