"""The probit block of the Gibbs sampler (``PMF(likelihood="bernoulli")``).

Truncated-normal draws checked against their exact distribution (in both far tails);
the latent responses' two orders; simulation-based calibration of the whole sweep; a
planted truth recovered from binary data. `tests/test_binary_routes.py` compares Gibbs
with NUTS and checks the bad-input errors.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import special, stats

from bayesmf import PMF, IdEncoder, RatingsData
from bayesmf.inference.gibbs.kernels.truncnorm import (
    draw_latent,
    log_cdf_sum,
    truncated_interval,
    truncated_normal,
)
from bayesmf.inference.gibbs.moves import CollapsedBiasScale, SparseScaleMoves
from bayesmf.inference.gibbs.probit import ProbitLikelihood, by_item_order
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.start import initial_state
from bayesmf.inference.gibbs.sweep import build_sweep
from tests.sbc_chain import chain_draws, uniformity_pvalues

#: latent means that span the bulk and both far tails of either truncation
MEANS = (-60.0, -8.0, -1.0, 0.0, 0.7, 5.0, 40.0)


def _data(user_idx, item_idx, values, n_users, n_items) -> RatingsData:
    users = IdEncoder("user", np.arange(n_users, dtype=np.int64))
    items = IdEncoder("item", np.arange(n_items, dtype=np.int64))
    return RatingsData(user_idx, item_idx, values, (0.0, 1.0), users, items)


def _survival(z: np.ndarray, mean: float, positive: bool) -> np.ndarray:
    """log P(Z > z | truncation) for y = 1, log P(Z <= z | truncation) for y = 0 (exact)."""
    if positive:
        return special.log_ndtr(mean - z) - special.log_ndtr(mean)
    return special.log_ndtr(z - mean) - special.log_ndtr(-mean)


@pytest.mark.parametrize("positive", [True, False], ids=["y=1", "y=0"])
@pytest.mark.parametrize("mean", MEANS)
def test_truncated_normal_is_the_exact_inverse_cdf(mean, positive):
    """Each draw is the truncated distribution's quantile of its uniform, to 1e-9 in log scale.

    ``u`` spans 1e-300 .. 1 - 1e-16, so the draws reach 37 sd into the far tail; with the
    truncation on the wrong side every draw has the wrong sign and the identity fails.
    """
    u = np.concatenate([10.0 ** -np.arange(300, 0, -7.0), np.linspace(0.01, 0.99, 99), 1.0 - 10.0 ** -np.arange(1, 16.0)])
    z = np.array([truncated_normal(mean, positive, x) for x in u])
    assert np.all(np.isfinite(z))
    assert np.all(z >= 0.0) if positive else np.all(z <= 0.0)
    side = _survival(z, mean, positive)
    # the identity holds where the draw is resolved in double precision (z away from 0)
    resolved = np.abs(z) > 1e-12 * max(1.0, abs(mean))
    np.testing.assert_allclose(side[resolved], np.log(u)[resolved], rtol=1e-9, atol=1e-9)


def test_log_cdf_sum_is_scipys_log_ndtr():
    """The probit log-likelihood's kernel: each term scipy's log_ndtr to 1e-15 absolute or 1e-13 relative.

    Over -60 .. 60, so the erfc branch (above about -37) and the log_ndtr branch (the far
    lower tail) are both crossed; the sum of many terms matches too.
    """
    x = np.linspace(-60.0, 60.0, 24_001)
    got = np.array([log_cdf_sum(x[n : n + 1]) for n in range(x.size)])
    np.testing.assert_allclose(got, special.log_ndtr(x), rtol=1e-13, atol=1e-15)
    assert log_cdf_sum(x) == pytest.approx(float(np.sum(special.log_ndtr(x))), rel=1e-13)
    assert log_cdf_sum(np.array([], dtype=float)) == 0.0


@pytest.mark.parametrize("mean", [-30.0, -3.0, 0.0, 2.0, 30.0])
def test_truncated_normal_moments_match_the_closed_form(mean):
    r"""Mean of 20,000 draws each side vs :math:`\eta \pm \phi(\eta)/\Phi(\pm\eta)` (Mills ratio).

    Bound: 5.3 standard errors of the mean (two-sided false alarm 1e-7 each; 10 checks).
    The draws' sd (from the exact truncated variance) sets the standard error.
    """
    rng = np.random.default_rng(7)
    n = 20_000
    for positive in (True, False):
        s = 1.0 if positive else -1.0
        eta = np.full(n, mean)
        out = np.empty(n)
        draw_latent(eta, np.full(n, float(positive)), rng.random(n) + 2.0**-54, out)
        dist = stats.truncnorm(0.0 - mean if positive else -np.inf, np.inf if positive else -mean, loc=mean)
        mills = np.exp(stats.norm.logpdf(mean) - special.log_ndtr(s * mean))
        assert abs(dist.mean() - (mean + s * mills)) < 1e-6 * max(1.0, abs(mean))
        se = np.sqrt(dist.var() / n)
        assert abs(out.mean() - (mean + s * mills)) < 5.3 * se, (positive, out.mean(), mean + s * mills)


def _log_conditional_sf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """log P(X > x | a < X < b) for a standard normal X, in log space."""
    def log_mass(lo, hi):  # log(Phi(-lo) - Phi(-hi)), lo < hi
        top = special.log_ndtr(-np.asarray(lo, dtype=float))
        return top + np.log1p(-np.exp(special.log_ndtr(-np.asarray(hi, dtype=float)) - top))
    with np.errstate(divide="ignore", invalid="ignore"):  # draws on a bound (left out by the caller)
        return log_mass(x, b) - log_mass(a, b)


#: (mean, lower, upper): one- and two-sided, far tails, narrow, straddling the mean
INTERVALS = [(0.0, 0.0, np.inf), (0.0, -np.inf, 0.0), (-30.0, 0.0, np.inf), (30.0, -np.inf, 0.0),
             (0.0, 40.0, 50.0), (0.0, -50.0, -40.0), (0.0, -1.0, 1.0), (0.3, 1.0, 1.0 + 1e-6),
             (-2.0, 1.5, 2.5), (8.0, -0.5, 0.5), (0.0, -np.inf, np.inf)]


@pytest.mark.parametrize(("mean", "lower", "upper"), INTERVALS)
def test_truncated_interval_is_the_exact_inverse_cdf(mean, lower, upper):
    """Each draw is the conditional quantile of its uniform: survival u (cdf u when mirrored), to 1e-9.

    The mirrored branch is the one whose interval middle lies below the mean; every draw
    lies inside the interval.
    """
    u = np.concatenate([10.0 ** -np.arange(300, 0, -13.0), np.linspace(0.01, 0.99, 49), 1.0 - 10.0 ** -np.arange(1, 15.0)])
    z = np.array([truncated_interval(mean, lower, upper, x) for x in u])
    assert np.all((z >= lower) & (z <= upper))
    a, b = lower - mean, upper - mean
    if a + b < 0:  # mirrored: X -> -X, the uniform is the cdf
        side = _log_conditional_sf(-(z - mean), -b, -a)
    else:
        side = _log_conditional_sf(z - mean, a, b)
    resolved = np.minimum(np.abs(z - lower), np.abs(z - upper)) > 1e-9 * max(1.0, abs(mean), np.nanmax(np.abs(np.array([lower, upper])[np.isfinite([lower, upper])]), initial=0.0))
    np.testing.assert_allclose(side[resolved], np.log(u)[resolved], rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("mean", MEANS)
def test_one_sided_interval_is_the_probit_draw(mean):
    """`truncated_interval` with one infinite bound gives `truncated_normal`'s draw, for both labels."""
    for u in (1e-200, 0.01, 0.5, 0.99, 1.0 - 1e-12):
        assert truncated_interval(mean, 0.0, np.inf, u) == pytest.approx(truncated_normal(mean, True, u), rel=1e-12, abs=1e-12)
        assert truncated_interval(mean, -np.inf, 0.0, u) == pytest.approx(truncated_normal(mean, False, u), rel=1e-12, abs=1e-12)


