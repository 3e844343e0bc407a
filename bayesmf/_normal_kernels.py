"""The standard normal CDF as a numba kernel, shared by prediction and the Gibbs sampler.

Its own module so that neither side imports the other's kernels for it: the predictive
summaries (`bayesmf._kernels_predict`) and the truncated-normal draws of the probit and
ordered-probit samplers (`bayesmf.inference.gibbs.kernels.truncnorm`).
"""

from __future__ import annotations

import math

import numba

__all__ = ["norm_cdf"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@numba.njit(cache=True)
def norm_cdf(x):  # type: ignore[no-untyped-def]
    r""":math:`\Phi(x)` by ``erfc``: full relative precision for :math:`x \le 0`, absolute above."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)
