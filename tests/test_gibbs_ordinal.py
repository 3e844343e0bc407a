"""The ordered-probit block of the Gibbs sampler (``PMF(likelihood="ordinal", link="probit")``).

Kernels against independent computations (interval probabilities by quadrature, the
cutpoint conditional by brute force); the sweep's invariants (latent responses inside
their levels' intervals in both orders, cutpoints ordered in every sweep, no global mean);
simulation-based calibration of the whole sweep, with broken variants it must reject;
a planted truth recovered through `fit`. `tests/test_ordinal_routes.py` covers the spec,
the PyMC model, predictions and the agreement with NUTS.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from bayesmf import PMF, IdEncoder, RatingsData
from bayesmf.inference.gibbs.kernels.cutpoints import CutpointDensity, cutpoint_log_density
from bayesmf.inference.gibbs.kernels.truncnorm import (
    draw_interval,
    log_interval,
    truncated_interval,
)
from bayesmf.inference.gibbs.likelihood import GlobalMean
from bayesmf.inference.gibbs.moves import BiasShift
from bayesmf.inference.gibbs.ordinal import OrdinalLikelihood, OrdinalProblem, padded_cutpoints
from bayesmf.inference.gibbs.start import initial_state
from bayesmf.inference.gibbs.sweep import build_sweep, problem_for
from bayesmf.link import CUTPOINT_PRIOR_SD, ordinal_probs
from tests.sbc_chain import chain_draws, uniformity_pvalues

N_LEVELS = 4


def ordinal_data(user_idx, item_idx, rating, n_users, n_items, n_levels: int = N_LEVELS) -> RatingsData:
    """Ratings on the levels 1..n_levels."""
    users = IdEncoder("user", np.arange(n_users, dtype=np.int64))
    items = IdEncoder("item", np.arange(n_items, dtype=np.int64))
    return RatingsData(user_idx, item_idx, np.asarray(rating, dtype=np.float64), (1.0, float(n_levels)), users, items)


def planted_ordinal(seed: int, n_users: int, n_items: int, cutpoints, K: int = 2, density: float = 0.5):
    """Ordered-probit ratings from a planted model; returns (data, eta (users x items), truth)."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(0, 0.7, (n_users, K)), rng.normal(0, 0.7, (n_items, K))
    b, c = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    eta = b[:, None] + c[None, :] + U @ V.T
    user_idx, item_idx = np.nonzero(rng.random((n_users, n_items)) < density)
    z = eta[user_idx, item_idx] + rng.standard_normal(user_idx.size)
    rating = 1.0 + np.searchsorted(np.asarray(cutpoints), z)
    data = ordinal_data(user_idx, item_idx, rating, n_users, n_items, len(cutpoints) + 1)
    return data, eta, {"user_bias": b, "item_bias": c, "cutpoints": np.asarray(cutpoints, dtype=float)}


# ---------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------
def _log_mass_by_quadrature(a: float, b: float) -> float:
    """log P(a < X < b), X standard normal, by the trapezoid rule in log space (independent of log_ndtr)."""
    lo, hi = max(a, -60.0), min(b, 60.0)
    # the mass sits within ~ 1/|x| of the bound nearest 0: a grid dense there
    x = np.linspace(lo, hi, 400_001)
    log_f = -0.5 * x * x - 0.5 * np.log(2.0 * np.pi)
    log_w = np.log(np.r_[0.5, np.ones(x.size - 2), 0.5] * (x[1] - x[0]))
    return float(special.logsumexp(log_f + log_w))


@pytest.mark.parametrize(
    ("a", "b"),
    [(-np.inf, 0.0), (0.0, np.inf), (-1.0, 1.0), (1.0, 1.5), (-40.0, -39.0), (39.0, 40.0), (-3.0, 5.0), (6.0, 7.0),
     (-np.inf, -30.0), (30.0, np.inf), (2.0, 2.01), (-0.5, -0.49), (-8.0, np.inf)],
)
def test_log_interval_matches_quadrature(a, b):
    """log(Phi(b) - Phi(a)) agrees with quadrature to 1e-7 (relative), far tails included.

    The naive log(ndtr(b) - ndtr(a)) is -inf at (39, 40) and (-40, -39) and the kernel is not.
    """
    got = log_interval(a, b)
    assert np.isfinite(got)
    assert got == pytest.approx(_log_mass_by_quadrature(a, b), rel=1e-7, abs=1e-9)
    assert log_interval(a, a) == -np.inf


