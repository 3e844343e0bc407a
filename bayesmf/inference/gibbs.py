r"""Blocked conjugate Gibbs sampler for the normal-likelihood, identity-link PMF (BPMF-like).

The model (`bayesmf.spec.PMF` with ``link="identity"``, ``likelihood="normal"``):

.. math::

    r_{ij} \sim \mathcal N(\mu + b_i + c_j + U_i \cdot V_j,\ \sigma^2)

``priors="fixed"``: :math:`U_i \sim \mathcal N(0, \sigma_U^2 I)`,
:math:`V_j \sim \mathcal N(0, \sigma_V^2 I)`, :math:`b_i, c_j \sim \mathcal N(0, \sigma_b^2)`,
:math:`\mu` flat, :math:`\sigma` = ``spec.noise_sd(scale)``.

``priors="hierarchical"``: :math:`\sigma^2 \sim \mathrm{IG}(a_\sigma, b_\sigma)`; one factor
variance :math:`s^2 \sim \mathrm{IG}(a_f, b_f)` with :math:`U_i, V_j \sim \mathcal N(0, s^2 I)`
(or one :math:`s_k^2` per factor, shared by column k of U and V, with
``per_factor_scales``), or with ``factor_prior="per_side"`` each side's own factor means
and variance(s), :math:`m_k \mid v_k \sim \mathcal N(0, v_k/\kappa_0)`, rows
:math:`\sim \mathcal N(m, \mathrm{diag}(v))` (BPMF's hyperprior, diagonal); user- and
item-bias variances each :math:`\mathrm{IG}(a_b, b_b)`;
:math:`\mu \sim \mathcal N(\text{midpoint}, (\text{half-range})^2)` of the rating scale.
:math:`\mathrm{IG}(a, b)` has density :math:`\propto x^{-a-1} e^{-b/x}` (PyMC's
``InverseGamma(alpha=a, beta=b)``); the pairs are ``spec.hyper``.

One sweep draws, in order: every :math:`(b_i, U_i)` jointly given the rest (a
:math:`(K+1)`-dimensional Gaussian per user, all users in one numba kernel, overrelaxed by
default: see ``overrelaxation`` in `fit_gibbs`), every
:math:`(c_j, V_j)`, :math:`\mu`, a joint shift of :math:`(\mu, b, c)` along the directions
the likelihood cannot see (:math:`\mu + \delta_b + \delta_c, b - \delta_b, c - \delta_c`;
without it :math:`\mu` mixes slowly), then :math:`\sigma^2`, the factor variance(s) (or each
side's mean and variance(s), drawn jointly, followed with biases by a shift of each side's
factors and mean that the other side's biases compensate: :math:`U_i + \delta`,
:math:`m_U + \delta`, :math:`c_j - \delta \cdot V_j`, and the same for items) and the
two bias variances from their inverse-gamma conditionals. Sampling the bias with its factor
row avoids the slow mixing of separate bias updates. Under the per-side prior two last
moves follow: each factor's scale is traded between the two sides (`_rescale_sides`: column
k of U, its mean and sd times :math:`a`, those of V over :math:`a`), which the likelihood
cannot see, and each side's bias variance is redrawn with its biases integrated out, then
the biases (`_collapsed_bias_scale`). Under the other hierarchical priors the last moves
scale the factor variance(s) and each bias variance together with the rows they govern that
have few ratings (`_sparse_scale_moves`): on sparse data those rows are mostly prior, and
the variance and they would otherwise drift together in small steps.

Each chain has its own ``numpy.random.Generator`` spawned from ``random_seed``
(`numpy.random.SeedSequence.spawn`) and every random number is drawn by it, so the same seed
gives the same draws however the chains are scheduled on threads. Chains run in parallel
threads (the kernels release the GIL).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf._validate import validate_choice, validate_positive_int
from bayesmf.inference._gibbs_kernels import (
    collapsed_bias_var,
    gibbs_sweep,
    residual_stats,
    sparse_scale_moves,
)
from bayesmf.model import mu_prior
from bayesmf.posterior import make_posterior, param_names
from bayesmf.spec import FACTOR_MEAN_KAPPA

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["fit_gibbs"]

log = logging.getLogger("bayesmf")

INITS = ("map", "prior")
#: conditional-mean (ALS) sweeps of the "map" start
_INIT_SWEEPS = 10
#: sd of the per-chain jitter added to the "map" start, relative to each column's spread
_INIT_JITTER = 0.5
#: rows with at most this many training ratings are moved with their prior scale by
#: `_sparse_scale_moves` (their factors and biases are mostly prior)
SPARSE_ROW_RATINGS = 10
#: posteriors larger than this draw a warning before sampling starts
_LARGE_POSTERIOR_BYTES = 4e9


@dataclass(frozen=True)
class _Problem:
    """Everything a sweep needs that does not change during sampling."""

    u_csr: tuple[np.ndarray, np.ndarray, np.ndarray]  # indptr, item index, rating (by user)
    i_csr: tuple[np.ndarray, np.ndarray, np.ndarray]  # indptr, user index, rating (by item)
    n_users: int
    n_items: int
    n_factors: int
    has_bias: bool
    hierarchical: bool
    per_factor: bool
    per_side: bool  # factor_prior="per_side": each side's own factor mean and variance(s)
    consts: np.ndarray  # a_s2, b_s2, a_f, b_f, a_b, b_b, mu prior mean, mu prior precision
    gamma_shapes: np.ndarray  # posterior shapes of the inverse-gamma draws
    fixed_sigma2: float
    fixed_prec_user: np.ndarray  # prior precisions of one (b_i, U_i) row under fixed priors
    fixed_prec_item: np.ndarray
    sparse_user: np.ndarray  # uint8: rows moved by `_sparse_scale_moves` (few ratings)
    sparse_item: np.ndarray

    @property
    def kp(self) -> int:
        return self.n_factors + int(self.has_bias)


@dataclass
class _State:
    """One chain's current point (arrays are updated in place by the kernel)."""

    P_user: np.ndarray
    P_item: np.ndarray
    scalars: np.ndarray  # mu, sigma2, user-bias variance, item-bias variance
    factor_var: np.ndarray
    prec_user: np.ndarray
    prec_item: np.ndarray
    pm_user: np.ndarray  # prior mean of a (b_i, U_i) row: 0 but for per-side factor means
    pm_item: np.ndarray


