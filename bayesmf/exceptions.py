"""Warnings and errors of bayesmf, in one place (importable from the modules that raise them too)."""

from __future__ import annotations

from bayesmf.ids import UnknownIdError

__all__ = ["CollapsedFactorsWarning", "ConvergenceWarning", "UnknownIdError"]


class ConvergenceWarning(UserWarning):
    """A fit did not converge.

    Raised when an optimizer (ALS, SGD, find_MAP, ADVI) stops at its iteration limit before
    meeting its tolerance, and when a posterior fails its checks (R-hat, ESS, divergences,
    ELBO) in `bayesmf.diagnostics.diagnose`.
    """


class CollapsedFactorsWarning(UserWarning):
    """The fitted factors are (numerically) zero: the fit explains ratings by biases alone.

    Either the optimizer stopped at the :math:`U = V = 0` saddle, or the regularization
    (``sigma_u``, ``sigma_v`` small relative to ``sigma``) makes zero the optimum.
    """
