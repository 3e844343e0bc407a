"""The ordered probit's cutpoint update: Newton-proposal Metropolis-Hastings (`kernels.cutpoints`).

Its derivatives are checked against finite differences, and the update against its
target exactly: cutpoints drawn from their conditional density (by inversion on a fine
grid) and updated once must again follow that density (a two-sample-free KS test on
independent starts). A proposal without the Hastings correction fails the same test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bayesmf.inference.gibbs.kernels.cutpoints import (
    CUTPOINT_UNIFORMS,
    N_STEPS,
    CutpointDensity,
    cutpoint_log_density,
    cutpoint_terms,
    update_cutpoints,
)
from bayesmf.inference.gibbs.ordinal import padded_cutpoints
from bayesmf.link import CUTPOINT_PRIOR_SD

CUTS = np.array([-1.0, 0.0, 1.2])


def _levels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent scores of ``n`` ratings and their levels (0-3) under `CUTS`."""
    rng = np.random.default_rng(seed)
    eta = rng.normal(0.0, 1.5, n)
    return eta, np.searchsorted(CUTS, eta + rng.standard_normal(n))


def _density(eta: np.ndarray, codes: np.ndarray, k: int) -> CutpointDensity:
    padded = padded_cutpoints(CUTS)
    return CutpointDensity(eta[codes == k], eta[codes == k + 1], padded[k], padded[k + 2], 1.0 / CUTPOINT_PRIOR_SD**2)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_derivatives_match_finite_differences(k):
    """g and h of `cutpoint_terms` equal central differences of the log density (relative 1e-5)."""
    eta, codes = _levels(400, 1)
    density = _density(eta, codes, k)
    step = 1e-4
    for x in CUTS[k] + np.array([-0.05, 0.0, 0.07]):
        value, grad, hess = cutpoint_terms(x, density)
        assert value == pytest.approx(cutpoint_log_density(x, density))
        up, down = cutpoint_log_density(x + step, density), cutpoint_log_density(x - step, density)
        assert grad == pytest.approx((up - down) / (2 * step), rel=1e-5, abs=1e-6)
        assert hess == pytest.approx((up - 2 * value + down) / step**2, rel=1e-4)
        assert hess < 0.0


def _exact_draws(density: CutpointDensity, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` draws from the cutpoint's density by inversion on a fine grid; the grid and its CDF."""
    lo, hi = max(density.lower, -4.0), min(density.upper, 4.0)
    grid = np.linspace(lo, hi, 20_001)[1:-1]
    log_p = np.array([cutpoint_log_density(x, density) for x in grid])
    p = np.exp(log_p - log_p.max())
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid), grid, cdf


def _stationarity_pvalue(k: int, n_ratings: int, seed: int, steps=None) -> float:
    """KS p-value of once-updated exact draws of cutpoint ``k`` against its density.

    ``steps``: the per-cutpoint update (default: the kernel's, through `update_cutpoints`
    with only cutpoint ``k``'s slice of levels, so the other cutpoints cannot move).
    """
    eta, codes = _levels(n_ratings, seed)
    density = _density(eta, codes, k)
    rng = np.random.default_rng(seed + 100)
    starts, grid, cdf = _exact_draws(density, 3000, rng)
    moved = np.empty_like(starts)
    by_level = np.concatenate([density.below, density.above])
    level_ptr = np.array([0, len(density.below), len(by_level)], dtype=np.int64)
    for i, x in enumerate(starts):
        u = rng.random((1, CUTPOINT_UNIFORMS)) + 2.0**-54
        if steps is None:
            cuts = np.array([density.lower, x, density.upper])
            update_cutpoints(by_level, level_ptr, cuts, density.prior_prec, u)
            moved[i] = cuts[1]
        else:
            moved[i] = steps(density, x, u[0])
    assert np.mean(moved != starts) > 0.3  # the update moves
    return float(stats.kstest(moved, lambda x: np.interp(x, grid, cdf)).pvalue)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_update_leaves_the_conditional_invariant(k):
    """Exact draws updated once still follow the density: KS p > 1e-4 for each of 3 cutpoints.

    40 ratings in all: a skewed density, where an uncorrected Newton proposal is off.
    Family-wise false-alarm rate 3e-4.
    """
    assert _stationarity_pvalue(k, 40, seed=k) > 1e-4


def test_invariance_test_fails_without_the_hastings_correction():
    """Accepting every Newton proposal (no Hastings ratio) is caught by the same test."""

    def accept_all(d, x, u):  # pure Python: the uncorrected sampler
        _, grad, hess = cutpoint_terms(x, d)
        for step in range(N_STEPS):
            normal = math.sqrt(-2.0 * math.log(u[3 * step])) * math.cos(2.0 * math.pi * u[3 * step + 1])
            y = x - grad / hess + normal / math.sqrt(-hess)
            value_y, grad_y, hess_y = cutpoint_terms(y, d)
            if value_y > -math.inf:
                x, grad, hess = y, grad_y, hess_y
        return x

    assert _stationarity_pvalue(0, 40, seed=0, steps=accept_all) < 1e-4
