r"""Numba kernels of the ordered probit's cutpoint update, with the latent responses integrated out.

Given the latent scores :math:`\eta` and the other cutpoints, cutpoint :math:`c_k` (between
levels ``k`` and ``k + 1``, 0-based) touches only the ratings of those two levels:

.. math::

    \log p(c_k \mid \eta, c_{-k}, r) = \sum_{n:\, r_n = k} \log\bigl(\Phi(c_k - \eta_n) -
    \Phi(c_{k-1} - \eta_n)\bigr) + \sum_{n:\, r_n = k + 1} \log\bigl(\Phi(c_{k+1} - \eta_n)
    - \Phi(c_k - \eta_n)\bigr) - \frac{c_k^2}{2\tau^2} + \text{const},

on :math:`c_{k-1} < c_k < c_{k+1}` (:math:`c_{-1} = -\infty`, :math:`c_{L-1} = \infty`; a
normal prior :math:`\mathcal N(0, \tau^2)` per cutpoint restricted to the ordered set).
`update_cutpoints` takes one slice-sampling step (`slice_step`'s, compiled uncached) on each cutpoint in turn
from that density (`cutpoint_log_density`): the latent :math:`z` are integrated out, the
collapsed move of Cowles (1996) with a slice sampler in place of his Metropolis proposal,
so nothing needs tuning. The caller then redraws every :math:`z` given the new cutpoints.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from bayesmf.inference.gibbs.kernels.slice_sampler import register_density, slice_step
from bayesmf.inference.gibbs.kernels.truncnorm import log_interval

__all__ = ["CUTPOINT_UNIFORMS", "CutpointDensity", "cutpoint_log_density", "update_cutpoints"]

#: uniforms per cutpoint handed to one slice-sampling step (level, placement, split, shrinkages)
CUTPOINT_UNIFORMS = 64
#: most stepping-out steps of one slice-sampling step
_MAX_STEPS = 50
#: `slice_step` compiled without the disk cache: the density calls scipy's log Phi through
#: a C function pointer (`bayesmf.inference.gibbs.kernels.truncnorm`), which numba cannot cache
_slice_step = numba.njit(nogil=True)(slice_step.py_func)


class CutpointDensity(NamedTuple):
    """Terms of the log density of one cutpoint (`cutpoint_log_density`)."""

    below: np.ndarray  # latent scores of the ratings of the level below the cutpoint
    above: np.ndarray  # latent scores of the ratings of the level above it
    lower: float  # the cutpoint below (-inf for the first)
    upper: float  # the cutpoint above (inf for the last)
    prior_prec: float  # 1 / tau^2


@register_density(CutpointDensity)
@numba.njit(nogil=True)
def cutpoint_log_density(x, d):  # type: ignore[no-untyped-def]
    """Log density of a cutpoint at ``x`` given the latent scores (module docstring); -inf off its order."""
    if not d.lower < x < d.upper:
        return -math.inf
    total = -0.5 * d.prior_prec * x * x
    for n in range(d.below.shape[0]):
        total += log_interval(d.lower - d.below[n], x - d.below[n])
    for n in range(d.above.shape[0]):
        total += log_interval(x - d.above[n], d.upper - d.above[n])
    return total


@numba.njit(nogil=True)
def update_cutpoints(eta_by_level, level_ptr, cuts, prior_prec, widths, u):  # type: ignore[no-untyped-def]
    """One slice-sampling step on each cutpoint in turn, in place.

    ``eta_by_level``: the latent scores grouped by level, level ``k`` at
    ``level_ptr[k]:level_ptr[k + 1]``; ``cuts``: the cutpoints padded with -inf first and
    inf last (cutpoint ``k`` at ``cuts[k + 1]``); ``widths``: the stepping-out width of
    each cutpoint; ``u``: ``(n_cutpoints, CUTPOINT_UNIFORMS)`` uniforms.
    """
    for k in range(widths.shape[0]):
        density = CutpointDensity(
            eta_by_level[level_ptr[k]:level_ptr[k + 1]],
            eta_by_level[level_ptr[k + 1]:level_ptr[k + 2]],
            cuts[k],
            cuts[k + 2],
            prior_prec,
        )
        cuts[k + 1] = _slice_step(density, cuts[k + 1], widths[k], _MAX_STEPS, u[k])