def test_latent_responses_keep_their_labels_in_both_orders():
    """``by_item_order`` maps each by-user entry to its by-item place, repeated pairs by label."""
    user = np.array([2, 0, 1, 0, 2, 1, 1])
    item = np.array([0, 1, 0, 1, 2, 2, 0])
    label = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # pair (0, 1) twice, pair (1, 0) twice
    data = _data(user, item, label, 3, 3)
    problem = build_problem(PMF(n_factors=1, likelihood="bernoulli"), data)
    by_user, by_item = problem.ratings
    perm = by_item_order(by_user, by_item)
    np.testing.assert_array_equal(by_user.rating[perm], by_item.rating)
    users_u = np.repeat(np.arange(3), np.diff(by_user.indptr))
    items_i = np.repeat(np.arange(3), np.diff(by_item.indptr))
    np.testing.assert_array_equal(users_u[perm], by_item.other)
    np.testing.assert_array_equal(by_user.other[perm], items_i)
    assert sorted(perm.tolist()) == list(range(len(user)))


def test_augment_draws_latent_responses_on_the_labels_sides():
    """After a sweep every z has the sign of its label, in both orders; sigma^2 stays 1."""
    rng = np.random.default_rng(3)
    user, item = (a.ravel() for a in np.indices((8, 6)))
    data = _data(user, item, (rng.random(user.size) < 0.4).astype(float), 8, 6)
    spec = PMF(n_factors=2, likelihood="bernoulli")
    problem = build_problem(spec, data)
    sweep = build_sweep(problem)
    state = initial_state(problem, spec, data, rng, "map")
    variates = sweep.variates()
    for _ in range(3):
        sweep(state, variates, rng)
    assert isinstance(sweep.likelihood, ProbitLikelihood)
    for side, csr in (("user", problem.ratings.by_user), ("item", problem.ratings.by_item)):
        z = sweep.likelihood.responses(state, side).rating
        assert np.all((z > 0) == (csr.rating > 0.5)) or np.all((z >= 0) == (csr.rating > 0.5))
    assert state.scalars[1] == 1.0
    assert "sigma" not in sweep.draws(state)


