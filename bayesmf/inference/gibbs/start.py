"""Initial points of the chains: ``init="map"`` (ALS sweeps, jittered) or ``init="prior"``.

The order of the random numbers each start draws from its chain's generator is part of
what a seed reproduces; do not reorder.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from bayesmf.inference.gibbs.implicit import implicit_data_scales, implicit_mean
from bayesmf.inference.gibbs.state import ChainState
from bayesmf.inference.gibbs.sweep import build_sweep

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.spec import PMF

__all__ = ["INITS", "initial_state", "initial_states"]

INITS = ("map", "prior")
#: conditional-mean (ALS) sweeps of the "map" start
_INIT_SWEEPS = 10
#: sd of the per-chain jitter added to the "map" start, relative to each column's spread
_INIT_JITTER = 0.5


def _inverse_gamma(rng: np.random.Generator, a: float, b: float, size: int | None = None) -> Any:
    return b / rng.standard_gamma(a, size=size)


def initial_states(
    problem: Problem,
    spec: PMF,
    data: RatingsData,
    rngs: Sequence[np.random.Generator],
    init: str,
    cores: int = 1,
) -> list[ChainState]:
    """Every chain's start (`initial_state`), ``cores`` at a time on worker threads.

    The kernels release the GIL, so the starts' ALS sweeps (``init="map"``) run in parallel;
    each chain uses only its own generator, so the starts are those of one chain after another.
    """
    pool = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="bayesmf-gibbs-init")
    try:
        with threadpool_limits(limits=1):
            futures = [pool.submit(initial_state, problem, spec, data, rng, init) for rng in rngs]
            states = [f.result() for f in futures]
    except BaseException:  # Ctrl-C or a failed start: do not wait for the other starts
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return states


def initial_state(
    problem: Problem, spec: PMF, data: RatingsData, rng: np.random.Generator, init: str
) -> ChainState:
    """Draw the starting point of one chain; see `bayesmf.inference.gibbs.fit_gibbs` (``init``)."""
    nu, ni, K, kp = problem.n_users, problem.n_items, problem.n_factors, problem.kp
    start = problem.start
    low, high = problem.scale  # the rating scale, or [0, 1] for implicit feedback
    if init == "prior" and problem.hierarchical:
        hyper = problem.hyper
        (a_f, b_f), (a_b, b_b) = hyper.factor, hyper.bias
        sigma2 = _inverse_gamma(rng, *hyper.sigma2) if problem.learn_noise else problem.fixed_sigma2

        def factor_variances() -> np.ndarray:
            if problem.per_factor:
                return _inverse_gamma(rng, a_f, b_f, size=K)  # type: ignore[no-any-return]
            return np.full(K, _inverse_gamma(rng, a_f, b_f))

        factor_var = factor_variances()
        # the item side's own variance(s) under per-side priors (the means come below)
        factor_var_item = factor_variances() if problem.per_side else factor_var
        bias_var = (_inverse_gamma(rng, a_b, b_b), _inverse_gamma(rng, a_b, b_b))
        mu = hyper.mu_mean + rng.standard_normal() / np.sqrt(hyper.mu_prec)
        sd_user = np.sqrt(np.r_[bias_var[0], factor_var] if start else factor_var)
        sd_item = np.sqrt(np.r_[bias_var[1], factor_var_item] if start else factor_var_item)
    else:
        sigma2 = problem.fixed_sigma2
        sd_user = 1.0 / np.sqrt(problem.fixed_prec_user)
        sd_item = 1.0 / np.sqrt(problem.fixed_prec_item)
        bias_var = (spec.sigma_bias**2, spec.sigma_bias**2)
        factor_var = np.full(K, spec.sigma_u * spec.sigma_v)
        # a flat mu has no prior draw: start it uniformly on the rating scale
        mu = rng.uniform(low, high) if init == "prior" else _mean_response(problem, data)
    state = ChainState(
        P_user=rng.standard_normal((nu, kp)) * sd_user,
        P_item=rng.standard_normal((ni, kp)) * sd_item,
        scalars=np.array([mu if start else 0.0, sigma2, bias_var[0], bias_var[1]], dtype=np.float64),
        factor_var=np.asarray(factor_var, dtype=np.float64).copy(),
        prec_user=1.0 / sd_user**2,
        prec_item=1.0 / sd_item**2,
        pm_user=np.zeros(kp),
        pm_item=np.zeros(kp),
    )
    if init == "prior":
        if problem.per_side:  # m ~ N(0, v / kappa), rows ~ N(m, v)
            for rows, sd in ((state.user, sd_user), (state.item, sd_item)):
                rows.mean[start:] = rng.standard_normal(K) * sd[start:] / np.sqrt(problem.kappa)
                rows.P[:, start:] += rows.mean[start:]
        return state
    _map_start(problem, data, rng, state)
    return state


def _map_start(problem: Problem, data: RatingsData, rng: np.random.Generator, state: ChainState) -> None:
    """From a small random start, a few ALS (conditional-mean) sweeps reach a mode-like point.

    Each chain's random start and jitter make the starts overdispersed. Fixed priors use
    the model's own weights (with implicit feedback, its fixed noise and every pair). Hierarchical priors use weights from the data
    (`_data_scales`): the spec's fixed sds can be far too tight for the data, and factors
    shrunk to ~0 with a tiny factor variance are a region Gibbs leaves slowly.
    """
    nu, ni, K, kp, start = problem.n_users, problem.n_items, problem.n_factors, problem.kp, problem.start
    if problem.hierarchical:
        scales = implicit_data_scales(problem) if problem.implicit else _data_scales(problem, data)
        sigma2_0, bias_var_0, factor_var_0 = scales
        bias_prec = [1.0 / bias_var_0] if start else []
        state.prec_user[:] = bias_prec + [1.0 / factor_var_0] * K
        state.prec_item[:] = state.prec_user
        state.scalars[1] = sigma2_0 if problem.learn_noise else problem.fixed_sigma2
    else:
        state.prec_user[:] = problem.fixed_prec_user
        state.prec_item[:] = problem.fixed_prec_item
    state.P_user[:] = 0.3 * rng.standard_normal((nu, kp)) / np.sqrt(state.prec_user)
    state.P_item[:] = 0.3 * rng.standard_normal((ni, kp)) / np.sqrt(state.prec_item)
    sweep = build_sweep(problem, stochastic=False)
    variates = sweep.variates()  # zeros: conditional means
    for _ in range(_INIT_SWEEPS):
        sweep(state, variates, rng)
    for P in (state.P_user, state.P_item):
        spread = np.sqrt(np.mean(P**2, axis=0)) + 1e-3
        P += _INIT_JITTER * spread * rng.standard_normal(P.shape)
    if not problem.hierarchical:
        return
    if problem.learn_noise:
        state.scalars[1] = max(state.sse / problem.n_terms, 1e-6)
    squares = np.concatenate([state.P_user[:, start:], state.P_item[:, start:]]) ** 2
    state.factor_var[:] = squares.mean(axis=0) if problem.per_factor else squares.mean()
    if start:
        state.scalars[2] = max(float(np.mean(state.P_user[:, 0] ** 2)), 1e-4)
        state.scalars[3] = max(float(np.mean(state.P_item[:, 0] ** 2)), 1e-4)
    state.prec_user[start:] = 1.0 / state.factor_var
    state.prec_item[start:] = 1.0 / state.factor_var
    if problem.per_side:  # each side's column means and spreads
        for rows in (state.user, state.item):
            rows.mean[start:] = rows.P[:, start:].mean(axis=0)
            centred = (rows.P[:, start:] - rows.mean[start:]) ** 2
            var = centred.mean(axis=0) if problem.per_factor else np.full(K, centred.mean())
            rows.prec[start:] = 1.0 / np.maximum(var, 1e-8)
    if start:
        state.prec_user[0] = 1.0 / state.scalars[2]
        state.prec_item[0] = 1.0 / state.scalars[3]


def _mean_response(problem: Problem, data: RatingsData) -> float:
    """Return the mean rating, or the weighted mean response over all pairs (implicit feedback)."""
    return implicit_mean(problem) if problem.implicit else float(np.mean(data.rating))


def _data_scales(problem: Problem, data: RatingsData) -> tuple[float, float, float]:
    r"""Rough noise variance, bias variance and factor variance read off the data.

    Damped user and item means give the biases; of the variance :math:`v` left after them,
    half is credited to noise and half to :math:`U_i \cdot V_j`, whose variance is
    :math:`K s^4` for factor entries of variance :math:`s^2`. 0/1 labels are first put on
    the probit's latent scale (`_latent_scale`).
    """
    rating = _latent_scale(data.rating) if problem.binary else data.rating
    if problem.has_bias:
        resid = rating - rating.mean()
        damp = 5.0  # pseudo-ratings pulling sparse users' and items' means to 0
        user_bias = np.bincount(data.user_idx, resid, data.n_users) / (data.user_counts() + damp)
        resid = resid - user_bias[data.user_idx]
        item_bias = np.bincount(data.item_idx, resid, data.n_items) / (data.item_counts() + damp)
        resid = resid - item_bias[data.item_idx]
        bias_var = max(float(np.var(np.r_[user_bias, item_bias])), 1e-3)
    else:
        resid, bias_var = rating, 1.0
    left = max(float(np.mean(resid**2)), 1e-6)
    return left / 2.0, bias_var, float(np.sqrt(left / (2.0 * problem.n_factors)))


def _latent_scale(labels: np.ndarray) -> np.ndarray:
    r"""0/1 labels on the probit's latent scale, linearized at the share :math:`p` of ones.

    Near :math:`\eta = \Phi^{-1}(p)` a change :math:`d\eta` moves :math:`P(y = 1)` by
    :math:`\varphi(\eta)\, d\eta`, so label spreads divided by :math:`\varphi(\Phi^{-1}(p))`
    are spreads of :math:`\eta` plus the unit latent noise. On the 0/1 scale the start's
    factor variance would be several times too small, and chains started there can stay
    for hundreds of sweeps in a mode where the factors explain almost nothing.
    """
    share = float(np.clip(np.mean(labels), 0.01, 0.99))
    return np.asarray(labels, dtype=np.float64) / float(norm.pdf(norm.ppf(share)))