def test_log_interval_fast_path_agrees_with_the_log_space_formula():
    """Both branches of `log_interval` (erfc where nothing cancels, log_ndtr elsewhere) give one function.

    Against scipy's log-space formula on a grid of intervals of every width, from both far
    tails through 0 (so both branches and the switch between them are crossed), to 1e-12
    relative (1e-13 absolute where the log is near 0).
    """
    def reference(a, b):  # log(Phi(b) - Phi(a)), mirrored to the lower side, in log space
        if a + b > 0:
            a, b = -b, -a
        hi, lo = special.log_ndtr(b), special.log_ndtr(a)
        return hi + np.log(-np.expm1(lo - hi))

    got, want = [], []
    for a in np.linspace(-38.0, 38.0, 381):
        for width in (1e-6, 1e-3, 0.05, 0.5, 2.0, 10.0, np.inf):
            got.append(log_interval(a, a + width))
            want.append(reference(a, a + width))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_draw_interval_draws_each_rating_in_its_levels_interval():
    """`draw_interval` is `truncated_interval` on each rating's own level; every draw inside its interval."""
    rng = np.random.default_rng(0)
    cuts = padded_cutpoints(np.array([-1.0, 0.2, 0.9]))
    codes = rng.integers(0, 4, 500)
    eta = rng.normal(0, 3, 500)
    u = rng.random(500)
    out = np.empty(500)
    draw_interval(eta, codes, cuts, u, out)
    expected = [truncated_interval(e, cuts[k], cuts[k + 1], x) for e, k, x in zip(eta, codes, u, strict=True)]
    np.testing.assert_array_equal(out, expected)
    assert np.all((out >= cuts[codes]) & (out <= cuts[codes + 1]))


def _brute_log_posterior(eta, codes, cutpoints) -> float:
    """log p(ratings | eta, c) + log prior(c), every rating, from `ordinal_probs` (numpy)."""
    p = ordinal_probs(eta, cutpoints, "probit")
    return float(np.sum(np.log(p[np.arange(len(eta)), codes])) - 0.5 * np.sum(cutpoints**2) / CUTPOINT_PRIOR_SD**2)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_cutpoint_density_is_the_conditional_given_eta(k):
    """The cutpoint update's density of cutpoint k differs from the brute-force log posterior by a constant.

    On a grid inside (c_{k-1}, c_{k+1}), to 1e-8; -inf outside that order.
    """
    rng = np.random.default_rng(1)
    eta = rng.normal(0, 1.5, 300)
    cut = np.array([-1.0, 0.0, 1.2])
    codes = np.searchsorted(cut, eta + rng.standard_normal(300))
    padded = padded_cutpoints(cut)
    density = CutpointDensity(eta[codes == k], eta[codes == k + 1], padded[k], padded[k + 2], 1.0 / CUTPOINT_PRIOR_SD**2)
    lo, hi = max(padded[k], -3.0), min(padded[k + 2], 3.0)
    gaps = []
    for x in np.linspace(lo, hi, 13)[1:-1]:
        moved = cut.copy()
        moved[k] = x
        gaps.append(cutpoint_log_density(x, density) - _brute_log_posterior(eta, codes, moved))
    assert np.ptp(gaps) < 1e-8, gaps
    assert cutpoint_log_density(padded[k + 2] + 0.1, density) == -np.inf
    if k > 0:
        assert cutpoint_log_density(padded[k] - 0.1, density) == -np.inf


# ---------------------------------------------------------------------------------------
# The sweep's invariants
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [PMF(n_factors=2, likelihood="ordinal", link="probit"),
                                  PMF(n_factors=2, likelihood="ordinal", link="probit", priors="fixed", biases=False)],
                         ids=["hierarchical", "fixed-no-bias"])