# ---------------------------------------------------------------------------------------
# The moves along the responses read the latent z
# ---------------------------------------------------------------------------------------
def _probit_state(spec: PMF, sweeps: int = 30):
    """Binary data (30 x 24, 30 % observed: some rows of each side sparse), sweep and state after a burn-in."""
    data, _ = planted_binary(1, 30, 24, density=0.3)
    problem = build_problem(spec, data)
    rng = np.random.default_rng(4)
    sweep = build_sweep(problem)
    state = initial_state(problem, spec, data, rng, "map")
    variates = sweep.variates()
    for _ in range(sweeps):
        sweep(state, variates, rng)
    return problem, sweep, state


def _latent_data(problem, state) -> SimpleNamespace:
    """The latent responses as ratings: (user_idx, item_idx, rating = z), in by-user order."""
    by_user = problem.ratings.by_user
    users = np.repeat(np.arange(problem.n_users), np.diff(by_user.indptr))
    return SimpleNamespace(user_idx=users, item_idx=by_user.other, rating=state.extra["z_user"])


@pytest.mark.parametrize(("prior", "move_type"), [("hierarchical", SparseScaleMoves), ("per-side", CollapsedBiasScale)])
def test_response_moves_are_on_and_read_the_latent_responses(prior, move_type):
    """The probit's sweep runs `SparseScaleMoves` (`CollapsedBiasScale` per side) on its z.

    The responses the move reads are the chain's latent z in both orders (not the 0/1
    labels); built without the likelihood block on binary data, the move is refused.
    """
    problem, sweep, state = _probit_state(SBC_SPECS[prior], sweeps=3)
    (move,) = [step for step in sweep.steps if isinstance(step, move_type)]
    responses = move.responses(state)
    for side, csr in zip(("user", "item"), responses, strict=True):
        assert csr.rating is state.extra[f"z_{side}"]
        assert np.all((csr.rating > 0) == (getattr(problem.ratings, f"by_{side}").rating > 0.5))
    with pytest.raises(ValueError, match="likelihood block"):
        move_type(problem)


def _scale_density_gap(problem, state, move, ratings, kind: str) -> float:
    """Largest gap between a scale move's log density (from ``ratings``) and the augmented joint.

    On a grid of x = log t, differences from x = 0 of `scale_log_density` (its sums taken
    from ``ratings``) and of the brute-force log joint of the model given z at the moved
    state (`test_gibbs._scaled_log_joint`, with z as the ratings and sigma^2 = 1).
    """
    from test_gibbs import _scaled_log_joint

    from bayesmf.inference.gibbs.kernels.scale_moves import scale_log_density, scale_move_terms
    from bayesmf.inference.gibbs.kernels.structs import ScaleDensity

    sums, power, rate = scale_move_terms(ratings, state.params, problem.hyper, move.marks, True, {"factor": 0, "item_bias": 1}[kind], -1)
    grid = np.linspace(-0.4, 0.4, 9)
    kernel = np.array([scale_log_density(x, ScaleDensity(sums, 1.0, power, rate)) for x in grid])
    given_z = dataclasses.replace(problem, binary=False)  # the Gaussian model with responses z
    joint = np.array([_scaled_log_joint(given_z, state, _latent_data(problem, state), kind, x) for x in grid])
    return float(np.max(np.abs((kernel - kernel[4]) - (joint - joint[4]))))