def _csr(
    rows: np.ndarray, cols: np.ndarray, rating: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, np.ascontiguousarray(cols[order]), np.ascontiguousarray(rating[order])


def _problem(spec: PMF, data: RatingsData) -> _Problem:
    hyper = spec.hyper
    n_users, n_items, n_factors = data.n_users, data.n_items, spec.n_factors
    n_obs = data.n_ratings
    hierarchical = spec.priors == "hierarchical"
    per_factor = hierarchical and spec.per_factor_scales
    per_side = hierarchical and spec.factor_prior == "per_side"
    a_s, b_s = hyper["sigma2"]
    a_f, b_f = hyper["factor_var"]
    a_b, b_b = hyper["bias_var"]
    mu_mean, mu_sd = mu_prior(spec, data.scale)
    mu_prec = 1.0 / mu_sd**2 if hierarchical else 0.0  # 0: flat prior (fixed priors)
    consts = np.array([a_s, b_s, a_f, b_f, a_b, b_b, mu_mean, mu_prec])
    if per_side:  # the user side's variance(s), then the item side's
        factor_shapes = [
            a_f + n / 2.0 * (1 if per_factor else n_factors)
            for n in (n_users, n_items)
            for _ in range(n_factors if per_factor else 1)
        ]
    elif per_factor:
        factor_shapes = [a_f + (n_users + n_items) / 2.0] * n_factors
    else:
        factor_shapes = [a_f + (n_users + n_items) * n_factors / 2.0]
    shapes = [a_s + n_obs / 2.0, *factor_shapes]
    if spec.biases:
        shapes += [a_b + n_users / 2.0, a_b + n_items / 2.0]
    bias_prec = [1.0 / spec.sigma_bias**2] if spec.biases else []
    return _Problem(
        u_csr=_csr(data.user_idx, data.item_idx, data.rating, n_users),
        i_csr=_csr(data.item_idx, data.user_idx, data.rating, n_items),
        n_users=n_users,
        n_items=n_items,
        n_factors=n_factors,
        has_bias=spec.biases,
        hierarchical=hierarchical,
        per_factor=per_factor,
        per_side=per_side,
        consts=consts,
        gamma_shapes=np.array(shapes),
        fixed_sigma2=spec.noise_sd(data.scale) ** 2,
        fixed_prec_user=np.array(bias_prec + [1.0 / spec.sigma_u**2] * n_factors),
        fixed_prec_item=np.array(bias_prec + [1.0 / spec.sigma_v**2] * n_factors),
        sparse_user=(np.bincount(data.user_idx, minlength=n_users) <= SPARSE_ROW_RATINGS).astype(np.uint8),
        sparse_item=(np.bincount(data.item_idx, minlength=n_items) <= SPARSE_ROW_RATINGS).astype(np.uint8),
    )


def _sweep(
    problem: _Problem,
    state: _State,
    rng: np.random.Generator,
    bufs: dict[str, np.ndarray],
    *,
    stochastic: bool = True,
    overrelaxation: float = 0.0,
) -> float:
    """One Gibbs sweep (``stochastic=False``: a conditional-mean, ALS-like sweep, no hypers).

    ``overrelaxation`` is the coefficient of the factor rows' draws (see `fit_gibbs`).
    """
    z_user, z_item, gammas = bufs["z_user"], bufs["z_item"], bufs["gammas"]
    if stochastic:
        rng.standard_normal(out=z_user)
        rng.standard_normal(out=z_item)
        rng.standard_normal(out=bufs["z_scalar"])
        if problem.per_side:
            rng.standard_normal(out=bufs["z_side"])
        rng.standard_gamma(problem.gamma_shapes, out=gammas)
    else:
        z_user[...] = 0.0
        z_item[...] = 0.0
        bufs["z_scalar"][...] = 0.0
    sse = float(
        gibbs_sweep(
            *problem.u_csr,
            *problem.i_csr,
            state.P_user,
            state.P_item,
            state.scalars,
            state.factor_var,
            state.prec_user,
            state.prec_item,
            problem.consts,
            z_user,
            z_item,
            bufs["z_scalar"],
            gammas,
            problem.has_bias,
            problem.hierarchical and stochastic,
            problem.per_factor,
            overrelaxation if stochastic else 0.0,
            problem.per_side,
            state.pm_user,
            state.pm_item,
            bufs["z_side"],
            FACTOR_MEAN_KAPPA,
        )
    )
    if stochastic and problem.hierarchical and not problem.per_side:
        sse = _sparse_scale_moves(problem, state, rng, sse)
    if stochastic and problem.per_side:
        _rescale_sides(problem, state, rng)
        if problem.has_bias:
            _collapsed_bias_scale(problem, state, rng, "item")
            _collapsed_bias_scale(problem, state, rng, "user")
            # the biases moved: the sum of squares recorded with this draw must be the new one
            total, total_sq = residual_stats(*problem.u_csr, state.P_user, state.P_item, True)
            mu = state.scalars[0]
            sse = max(total_sq - 2.0 * mu * total + len(problem.u_csr[2]) * mu * mu, 0.0)
    return sse


#: uniforms handed to the slice-sampling step of a side's log bias variance (3 + shrinkages)
_SLICE_UNIFORMS = 64


def _sparse_scale_moves(
    problem: _Problem, state: _State, rng: np.random.Generator, sse: float, only: int = -1
) -> float:
    r"""Move each prior variance together with the rows it governs that have few ratings.

    Rows with at most `SPARSE_ROW_RATINGS` ratings are mostly prior: given the variance
    :math:`v` they are drawn near :math:`\mathcal N(0, v)`, and given them :math:`v` is
    pinned near their sum of squares, so the two drift together in small steps. This move
    scales those rows by :math:`t` and :math:`v` by :math:`t^2`, a direction their priors
    do not resist; it is an exact update of :math:`\log\sqrt v` with the scaled rows
    :math:`x/\sqrt v` held fixed, one slice-sampling step (`slice_log_scale`). On
    ml-latest-small (most items have a handful of ratings; 80 % of each user's ratings,
    rank 10, the defaults, seeds 1, 2 and 2026) the factor sd had bulk ESS 185-225 and the
    item-bias sd 145-195 without it; with it, above 1,000 and 480-525.

    In turn (`sparse_scale_moves`): the shared factor variance with the marked rows'
    factors of both sides (with ``per_factor_scales``, each factor's variance with that
    factor's column), then the item-bias variance with the marked items' biases, and the
    user-bias variance with the marked users' (``only``: one kind alone, for tests).
    Returns the residual sum of squares after the moves.
    """
    n_moves = (problem.n_factors if problem.per_factor else 1) + 2 * int(problem.has_bias)
    return float(
        sparse_scale_moves(
            *problem.u_csr, *problem.i_csr, state.P_user, state.P_item, state.scalars, state.factor_var,
            state.prec_user, state.prec_item, problem.consts, problem.sparse_user, problem.sparse_item,
            problem.has_bias, problem.per_factor, rng.random((n_moves, _SLICE_UNIFORMS)), sse, only,
        )
    )


def _collapsed_bias_scale(problem: _Problem, state: _State, rng: np.random.Generator, side: str) -> None:
    r"""Per-side prior: one side's bias variance with its biases integrated out, then the biases.

    See `collapsed_bias_var`. Drawing the variance given the biases and the biases given the
    variance mixes slowly under this prior, where the spread of the item offsets trades with
    the side means (:math:`c_j + m_U \cdot V_j`): on ML-100K u1 the item-offset sd had ESS
    15-60 from 4 x 500 draws without this step.
    """
    if side == "item":
        (indptr, other, rating), P_own, P_other, column = problem.i_csr, state.P_item, state.P_user, 3
        prec = state.prec_item
    else:
        (indptr, other, rating), P_own, P_other, column = problem.u_csr, state.P_user, state.P_item, 2
        prec = state.prec_user
    u = rng.random(_SLICE_UNIFORMS)
    z = rng.standard_normal(P_own.shape[0])
    bias_var = collapsed_bias_var(
        indptr, other, rating, P_own, P_other, state.scalars[0], state.scalars[1], state.scalars[column],
        problem.consts[4], problem.consts[5], u, z, np.empty(P_own.shape[0]),
    )
    state.scalars[column] = bias_var
    prec[0] = 1.0 / bias_var


def _exp_cosh_draws(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    r"""Exact draws from the densities :math:`\propto e^{-\lambda_k \cosh u}`, one per ``lam``.

    Rejection from the Gaussian envelope :math:`e^{-\lambda} e^{-\lambda u^2 / 2}`, which
    bounds the target everywhere (:math:`\cosh u \ge 1 + u^2/2`); a proposal is kept with
    probability :math:`e^{-\lambda(\cosh u - 1 - u^2/2)}`. The acceptance rate is
    :math:`2 K_0(\lambda) e^{\lambda} \sqrt{\lambda / 2\pi}`: 0.89 at :math:`\lambda = 0.7`,
    0.38 at 0.01, 0.011 at :math:`10^{-6}`.
    """
    out = np.empty(lam.shape[0])
    todo = np.arange(lam.shape[0])
    while todo.size:
        u = rng.standard_normal(todo.size) / np.sqrt(lam[todo])
        with np.errstate(over="ignore"):  # cosh(u) = inf far out: rejected, as it should be
            excess = np.cosh(u) - 1.0 - 0.5 * u * u
        keep = np.log(rng.random(todo.size)) < -lam[todo] * excess
        out[todo[keep]] = u[keep]
        todo = todo[~keep]
    return out


def _rescale_sides(problem: _Problem, state: _State, rng: np.random.Generator) -> None:
    r"""Per-side prior: move each factor's scale between users and items, exactly.

    Under ``factor_prior="per_side"``, scaling column k of U, its mean and sd by
    :math:`a` and column k of V, its mean and sd by :math:`1/a` leaves the likelihood
    unchanged (every :math:`U_i \cdot V_j` is kept), and the rows' and means' normal priors
    with their Jacobians cancel; only the two inverse-gamma priors
    :math:`\mathrm{IG}(a_f, b_f)` of the variances :math:`v_{U,k}, v_{V,k}` see :math:`a`.
    With Haar measure :math:`da/a` (Liu & Sabatti 2000), :math:`s = \log a^2` has the
    conditional

    .. math::

        \pi(s) \propto \exp(-A e^{-s} - B e^{s}), \quad A = b_f / v_{U,k},\ B = b_f / v_{V,k},

    that is :math:`s = \tfrac12 \log(A/B) + u` with :math:`u \propto e^{-2\sqrt{AB}\cosh u}`,
    drawn exactly (`_exp_cosh_draws`). Without this move the split of each factor's scale
    between the two sides is set by those weak priors alone and drifts in a slow random
    walk (on ML-100K u1 the norm of the user factor mean had ESS 7 from 4 x 500 draws).
    Without ``per_factor_scales`` each side has one variance, and one :math:`a` scales every
    column.
    """
    start = int(problem.has_bias)
    b_f = problem.consts[3]
    v_user = 1.0 / state.prec_user[start:]
    v_item = 1.0 / state.prec_item[start:]
    if not problem.per_factor:  # one variance per side: one scale for all columns
        v_user, v_item = v_user[:1], v_item[:1]
    A, B = b_f / v_user, b_f / v_item
    s = 0.5 * np.log(A / B) + _exp_cosh_draws(rng, 2.0 * np.sqrt(A * B))
    a = np.broadcast_to(np.exp(0.5 * s), (problem.n_factors,))
    state.P_user[:, start:] *= a
    state.pm_user[start:] *= a
    state.prec_user[start:] /= a * a
    state.P_item[:, start:] /= a
    state.pm_item[start:] /= a
    state.prec_item[start:] *= a * a


def _buffers(problem: _Problem) -> dict[str, np.ndarray]:
    return {
        "z_user": np.empty((problem.n_users, problem.kp)),
        "z_item": np.empty((problem.n_items, problem.kp)),
        "z_scalar": np.empty(3),
        # normals of the two side means, then of the two side shifts (per-side prior)
        "z_side": np.zeros((4, problem.n_factors)),
        "gammas": np.empty(problem.gamma_shapes.shape[0]),
    }


def _inverse_gamma(rng: np.random.Generator, a: float, b: float, size: int | None = None) -> Any:
    return b / rng.standard_gamma(a, size=size)


def _init_state(
    problem: _Problem, spec: PMF, data: RatingsData, rng: np.random.Generator, init: str
) -> _State:
    """Draw the starting point of one chain; see `fit_gibbs` (``init``)."""
    nu, ni, K, kp = problem.n_users, problem.n_items, problem.n_factors, problem.kp
    start = int(problem.has_bias)
    low, high = data.scale
    if init == "prior" and problem.hierarchical:
        a_s, b_s, a_f, b_f, a_b, b_b, mu0, mu_prec = problem.consts
        sigma2 = _inverse_gamma(rng, a_s, b_s)

        def factor_variances() -> np.ndarray:
            if problem.per_factor:
                return _inverse_gamma(rng, a_f, b_f, size=K)  # type: ignore[no-any-return]
            return np.full(K, _inverse_gamma(rng, a_f, b_f))

        factor_var = factor_variances()
        # the item side's own variance(s) under per-side priors (the means come below)
        factor_var_item = factor_variances() if problem.per_side else factor_var
        bias_var = (_inverse_gamma(rng, a_b, b_b), _inverse_gamma(rng, a_b, b_b))
        mu = mu0 + rng.standard_normal() / np.sqrt(mu_prec)
        sd_user = np.sqrt(np.r_[bias_var[0], factor_var] if start else factor_var)
        sd_item = np.sqrt(np.r_[bias_var[1], factor_var_item] if start else factor_var_item)
    else:
        sigma2 = problem.fixed_sigma2
        sd_user = 1.0 / np.sqrt(problem.fixed_prec_user)
        sd_item = 1.0 / np.sqrt(problem.fixed_prec_item)
        bias_var = (spec.sigma_bias**2, spec.sigma_bias**2)
        factor_var = np.full(K, spec.sigma_u * spec.sigma_v)
        # a flat mu has no prior draw: start it uniformly on the rating scale
        mu = rng.uniform(low, high) if init == "prior" else float(np.mean(data.rating))
    state = _State(
        P_user=rng.standard_normal((nu, kp)) * sd_user,
        P_item=rng.standard_normal((ni, kp)) * sd_item,
        scalars=np.array(
            [mu if start else 0.0, sigma2, bias_var[0], bias_var[1]], dtype=np.float64
        ),
        factor_var=np.asarray(factor_var, dtype=np.float64).copy(),
        prec_user=1.0 / sd_user**2,
        prec_item=1.0 / sd_item**2,
        pm_user=np.zeros(kp),
        pm_item=np.zeros(kp),
    )
    if init == "prior":
        if problem.per_side:  # m ~ N(0, v / kappa), rows ~ N(m, v)
            for P, sd, pm in ((state.P_user, sd_user, state.pm_user), (state.P_item, sd_item, state.pm_item)):
                pm[start:] = rng.standard_normal(K) * sd[start:] / np.sqrt(FACTOR_MEAN_KAPPA)
                P[:, start:] += pm[start:]
        return state
    # "map": from a small random start, a few ALS (conditional-mean) sweeps reach a
    # mode-like point; each chain's random start and jitter make the starts overdispersed.
    # Fixed priors use the model's own weights. Hierarchical priors use weights from the
    # data (`_data_scales`): the spec's fixed sds can be far too tight for the data, and
    # factors shrunk to ~0 with a tiny factor variance are a region Gibbs leaves slowly.
    if problem.hierarchical:
        sigma2_0, bias_var_0, factor_var_0 = _data_scales(problem, data)
        bias_prec = [1.0 / bias_var_0] if start else []
        state.prec_user[:] = bias_prec + [1.0 / factor_var_0] * K
        state.prec_item[:] = state.prec_user
        state.scalars[1] = sigma2_0
    else:
        state.prec_user[:] = problem.fixed_prec_user
        state.prec_item[:] = problem.fixed_prec_item
    state.P_user[:] = 0.3 * rng.standard_normal((nu, kp)) / np.sqrt(state.prec_user)
    state.P_item[:] = 0.3 * rng.standard_normal((ni, kp)) / np.sqrt(state.prec_item)
    bufs = _buffers(problem)
    sse = 0.0
    for _ in range(_INIT_SWEEPS):
        sse = _sweep(problem, state, rng, bufs, stochastic=False)
    for P in (state.P_user, state.P_item):
        spread = np.sqrt(np.mean(P**2, axis=0)) + 1e-3
        P += _INIT_JITTER * spread * rng.standard_normal(P.shape)
    if problem.hierarchical:
        state.scalars[1] = max(sse / data.n_ratings, 1e-6)
        squares = np.concatenate([state.P_user[:, start:], state.P_item[:, start:]]) ** 2
        state.factor_var[:] = squares.mean(axis=0) if problem.per_factor else squares.mean()
        if start:
            state.scalars[2] = max(float(np.mean(state.P_user[:, 0] ** 2)), 1e-4)
            state.scalars[3] = max(float(np.mean(state.P_item[:, 0] ** 2)), 1e-4)
        state.prec_user[start:] = 1.0 / state.factor_var
        state.prec_item[start:] = 1.0 / state.factor_var
        if problem.per_side:  # each side's column means and spreads
            for P, prec, pm in (
                (state.P_user, state.prec_user, state.pm_user),
                (state.P_item, state.prec_item, state.pm_item),
            ):
                pm[start:] = P[:, start:].mean(axis=0)
                centred = (P[:, start:] - pm[start:]) ** 2
                var = centred.mean(axis=0) if problem.per_factor else np.full(K, centred.mean())
                prec[start:] = 1.0 / np.maximum(var, 1e-8)
        if start:
            state.prec_user[0] = 1.0 / state.scalars[2]
            state.prec_item[0] = 1.0 / state.scalars[3]
    return state


def _data_scales(problem: _Problem, data: RatingsData) -> tuple[float, float, float]:
    r"""Rough noise variance, bias variance and factor variance read off the data.

    Damped user and item means give the biases; of the variance :math:`v` left after them,
    half is credited to noise and half to :math:`U_i \cdot V_j`, whose variance is
    :math:`K s^4` for factor entries of variance :math:`s^2`.
    """
    rating = data.rating
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


def _allocate(spec: PMF, problem: _Problem, chains: int, n_keep: int) -> dict[str, np.ndarray]:
    """Output arrays (chain, draw, ...): factors float32, the rest float64."""
    nu, ni, K = problem.n_users, problem.n_items, problem.n_factors
    shapes: dict[str, tuple[int, ...]] = {"U": (nu, K), "V": (ni, K), "sigma": ()}
    if spec.biases:
        shapes |= {"mu": (), "user_bias": (nu,), "item_bias": (ni,)}
    if problem.hierarchical:
        sd_shape = (K,) if problem.per_factor else ()
        if problem.per_side:
            shapes |= {
                "factor_mean_user": (K,),
                "factor_mean_item": (K,),
                "sigma_factor_user": sd_shape,
                "sigma_factor_item": sd_shape,
            }
        else:
            shapes["sigma_factor"] = sd_shape
        if spec.biases:
            shapes |= {"sigma_user_bias": (), "sigma_item_bias": ()}
    out = {
        name: np.empty(
            (chains, n_keep, *shape), dtype=np.float32 if name in ("U", "V") else np.float64
        )
        for name, shape in shapes.items()
    }
    out["log_likelihood_sum"] = np.empty((chains, n_keep))
    return out


def _record(
    problem: _Problem,
    state: _State,
    sse: float,
    n_obs: int,
    out: dict[str, np.ndarray],
    chain: int,
    draw: int,
) -> None:
    start = int(problem.has_bias)
    out["U"][chain, draw] = state.P_user[:, start:]
    out["V"][chain, draw] = state.P_item[:, start:]
    sigma2 = state.scalars[1]
    out["sigma"][chain, draw] = np.sqrt(sigma2)
    if start:
        out["mu"][chain, draw] = state.scalars[0]
        out["user_bias"][chain, draw] = state.P_user[:, 0]
        out["item_bias"][chain, draw] = state.P_item[:, 0]
    if problem.hierarchical:
        if problem.per_side:
            for side, prec, pm in (("user", state.prec_user, state.pm_user), ("item", state.prec_item, state.pm_item)):
                sd = 1.0 / np.sqrt(prec[start:])
                out[f"sigma_factor_{side}"][chain, draw] = sd if problem.per_factor else sd[0]
                out[f"factor_mean_{side}"][chain, draw] = pm[start:]
        else:
            sd = np.sqrt(state.factor_var)
            out["sigma_factor"][chain, draw] = sd if problem.per_factor else sd[0]
        if start:
            out["sigma_user_bias"][chain, draw] = np.sqrt(state.scalars[2])
            out["sigma_item_bias"][chain, draw] = np.sqrt(state.scalars[3])
    out["log_likelihood_sum"][chain, draw] = (
        -0.5 * n_obs * np.log(2.0 * np.pi * sigma2) - 0.5 * sse / sigma2
    )


def _run_chain(
    problem: _Problem,
    state: _State,
    rng: np.random.Generator,
    chain: int,
    tune: int,
    thin: int,
    out: dict[str, np.ndarray],
    warm: dict[str, np.ndarray] | None,
    n_obs: int,
    tick: Callable[[int], None],
    stop: threading.Event,
    overrelaxation: float,
) -> float:
    """Run one chain; returns the CPU seconds of its thread."""
    bufs = _buffers(problem)
    n_draws = out["U"].shape[1]
    total = tune + n_draws * thin
    pending = 0
    cpu0 = time.thread_time()
    for sweep in range(total):
        if stop.is_set():
            break
        sse = _sweep(problem, state, rng, bufs, overrelaxation=overrelaxation)
        if sweep < tune:
            if warm is not None and (sweep + 1) % thin == 0:
                _record(problem, state, sse, n_obs, warm, chain, (sweep + 1) // thin - 1)
        elif (sweep - tune + 1) % thin == 0:
            _record(problem, state, sse, n_obs, out, chain, (sweep - tune + 1) // thin - 1)
        pending += 1
        if pending >= 10:
            tick(pending)
            pending = 0
    tick(pending)
    return time.thread_time() - cpu0


def _validate_overrelaxation(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"overrelaxation must be a number in (-1, 1), got {value!r}")
    value = float(value)
    if not -1.0 < value < 1.0:
        raise ValueError(f"overrelaxation must lie strictly between -1 and 1, got {value!r}")
    return value


def _available_cpus() -> int:
    """CPUs this process may run on (respects taskset / container limits where visible)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="Gibbs", unit="sweep", leave=True)


def fit_gibbs(
    spec: PMF,
    data: RatingsData,
    *,
    draws: int = 500,
    tune: int = 200,
    chains: int = 4,
    thin: int = 5,
    random_seed: int | None = None,
    progressbar: bool = True,
    cores: int | None = None,
    init: str = "map",
    keep_warmup: bool = False,
    overrelaxation: float = -0.8,
) -> FitResult:
    r"""Sample the posterior of ``spec`` on ``data`` by blocked conjugate Gibbs.

    See the module docstring for the model and the sweep. Supports ``link="identity"``
    with ``likelihood="normal"``, fixed or hierarchical priors, with or without biases.

    Parameters
    ----------
    spec : PMF
        The model.
    data : RatingsData
        Training ratings.
    draws : int
        Draws kept per chain (after thinning).
    tune : int
        Burn-in sweeps per chain, discarded (unless ``keep_warmup``). From the ``"map"``
        start the noise and prior sds settle within a few dozen sweeps.
    chains : int
        Independent chains, each from its own start and its own generator.
    thin : int
        Keep every ``thin``-th sweep; a chain runs ``tune + draws * thin`` sweeps. The
        default 5 stores a fifth of the sweeps: successive sweeps are strongly correlated
        (overrelaxation, weak factors), so the kept draws lose little effective sample size
        and the posterior takes a fifth of the memory.
    random_seed : int, optional
        Seed of the `numpy.random.SeedSequence` whose ``spawn(chains)`` children seed the
        chains. The same seed gives the same draws (on the same machine and build). None: fresh
        entropy, recorded in ``info["random_seed"]`` so the run can be repeated.
    progressbar : bool
        Show a tqdm bar over the sweeps of all chains.
    cores : int, optional
        Threads running chains at once; default ``min(chains, CPUs available)``.
    init : {"map", "prior"}
        ``"map"``: a few ALS (conditional-mean) sweeps from a small random start under the
        fixed-prior weights, then jittered per chain. ``"prior"``: a draw from the prior (a
        flat ``mu`` starts uniform on the rating scale).
    keep_warmup : bool
        Also store the burn-in sweeps (thinned alike) as groups ``warmup_posterior`` and
        ``warmup_sample_stats``.
    overrelaxation : float
        Coefficient :math:`\alpha \in (-1, 1)` of Adler's overrelaxation for the factor rows:
        a row whose conditional is :math:`\mathcal N(m, \Lambda^{-1})` moves from
        :math:`\theta` to :math:`m + \alpha(\theta - m) + \sqrt{1 - \alpha^2}\, L^{-\top} z`
        (:math:`\Lambda = L L^\top`, :math:`z` standard normal). This leaves the conditional
        invariant and is reversible, so the chain targets the same posterior; a negative
        :math:`\alpha` reflects each row to the other side of its conditional mean and damps
        the random walk of the alternating U | V, V | U updates. 0 is plain Gibbs. On ML-100K
        u1 (4 chains, 100 + 100 monitored predictions, seeds 0-3 at thin 2), the share of
        predictions meeting R-hat <= 1.01 and bulk ESS >= 400 averaged 97 % at -0.5, 96 %
        at -0.7 and 99 % at -0.8; 95 % at -0.9 and 93 % at -0.95 (seeds 0-2). From -0.9 the
        norm of the predicted matrix and the factor sd slowed down (a reflection nearly
        keeps each row's distance from its conditional mean, so the sum of squares that
        drives the factor variance hardly moves). A per-row coefficient (strong for rows
        with many ratings) and an exact rescaling move of each factor column between U and
        V did no better.

    Notes
    -----
    The defaults (4 chains x (200 + 500 x 5) sweeps, about 50 CPU-seconds) take about
    25 s on ML-100K at rank 10 on 2 cores, and store 500 x 4 draws (about 250 MB, factors
    as float32). Sigma, the bias sds, mu and the factor sd then reach R-hat <= 1.01 with
    bulk ESS above 1,500. Predicted ratings of simulated data do too, but on real ratings
    some mix slowly: the weak factors of a rank-10 fit (singular values close to the noise
    level) drift among nearly equivalent configurations over hundreds of sweeps, and the
    predictions of heavily rated users and items move with them. On ML-100K u1 over seeds
    0-15, every one of 200 monitored predictions met R-hat <= 1.01 and bulk ESS >= 400 for
    15 of the 16 seeds (`bench_gibbs.py --seeds 16`; wall 24.6-26.7 s); in the other, one
    prediction reached R-hat 1.012 (smallest ESS over all seeds 561). The earlier defaults
    (tune 300, thin 4: 400 fewer sweeps, 21-25 s) passed for 12 of the 16 in the same run.
    Before the sparse-row scale moves (`_sparse_scale_moves`) the two passed for 6 and 4 of
    seeds 0-7. At these ESS a miss now and then is R-hat's own noise (see
    ``benchmarks/bench_rhat_floor.py``). See ``benchmarks/RESULTS.md``. Check the
    predictions you care about (`FitResult.diagnose`) and run longer (``thin``, ``draws``)
    when they need it; raw U and V are not identified (rotation, sign) and never converge.

    Returns
    -------
    FitResult
        ``method="gibbs"``; ``idata`` in the layout of `bayesmf.posterior` with
        ``sample_stats.log_likelihood_sum`` (the training log-likelihood of each draw);
        ``info`` holds ``fit_seconds``, ``sampling_seconds``, ``sweeps_per_second`` (all
        chains), ``cpu_ms_per_sweep`` (per chain sweep), ``posterior_nbytes``, the options
        and the seed.

    Raises
    ------
    ValueError, TypeError
        On an unsupported model, bad data, or bad options (each message names the value).

    Examples
    --------
    >>> from bayesmf import PMF, simulate
    >>> sim = simulate(n_users=40, n_items=30, n_factors=2, density=0.3, seed=1)
    >>> fit = fit_gibbs(PMF(n_factors=2), sim.data, draws=50, tune=50, chains=2,
    ...                 random_seed=0, progressbar=False)
    >>> fit.n_chains, fit.n_draws
    (2, 50)
    """
    from bayesmf.data import RatingsData
    from bayesmf.inference import check_supported
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

    t0 = time.perf_counter()
    if not isinstance(spec, PMF):
        raise TypeError(f"spec must be a PMF, got {type(spec).__name__}")
    check_supported(spec, "gibbs")
    if not isinstance(data, RatingsData):
        raise TypeError(f"data must be a RatingsData, got {type(data).__name__}")
    if data.n_ratings == 0:
        raise ValueError("cannot fit on an empty dataset (0 ratings)")
    draws = validate_positive_int("draws", draws)
    tune = validate_positive_int("tune", tune, minimum=0)
    chains = validate_positive_int("chains", chains)
    thin = validate_positive_int("thin", thin)
    validate_choice("init", init, INITS)
    overrelaxation = _validate_overrelaxation(overrelaxation)
    if cores is not None:
        cores = validate_positive_int("cores", cores)
    cores = min(chains, cores if cores is not None else _available_cpus())
    for name, flag in (("progressbar", progressbar), ("keep_warmup", keep_warmup)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if random_seed is None:
        seed_seq = np.random.SeedSequence()
    else:
        seed_seq = np.random.SeedSequence(
            validate_positive_int("random_seed", random_seed, minimum=0)
        )
    seed = int(seed_seq.entropy)  # type: ignore[arg-type]

    problem = _problem(spec, data)
    rngs = [np.random.default_rng(child) for child in seed_seq.spawn(chains)]
    stored = chains * (draws + (tune // thin if keep_warmup else 0))
    per_draw = 4 * (problem.n_users + problem.n_items) * problem.n_factors + 8 * (
        problem.n_users + problem.n_items + problem.n_factors + 8
    )
    if stored * per_draw > _LARGE_POSTERIOR_BYTES:
        warnings.warn(
            f"the posterior will take about {stored * per_draw / 1e9:.1f} GB "
            f"({chains} chains x {stored // chains} draws); pass a larger thin or fewer draws "
            "to keep it smaller",
            UserWarning,
            stacklevel=2,
        )
    out = _allocate(spec, problem, chains, draws)
    warm = _allocate(spec, problem, chains, tune // thin) if keep_warmup else None

    with threadpool_limits(limits=1):
        t_init = time.perf_counter()
        states = [_init_state(problem, spec, data, rng, init) for rng in rngs]
        init_seconds = time.perf_counter() - t_init
        total = chains * (tune + draws * thin)
        bar = _progress(total, progressbar)
        lock = threading.Lock()
        stop = threading.Event()

        def tick(n: int) -> None:
            with lock:
                bar.update(n)

        def run(c: int) -> float:
            return _run_chain(
                problem,
                states[c],
                rngs[c],
                c,
                tune,
                thin,
                out,
                warm,
                data.n_ratings,
                tick,
                stop,
                overrelaxation,
            )

        t_sample = time.perf_counter()
        try:
            if cores == 1:
                cpu = [run(c) for c in range(chains)]
            else:
                with ThreadPoolExecutor(
                    max_workers=cores, thread_name_prefix="bayesmf-gibbs"
                ) as pool:
                    futures = [pool.submit(run, c) for c in range(chains)]
                    try:
                        wait_futures(futures)
                    except BaseException:  # KeyboardInterrupt: let the threads stop cleanly
                        stop.set()
                        raise
                    cpu = [f.result() for f in futures]
        finally:
            bar.close()
        sampling_seconds = time.perf_counter() - t_sample

    names = param_names(spec)
    posterior_nbytes = int(sum(out[n].nbytes for n in names) + out["log_likelihood_sum"].nbytes)
    attrs = {
        "method": "gibbs",
        "random_seed": str(seed),
        "tune": tune,
        "thin": thin,
        "init": init,
        "overrelaxation": overrelaxation,
    }
    idata = make_posterior(
        spec, data, out, sample_stats={"log_likelihood_sum": out["log_likelihood_sum"]}, attrs=attrs
    )
    if warm is not None and tune // thin > 0:
        warm_tree = make_posterior(
            spec,
            data,
            warm,
            sample_stats={"log_likelihood_sum": warm["log_likelihood_sum"]},
            attrs=attrs,
        )
        idata["warmup_posterior"] = warm_tree["posterior"]
        idata["warmup_sample_stats"] = warm_tree["sample_stats"]
    n_sweeps = chains * (tune + draws * thin)
    info: dict[str, Any] = {
        "fit_seconds": time.perf_counter() - t0,
        "init_seconds": init_seconds,
        "sampling_seconds": sampling_seconds,
        "sweeps_per_second": n_sweeps / sampling_seconds if sampling_seconds > 0 else float("inf"),
        "cpu_ms_per_sweep": 1e3 * sum(cpu) / n_sweeps,
        "chains": chains,
        "draws": draws,
        "tune": tune,
        "thin": thin,
        "cores": cores,
        "init": init,
        "overrelaxation": overrelaxation,
        "random_seed": seed,
        "posterior_nbytes": posterior_nbytes,
    }
    log.info(
        "gibbs: %d chains x (%d tune + %d x %d) sweeps in %.1f s (%.1f sweeps/s), posterior %.1f MB",
        chains,
        tune,
        draws,
        thin,
        info["fit_seconds"],
        info["sweeps_per_second"],
        posterior_nbytes / 1e6,
    )
    return FitResult(spec=spec, idata=idata, method="gibbs", train=data, info=info)