def test_sweeps_keep_latents_in_their_intervals_and_cutpoints_ordered(spec):
    """Every sweep: z inside its level's interval (both orders), cutpoints strictly increasing, mu 0, sigma^2 1.

    The sweep has no global mean and no (mu, b, c) shift; it records the layout's
    variables (cutpoints, no mu or sigma); its log-likelihood is the ordered probit's.
    """
    data, _, _ = planted_ordinal(2, 30, 20, [-1.0, 0.0, 1.0])
    problem = problem_for(spec, data)
    assert isinstance(problem, OrdinalProblem)
    sweep = build_sweep(problem, -0.8)
    assert isinstance(sweep.likelihood, OrdinalLikelihood)
    assert not any(isinstance(step, GlobalMean | BiasShift) for step in sweep.steps)
    rng = np.random.default_rng(3)
    state = initial_state(problem, spec, data, rng, "map")
    variates = sweep.variates()
    lik = sweep.likelihood
    codes_by_item = lik.codes[lik._to_item]
    for _ in range(25):
        sweep(state, variates, rng)
        cuts = state.extra["cutpoints"]
        assert np.all(np.diff(cuts) > 0), cuts
        for z, codes in ((state.extra["z_user"], lik.codes), (state.extra["z_item"], codes_by_item)):
            assert np.all((z >= cuts[codes]) & (z <= cuts[codes + 1]))
        assert state.scalars[0] == 0.0 and state.scalars[1] == 1.0
    draws = sweep.draws(state)
    assert "cutpoints" in draws and "mu" not in draws and "sigma" not in draws
    start = int(spec.biases)
    eta = np.einsum("nk,nk->n", state.P_user[data.user_idx, start:], state.P_item[data.item_idx, start:])
    if spec.biases:
        eta = eta + state.P_user[data.user_idx, 0] + state.P_item[data.item_idx, 0]
    p = ordinal_probs(eta, draws["cutpoints"], "probit")
    codes = (data.rating - 1).astype(int)
    assert sweep.stats(state)["log_likelihood_sum"] == pytest.approx(np.log(p[np.arange(len(eta)), codes]).sum(), rel=1e-9)


def test_level_shift_leaves_the_likelihood_unchanged():
    """The shift of the biases with the cutpoints keeps every c_k - eta_ij and moves the level."""
    spec = PMF(n_factors=2, likelihood="ordinal", link="probit")
    data, _, _ = planted_ordinal(5, 30, 20, [-1.0, 0.0, 1.0])
    problem = problem_for(spec, data)
    sweep = build_sweep(problem)
    rng = np.random.default_rng(6)
    state = initial_state(problem, spec, data, rng, "map")
    lik = sweep.likelihood
    before = lik.log_likelihood(state)
    cuts = state.extra["cutpoints"]
    old = cuts.copy()
    lik._shift_level(state, cuts, rng)
    assert lik.log_likelihood(state) == pytest.approx(before, rel=1e-12)
    assert np.all(np.diff(cuts) > 0) and abs(cuts[1] - old[1]) > 0


# ---------------------------------------------------------------------------------------
# Simulation-based calibration
# ---------------------------------------------------------------------------------------
SBC_N_USERS, SBC_N_ITEMS = 12, 10
#: family-wise false-alarm rate of each SBC test (Bonferroni over its monitored quantities)
SBC_FAMILY_ALPHA = 1e-3
SBC_SPECS = {
    "hierarchical": PMF(n_factors=2, likelihood="ordinal", link="probit"),
    "fixed": PMF(n_factors=2, likelihood="ordinal", link="probit", priors="fixed", sigma_u=0.8, sigma_v=0.8),
}


def _prior_draw(rng: np.random.Generator, spec: PMF, n_users: int, n_items: int) -> dict:
    """Parameters from the ordered probit's prior (cutpoints: sorted N(0, tau^2) draws)."""
    K = spec.n_factors
    if spec.priors == "fixed":
        s, s_user, s_item = spec.sigma_u, spec.sigma_bias, spec.sigma_bias
    else:
        (a_f, b_f), (a_b, b_b) = spec.hyper["factor_var"], spec.hyper["bias_var"]
        s = np.sqrt(b_f / rng.gamma(a_f))
        s_user, s_item = np.sqrt(b_b / rng.gamma(a_b)), np.sqrt(b_b / rng.gamma(a_b))
    return {
        "scale": s, "sigma_user_bias": s_user, "sigma_item_bias": s_item,
        "U": rng.normal(0, s, (n_users, K)), "V": rng.normal(0, s, (n_items, K)),
        "user_bias": rng.normal(0, s_user, n_users), "item_bias": rng.normal(0, s_item, n_items),
        # N(0, tau^2) restricted to the ordered set = the order statistics of iid draws
        "cutpoints": np.sort(rng.normal(0, CUTPOINT_PRIOR_SD, N_LEVELS - 1)),
    }