@pytest.mark.parametrize("kind", ["factor", "item_bias"])
def test_sparse_scale_density_is_the_joint_given_the_latent_responses(kind):
    """`SparseScaleMoves` on the probit moves along the joint of the model given z.

    Its log density along the move, from the responses it reads, equals the brute-force
    log joint given z to 1e-8; read from the 0/1 labels (the broken variant, what it read
    before the likelihood block gave it z) the gap is of order 1 or more.
    """
    problem, sweep, state = _probit_state(SBC_SPECS["hierarchical"])
    (move,) = [step for step in sweep.steps if isinstance(step, SparseScaleMoves)]
    assert state.scalars[1] == 1.0
    assert _scale_density_gap(problem, state, move, move.responses(state), kind) < 1e-8
    assert _scale_density_gap(problem, state, move, problem.ratings, kind) > 0.1


def _collapsed_density_gap(problem, state, ratings) -> float:
    """Largest gap between the collapsed item-bias-variance density (from ``ratings``) and quadrature.

    On a grid of t = log s_c^2, differences from the middle of `bias_var_log_density` (its
    mean residuals taken from ``ratings``, noise variance 1) and of the log joint given z
    with each item's bias integrated out by quadrature (the inverse-gamma prior with its
    Jacobian, times per item the integral of N(c; 0, s_c^2) prod_i N(z_ij; eta_ij - c_j + c, 1)).
    """
    from scipy.special import logsumexp

    from bayesmf.inference.gibbs.kernels.bias_var import bias_free_sums, bias_var_log_density
    from bayesmf.inference.gibbs.kernels.structs import BiasVarDensity

    P_user, P_item, mu = state.P_user, state.P_item, state.scalars[0]
    sums = np.empty(problem.n_items)
    bias_free_sums(ratings.by_item, P_item, P_user, mu, sums)
    counts = np.diff(ratings.by_item.indptr)
    rated = counts > 0
    prior = problem.hyper.bias
    density = BiasVarDensity(sums[rated] / counts[rated], 1.0 / counts[rated], prior)
    latent = _latent_data(problem, state)
    rest = mu + P_user[latent.user_idx, 0] + np.einsum("nk,nk->n", P_user[latent.user_idx, 1:], P_item[latent.item_idx, 1:])
    c = np.linspace(-12.0, 12.0, 24_001)
    grid = np.linspace(np.log(state.scalars[3]) - 1.0, np.log(state.scalars[3]) + 1.0, 9)
    kernel, joint = [], []
    for t in grid:
        s2 = np.exp(t)
        total = -prior.a * t - prior.b / s2
        for j in np.flatnonzero(rated):
            e = (latent.rating - rest)[latent.item_idx == j]
            log_f = -0.5 * c * c / s2 - 0.5 * t - 0.5 * ((e[:, None] - c[None, :]) ** 2).sum(axis=0)
            total += logsumexp(log_f) + np.log(c[1] - c[0])
        joint.append(total)
        kernel.append(bias_var_log_density(t, density))
    kernel_, joint_ = np.array(kernel), np.array(joint)
    return float(np.max(np.abs((kernel_ - kernel_[4]) - (joint_ - joint_[4]))))


def test_collapsed_bias_density_is_the_joint_given_the_latent_responses():
    """`CollapsedBiasScale` on the probit (per-side prior) collapses the model given z.

    The item-bias variance's collapsed log density, from the responses the move reads,
    equals the joint given z with the biases integrated out by quadrature, to 1e-6; from
    the 0/1 labels (the broken variant) the gap is of order 1 or more.
    """
    problem, sweep, state = _probit_state(SBC_SPECS["per-side"])
    (move,) = [step for step in sweep.steps if isinstance(step, CollapsedBiasScale)]
    assert _collapsed_density_gap(problem, state, move.responses(state)) < 1e-6
    assert _collapsed_density_gap(problem, state, problem.ratings) > 0.1


