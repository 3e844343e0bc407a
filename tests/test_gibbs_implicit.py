"""Tests of the implicit-feedback likelihood of the Gibbs sampler (bayesmf.inference.gibbs.implicit).

Tiers: the row kernel and the sums over all pairs against dense numpy; the conditional-mean
sweep against a dense weighted ALS; planted truth (held-out choices ranked high);
reproducibility; simulation-based calibration (a fast variant, the rest slow).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import solve_triangular

from bayesmf import PMF, IdEncoder, RatingsData
from bayesmf.inference.gibbs.kernels.implicit_rows import (
    WeightedPairs,
    implicit_stats,
    sample_implicit_rows,
)
from bayesmf.inference.gibbs.kernels.rows import ROW_BATCH
from bayesmf.inference.gibbs.kernels.structs import RowFit, Side
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.start import initial_state
from bayesmf.inference.gibbs.sweep import build_sweep

FAST = {"draws": 20, "tune": 10, "chains": 2, "progressbar": False, "random_seed": 0}


def _data(user_idx, item_idx, values, n_users, n_items) -> RatingsData:
    users, items = IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items))
    return RatingsData(np.asarray(user_idx), np.asarray(item_idx), np.asarray(values, float), (0.0, 1.0), users, items)


def _dense(n_rows, n_other, indptr, other, values, fill):
    """(n_rows, n_other) matrix of ``values`` at the observed pairs, ``fill`` elsewhere."""
    out = np.full((n_rows, n_other), fill, dtype=float)
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    out[rows, other] = values
    return out


def _features(other_params, mu, has_bias):
    """x_j (rows) and the offsets o_j of the other side."""
    if has_bias:
        return np.c_[np.ones(len(other_params)), other_params[:, 1:]], mu + other_params[:, 0]
    return other_params, np.zeros(len(other_params))


# -- the row kernel --------------------------------------------------------------------------
@pytest.mark.parametrize("has_bias", [True, False], ids=["biases", "no-biases"])
@pytest.mark.parametrize("alpha", [0.0, -0.8])
def test_row_kernel_matches_a_dense_solve_over_all_pairs(has_bias, alpha):
    """Each row's draw, for given normals, is the dense formula over EVERY pair; the sums too.

    19 rows (two full batches and a partial one), some with no observed pair (they still see
    every pair at response 0), one observing every pair; general responses and weights
    (>= 1, some exactly 1). The dense route builds the full weight and response matrices (0 and 1
    off the observed pairs) and solves each row with numpy.
    """
    rng = np.random.default_rng(11)
    n_rows, n_other, K = 19, 13, 3
    assert n_rows > 2 * ROW_BATCH
    counts = rng.integers(0, 6, n_rows)
    counts[[2, 9]] = 0
    counts[5] = n_other
    indptr = np.r_[0, np.cumsum(counts)]
    other = np.concatenate([np.sort(rng.choice(n_other, c, replace=False)) for c in counts])
    response = rng.normal(0.8, 0.5, indptr[-1])
    weight = rng.uniform(1.0, 6.0, indptr[-1])
    weight[::4] = 1.0  # as heavy as an unobserved pair
    kp = K + int(has_bias)
    other_params = rng.normal(0.0, 0.7, (n_other, kp))
    mu, inv_sigma2 = (0.3 if has_bias else 0.0), 1.0 / 0.7
    prec = rng.uniform(0.5, 3.0, kp)
    pmean = rng.normal(0.0, 0.3, kp)
    normals = rng.standard_normal((n_rows, kp))
    old = rng.normal(0.0, 1.0, (n_rows, kp))
    out = old.copy()
    pairs = WeightedPairs(indptr, other, response, weight)
    S1, S2 = sample_implicit_rows(pairs, Side(out, prec, pmean), other_params, RowFit(mu, inv_sigma2, has_bias),
                                  normals, alpha, True)
    W = _dense(n_rows, n_other, indptr, other, weight, 1.0)
    Y = _dense(n_rows, n_other, indptr, other, response, 0.0)
    X, o = _features(other_params, mu, has_bias)
    for i in range(n_rows):
        lam = np.diag(prec) + inv_sigma2 * (X.T * W[i]) @ X
        chol = np.linalg.cholesky(lam)
        h = inv_sigma2 * X.T @ (W[i] * (Y[i] - o)) + prec * pmean
        y = (1 - alpha) * solve_triangular(chol, h, lower=True) + np.sqrt(1 - alpha**2) * normals[i]
        expected = solve_triangular(chol.T, y, lower=False) + alpha * old[i]
        np.testing.assert_allclose(out[i], expected, rtol=1e-10, atol=1e-12)
    E = X @ out.T  # (n_other, n_rows): x_j . theta_i
    E = E.T + (other_params[:, 0][None, :] if has_bias else 0.0)  # e_ij = eta_ij - mu
    np.testing.assert_allclose([S1, S2], [np.sum(W * (Y - E)), np.sum(W * (Y - E) ** 2)], rtol=1e-10)
    again = old.copy()
    assert sample_implicit_rows(pairs, Side(again, prec, pmean), other_params, RowFit(mu, inv_sigma2, has_bias),
                                normals, alpha, False) == (0.0, 0.0)
    np.testing.assert_array_equal(again, out)
    # the sums from scratch at the new rows (rows as users, the other side as items)
    np.testing.assert_allclose(implicit_stats(pairs, out, other_params, has_bias), (S1, S2), rtol=1e-10)


# -- the whole likelihood ------------------------------------------------------------------
def _planted(seed: int, n_users: int = 30, n_items: int = 24, K: int = 2, density: float = 0.15):
    """Implicit data chosen from a low-rank model: P(chosen) grows with U_i . V_j."""
    rng = np.random.default_rng(seed)
    U = rng.normal(0, 1, (n_users, K))
    V = rng.normal(0, 1, (n_items, K))
    score = U @ V.T + rng.normal(0, 0.3, n_items)[None, :]
    cut = np.quantile(score, 1 - density)
    chosen = score + rng.logistic(0, 0.3, score.shape) > cut
    user_idx, item_idx = np.nonzero(chosen)
    counts = rng.integers(1, 6, len(user_idx)).astype(float)
    return score, chosen, _data(user_idx, item_idx, counts, n_users, n_items)


def _dense_model(problem, state):
    """Dense weights, responses and e = eta - mu over all pairs."""
    by_user = problem.ratings.by_user
    shape = (problem.n_users, problem.n_items)
    W = _dense(*shape, by_user.indptr, by_user.other, problem.weights[0], 1.0)
    Y = _dense(*shape, by_user.indptr, by_user.other, by_user.rating, 0.0)
    s = problem.start
    E = state.P_user[:, s:] @ state.P_item[:, s:].T
    if s:
        E = E + state.P_user[:, :1] + state.P_item[:, 0][None, :]
    return W, Y, E


@pytest.mark.parametrize("spec", [
    PMF(n_factors=2, likelihood="implicit"),
    PMF(n_factors=2, likelihood="implicit", biases=False, confidence="log", confidence_scale=3.0),
    PMF(n_factors=2, likelihood="implicit", factor_prior="per_side"),
    PMF(n_factors=2, likelihood="implicit", priors="fixed"),
], ids=["shared", "no-biases-log", "per-side", "fixed"])
def test_sse_log_likelihood_and_mu_match_dense_sums(spec):
    """After sweeps, the weighted SSE and the log-likelihood equal their dense sums over all pairs.

    Also the sums the item pass hands to the global mean, and the moves that apply: the
    rating-only ones (`SparseScaleMoves`, `CollapsedBiasScale`) are off.
    """
    from bayesmf.inference.gibbs.moves import CollapsedBiasScale, SparseScaleMoves

    _, _, data = _planted(1)
    rng = np.random.default_rng(2)
    problem = build_problem(spec, data)
    state = initial_state(problem, spec, data, rng, "map")
    sweep = build_sweep(problem)
    assert not any(isinstance(step, SparseScaleMoves | CollapsedBiasScale) for step in sweep.steps)
    variates = sweep.variates()
    for _ in range(7):
        sweep(state, variates, rng)
    W, Y, E = _dense_model(problem, state)
    mu = state.scalars[0]
    sigma2 = state.scalars[1]
    np.testing.assert_allclose(state.sse, np.sum(W * (Y - mu - E) ** 2), rtol=1e-9)
    expected_ll = np.sum(stats.norm.logpdf(Y, mu + E, np.sqrt(sigma2 / W)))
    np.testing.assert_allclose(sweep.stats(state)["log_likelihood_sum"], expected_ll, rtol=1e-9)
    np.testing.assert_allclose(problem.weight_sum, W.sum(), rtol=1e-12)
    state.sse_stale, sse = True, state.sse
    sweep.likelihood.refresh(state)
    np.testing.assert_allclose(state.sse, sse, rtol=1e-9)
    # the gamma shape of sigma^2 counts every pair
    assert variates.shapes[0] == spec.hyper["sigma2"][0] + problem.n_users * problem.n_items / 2


def test_observed_zeros_with_unit_weight_change_nothing():
    """Passing the unobserved pairs explicitly (response 0, weight 1) gives the same chain.

    An independent check of the all-pairs terms: with every pair in the data, the Gram
    matrix over all pairs is exercised by observed pairs instead.
    """
    spec = PMF(n_factors=2, likelihood="implicit")
    _, chosen, data = _planted(4)
    weights = 1.0 + 2.0 * data.rating
    every_u, every_i = np.nonzero(np.ones_like(chosen))
    full_w = np.ones(chosen.shape)
    full_w[data.user_idx, data.item_idx] = weights
    full = _data(every_u, every_i, np.ones(every_u.size), *chosen.shape)
    chains = []
    for d, y, w in ((data, None, weights), (full, chosen[every_u, every_i].astype(float), full_w[every_u, every_i])):
        rng = np.random.default_rng(8)
        problem = build_problem(spec, d, responses=y, weights=w)
        state = initial_state(problem, spec, d, rng, "map")
        sweep = build_sweep(problem)
        variates = sweep.variates()
        for _ in range(3):
            sweep(state, variates, rng)
        chains.append((state.P_user.copy(), state.P_item.copy(), state.scalars.copy(), state.sse))
    for a, b in zip(*chains, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("biases", [True, False], ids=["biases", "no-biases"])
def test_conditional_mean_sweeps_are_dense_weighted_als(biases):
    """The "map" start's conditional-mean sweep is weighted ALS over every pair (Hu et al. 2008).

    From the same start, a dense numpy ALS (each row a ridge solve over all pairs with the
    full weight matrix, then with biases the flat-prior mean of mu and the centring of the
    biases that `BiasShift` makes at zero variates) gives the same iterates, and both
    reach a fixed point.
    """
    spec = PMF(n_factors=2, likelihood="implicit", priors="fixed", biases=biases, confidence_scale=4.0)
    _, _, data = _planted(5)
    problem = build_problem(spec, data)
    rng = np.random.default_rng(0)
    state = initial_state(problem, spec, data, rng, "prior")
    sweep = build_sweep(problem, stochastic=False)
    variates = sweep.variates()
    W, Y, _ = _dense_model(problem, state)
    Pu, Pi, mu = state.P_user.copy(), state.P_item.copy(), state.scalars[0]
    lam_u = problem.fixed_sigma2 * problem.fixed_prec_user  # ridge weights sigma^2 / sd^2
    lam_i = problem.fixed_sigma2 * problem.fixed_prec_item

    def solve_side(P_own, P_other, Wm, Ym, lam, mu):
        X, o = _features(P_other, mu, biases)
        for i in range(P_own.shape[0]):
            A = (X.T * Wm[i]) @ X + np.diag(lam)
            P_own[i] = np.linalg.solve(A, X.T @ (Wm[i] * (Ym[i] - o)))

    for _ in range(300):
        sweep(state, variates, rng)
        solve_side(Pu, Pi, W, Y, lam_u, mu)
        solve_side(Pi, Pu, W.T, Y.T, lam_i, mu)
        if biases:
            E = Pu[:, 1:] @ Pi[:, 1:].T + Pu[:, :1] + Pi[:, 0][None, :]
            mu = np.sum(W * (Y - E)) / W.sum()
            db, dc = Pu[:, 0].mean(), Pi[:, 0].mean()
            mu, Pu[:, 0], Pi[:, 0] = mu + db + dc, Pu[:, 0] - db, Pi[:, 0] - dc
    np.testing.assert_allclose(state.P_user, Pu, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(state.P_item, Pi, rtol=1e-6, atol=1e-8)
    assert np.isclose(state.scalars[0], mu if biases else 0.0, rtol=1e-8)
    before = state.P_user.copy()
    sweep(state, variates, rng)
    np.testing.assert_allclose(state.P_user, before, atol=1e-6)  # a fixed point: the ALS solution