def _eta(values: dict) -> np.ndarray:
    return values["user_bias"][:, None] + values["item_bias"][None, :] + values["U"] @ values["V"].T


def _monitored(spec: PMF, values: dict, pairs, data: RatingsData) -> np.ndarray:
    """3 eta_ij, the first and last cutpoints, the level c-bar - b-bar - c-bar, the first gap, the log-likelihood (+ scales)."""
    eta = _eta(values)
    cut = values["cutpoints"]
    level = cut.mean() - values["user_bias"].mean() - values["item_bias"].mean()
    p = ordinal_probs(eta[data.user_idx, data.item_idx], cut, "probit")
    log_lik = np.log(p[np.arange(data.n_ratings), (data.rating - 1).astype(int)]).sum()
    out = [*(eta[i, j] for i, j in pairs), cut[0], cut[-1], level, cut[1] - cut[0], log_lik]
    if spec.priors == "hierarchical":
        out += [values["scale"], values["sigma_user_bias"], values["sigma_item_bias"]]
    return np.array(out)


def _draw_values(sweep, state) -> dict:
    """A draw in the layout of `_prior_draw`, read off the chain state (biases on)."""
    return {"U": state.P_user[:, 1:], "V": state.P_item[:, 1:], "user_bias": state.P_user[:, 0],
            "item_bias": state.P_item[:, 0], "cutpoints": sweep.draws(state)["cutpoints"],
            "scale": 1.0 / np.sqrt(state.prec_user[1]), "sigma_user_bias": np.sqrt(state.scalars[2]),
            "sigma_item_bias": np.sqrt(state.scalars[3])}


def _break(sweep, broken: str | None) -> None:
    """Broken samplers the SBC must reject: cutpoints never updated, or z drawn without truncation."""
    lik = sweep.likelihood
    if broken == "frozen_cutpoints":
        lik._update_cuts = lambda *args: None
    elif broken == "untruncated":
        whole = np.array([-np.inf, np.inf])
        lik._draw_z = lambda eta, codes, cuts, u, out: draw_interval(eta, np.zeros_like(codes), whole, u, out)


def ordinal_sbc_ranks(spec: PMF, n_reps: int, seed: int, *, density: float = 1.0, tune: int = 60, draws: int = 39,
                      thin: int = 4, broken: str | None = None) -> tuple[np.ndarray, int]:
    """Ranks of the monitored truths among the draws of one chain per replicate.

    Each replicate draws the parameters from the prior, one latent z ~ N(eta, 1) per
    observed pair (every pair of the 12 x 10 grid, or a share ``density``) and its level
    (4 levels), then runs the sampler as `fit_gibbs` does ("map" start, ``tune`` sweeps,
    ``draws`` kept every ``thin``-th sweep, overrelaxation -0.8). ``broken``: see `_break`.
    """
    rng = np.random.default_rng(seed)
    user_all, item_all = (a.ravel() for a in np.indices((SBC_N_USERS, SBC_N_ITEMS)))
    pairs = [(0, 0), (3, 7), (11, 9)]
    rows = []
    for _ in range(n_reps):
        truth = _prior_draw(rng, spec, SBC_N_USERS, SBC_N_ITEMS)
        keep = rng.random(user_all.size) < density
        user_idx, item_idx = user_all[keep], item_all[keep]
        z = _eta(truth)[user_idx, item_idx] + rng.standard_normal(user_idx.size)
        data = ordinal_data(user_idx, item_idx, 1.0 + np.searchsorted(truth["cutpoints"], z), SBC_N_USERS, SBC_N_ITEMS)
        chain = np.random.default_rng(int(rng.integers(2**31)))
        problem = problem_for(spec, data)
        sweep = build_sweep(problem, -0.8)
        _break(sweep, broken)
        state = initial_state(problem, spec, data, chain, "map")
        kept = chain_draws(sweep, state, chain, tune, draws, thin,
                           lambda st, sweep=sweep, data=data: _monitored(spec, _draw_values(sweep, st), pairs, data))
        rows.append(np.sum(kept < _monitored(spec, truth, pairs, data), axis=0))
    return np.array(rows), draws + 1