# ---------------------------------------------------------------------------------------
# Simulation-based calibration
# ---------------------------------------------------------------------------------------
SBC_N_USERS, SBC_N_ITEMS = 12, 10
#: family-wise false-alarm rate of each SBC test (Bonferroni over its monitored quantities)
SBC_FAMILY_ALPHA = 1e-3
SBC_SPECS = {
    "hierarchical": PMF(n_factors=2, likelihood="bernoulli"),
    "fixed": PMF(n_factors=2, likelihood="bernoulli", priors="fixed", biases=False, sigma_u=0.8, sigma_v=0.8),
    "per-side": PMF(n_factors=2, likelihood="bernoulli", factor_prior="per_side"),
    "per-factor": PMF(n_factors=2, likelihood="bernoulli", per_factor_scales=True),
}


def _prior_draw(rng: np.random.Generator, spec: PMF, n_users: int, n_items: int) -> dict:
    """Parameters from the Bernoulli model's prior (mu ~ N(0, 1), the probit's)."""
    from bayesmf.spec import FACTOR_MEAN_KAPPA

    K = spec.n_factors
    if spec.priors == "fixed":
        return {"U": rng.normal(0, spec.sigma_u, (n_users, K)), "V": rng.normal(0, spec.sigma_v, (n_items, K)),
                "mu": 0.0, "user_bias": np.zeros(n_users), "item_bias": np.zeros(n_items)}

    def inv_gamma(key, size=None):
        a, b = spec.hyper[key]
        return b / rng.gamma(a, size=size)

    out = {}
    if spec.factor_prior == "per_side":
        for side, name, n in (("user", "U", n_users), ("item", "V", n_items)):
            sd = np.sqrt(inv_gamma("factor_var"))
            mean = rng.normal(0, sd / np.sqrt(FACTOR_MEAN_KAPPA), K)
            out |= {f"sigma_factor_{side}": sd, name: rng.normal(mean, sd, (n, K))}
        out["scale"] = out["sigma_factor_user"]
    else:
        s = np.sqrt(inv_gamma("factor_var", size=K if spec.per_factor_scales else None))
        out |= {"scale": np.atleast_1d(s)[0], "U": rng.normal(0, s, (n_users, K)), "V": rng.normal(0, s, (n_items, K))}
    s_user, s_item = np.sqrt(inv_gamma("bias_var")), np.sqrt(inv_gamma("bias_var"))
    return out | {
        "sigma_user_bias": s_user, "sigma_item_bias": s_item, "mu": rng.normal(0.0, 1.0),
        "user_bias": rng.normal(0, s_user, n_users), "item_bias": rng.normal(0, s_item, n_items),
    }


def _eta(values: dict) -> np.ndarray:
    return values["mu"] + values["user_bias"][:, None] + values["item_bias"][None, :] + values["U"] @ values["V"].T


def _monitored(spec: PMF, values: dict, pairs) -> np.ndarray:
    """The quantities whose ranks are tested, from a truth or one draw."""
    eta = _eta(values)
    out = [eta[i, j] for i, j in pairs]
    if spec.priors == "fixed":  # no scales: the rows' lengths instead (rotation invariant)
        return np.array([*out, values["U"][0] @ values["U"][0], values["V"][0] @ values["V"][0]])
    scalars = [values[k] for k in ("mu", "scale", "sigma_user_bias", "sigma_item_bias")]
    return np.array([*out, *scalars, values["user_bias"][0], values["item_bias"][1]])


def _draw_values(spec: PMF, state) -> dict:
    """A draw in the layout of `_prior_draw`, read off the chain state."""
    s = int(spec.biases)
    return {"mu": state.scalars[0] if s else 0.0, "U": state.P_user[:, s:], "V": state.P_item[:, s:],
            "user_bias": state.P_user[:, 0] if s else np.zeros(len(state.P_user)),
            "item_bias": state.P_item[:, 0] if s else np.zeros(len(state.P_item)),
            "sigma_user_bias": np.sqrt(state.scalars[2]), "sigma_item_bias": np.sqrt(state.scalars[3]),
            "scale": 1.0 / np.sqrt(state.prec_user[s])}


