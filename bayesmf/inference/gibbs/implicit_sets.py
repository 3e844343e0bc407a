r"""The implicit-set prior block (Bayesian SVD++ and its "flipped" form), conjugate in Gibbs.

SVD++ writes user i's factor as :math:`U_i = P_i + |N(i)|^{-1/2} \sum_{j \in N(i)} y_j`
(`bayesmf.implicit_sets`). With :math:`P_i \sim \mathcal N(m, \mathrm{diag}(v))` that is a
prior whose mean depends on a sparse design :math:`X` (row i: :math:`|N(i)|^{-1/2}` at
the members of :math:`N(i)`), as features do:

.. math::

    U_i \sim \mathcal N(m + W^\top x_i + Y^\top X_i^\top,\ \mathrm{diag}(v)), \quad
    y_{jk} \mid v_k, \gamma \sim \mathcal N(0, v_k/\gamma), \quad
    \gamma \sim \mathrm{Gamma}(a_\gamma, b_\gamma)

(:math:`W` and :math:`x_i` only with features, `bayesmf.inference.gibbs.priors.FeatureFactors`;
:math:`(a_\gamma, b_\gamma)` = `IMPLICIT_PRECISION_PRIOR`). The sampler draws the effective
factor :math:`U_i` (what every prediction reads as ``U``), so a known user's prediction needs
nothing new; items with their raters alike (``implicit_sets="item"``).

Why :math:`Y`'s prior scales with :math:`v` (as Macau's and `FeatureFactors`' weights do):
each :math:`y_{jk}` then has a conditional independent over k, with a scalar precision
:math:`(\gamma + \sum_i X_{ij}^2)/v_k`; the chain keeps :math:`\tilde Y = Y/\sqrt v`, whose
prior does not involve :math:`v`, so the per-side prior's exact moves (`RescaleSides`,
`SideShift`) stay exact unchanged, as for the feature weights. It therefore needs
``factor_prior="per_side"``.

`ImplicitSetFactors.update`, per side with sets, given the rows and :math:`Y`:

1. :math:`(v, m, W)` by the regression of `FeatureFactors` on the targets
   :math:`U - XY`, with :math:`Y`'s prior adding :math:`J/2` to each shape (J members, as
   a standard gamma of shape J/2 added to the shared draw's) and
   :math:`\tfrac12 \gamma \sum_j y_{jk}^2` to each rate;
2. :math:`Y` by single-site Gibbs over its rows (`sample_implicit_weights`: the exact
   conditional of each :math:`y_j` given the others, the residuals kept up to date; cost
   the design's nonzeros times K a sweep, as libFM's);
3. :math:`\gamma \sim \mathrm{Gamma}(a_\gamma + JK/2, b_\gamma + \tfrac12 \sum_{jk}
   y_{jk}^2 / v_k)`.

Every step is an exact conditional, so the sweep is a valid Gibbs sampler. Its posterior
variables: ``implicit_weight_user`` (item, factor), the :math:`y_j` of the user side,
``implicit_precision_user`` (:math:`\gamma`), and the item side's (user, factor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.kernels.implicit_sets import (
    add_implicit_terms,
    sample_implicit_weights,
)
from bayesmf.inference.gibbs.kernels.structs import Side
from bayesmf.inference.gibbs.kernels.typed import TypedKernel
from bayesmf.inference.gibbs.priors import FactorPrior, FeatureFactors, factor_prior_for

if TYPE_CHECKING:
    import scipy.sparse as sp

    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState

__all__ = ["IMPLICIT_PRECISION_PRIOR", "ImplicitSetFactors", "prior_with_sets"]

#: (shape, rate) of the Gamma prior of each side's implicit-weight precision :math:`\gamma`
IMPLICIT_PRECISION_PRIOR = (1.0, 1.0)


class ImplicitSetFactors(FeatureFactors):
    """The per-side prior with implicit sets (and features where the data carry them); see the module docstring."""

    def __init__(self, problem: Problem) -> None:
        self.sets = {side: X for side, X in zip(("user", "item"), problem.implicit_sets, strict=True) if X is not None}
        super().__init__(problem)
        # CSR arrays (indptr, indices, data) by row and by member, int64 whatever scipy chose
        self.by_row = {side: _arrays(X) for side, X in self.sets.items()}
        self.by_member = {side: _arrays(X.T.tocsr()) for side, X in self.sets.items()}
        self._add_terms = TypedKernel(add_implicit_terms)
        self._sample = TypedKernel(sample_implicit_weights)

    def regressed_sides(self) -> tuple[str, ...]:
        """Return the sides with features or implicit sets."""
        return tuple(side for side in ("user", "item") if side in self.featured or side in self.sets)

    def _implicit(self, state: ChainState, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the chain's scaled weights Y/sqrt(v) (J, K) and gamma (1,) of ``side`` (zeros and 1 at the start)."""
        extra = state.extra
        key = f"implicit_weight_{side}"
        if key not in extra:
            extra[key] = np.zeros((self.sets[side].shape[1], self.problem.n_factors))
            extra[f"implicit_precision_{side}"] = np.ones(1)
        return extra[key], extra[f"implicit_precision_{side}"]

    def implicit_weights(self, state: ChainState, side: str) -> np.ndarray:
        r"""Return :math:`Y = \tilde Y \sqrt v` of ``side``, (J, K)."""
        return self._implicit(state, side)[0] * np.sqrt(1.0 / state.side(side).prec[self.problem.start :])

    def _terms(self, side: str, Y: np.ndarray, out: np.ndarray, start: int, sign: float) -> None:
        self._add_terms(*self.by_row[side], Y, out, start, sign)

    def row_prior(self, state: ChainState, side: str) -> Side:
        """Return the rows of ``side`` with the per-row mean m + W^T x_i + X_i Y where it has sets."""
        prior = super().row_prior(state, side)
        if side in self.sets:
            self._terms(side, self.implicit_weights(state, side), prior.mean, self.problem.start, 1.0)
        return prior

    def _draw_side(self, state: ChainState, side: str, gammas: np.ndarray, rng: np.random.Generator) -> None:
        if side not in self.sets:
            super()._draw_side(state, side, gammas, rng)
            return
        problem, start = self.problem, self.problem.start
        scaled, gamma = self._implicit(state, side)
        Y = self.implicit_weights(state, side)
        n_members, n_factors = Y.shape
        # 1. (v, m, W) given the targets U - XY; Y's prior adds J/2 to each shape
        target = np.ascontiguousarray(state.side(side).P[:, start:])
        self._terms(side, Y, target, 0, -1.0)
        extra_shape = 0.5 * n_members * (1 if problem.per_factor else n_factors)
        gammas = gammas + rng.standard_gamma(extra_shape, size=gammas.shape) if n_members else gammas
        self._regress(state, side, target, gammas, rng, gamma[0] * np.einsum("jk,jk->k", Y, Y))
        # 2. Y by single-site Gibbs on the residuals U - m - W^T x - XY
        rows = state.side(side)
        resid = target - rows.mean[start:] - self.design[side][:, 1:] @ self.weights(state, side)
        sd = np.sqrt(1.0 / rows.prec[start:])
        self._sample(*self.by_member[side], resid, Y, gamma[0], sd, rng.standard_normal(Y.shape))
        # 3. gamma given Y / sqrt(v)
        scaled[:] = Y / sd
        shape, rate = IMPLICIT_PRECISION_PRIOR
        gamma[0] = rng.standard_gamma(shape + 0.5 * scaled.size) / (rate + 0.5 * float(np.sum(scaled**2)))

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return `FeatureFactors.draws` and, per side with sets, its implicit weights and their precision."""
        out = super().draws(state)
        for side in self.sets:
            out[f"implicit_weight_{side}"] = self.implicit_weights(state, side)
            out[f"implicit_precision_{side}"] = self._implicit(state, side)[1][0]
        return out


def _arrays(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = X.copy()
    X.sort_indices()
    return X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(np.float64)


def prior_with_sets(problem: Problem) -> FactorPrior:
    """Return `ImplicitSetFactors` when ``problem`` has implicit sets, else `factor_prior_for`'s block."""
    if all(X is None for X in problem.implicit_sets):
        return factor_prior_for(problem)
    if not problem.per_side:
        raise ValueError(
            "implicit sets extend the per-side prior: PMF(priors='hierarchical', factor_prior='per_side', "
            "implicit_sets=...)"
        )
    return ImplicitSetFactors(problem)
