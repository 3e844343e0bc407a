r"""Numba kernels of the ordered probit's cutpoint update, with the latent responses integrated out.

Given the latent scores :math:`\eta` and the other cutpoints, cutpoint :math:`c_k` (between
levels ``k`` and ``k + 1``, 0-based) touches only the ratings of those two levels:

.. math::

    \log p(c_k \mid \eta, c_{-k}, r) = \sum_{n:\, r_n = k} \log\bigl(\Phi(c_k - \eta_n) -
    \Phi(c_{k-1} - \eta_n)\bigr) + \sum_{n:\, r_n = k + 1} \log\bigl(\Phi(c_{k+1} - \eta_n)
    - \Phi(c_k - \eta_n)\bigr) - \frac{c_k^2}{2\tau^2} + \text{const},

on :math:`c_{k-1} < c_k < c_{k+1}` (:math:`c_{-1} = -\infty`, :math:`c_{L-1} = \infty`; a
normal prior :math:`\mathcal N(0, \tau^2)` per cutpoint restricted to the ordered set).
This is the collapsed move of Cowles (1996): the latent :math:`z` are integrated out, and
the caller redraws every :math:`z` given the new cutpoints.

`update_cutpoints` takes `N_STEPS` Metropolis-Hastings steps on each cutpoint in turn, each
proposing from the Gaussian of a Newton step, :math:`\mathcal N(x - g/h, -1/h)` with
:math:`g, h` the first two derivatives of the log density at the current :math:`x`
(`cutpoint_terms`, one pass over the two levels' ratings for all three), and accepting by
the Hastings ratio with the reverse proposal from the proposed point. The density is
log-concave (an interval probability of a log-concave density is log-concave in its end
points; the prior is Gaussian), so :math:`h \le -1/\tau^2 < 0`; with tens of thousands of
ratings per level it is close to Gaussian, so nearly every proposal is accepted and one step
is close to an independent draw from the conditional. A step costs two passes over the two
levels' ratings (at the current and at the proposed point), where a slice-sampling step
(stepping out, then shrinkage) took about six.

Per rating, with :math:`t = x - \eta_n` and :math:`D` the interval probability, a term of
the level below adds :math:`\log D`, :math:`r = \varphi(t)/D` to :math:`g` and
:math:`-t r - r^2` to :math:`h`; one of the level above adds :math:`\log D`, :math:`-r`
and :math:`t r - r^2` (:math:`r` from :math:`\log\varphi(t) - \log D`, stable in the tails).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from bayesmf.inference.gibbs.kernels.truncnorm import log_interval

__all__ = ["CUTPOINT_UNIFORMS", "N_STEPS", "CutpointDensity", "cutpoint_log_density", "cutpoint_terms",
           "update_cutpoints"]

#: Metropolis-Hastings steps per cutpoint and sweep
N_STEPS = 1
#: uniforms per cutpoint and sweep: two for the proposal's normal (Box-Muller), one to accept, per step
CUTPOINT_UNIFORMS = 3 * N_STEPS
#: log of the standard normal density's constant, sqrt(2 pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class CutpointDensity(NamedTuple):
    """Terms of the log density of one cutpoint (`cutpoint_log_density`)."""

    below: np.ndarray  # latent scores of the ratings of the level below the cutpoint
    above: np.ndarray  # latent scores of the ratings of the level above it
    lower: float  # the cutpoint below (-inf for the first)
    upper: float  # the cutpoint above (inf for the last)
    prior_prec: float  # 1 / tau^2


@numba.njit(nogil=True)
def cutpoint_terms(x, d):  # type: ignore[no-untyped-def]
    """Log density of a cutpoint at ``x`` (module docstring) and its first two derivatives; -inf off its order."""
    if not d.lower < x < d.upper:
        return -math.inf, 0.0, 0.0
    value = -0.5 * d.prior_prec * x * x
    grad = -d.prior_prec * x
    hess = -d.prior_prec
    for n in range(d.below.shape[0]):
        t = x - d.below[n]
        log_mass = log_interval(d.lower - d.below[n], t)
        r = math.exp(-0.5 * t * t - _LOG_SQRT_2PI - log_mass)
        value += log_mass
        grad += r
        hess -= t * r + r * r
    for n in range(d.above.shape[0]):
        t = x - d.above[n]
        log_mass = log_interval(t, d.upper - d.above[n])
        r = math.exp(-0.5 * t * t - _LOG_SQRT_2PI - log_mass)
        value += log_mass
        grad -= r
        hess += t * r - r * r
    return value, grad, min(hess, -d.prior_prec)


@numba.njit(nogil=True)
def cutpoint_log_density(x, d):  # type: ignore[no-untyped-def]
    """Log density of a cutpoint at ``x`` given the latent scores (module docstring); -inf off its order."""
    return cutpoint_terms(x, d)[0]


@numba.njit(nogil=True)
def _newton_log_proposal(y, x, grad, hess):  # type: ignore[no-untyped-def]
    """Log density (up to a constant) at ``y`` of the Newton proposal from ``x``: N(x - grad/hess, -1/hess)."""
    mean = x - grad / hess
    return 0.5 * math.log(-hess) + 0.5 * hess * (y - mean) ** 2


@numba.njit(nogil=True)
def _newton_steps(d, x, u):  # type: ignore[no-untyped-def]
    """`N_STEPS` Metropolis-Hastings steps with Newton proposals from ``x``; ``u``: 3 uniforms per step."""
    value, grad, hess = cutpoint_terms(x, d)
    for step in range(N_STEPS):
        u1, u2, u3 = u[3 * step], u[3 * step + 1], u[3 * step + 2]
        normal = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        y = x - grad / hess + normal / math.sqrt(-hess)
        value_y, grad_y, hess_y = cutpoint_terms(y, d)
        if value_y == -math.inf:
            continue
        log_ratio = (value_y - value + _newton_log_proposal(x, y, grad_y, hess_y)
                     - _newton_log_proposal(y, x, grad, hess))
        if math.log(u3) < log_ratio:
            x, value, grad, hess = y, value_y, grad_y, hess_y
    return x


@numba.njit(nogil=True)
def update_cutpoints(eta_by_level, level_ptr, cuts, prior_prec, u):  # type: ignore[no-untyped-def]
    """`N_STEPS` Newton-proposal Metropolis-Hastings steps on each cutpoint in turn, in place.

    ``eta_by_level``: the latent scores grouped by level, level ``k`` at
    ``level_ptr[k]:level_ptr[k + 1]``; ``cuts``: the cutpoints padded with -inf first and
    inf last (cutpoint ``k`` at ``cuts[k + 1]``); ``u``: ``(n_cutpoints, CUTPOINT_UNIFORMS)``
    uniforms on (0, 1).
    """
    for k in range(u.shape[0]):
        density = CutpointDensity(
            eta_by_level[level_ptr[k]:level_ptr[k + 1]],
            eta_by_level[level_ptr[k + 1]:level_ptr[k + 2]],
            cuts[k],
            cuts[k + 2],
            prior_prec,
        )
        cuts[k + 1] = _newton_steps(density, cuts[k + 1], u[k])