def _read_labels(sweep) -> None:
    """Break the sweep's response moves: have them read the 0/1 labels instead of the latent z."""
    for step in sweep.steps:
        if isinstance(step, SparseScaleMoves | CollapsedBiasScale):
            step.likelihood = None


def probit_sbc_ranks(spec: PMF, design: str, n_reps: int, seed: int, tune: int = 100, draws: int = 99,
                     thin: int = 5, flip: bool = False, label_moves: bool = False) -> tuple[np.ndarray, int]:
    """Ranks of the monitored truths among the draws of one chain per replicate.

    Each replicate draws the parameters from the prior and a 0/1 label per observed pair
    from Bernoulli(Phi(eta)) ("all": every pair of the 12 x 10 grid observed; "sparse": 40 %),
    then runs the sampler as `fit_gibbs` does ("map" start, ``tune`` sweeps, ``draws``
    kept every ``thin``-th sweep, overrelaxation -0.8). ``flip``: a broken sampler that
    truncates each latent response on the wrong side; ``label_moves``: one whose
    `SparseScaleMoves` and `CollapsedBiasScale` read the 0/1 labels as their responses
    instead of the latent z (to show the tests can fail).
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = SBC_N_USERS, SBC_N_ITEMS
    user_all, item_all = (a.ravel() for a in np.indices((n_users, n_items)))
    pairs = [(0, 0), (3, 7), (11, 9)]
    rows = []
    for _ in range(n_reps):
        truth = _prior_draw(rng, spec, n_users, n_items)
        keep = np.ones(user_all.size, dtype=bool) if design == "all" else rng.random(user_all.size) < 0.4
        user_idx, item_idx = user_all[keep], item_all[keep]
        labels = (rng.random(user_idx.size) < special.ndtr(_eta(truth)[user_idx, item_idx])).astype(float)
        data = _data(user_idx, item_idx, labels, n_users, n_items)
        chain = np.random.default_rng(int(rng.integers(2**31)))
        problem = build_problem(spec, data)
        sweep = build_sweep(problem, -0.8)
        if flip:
            sweep.likelihood._labels = 1.0 - sweep.likelihood._labels  # type: ignore[attr-defined]
        if label_moves:
            _read_labels(sweep)
        state = initial_state(problem, spec, data, chain, "map")
        kept = chain_draws(sweep, state, chain, tune, draws, thin, lambda st: _monitored(spec, _draw_values(spec, st), pairs))
        rows.append(np.sum(kept < _monitored(spec, truth, pairs), axis=0))
    return np.array(rows), draws + 1


def test_simulation_based_calibration_fast():
    """A small SBC (100 replicates, short chains) of the default Bernoulli model, every pair observed.

    Ranks of 3 eta_ij, mu, the factor and both bias sds, one user and one item bias; each
    column's chi-square p-value must exceed SBC_FAMILY_ALPHA / 9 (Bonferroni: family-wise
    false alarm 1e-3). The factor sd mixes slowest; with the sparse-row scale moves on the
    latent responses the smallest p-value over seeds 31-33 was 0.038-0.15 at thin 3 and
    0.059-0.17 at thin 6 (with those moves off, the factor sd's: 0.0008-0.10 at thin 3,
    0.03-0.33 at thin 6). With the truncation on the wrong side (next test) the eta and mu
    columns give p < 1e-40; with the moves reading the 0/1 labels this size gives 3e-4 at
    seed 32, too weak to test here (the slow `test_sbc_fails_on_moves_reading_the_labels`).
    """
    spec = SBC_SPECS["hierarchical"]
    ranks, n_ranks = probit_sbc_ranks(spec, "all", n_reps=100, seed=32, tune=100, draws=49, thin=6)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > SBC_FAMILY_ALPHA / ranks.shape[1]).all(), pvalues


def test_simulation_based_calibration_fails_on_the_wrong_truncation_side():
    """The fast SBC rejects a sampler whose latent responses sit on the wrong side of 0."""
    spec = SBC_SPECS["hierarchical"]
    ranks, n_ranks = probit_sbc_ranks(spec, "all", n_reps=100, seed=32, tune=100, draws=49, thin=6, flip=True)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues < SBC_FAMILY_ALPHA / ranks.shape[1]).any(), pvalues


@pytest.mark.slow
@pytest.mark.parametrize("design", ["all", "sparse"])
@pytest.mark.parametrize("prior", list(SBC_SPECS))
def test_simulation_based_calibration(prior, design):
    """Talts et al. (2018) for the probit block: 300 replicates per prior and design.

    Family-wise false alarm SBC_FAMILY_ALPHA per test (Bonferroni over the monitored
    columns). Fixed priors (a flat mu has no prior draw) are run without biases, ranking
    3 eta_ij and the lengths of U_0 and V_0. Thin 10, chosen while the sparse-row scale
    moves were off for the probit (then, at seed 2026: min p 0.0046, hierarchical, all, to
    0.021; at thin 5 the hierarchical runs gave 0.001-0.007). With those moves on the latent
    responses, seed 2026, the hierarchical, per-factor and per-side priors gave min p
    0.013-0.31 at thin 10 and 0.0077-0.37 at thin 5. A sampler truncating on the wrong
    side gives p = 1e-209 (hierarchical, sparse).
    """
    ranks, n_ranks = probit_sbc_ranks(SBC_SPECS[prior], design, n_reps=300, seed=2026, thin=10)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > SBC_FAMILY_ALPHA / ranks.shape[1]).all(), pvalues


@pytest.mark.slow
@pytest.mark.parametrize("design", ["all", "sparse"])
def test_sbc_fails_on_moves_reading_the_labels(design):
    """The slow SBC rejects the sampler whose scale moves read the 0/1 labels instead of z.

    Same replicates and chains as `test_simulation_based_calibration` (hierarchical prior),
    the sparse-row scale moves given the labels as their responses. Seed 2026: min p 8e-26
    (all) and 5e-9 (sparse), in the factor sd's and the user-bias sd's columns.
    """
    ranks, n_ranks = probit_sbc_ranks(SBC_SPECS["hierarchical"], design, n_reps=300, seed=2026, thin=10, label_moves=True)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues < SBC_FAMILY_ALPHA / ranks.shape[1]).any(), pvalues


# ---------------------------------------------------------------------------------------
# Planted truth
# ---------------------------------------------------------------------------------------
def planted_binary(seed: int, n_users: int = 120, n_items: int = 80, K: int = 2, density: float = 0.5):
    """Binary data from a planted probit model; returns (data, true eta (users x items))."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(0, 1.0, (n_users, K)), rng.normal(0, 1.0, (n_items, K))
    eta = 0.3 + rng.normal(0, 0.5, n_users)[:, None] + rng.normal(0, 0.5, n_items)[None, :] + U @ V.T
    user_idx, item_idx = np.nonzero(rng.random((n_users, n_items)) < density)
    labels = (rng.random(user_idx.size) < special.ndtr(eta[user_idx, item_idx])).astype(float)
    return _data(user_idx, item_idx, labels, n_users, n_items), eta


