"""Tests of the conjugate Gibbs sampler (bayesmf.inference.gibbs).

Tiers: layout and reproducibility on tiny problems; planted truth on simulated data;
simulation-based calibration (slow).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest
from scipy import stats

from bayesmf import PMF, FitResult, IdEncoder, RatingsData, simulate
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.inference.gibbs.kernels.structs import Csr, InvGamma, RowFit, ScaleDensity, Side
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.start import initial_state
from bayesmf.inference.gibbs.sweep import build_sweep
from bayesmf.posterior import dims_of, param_names
from tests.sbc_chain import uniformity_pvalues

DEFAULT_OVERRELAXATION = inspect.signature(fit_gibbs).parameters["overrelaxation"].default
FAST = {"draws": 20, "tune": 10, "chains": 2, "progressbar": False, "random_seed": 0}


@pytest.fixture(scope="module")
def small():
    return simulate(n_users=40, n_items=30, n_factors=2, density=0.25, noise=0.5, seed=3)


def _burned_in(spec, data, rng, sweeps):
    """The sampler's problem and a chain state after a "map" start and ``sweeps`` plain Gibbs sweeps."""
    problem = build_problem(spec, data)
    state = initial_state(problem, spec, data, rng, "map")
    sweep = build_sweep(problem)
    variates = sweep.variates()
    for _ in range(sweeps):
        sweep(state, variates, rng)
    return problem, state


def _with_cold_user(data: RatingsData) -> RatingsData:
    """The same ratings with one extra user (raw id 'cold') who has rated nothing."""
    users = IdEncoder("user", np.r_[data.users.classes.astype(object), ["cold"]])
    return RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, users, data.items)


# -- layout ----------------------------------------------------------------------------------
SPECS = [
    PMF(n_factors=2),  # the default: per-side, one scale per factor
    PMF(n_factors=2, factor_prior="shared"),
    PMF(n_factors=2, factor_prior="shared", per_factor_scales=True),
    PMF(n_factors=2, factor_prior="shared", biases=False),
    PMF(n_factors=2, factor_prior="shared", biases=False, per_factor_scales=True),
    PMF(n_factors=2, priors="fixed"),
    PMF(n_factors=2, priors="fixed", biases=False),
    PMF(n_factors=2, factor_prior="per_side"),
    PMF(n_factors=2, factor_prior="per_side", per_factor_scales=True, biases=False),
]


@pytest.mark.parametrize(
    "spec", SPECS, ids=lambda s: f"{s.priors}-bias{s.biases}-pf{s.per_factor_scales}-{s.factor_prior}"
)
def test_layout(small, spec):
    fit = fit_gibbs(spec, small.data, thin=2, **FAST)
    assert isinstance(fit, FitResult) and fit.method == "gibbs"
    post = fit.posterior
    assert set(post.data_vars) == set(param_names(spec))
    assert (fit.n_chains, fit.n_draws) == (2, 20)
    for name in param_names(spec):
        assert post[name].dims == ("chain", "draw", *dims_of(spec, name)), name
        expected = np.float32 if name in ("U", "V") else np.float64
        assert post[name].dtype == expected, name
        assert np.isfinite(post[name].values).all(), name
    np.testing.assert_array_equal(post["user"].values, small.data.users.classes)
    np.testing.assert_array_equal(post["factor"].values, np.arange(2))
    stats_ = fit.idata["sample_stats"].to_dataset()
    assert stats_["log_likelihood_sum"].shape == (2, 20)
    assert fit.idata["observed_data"]["rating"].shape == (small.data.n_ratings,)
    if spec.priors == "fixed":  # the constant noise sd is stored
        np.testing.assert_allclose(post["sigma"].values, spec.noise_sd(small.data.scale))
    else:
        assert post["sigma"].values.std() > 0
    info = fit.info
    for key in ("fit_seconds", "sweeps_per_second", "cpu_ms_per_sweep", "posterior_nbytes"):
        assert info[key] > 0, key
    assert (info["chains"], info["draws"], info["tune"], info["thin"], info["random_seed"]) == (
        2,
        20,
        10,
        2,
        0,
    )
    assert fit.idata["posterior"].attrs["method"] == "gibbs"


@pytest.mark.parametrize("factor_prior", ["shared", "per_side"])
def test_log_likelihood_matches_draws(small, factor_prior):
    """The recorded training log-likelihood is that of the recorded draw (per-side: after
    the moves that follow the kernel, which change the biases)."""
    fit = fit_gibbs(PMF(n_factors=2, factor_prior=factor_prior), small.data, **FAST)
    post = fit.posterior
    data = small.data
    c, d = 1, 7
    eta = (
        float(post["mu"][c, d])
        + post["user_bias"].values[c, d][data.user_idx]
        + post["item_bias"].values[c, d][data.item_idx]
        + np.einsum(
            "nk,nk->n",
            post["U"].values[c, d][data.user_idx].astype(float),
            post["V"].values[c, d][data.item_idx].astype(float),
        )
    )
    expected = stats.norm.logpdf(data.rating, eta, float(post["sigma"][c, d])).sum()
    got = float(fit.idata["sample_stats"]["log_likelihood_sum"][c, d])
    # U, V are stored as float32: allow their rounding
    assert got == pytest.approx(expected, rel=1e-4)


def test_thinning_keeps_every_kth_sweep(small):
    spec = PMF(n_factors=2)
    opts = {"tune": 5, "chains": 2, "progressbar": False, "random_seed": 11}
    full = fit_gibbs(spec, small.data, draws=30, thin=1, **opts).posterior
    thinned = fit_gibbs(spec, small.data, draws=10, thin=3, **opts).posterior
    for name in ("U", "sigma", "mu", "sigma_factor_user", "factor_mean_item"):
        np.testing.assert_array_equal(
            thinned[name].values, full[name].values[:, 2::3], err_msg=name
        )


def test_keep_warmup_stores_burn_in(small):
    spec = PMF(n_factors=2)
    opts = {"chains": 2, "thin": 1, "progressbar": False, "random_seed": 5}
    with_warmup = fit_gibbs(spec, small.data, draws=4, tune=6, keep_warmup=True, **opts)
    no_tune = fit_gibbs(spec, small.data, draws=10, tune=0, **opts).posterior
    warm = with_warmup.idata["warmup_posterior"].to_dataset()
    assert warm.sizes["draw"] == 6
    # the same seed gives the same sweeps: burn-in then draws continue one chain
    np.testing.assert_array_equal(warm["sigma"].values, no_tune["sigma"].values[:, :6])
    np.testing.assert_array_equal(with_warmup.posterior["V"].values, no_tune["V"].values[:, 6:])
    assert "warmup_sample_stats" in with_warmup.idata.children
    assert (
        "warmup_posterior"
        not in fit_gibbs(spec, small.data, draws=4, tune=6, **opts).idata.children
    )


