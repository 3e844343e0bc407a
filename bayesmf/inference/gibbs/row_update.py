r"""The row-update block: every row of one side drawn from its Gaussian conditional.

For side ``s`` the likelihood gives the responses and the noise precision, the factor
prior the rows' prior (`bayesmf.inference.gibbs.priors`), and the likelihood's numba
kernel (``row_kernel``: `bayesmf.inference.gibbs.kernels.rows.sample_rows` for ratings)
draws each row :math:`(b_i, U_i)` jointly, overrelaxed by ``alpha`` (Adler:
:math:`\theta \to m + \alpha(\theta - m) + \sqrt{1 - \alpha^2}\, L^{-\top} z`; 0 is plain
Gibbs, see ``overrelaxation`` in `bayesmf.inference.gibbs.fit_gibbs`). Variates: ``variates.user`` / ``variates.item``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.kernels.typed import TypedKernel

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.likelihood import Likelihood
    from bayesmf.inference.gibbs.priors import FactorPrior
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = ["RowUpdate"]

#: posterior variables of each side's rows: (factors, biases)
_NAMES = {"user": ("U", "user_bias"), "item": ("V", "item_bias")}


class RowUpdate:
    """The step drawing every row of ``side`` ("user" or "item") given the rest.

    ``residuals``: keep the residual sums the pass computes at the new rows in
    ``state.resid`` (the item pass, which sees the whole new point).
    """

    def __init__(
        self,
        problem: Problem,
        side: str,
        likelihood: Likelihood,
        prior: FactorPrior,
        alpha: float = 0.0,
        residuals: bool = False,
    ) -> None:
        if likelihood.weighted:
            raise NotImplementedError("per-rating weights need the weighted row kernel")
        self.problem, self.side, self.likelihood, self.prior = problem, side, likelihood, prior
        self.other = "item" if side == "user" else "user"
        self.alpha = float(alpha)
        self.residuals = residuals
        self._sample_rows = TypedKernel(type(likelihood).row_kernel)  # through the class: no binding

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Draw the rows in place."""
        sums = self._sample_rows(
            self.likelihood.responses(state, self.side),
            self.prior.row_prior(state, self.side),
            state.side(self.other).P,
            self.likelihood.row_fit(state),
            getattr(variates, self.side),
            self.alpha,
            self.residuals,
        )
        if self.residuals:
            state.resid = sums

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return the side's factors and, with biases, its biases."""
        factors, biases = _NAMES[self.side]
        P = state.side(self.side).P
        start = self.problem.start
        return {factors: P[:, start:], biases: P[:, 0]} if start else {factors: P}