def test_planted_truth_is_recovered():
    """Posterior mean P(y=1) tracks the planted Phi(eta) on held-out pairs; coverage near 90 %.

    120 x 80 users x items, rank 2, half the pairs observed. On the unobserved pairs the
    posterior-mean probability must correlate with the truth above 0.8 and the central
    90 % intervals of eta must cover the truth on 70-99 % of them (a loose band around the
    nominal 90 %; seeds 0-4 gave 0.93-0.95 correlation and 84-91 % coverage). A sampler
    that truncates on the wrong side correlates negatively.
    """
    data, eta = planted_binary(0)
    fit = PMF(n_factors=2, likelihood="bernoulli").fit(
        data, method="gibbs", draws=300, tune=300, chains=2, random_seed=5, progressbar=False
    )
    post = fit.idata["posterior"]
    draws = (post["mu"].values[..., None, None] + post["user_bias"].values[..., :, None]
             + post["item_bias"].values[..., None, :] + np.einsum("cduk,cdik->cdui", post["U"].values, post["V"].values))
    draws = draws.reshape(-1, *eta.shape)
    held = np.ones(eta.shape, dtype=bool)
    held[data.user_idx, data.item_idx] = False
    p_mean = special.ndtr(draws).mean(axis=0)[held]
    assert np.corrcoef(p_mean, special.ndtr(eta[held]))[0, 1] > 0.8
    lower, upper = np.quantile(draws, [0.05, 0.95], axis=0)
    coverage = np.mean((lower[held] <= eta[held]) & (eta[held] <= upper[held]))
    assert 0.7 < coverage < 0.99, coverage