# -- reproducibility -------------------------------------------------------------------------
@pytest.mark.parametrize("per_side", [False, True])
def test_compiled_variates_are_numpys_draws(per_side):
    """`fill_variates` gives the numbers of NumPy's calls on each buffer in turn, and leaves the
    generator where they leave it (gamma shapes below 1, at 1 and large: NumPy's three branches)."""
    from bayesmf.inference.gibbs.variates import Variates, draw

    shapes = np.array([0.3, 1.0, 2.5, 4.0e4])
    side = np.empty((4 if per_side else 0, 3))
    scalar, gammas = np.empty(3), np.empty(len(shapes))
    variates = Variates(
        np.empty((5, 4)), np.empty((7, 4)), scalar, side, gammas, shapes, scalar[:1], scalar[1:],
        gammas[:1], gammas[1:3], gammas[3:],
    )
    ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(50):
        draw(ours, variates)
        expected = [numpys.standard_normal(size=b.shape) for b in (variates.user, variates.item, scalar, side)]
        expected.append(numpys.standard_gamma(shapes))
        for got, want in zip((variates.user, variates.item, scalar, side, gammas), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    assert ours.random() == numpys.random()


def test_same_seed_same_draws_whatever_the_threads(small):
    spec = PMF(n_factors=2)
    opts = {"draws": 15, "tune": 5, "chains": 3, "progressbar": False}
    a = fit_gibbs(spec, small.data, random_seed=42, cores=1, **opts).posterior
    b = fit_gibbs(spec, small.data, random_seed=42, cores=3, **opts).posterior
    c = fit_gibbs(spec, small.data, random_seed=43, cores=3, **opts).posterior
    for name in param_names(spec):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert not np.allclose(a["U"].values, c["U"].values)
    assert not np.allclose(a["sigma"].values, c["sigma"].values)
    # chains differ from each other (own generators and starts)
    assert not np.allclose(a["sigma"].values[0], a["sigma"].values[1])


def test_small_problems_run_their_chains_on_one_thread_unless_told(small, monkeypatch):
    """`default_cores`: one thread below `SMALL_SWEEP_WORK`, every CPU (at most one per chain) above; `cores` wins."""
    from bayesmf.inference.gibbs import runner
    from bayesmf.inference.gibbs.problem import build_problem

    monkeypatch.setattr(runner, "_available_cpus", lambda: 2)
    tiny = build_problem(PMF(n_factors=2), small.data)
    assert runner.sweep_work(tiny) < runner.SMALL_SWEEP_WORK and runner.default_cores(tiny, 4) == 1
    big = build_problem(PMF(n_factors=10), simulate(n_users=600, n_items=400, n_factors=2, density=0.1, seed=0).data)
    assert runner.sweep_work(big) > runner.SMALL_SWEEP_WORK
    assert runner.default_cores(big, 4) == 2 and runner.default_cores(big, 1) == 1
    opts = {"draws": 3, "tune": 2, "progressbar": False, "random_seed": 0}
    assert fit_gibbs(PMF(n_factors=2), small.data, **opts).info["cores"] == 1
    assert fit_gibbs(PMF(n_factors=2), small.data, cores=2, **opts).info["cores"] == 2
    assert fit_gibbs(PMF(n_factors=2), small.data, cores=8, chains=3, **opts).info["cores"] == 3


def test_unseeded_run_records_a_seed_that_reproduces_it(small):
    spec = PMF(n_factors=2)
    opts = {"draws": 5, "tune": 3, "chains": 2, "progressbar": False}
    first = fit_gibbs(spec, small.data, **opts)
    again = fit_gibbs(spec, small.data, random_seed=first.info["random_seed"], **opts)
    np.testing.assert_array_equal(first.posterior["U"].values, again.posterior["U"].values)


def test_dispatcher_and_prior_init(small):
    fit = PMF(n_factors=2, priors="fixed").fit(small.data, method="gibbs", init="prior", **FAST)
    assert fit.method == "gibbs" and fit.info["init"] == "prior"
    fit = PMF(n_factors=2).fit(small.data, method="gibbs", init="prior", **FAST)
    assert np.isfinite(fit.posterior["sigma"].values).all()


def test_progressbar_writes_to_stderr(small, capsys):
    fit_gibbs(PMF(n_factors=2), small.data, draws=5, tune=5, chains=2, random_seed=0)
    assert "Gibbs" in capsys.readouterr().err
    fit_gibbs(PMF(n_factors=2), small.data, **FAST)
    assert capsys.readouterr().err == ""


# -- statistics ------------------------------------------------------------------------------
def test_cold_user_draws_from_the_fixed_prior(small):
    """A user with no ratings keeps the prior: U ~ N(0, sigma_u^2), bias ~ N(0, sigma_bias^2)."""
    data = _with_cold_user(small.data)
    spec = PMF(n_factors=2, priors="fixed", sigma_u=0.5, sigma_bias=0.2, sigma=0.5)
    fit = fit_gibbs(spec, data, draws=1000, tune=20, chains=2, progressbar=False, random_seed=1, factor_draws=None)
    post = fit.posterior
    U = post["U"].sel(user="cold").values.reshape(-1, 2)
    bias = post["user_bias"].sel(user="cold").values.ravel()
    n = U.shape[0]  # conditionally independent draws given the rest
    assert abs(U.mean()) < 4 * 0.5 / np.sqrt(n)
    np.testing.assert_allclose(U.std(axis=0), 0.5, rtol=0.1)
    np.testing.assert_allclose(bias.std(), 0.2, rtol=0.1)


@pytest.fixture(scope="module")
def planted():
    sim = simulate(n_users=200, n_items=150, n_factors=3, density=0.2, noise=0.5, seed=0)
    data = sim.data
    holdout = np.random.default_rng(0).random(data.n_ratings) < 0.2
    train = data.subset(np.flatnonzero(~holdout))
    test = data.subset(np.flatnonzero(holdout))
    fit = fit_gibbs(
        PMF(n_factors=3), train, draws=400, tune=200, chains=2, progressbar=False, random_seed=2
    )
    return sim, train, test, fit


def _eta_draws(fit: FitResult, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    arr = fit.arrays()
    dot = np.einsum(
        "snk,snk->sn", arr.U[:, user_idx].astype(float), arr.V[:, item_idx].astype(float)
    )
    return dot + arr.mu[:, None] + arr.user_bias[:, user_idx] + arr.item_bias[:, item_idx]


def test_planted_truth_sigma(planted):
    sim, _, _, fit = planted
    sigma = fit.posterior["sigma"].values.ravel()
    truth = float(sim.truth["sigma"])
    assert abs(sigma.mean() - truth) < 4 * sigma.std() + 0.01


def test_planted_truth_predictions_and_coverage(planted):
    sim, train, test, fit = planted
    truth = sim.true_mean(test.user_idx, test.item_idx)
    draws = _eta_draws(fit, test.user_idx, test.item_idx)
    rmse = np.sqrt(np.mean((draws.mean(axis=0) - truth) ** 2))
    baseline = np.sqrt(np.mean((train.rating.mean() - truth) ** 2))
    assert rmse < 0.6 * baseline
    lower, upper = np.quantile(draws, [0.05, 0.95], axis=0)
    coverage = np.mean((lower <= truth) & (truth <= upper))
    assert 0.8 <= coverage <= 0.97, coverage


# -- the per-side shift move ----------------------------------------------------------------
def test_side_shift_keeps_the_likelihood_and_draws_its_gaussian_conditional():
    """`shift_side`: U + delta, m + delta, c - delta.V leaves every latent score unchanged,
    and delta follows N(A^-1 h, A^-1) with A, h from its docstring (computed here in numpy).

    A forward solve that mixes the noise in early, or a wrong sign of the bias term, moves
    the mean or covariance by far more than the tolerances (several Monte Carlo errors).
    """
    from bayesmf.inference.gibbs.kernels.shifts import shift_side

    rng = np.random.default_rng(11)
    n_users, n_items, K, kappa = 9, 7, 3, 1.0
    P_user = rng.normal(0, 1, (n_users, K + 1))
    P_item = rng.normal(0, 1, (n_items, K + 1))
    pm_user = np.r_[0.0, rng.normal(0, 0.5, K)]
    prec_user = np.r_[2.0, rng.uniform(0.5, 3.0, K)]
    prec_item_bias = 1.7

    def scores(Pu, Pi):
        return Pu[:, :1] + Pi[:, 0] + Pu[:, 1:] @ Pi[:, 1:].T

    before = scores(P_user, P_item)
    offsets = P_user[:, 1:] - pm_user[1:]
    n_draws = 20_000
    deltas = np.empty((n_draws, K))
    for t in range(n_draws):
        Pu, Pi, pm = P_user.copy(), P_item.copy(), pm_user.copy()
        shift_side(Side(Pu, prec_user, pm), Pi, prec_item_bias, kappa, rng.standard_normal(K))
        deltas[t] = pm[1:] - pm_user[1:]
        if t < 3:
            np.testing.assert_allclose(scores(Pu, Pi), before, atol=1e-12)
            np.testing.assert_allclose(Pu[:, 1:] - pm[1:], offsets, atol=1e-12)
            np.testing.assert_allclose(Pu[:, 1:] - P_user[:, 1:], np.broadcast_to(deltas[t], (n_users, K)))
    V, c = P_item[:, 1:], P_item[:, 0]
    A = kappa * np.diag(prec_user[1:]) + prec_item_bias * V.T @ V
    h = -kappa * prec_user[1:] * pm_user[1:] + prec_item_bias * V.T @ c
    cov = np.linalg.inv(A)
    se = np.sqrt(np.diag(cov) / n_draws)
    np.testing.assert_array_less(np.abs(deltas.mean(axis=0) - cov @ h), 5 * se)
    np.testing.assert_allclose(np.cov(deltas.T), cov, rtol=0.05, atol=0.01 * cov.max())


# -- the per-side scale move ----------------------------------------------------------------
def _exp_cosh_cdf(lam: float):
    """CDF of the density exp(-lam cosh u) / (2 K_0(lam)), tabulated on a fine grid."""
    from scipy.special import k0

    half_width = np.arccosh(1.0 + 40.0 / lam)  # the density is below e^-40 of its peak beyond
    grid = np.linspace(-half_width, half_width, 200_001)
    density = np.exp(-lam * (np.cosh(grid) - 1.0)) * np.exp(-lam) / (2.0 * k0(lam))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    return lambda u: np.interp(u, grid, cdf)


@pytest.mark.parametrize("lam", [1e-6, 0.01, 0.7, 20.0])
def test_exp_cosh_draws_follow_their_density(lam):
    """The rejection sampler of the scale move draws exactly from exp(-lam cosh u) (KS test).

    Its Gaussian envelope alone (no acceptance step) fails the same test at p < 1e-6 where
    the two differ (small lam; at lam = 20 the target is close to that Gaussian).
    """
    from bayesmf.inference.gibbs.moves import exp_cosh_draws as _exp_cosh_draws

    rng = np.random.default_rng(int(lam * 100))
    draws = _exp_cosh_draws(rng, np.full(20_000, lam))
    cdf = _exp_cosh_cdf(lam)
    assert stats.kstest(draws, cdf).pvalue > 0.001
    if lam < 1.0:
        envelope = rng.standard_normal(20_000) / np.sqrt(lam)
        assert stats.kstest(envelope, cdf).pvalue < 1e-6


def _exp_cosh_numpy(rng, lam):
    """The NumPy form of the scale move's rejection sampler (before it was compiled)."""
    out = np.empty(lam.shape[0])
    todo = np.arange(lam.shape[0])
    while todo.size:
        u = rng.standard_normal(todo.size) / np.sqrt(lam[todo])
        with np.errstate(over="ignore"):
            excess = np.cosh(u) - 1.0 - 0.5 * u * u
        keep = np.log(rng.random(todo.size)) < -lam[todo] * excess
        out[todo[keep]] = u[keep]
        todo = todo[~keep]
    return out


@pytest.mark.parametrize("per_factor", [True, False], ids=["per-factor", "one-scale"])
def test_compiled_side_rescaling_draws_what_its_numpy_form_drew(per_factor):
    """`RescaleSides` (compiled) makes the moves its NumPy form made from the same generator, to the bit.

    So a seed gives the draws it gave before the move was compiled.
    """
    from bayesmf.inference.gibbs.moves import RescaleSides, exp_cosh_draws

    lam = np.array([1e-6, 0.01, 0.7, 20.0] * 25)
    np.testing.assert_array_equal(
        exp_cosh_draws(np.random.default_rng(3), lam), _exp_cosh_numpy(np.random.default_rng(3), lam)
    )
    sim = simulate(n_users=30, n_items=20, n_factors=3, density=0.4, seed=4)
    spec = PMF(n_factors=3, factor_prior="per_side", per_factor_scales=per_factor)
    problem, state = _burned_in(spec, sim.data, np.random.default_rng(8), 20)
    P_user, P_item = state.P_user.copy(), state.P_item.copy()
    prec_user, prec_item = state.prec_user.copy(), state.prec_item.copy()
    pm_user, pm_item = state.pm_user.copy(), state.pm_item.copy()
    move, b_f = RescaleSides(problem), problem.hyper.factor.b
    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(200):
        move(state, None, rng)
        A, B = b_f / (1.0 / prec_user[1:]), b_f / (1.0 / prec_item[1:])
        if not per_factor:
            A, B = A[:1], B[:1]
        s = 0.5 * np.log(A / B) + _exp_cosh_numpy(ref, 2.0 * np.sqrt(A * B))
        a = np.broadcast_to(np.exp(0.5 * s), (3,))
        P_user[:, 1:] *= a
        pm_user[1:] *= a
        prec_user[1:] /= a * a
        P_item[:, 1:] /= a
        pm_item[1:] /= a
        prec_item[1:] *= a * a
    for got, want in ((state.P_user, P_user), (state.P_item, P_item), (state.prec_user, prec_user),
                      (state.prec_item, prec_item), (state.pm_user, pm_user), (state.pm_item, pm_item)):
        np.testing.assert_array_equal(got, want)
    assert rng.random() == ref.random()


@pytest.mark.parametrize("per_factor", [True, False], ids=["per-factor", "one-scale"])
def test_side_rescaling_keeps_the_likelihood_and_draws_its_conditional(per_factor):
    """`RescaleSides` moves each factor's scale between users and items.

    Every U_i . V_j and every standardized row (U_i - m_U) / sd_U is kept; the log of the
    squared scale follows 0.5 log(A / B) + u, u ~ exp(-2 sqrt(AB) cosh u), with
    A = b_f / v_U and B = b_f / v_V read from the starting state (KS test per column).
    """
    from bayesmf.inference.gibbs.moves import RescaleSides
    from bayesmf.inference.gibbs.state import ChainState

    sim = simulate(n_users=30, n_items=20, n_factors=3, density=0.4, seed=4)
    spec = PMF(n_factors=3, factor_prior="per_side", per_factor_scales=per_factor)
    rng = np.random.default_rng(8)
    problem, state = _burned_in(spec, sim.data, rng, 20)  # away from the start
    U0, V0 = state.P_user[:, 1:].copy(), state.P_item[:, 1:].copy()
    sd_u0 = 1.0 / np.sqrt(state.prec_user[1:])
    sd_v0 = 1.0 / np.sqrt(state.prec_item[1:])
    z_user0 = (U0 - state.pm_user[1:]) / sd_u0
    b_f = spec.hyper["factor_var"][1]
    A, B = b_f / sd_u0**2, b_f / sd_v0**2
    n_rep = 4000
    log_scale2 = np.empty((n_rep, 3))
    for t in range(n_rep):
        moved = ChainState(
            state.P_user.copy(), state.P_item.copy(), state.scalars.copy(), state.factor_var.copy(),
            state.prec_user.copy(), state.prec_item.copy(), state.pm_user.copy(), state.pm_item.copy(),
        )
        RescaleSides(problem)(moved, None, rng)
        U, V = moved.P_user[:, 1:], moved.P_item[:, 1:]
        sd_u = 1.0 / np.sqrt(moved.prec_user[1:])
        log_scale2[t] = np.log(sd_u**2 / sd_u0**2)
        if t < 3:
            np.testing.assert_allclose(U @ V.T, U0 @ V0.T, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose((U - moved.pm_user[1:]) / sd_u, z_user0, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(U / U0, np.broadcast_to(sd_u / sd_u0, U.shape), rtol=1e-10)
            sd_v = 1.0 / np.sqrt(moved.prec_item[1:])
            np.testing.assert_allclose(sd_u * sd_v, sd_u0 * sd_v0, rtol=1e-10)
    if not per_factor:
        np.testing.assert_allclose(log_scale2, log_scale2[:, :1].repeat(3, axis=1), rtol=1e-12)
    for k in range(3 if per_factor else 1):
        cdf = _exp_cosh_cdf(2.0 * np.sqrt(A[k] * B[k]))
        u = log_scale2[:, k] - 0.5 * np.log(A[k] / B[k])
        assert stats.kstest(u, cdf).pvalue > 0.001, k


def test_collapsed_bias_variance_step_agrees_with_plain_gibbs():
    """`collapsed_bias_var` (variance with the biases integrated out, then the biases) and
    plain Gibbs (variance | biases, biases | variance) target the same (s^2, c) given the rest.

    Everything else is held fixed on a small problem; both chains run long, and their means
    of s^2, log s^2, two biases (an item with one rating, one with ten) and the square of an
    unrated item's bias agree within 5 Monte Carlo standard errors (batch means). Checked by
    hand: with sigma^2 in place of sigma^2 / n_j in the marginal, |z| reaches 24.
    """
    from bayesmf.inference.gibbs.kernels.bias_var import bias_free_sums, collapsed_bias_var

    rng = np.random.default_rng(21)
    n_items, n_users, K = 6, 10, 2
    counts = np.array([1, 2, 3, 8, 10, 0])
    indptr = np.r_[0, np.cumsum(counts)]
    other = np.concatenate([rng.choice(n_users, c, replace=False) for c in counts]).astype(np.int64)
    rating = rng.normal(3.5, 1.0, indptr[-1])
    P_users = np.c_[rng.normal(0, 0.3, n_users), rng.normal(0, 0.5, (n_users, K))]
    P_items = np.c_[np.zeros(n_items), rng.normal(0, 0.5, (n_items, K))]
    mu, sigma2, a_b, b_b = 3.4, 0.8, 2.0, 0.1
    sums = np.empty(n_items)
    bias_free_sums(Csr(indptr, other, rating), P_items, P_users, mu, sums)
    n_iter = 60_000

    collapsed = np.empty((n_iter, 5))
    var = 0.3
    for t in range(n_iter):
        var, _ = collapsed_bias_var(Csr(indptr, other, rating), P_items, P_users, mu, sigma2, var, InvGamma(a_b, b_b),
                                    rng.random(64), rng.standard_normal(n_items), np.empty(n_items))
        collapsed[t] = var, np.log(var), P_items[0, 0], P_items[4, 0], P_items[5, 0] ** 2

    plain = np.empty((n_iter, 5))
    c = np.zeros(n_items)
    var = 0.3
    for t in range(n_iter):
        post_var = 1.0 / (counts / sigma2 + 1.0 / var)
        c = post_var * sums / sigma2 + np.sqrt(post_var) * rng.standard_normal(n_items)
        var = (b_b + 0.5 * np.sum(c**2)) / rng.gamma(a_b + n_items / 2)
        plain[t] = var, np.log(var), c[0], c[4], c[5] ** 2

    def mean_and_se(x):
        batches = x[1000:].reshape(50, -1, x.shape[1]).mean(axis=1)
        return batches.mean(axis=0), batches.std(axis=0, ddof=1) / np.sqrt(50)

    (m1, se1), (m2, se2) = mean_and_se(collapsed), mean_and_se(plain)
    z = (m1 - m2) / np.sqrt(se1**2 + se2**2)
    assert np.all(np.abs(z) < 5), (m1, m2, z)



def test_collapsed_bias_scale_carries_the_residual_sum_of_squares():
    """After `CollapsedBiasScale` the carried ``state.sse`` equals the SSE recomputed from the
    ratings at the new biases (and it did move: the biases changed).

    Not a statistical check: the sum of n_j delta_j^2 - 2 delta_j (S_j - n_j c_j) per row
    must be the exact change; a sign or a missing factor 2 is off by the size of the change.
    """
    from bayesmf.inference.gibbs.kernels.rows import residual_stats
    from bayesmf.inference.gibbs.moves import CollapsedBiasScale

    sim = simulate(n_users=30, n_items=24, n_factors=2, density=0.3, noise=0.6, seed=8)
    spec = PMF(n_factors=2)  # per side, with biases: the move applies
    problem, state = _burned_in(spec, sim.data, np.random.default_rng(4), 5)
    assert CollapsedBiasScale.applies(problem) and not state.sse_stale
    move = CollapsedBiasScale(problem)
    rng = np.random.default_rng(0)
    for _ in range(5):
        before = state.sse
        move(state, None, rng)
        assert not state.sse_stale
        total, total_sq = residual_stats(problem.ratings.by_user, state.P_user, state.P_item, True)
        mu = state.scalars[0]
        recomputed = total_sq - 2.0 * mu * total + problem.n_obs * mu * mu
        assert abs(state.sse - before) > 1e-3
        assert state.sse == pytest.approx(recomputed, rel=1e-10)


def test_collapsed_bias_vars_is_the_item_step_then_the_user_step():
    """`collapsed_bias_vars` (one pass through the factors for both sides) makes the moves of
    `collapsed_bias_var` on the items, then on the users at the new item biases, from the
    same variates: the same variances and biases up to rounding (its users' sums are made
    from the item pass, not recomputed), and the sum of the two SSE changes.
    """
    from bayesmf.inference.gibbs.kernels.bias_var import collapsed_bias_var, collapsed_bias_vars

    sim = simulate(n_users=30, n_items=24, n_factors=2, density=0.3, noise=0.6, seed=8)
    problem, state = _burned_in(PMF(n_factors=2), sim.data, np.random.default_rng(4), 5)
    ratings, prior, rng = problem.ratings, problem.hyper.bias, np.random.default_rng(1)
    mu, sigma2, item_var, user_var = state.scalars[0], state.scalars[1], 0.3, 0.05
    for _ in range(3):
        u_item, z_item = rng.random(64), rng.standard_normal(problem.n_items)
        u_user, z_user = rng.random(64), rng.standard_normal(problem.n_users)
        P_user, P_item = state.P_user.copy(), state.P_item.copy()
        new_item, d_item = collapsed_bias_var(ratings.by_item, P_item, P_user, mu, sigma2, item_var, prior, u_item, z_item,
                                              np.empty(problem.n_items))
        new_user, d_user = collapsed_bias_var(ratings.by_user, P_user, P_item, mu, sigma2, user_var, prior, u_user, z_user,
                                              np.empty(problem.n_users))
        got = collapsed_bias_vars(ratings, state.P_user, state.P_item, mu, sigma2, item_var, user_var, prior,
                                  u_item, z_item, u_user, z_user)
        np.testing.assert_allclose(got, (new_item, new_user, d_item + d_user), rtol=1e-10)
        np.testing.assert_allclose(state.P_item[:, 0], P_item[:, 0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(state.P_user[:, 0], P_user[:, 0], rtol=0, atol=1e-12)
        assert new_item != item_var and new_user != user_var
        item_var, user_var = new_item, new_user


# -- the scale moves of sparse rows ----------------------------------------------------------
def _sparse_state(
    monkeypatch, per_factor: bool = False, biases: bool = True, threshold: int = 6, sweeps: int = 30
):
    """A problem where some rows are marked sparse and some not, and a state after a burn-in."""
    from bayesmf.inference.gibbs import moves

    monkeypatch.setattr(moves, "SPARSE_ROW_RATINGS", threshold)
    sim = simulate(n_users=30, n_items=24, n_factors=2, density=0.3, noise=0.6, seed=8)
    spec = PMF(n_factors=2, per_factor_scales=per_factor, biases=biases)
    problem, state = _burned_in(spec, sim.data, np.random.default_rng(4), sweeps)
    move = moves.SparseScaleMoves(problem)
    assert 0 < move.marks.user.sum() < problem.n_users
    assert 0 < move.marks.item.sum() < problem.n_items
    return move, problem, state, sim.data


def _scaled_log_joint(problem, state, data, move: str, x: float, column: int | None = None) -> float:
    """Log posterior (terms that see the move) at the state moved by t = e^x, plus its Jacobian.

    The move scales the marked rows' factors (all, or factor ``column``) or biases by t and
    their variance by t^2: d + 2 scaled coordinates' worth of Jacobian, d the number of
    scaled entries.
    """
    from bayesmf.inference.gibbs.moves import SparseScaleMoves

    sparse = SparseScaleMoves(problem).marks
    t = np.exp(x)
    Pu, Pi = state.P_user.copy(), state.P_item.copy()
    (a_f, b_f), (a_b, b_b) = problem.hyper.factor, problem.hyper.bias
    start = int(problem.has_bias)
    if move == "factor":
        cols = slice(start, None) if column is None else slice(start + column, start + column + 1)
        Pu[sparse.user != 0, cols] *= t
        Pi[sparse.item != 0, cols] *= t
        var = state.factor_var[0 if column is None else column] * t * t
        entries = np.concatenate([Pu[:, cols].ravel(), Pi[:, cols].ravel()])
        a, b = a_f, b_f
        d = entries.size // (problem.n_users + problem.n_items) * (
            sparse.user.sum() + sparse.item.sum()
        )
    else:
        Pi[sparse.item != 0, 0] *= t
        var = state.scalars[3] * t * t
        entries = Pi[:, 0]
        a, b = a_b, b_b
        d = sparse.item.sum()
    sigma2 = state.scalars[1]
    pred = np.einsum("nk,nk->n", Pu[data.user_idx, start:], Pi[data.item_idx, start:])
    if start:
        pred += state.scalars[0] + Pu[data.user_idx, 0] + Pi[data.item_idx, 0]
    log_lik = -0.5 * np.sum((data.rating - pred) ** 2) / sigma2
    log_prior = -0.5 * entries.size * np.log(var) - 0.5 * np.sum(entries**2) / var
    log_hyper = -(a + 1) * np.log(var) - b / var
    return float(log_lik + log_prior + log_hyper + (d + 2) * x)


@pytest.mark.parametrize(
    ("move", "column", "biases"),
    [("factor", None, True), ("factor", 1, True), ("item_bias", None, True), ("factor", None, False)],
    ids=["shared-factor-var", "per-factor-var", "item-bias-var", "no-biases"],
)
def test_sparse_scale_density_is_the_joint_along_the_move(monkeypatch, move, column, biases):
    """The move's log density (from a few sums) equals the brute-force log posterior along it.

    On a grid of x = log t, differences from x = 0 of `scale_log_density` and of the full
    log joint (likelihood, every row's prior, the variance's inverse-gamma prior, Jacobian)
    at the moved state agree. A wrong Jacobian power, a missing unmarked-row term or the
    t^2 class of ratings (both ends marked) left out breaks this.
    """
    from bayesmf.inference.gibbs.kernels.scale_moves import scale_log_density, scale_move_terms

    sparse_move, problem, state, data = _sparse_state(monkeypatch, per_factor=column is not None, biases=biases)
    sums, power, rate = scale_move_terms(
        problem.ratings, state.params, problem.hyper, sparse_move.marks, biases, {"factor": 0, "item_bias": 1}[move],
        -1 if column is None else column,
    )
    if move == "factor":
        assert sums[3] > 0  # some ratings have both ends marked
    inv_sigma2 = 1.0 / state.scalars[1]
    grid = np.linspace(-0.4, 0.4, 9)
    kernel = np.array([scale_log_density(x, ScaleDensity(sums, inv_sigma2, power, rate)) for x in grid])
    joint = np.array([_scaled_log_joint(problem, state, data, move, x, column) for x in grid])
    np.testing.assert_allclose(kernel - kernel[4], joint - joint[4], rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("move", ["factor", "item_bias"])
def test_sparse_scale_move_samples_its_conditional(monkeypatch, move):
    """Repeating one move samples log sqrt(variance) from its conditional (KS test).

    The marked rows over sqrt(variance) and everything else stay fixed under the move, so
    iterating it alone is a chain on log sqrt(v) whose target is the joint along the move,
    computed here by brute force on a grid (`_scaled_log_joint`). The recorded residual sum
    of squares must follow the state too.
    """
    sparse_move, problem, state, data = _sparse_state(monkeypatch)
    column = {"factor": None, "item_bias": 3}[move]

    def log_sd(st):
        return 0.5 * np.log(st.factor_var[0] if column is None else st.scalars[column])

    x0 = log_sd(state)
    grid = np.linspace(-1.5, 1.5, 6001)
    logp = np.array([_scaled_log_joint(problem, state, data, move, x) for x in grid])
    density = np.exp(logp - logp.max())
    cdf = np.cumsum(density)
    cdf /= cdf[-1]
    assert density[0] < 1e-8 and density[-1] < 1e-8  # the grid covers the mass

    rng = np.random.default_rng(12)
    n_iter, thin = 4000, 4
    draws = np.empty(n_iter // thin)

    def sum_of_squares():
        P_u, P_i = state.P_user[data.user_idx], state.P_item[data.item_idx]
        pred = state.scalars[0] + P_u[:, 0] + P_i[:, 0] + np.einsum("nk,nk->n", P_u[:, 1:], P_i[:, 1:])
        return float(np.sum((data.rating - pred) ** 2))

    sse = sum_of_squares()
    for it in range(n_iter):
        state.sse = sse
        sparse_move(state, None, rng, only={"factor": 0, "item_bias": 1}[move])
        sse = state.sse
        if (it + 1) % thin == 0:
            draws[(it + 1) // thin - 1] = log_sd(state) - x0
    result = stats.kstest(draws, lambda x: np.interp(x, grid, cdf))
    assert result.pvalue > 0.001, result
    # the residual sum of squares carried through the moves is the state's
    np.testing.assert_allclose(sse, sum_of_squares(), rtol=1e-9)


# -- the row kernel --------------------------------------------------------------------------
@pytest.mark.parametrize("has_bias", [True, False], ids=["biases", "no-biases"])
@pytest.mark.parametrize("alpha", [0.0, -0.8])
@pytest.mark.parametrize("K", [3, 30], ids=["K3", "K30"])
def test_row_kernel_matches_a_dense_solve_row_by_row(has_bias, alpha, K):
    """Every row's draw, for given normals, is the dense formula; the residual sums too.

    Two full batches and a partial one, at K = 3 and at K = 30 (where the Gram sums fill
    two-by-four tiles and a ragged edge), some rows with no ratings (prior only) and one with
    many; each row's draw is computed here with numpy's Cholesky and triangular solves, and
    the returned residual sums from the new rows directly.
    """
    from scipy.linalg import solve_triangular

    from bayesmf.inference.gibbs.kernels.rows import ROW_BATCH, sample_rows

    rng = np.random.default_rng(11)
    kp = K + int(has_bias)
    n_rows, n_other = 2 * ROW_BATCH + 3, 40
    counts = rng.integers(0, 9, n_rows)
    counts[[2, 9]] = 0
    counts[5] = 35
    indptr = np.r_[0, np.cumsum(counts)]
    other = np.concatenate([rng.choice(n_other, c, replace=False) for c in counts])
    rating = rng.normal(3.0, 1.0, indptr[-1])
    other_params = rng.normal(0.0, 0.7, (n_other, kp))
    mu, inv_sigma2 = (3.1 if has_bias else 0.0), 1.0 / 0.7
    prec = rng.uniform(0.5, 3.0, kp)
    pmean = rng.normal(0.0, 0.3, kp)
    normals = rng.standard_normal((n_rows, kp))
    old = rng.normal(0.0, 1.0, (n_rows, kp))
    out = old.copy()
    total, total_sq = sample_rows(Csr(indptr, other, rating), Side(out, prec, pmean), other_params,
                                  RowFit(mu, inv_sigma2, has_bias), normals, alpha, True)
    resid = []
    for i in range(n_rows):
        js = other[indptr[i]:indptr[i + 1]]
        feats = other_params[js, 1:] if has_bias else other_params[js]
        X = np.c_[np.ones(len(js)), feats] if has_bias else feats
        target = rating[indptr[i]:indptr[i + 1]] - (mu + other_params[js, 0] if has_bias else 0.0)
        chol = np.linalg.cholesky(np.diag(prec) + inv_sigma2 * X.T @ X)
        y = solve_triangular(chol, inv_sigma2 * X.T @ target + prec * pmean, lower=True)
        y = (1 - alpha) * y + np.sqrt(1 - alpha**2) * normals[i]
        expected = solve_triangular(chol.T, y, lower=False) + alpha * old[i]
        np.testing.assert_allclose(out[i], expected, rtol=1e-10, atol=1e-12)
        resid.append(target + (mu if has_bias else 0.0) - X @ out[i])
    resid = np.concatenate(resid)
    np.testing.assert_allclose([total, total_sq], [resid.sum(), (resid**2).sum()], rtol=1e-10)
    # without resid the rows are the same and the sums are zero
    again = old.copy()
    assert sample_rows(Csr(indptr, other, rating), Side(again, prec, pmean), other_params,
                       RowFit(mu, inv_sigma2, has_bias), normals, alpha, False) == (0.0, 0.0)
    np.testing.assert_array_equal(again, out)


@pytest.mark.parametrize("kp", [1, 2, 3, 4, 5, 6, 9, 12, 13, 65])
@pytest.mark.parametrize("n", [0, 1, 7, 40])
def test_gram_and_rhs_is_the_dense_product(kp, n):
    """The tiled Gram sums equal X X^T and X t on every lower-triangle entry, at sizes that
    leave every kind of edge (odd row counts, partial four-column tiles, no ratings)."""
    from bayesmf.inference._rows import gram_and_rhs

    rng = np.random.default_rng(kp * 100 + n)
    X = rng.standard_normal((kp, n + 3))  # columns past n must be ignored
    target = rng.standard_normal(n + 3)
    lam = np.full((kp, kp), np.nan)
    rhs = np.full(kp, np.nan)
    gram_and_rhs(X, target, n, lam, rhs)
    low = np.tril_indices(kp)
    np.testing.assert_allclose(lam[low], (X[:, :n] @ X[:, :n].T)[low], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rhs, X[:, :n] @ target[:n], rtol=1e-12, atol=1e-12)


# -- overrelaxation --------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, -0.5, -0.9, 0.6])
@pytest.mark.parametrize("prior_mean", [False, True], ids=["zero-mean", "prior-mean"])
def test_overrelaxed_row_draws_keep_the_conditional(alpha, prior_mean):
    """Iterating the row kernel with the other side fixed samples each row's exact conditional.

    Rows of a fixed design: (b_i, U_i) | V ~ N(Lambda^-1 h, Lambda^-1) with Lambda, h computed
    here in numpy (h gains diag(prec) m for a prior mean m, as with factor_prior="per_side"). The chain's mean and covariance over 20,000 iterations must match (the
    tolerances are several Monte Carlo standard errors; a wrong noise scale sqrt(1 - a^2)
    or a missing (1 - a) on the mean fails them).
    """
    from bayesmf.inference.gibbs.kernels.rows import sample_rows

    rng = np.random.default_rng(5)
    n_rows, n_other, K = 3, 12, 2
    indptr = np.array([0, 5, 9, 12])
    other = np.r_[rng.choice(n_other, 5, replace=False), rng.choice(n_other, 4, replace=False),
                  rng.choice(n_other, 3, replace=False)]
    rating = rng.normal(3.0, 1.0, 12)
    other_params = np.c_[rng.normal(0, 0.3, n_other), rng.normal(0, 1.0, (n_other, K))]
    mu, inv_sigma2 = 3.2, 1.0 / 0.6
    prec = np.array([4.0, 1.5, 1.5])
    pmean = np.array([0.0, 0.8, -0.5]) if prior_mean else np.zeros(K + 1)
    out = rng.normal(0, 3.0, (n_rows, K + 1))  # far from the conditional: burn-in below
    n_iter = 20_000
    draws = np.empty((n_iter, n_rows, K + 1))
    for t in range(n_iter + 200):
        sample_rows(Csr(indptr, other, rating), Side(out, prec, pmean), other_params, RowFit(mu, inv_sigma2, True),
                    rng.standard_normal((n_rows, K + 1)), alpha, False)
        if t >= 200:
            draws[t - 200] = out
    for i in range(n_rows):
        js = other[indptr[i]:indptr[i + 1]]
        X = np.c_[np.ones(len(js)), other_params[js, 1:]]
        target = rating[indptr[i]:indptr[i + 1]] - mu - other_params[js, 0]
        lam = np.diag(prec) + inv_sigma2 * X.T @ X
        cov = np.linalg.inv(lam)
        mean = cov @ (inv_sigma2 * X.T @ target + prec * pmean)
        sd = np.sqrt(np.diag(cov))
        # draws are autocorrelated (|alpha| < 1): allow ~5 se at an ESS of n_iter / 10
        se = sd / np.sqrt(n_iter / 10)
        np.testing.assert_array_less(np.abs(draws[:, i].mean(axis=0) - mean), 5 * se)
        np.testing.assert_allclose(np.cov(draws[:, i].T), cov, rtol=0.08, atol=0.03 * sd.max() ** 2)


def test_overrelaxation_zero_is_plain_gibbs_and_is_recorded(small):
    plain = fit_gibbs(PMF(n_factors=2), small.data, overrelaxation=0.0, **FAST)
    again = fit_gibbs(PMF(n_factors=2), small.data, overrelaxation=0.0, **FAST)
    relaxed = fit_gibbs(PMF(n_factors=2), small.data, **FAST)
    np.testing.assert_array_equal(plain.posterior["U"].values, again.posterior["U"].values)
    assert not np.array_equal(plain.posterior["U"].values, relaxed.posterior["U"].values)
    assert relaxed.info["overrelaxation"] == DEFAULT_OVERRELAXATION == -0.8
    assert plain.idata["posterior"].attrs["overrelaxation"] == 0.0


# -- simulation-based calibration ------------------------------------------------------------
def _prior_draw(rng: np.random.Generator, spec: PMF, n_users: int, n_items: int, scale):
    """Parameters from the hierarchical prior of ``spec`` (as the model defines it)."""

    def inv_gamma(key):
        a, b = spec.hyper[key]
        return b / rng.gamma(a)

    low, high = scale
    K = spec.n_factors
    out = {}
    if spec.factor_prior == "per_side":  # a variance per side, or per side and factor
        from bayesmf.spec import FACTOR_MEAN_KAPPA

        for side, name, n in (("user", "U", n_users), ("item", "V", n_items)):
            sd = np.sqrt([inv_gamma("factor_var") for _ in range(K)] if spec.per_factor_scales else inv_gamma("factor_var"))
            mean = rng.normal(0, sd / np.sqrt(FACTOR_MEAN_KAPPA), K)
            out |= {f"sigma_factor_{side}": sd, f"factor_mean_{side}": mean, name: rng.normal(mean, sd, (n, K))}
    else:  # one variance shared by all factors, or one per factor (each shared by U and V)
        s = np.sqrt([inv_gamma("factor_var") for _ in range(K)]) if spec.per_factor_scales else np.sqrt(
            inv_gamma("factor_var")
        )
        out |= {"sigma_factor": s, "U": rng.normal(0, s, (n_users, K)), "V": rng.normal(0, s, (n_items, K))}
    s_user, s_item = np.sqrt(inv_gamma("bias_var")), np.sqrt(inv_gamma("bias_var"))
    return out | {
        "sigma": np.sqrt(inv_gamma("sigma2")) if spec.sigma is None else spec.sigma,  # a given sigma is fixed
        "sigma_user_bias": s_user,
        "sigma_item_bias": s_item,
        "user_bias": rng.normal(0, s_user, n_users),
        "item_bias": rng.normal(0, s_item, n_items),
        "mu": rng.normal((low + high) / 2, (high - low) / 2),
    }


def sbc_ranks(n_reps: int, seed: int, fit=fit_gibbs, thin: int = 5, draws: int = 99, spec=None):
    """Ranks of the true sigma, factor scale(s), sigma_user_bias, mu and three eta_ij among the draws.

    ``factor_prior="per_side"`` specs also rank the user side's sd and first factor mean.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items, scale = 15, 12, (1.0, 5.0)
    spec = PMF(n_factors=2, factor_prior="shared") if spec is None else spec
    observed = rng.random((n_users, n_items)) < 0.5
    observed[np.arange(n_users), np.arange(n_users) % n_items] = True  # everyone rates once
    observed[np.arange(n_items) % n_users, np.arange(n_items)] = True
    user_idx, item_idx = np.nonzero(observed)
    # monitored pairs: two rated, one never rated
    unrated = np.argwhere(~observed)[0]
    pairs = [(user_idx[0], item_idx[0]), (user_idx[-1], item_idx[-1]), tuple(unrated)]
    users = IdEncoder("user", np.arange(n_users))
    items = IdEncoder("item", np.arange(n_items))
    if spec.factor_prior == "per_side":
        scalars = ("sigma", "sigma_factor_user", "factor_mean_user", "sigma_item_bias", "mu")
    else:
        scalars = ("sigma", "sigma_factor", "sigma_user_bias", "mu")
    if spec.sigma is not None:  # fixed: nothing to rank
        scalars = tuple(name for name in scalars if name != "sigma")
    ranks = np.empty((n_reps, len(scalars) + len(pairs)), dtype=np.int64)
    for rep in range(n_reps):
        truth = _prior_draw(rng, spec, n_users, n_items, scale)
        eta = (
            truth["mu"]
            + truth["user_bias"][:, None]
            + truth["item_bias"][None, :]
            + truth["U"] @ truth["V"].T
        )
        rating = eta[user_idx, item_idx] + rng.normal(0, truth["sigma"], len(user_idx))
        data = RatingsData(user_idx, item_idx, rating, scale, users, items)
        result = fit(
            spec,
            data,
            draws=draws,
            tune=100,
            thin=thin,
            chains=1,
            progressbar=False,
            random_seed=int(rng.integers(2**31)),
        )
        post = result.posterior
        for k, name in enumerate(scalars):
            values = post[name].values.reshape(post[name].shape[0] * post[name].shape[1], -1)[:, 0]
            ranks[rep, k] = np.sum(values < np.ravel(truth[name])[0])
        arr = result.arrays()
        for k, (i, j) in enumerate(pairs, start=len(scalars)):
            post_eta = (
                arr.mu
                + arr.user_bias[:, i]
                + arr.item_bias[:, j]
                + np.einsum("sk,sk->s", arr.U[:, i].astype(float), arr.V[:, j].astype(float))
            )
            ranks[rep, k] = np.sum(post_eta < eta[i, j])
    return ranks, draws + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrelaxation", "thin"), [(DEFAULT_OVERRELAXATION, 5), (-0.9, 25)], ids=["default", "strong"]
)
def test_simulation_based_calibration(overrelaxation, thin):
    """Talts et al. (2018): ranks of prior-drawn truths among posterior draws are uniform.

    The test can fail: checked by hand (300 replicates, this seed) on deliberately broken
    samplers, each rejected at p < 0.001: sigma^2 shape a + N/2 + 1 (p = 2e-4 on sigma),
    factor-variance shape + 5 (p < 1e-16 on sigma_factor), the bias shift moving mu by
    d_b - d_c (p = 1e-14 on mu), the user-bias prior precision taken from the item-bias
    variance (p = 4e-6 on sigma_user_bias). These checks were made before overrelaxation
    (``overrelaxation=0``); it is run here at the default and at a strong -0.9, where an
    error in the reflected draw would be largest. At -0.9 the factor sd mixes slowly (a
    reflection nearly keeps each row's distance from its conditional mean, so the sum of
    squares that drives the factor variance hardly moves): with thin=5 its ranks failed
    (p = 3e-6), with thin=25 all p >= 0.07. At the default -0.8 with thin=5 all p >= 0.08
    (seed 2024). Those figures predate the sparse-row scale moves (`SparseScaleMoves`),
    which in these small problems move every row with its variance; with them, all
    p >= 0.53 at the default and p >= 0.11 at -0.9, thin=25.
    """
    ranks, n_ranks = sbc_ranks(
        n_reps=300,
        seed=2024,
        fit=functools.partial(fit_gibbs, overrelaxation=overrelaxation),
        thin=thin,
    )
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 0.001).all(), pvalues


@pytest.mark.slow
@pytest.mark.parametrize("per_factor", [False, True], ids=["shared-scale", "per-factor-scales"])
def test_simulation_based_calibration_with_some_rows_sparse(monkeypatch, per_factor):
    """SBC with the sparse-row scale moves on a mix of moved and unmoved rows.

    In `sbc_ranks`'s problems every row has about 6-8 ratings, so at the default
    `SPARSE_ROW_RATINGS` every row is moved with its variance; here the threshold is 6, so
    the moves also meet unmarked rows, and ratings with one marked end and with two. With
    ``per_factor_scales`` each factor's variance moves on its own (the first factor's sd
    is ranked). Seed 2025: all p >= 0.12 (shared), >= 0.22 (per factor). A wrong Jacobian
    (3 added to ``power`` in every move) gives p < 1e-4 on the factor and user-bias sds.
    """
    from bayesmf.inference.gibbs import moves

    monkeypatch.setattr(moves, "SPARSE_ROW_RATINGS", 6)
    ranks, n_ranks = sbc_ranks(n_reps=300, seed=2025, spec=PMF(n_factors=2, factor_prior="shared", per_factor_scales=per_factor))
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 0.001).all(), pvalues


@pytest.mark.slow
def test_simulation_based_calibration_with_fixed_noise():
    """SBC of the hierarchical prior with the noise sd fixed (``PMF(sigma=...)``): scales learned, sigma not.

    The truths are drawn with sigma at the given value (sigma itself is not ranked: it is
    held, which ``tests/test_fixed_noise.py`` checks). Seed 2027, default overrelaxation, thin 5:
    all p >= 0.21. Checked by hand to fail on a broken sampler: holding the noise variance at twice the given
    value gives p = 4e-8 on the factor sd and 5e-8 on the user-bias sd. Drawing sigma^2 anyway
    (``GaussianLikelihood.update`` not skipped) is not seen by these ranks (all p >= 0.26 over
    300 replicates): on these small problems the learned noise stays near the given one.
    """
    ranks, n_ranks = sbc_ranks(n_reps=300, seed=2027, spec=PMF(n_factors=2, factor_prior="shared", sigma=0.8))
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 0.001).all(), pvalues


@pytest.mark.slow
def test_simulation_based_calibration_per_side_prior():
    """SBC of factor_prior="per_side" (each side's own factor mean and scale, BPMF-like).

    Checked by hand to fail on broken samplers (this seed): the side mean drawn around the
    unshrunk column mean (no kappa) gives p = 1e-38 on the user factor sd; the side
    variances' gamma shape + 3 gives p = 2e-272; the side shift (`shift_side`) with the
    sign of its bias term flipped gives p = 4e-78; with a fifth of the mean's prior
    precision the run stops with a ZeroDivisionError.
    """
    ranks, n_ranks = sbc_ranks(n_reps=300, seed=2025, spec=PMF(n_factors=2, factor_prior="per_side"))
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 0.001).all(), pvalues


@pytest.mark.slow
def test_simulation_based_calibration_default_prior():
    """SBC of the default prior, ``PMF(n_factors=2)``: per-side with one scale per factor.

    Ranks the user side's first factor sd and first factor mean, sigma, the item offsets' sd,
    mu and three predictions (`sbc_ranks`). The per-factor draw of the side variances is
    the per-side block's with a vector of shapes and rates (`test_simulation_based_calibration_per_side_prior`
    checks that block against broken variants).
    """
    spec = PMF(n_factors=2)
    assert (spec.factor_prior, spec.per_factor_scales) == ("per_side", True)
    ranks, n_ranks = sbc_ranks(n_reps=300, seed=2031, spec=spec)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 0.001).all(), pvalues


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"draws": 0}, ValueError, "draws"),
        ({"draws": 2.5}, TypeError, "draws"),
        ({"chains": 0}, ValueError, "chains"),
        ({"tune": -1}, ValueError, "tune"),
        ({"thin": 0}, ValueError, "thin"),
        ({"init": "zeros"}, ValueError, "zeros"),
        ({"random_seed": -3}, ValueError, "random_seed"),
        ({"random_seed": "abc"}, TypeError, "abc"),
        ({"cores": 0}, ValueError, "cores"),
        ({"progressbar": "yes"}, TypeError, "progressbar"),
        ({"keep_warmup": 1}, TypeError, "keep_warmup"),
        ({"overrelaxation": 1.0}, ValueError, "overrelaxation"),
        ({"overrelaxation": -1}, ValueError, "overrelaxation"),
        ({"overrelaxation": float("nan")}, ValueError, "overrelaxation.*nan"),
        ({"overrelaxation": "-0.5"}, TypeError, "overrelaxation"),
        ({"overrelaxation": True}, TypeError, "overrelaxation"),
    ],
)
def test_bad_options(small, kwargs, error, match):
    opts = {"draws": 5, "tune": 2, "chains": 1, "progressbar": False} | kwargs
    with pytest.raises(error, match=match):
        fit_gibbs(PMF(n_factors=2), small.data, **opts)


def test_unsupported_models_and_bad_data(small):
    with pytest.raises(ValueError, match="gibbs"):
        fit_gibbs(PMF(n_factors=2, link="logistic"), small.data, draws=5, progressbar=False)
    with pytest.raises(ValueError, match="ordinal"):
        fit_gibbs(PMF(n_factors=2, likelihood="ordinal"), small.data, draws=5, progressbar=False)
    with pytest.raises(TypeError, match="RatingsData"):
        fit_gibbs(PMF(n_factors=2), small.data.to_dataframe(), draws=5, progressbar=False)
    with pytest.raises(TypeError, match="PMF"):
        fit_gibbs("pmf", small.data, draws=5, progressbar=False)
    empty = small.data.subset(np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="empty"):
        fit_gibbs(PMF(n_factors=2), empty, draws=5, progressbar=False)


def test_input_is_not_modified(small):
    data = small.data
    before = (data.user_idx.copy(), data.item_idx.copy(), data.rating.copy())
    spec = PMF(n_factors=2)
    fit_gibbs(spec, data, **FAST)
    for old, new in zip(before, (data.user_idx, data.item_idx, data.rating), strict=True):
        np.testing.assert_array_equal(old, new)
    assert spec == PMF(n_factors=2)