def test_simulation_based_calibration_fast():
    """A small SBC (40 replicates, short chains) of the default ordered probit, every pair observed.

    Ranks of 3 eta_ij, the first and last cutpoints, the identified level, the first gap,
    the training log-likelihood (a data-dependent quantity: a sampler that ignores the data
    fails it) and the three scales; each column's chi-square p-value must exceed
    SBC_FAMILY_ALPHA / 11 (Bonferroni: family-wise false alarm 1e-3). Seed 8: smallest
    p 0.057; the broken samplers (next test) give 1e-47 (cutpoints frozen: the cutpoints'
    and the level's columns) and 3e-42 (z untruncated: the log-likelihood's column; the
    parameters then follow the prior, whose ranks alone would pass).
    """
    ranks, n_ranks = ordinal_sbc_ranks(SBC_SPECS["hierarchical"], 40, seed=8)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > SBC_FAMILY_ALPHA / ranks.shape[1]).all(), pvalues


@pytest.mark.parametrize("broken", ["frozen_cutpoints", "untruncated"])
def test_simulation_based_calibration_fails_on_broken_samplers(broken):
    """The fast SBC rejects a sampler whose cutpoints never move, and one whose z ignore their levels."""
    ranks, n_ranks = ordinal_sbc_ranks(SBC_SPECS["hierarchical"], 40, seed=8, broken=broken)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues < SBC_FAMILY_ALPHA / ranks.shape[1]).any(), pvalues


@pytest.mark.slow
@pytest.mark.parametrize("prior", list(SBC_SPECS))
def test_simulation_based_calibration(prior):
    """Talts et al. (2018) for the ordered-probit block: 150 replicates, 60 % of the pairs observed.

    Family-wise false alarm SBC_FAMILY_ALPHA per test (Bonferroni over the monitored columns).
    Seed 2026: smallest p 0.10 (hierarchical) and 0.014 (fixed); with the hierarchical
    prior, frozen cutpoints give 1e-216 and untruncated z 3e-161.
    """
    ranks, n_ranks = ordinal_sbc_ranks(SBC_SPECS[prior], 150, seed=2026, density=0.6, thin=5)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > SBC_FAMILY_ALPHA / ranks.shape[1]).all(), pvalues


# ---------------------------------------------------------------------------------------
# Planted truth
# ---------------------------------------------------------------------------------------
def test_planted_cutpoints_and_scores_are_recovered():
    """Through `fit`: the cutpoint gaps and the held-out latent scores of a planted model.

    60 x 50 users x items, half observed, 5 levels. The posterior of each gap c_k - c_0
    (identified: the latent noise sd is 1) must cover its truth within 4 posterior sds
    (family-wise 4 checks, ~3e-4 under normality); the posterior-mean eta on unobserved
    pairs must correlate with the truth above 0.8. Every draw's cutpoints are ordered.
    When checked: gaps -0.6, -0.7, -1.3 sd from the truth, correlation 0.88; frozen
    cutpoints put the gaps 1e14 sd off, untruncated z 7-16 sd off with a correlation of -0.10.
    """
    cut = [-1.5, -0.5, 0.4, 1.3]
    data, eta, _ = planted_ordinal(0, 60, 50, cut)
    fit = PMF(n_factors=2, likelihood="ordinal", link="probit").fit(
        data, method="gibbs", draws=100, tune=100, chains=2, random_seed=5, progressbar=False
    )
    post = fit.idata["posterior"]
    cuts = post["cutpoints"].values.reshape(-1, len(cut))
    assert np.all(np.diff(cuts, axis=1) > 0)
    gaps = cuts[:, 1:] - cuts[:, :1]
    truth = np.asarray(cut[1:]) - cut[0]
    assert np.all(np.abs(gaps.mean(axis=0) - truth) < 4.0 * gaps.std(axis=0)), (gaps.mean(axis=0), truth)
    draws = (post["user_bias"].values[..., :, None] + post["item_bias"].values[..., None, :]
             + np.einsum("cduk,cdik->cdui", post["U"].values, post["V"].values)).reshape(-1, *eta.shape)
    held = np.ones(eta.shape, dtype=bool)
    held[data.user_idx, data.item_idx] = False
    assert np.corrcoef(draws.mean(axis=0)[held], eta[held])[0, 1] > 0.8
