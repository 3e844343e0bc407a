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
   y_{jk}^2 / v_k)`;
4. a joint scale move :math:`(\tilde Y, \gamma) \to (c \tilde Y, \gamma / c^2)`, one step
   leaving its conditional under Haar measure :math:`dc/c` invariant (Liu & Sabatti 2000):
   with :math:`s = \log c`, :math:`e = XY`, :math:`r = U - m - W^\top x`,
   :math:`\log p(s) = -2 a_\gamma s - b_\gamma \gamma e^{-2s} - \tfrac12 A e^{2s} + B e^s`,
   :math:`A = \sum_{ik} e_{ik}^2 / v_k`, :math:`B = \sum_{ik} r_{ik} e_{ik} / v_k`, by one
   slice-sampling step (`scale_draw`). Without it :math:`\gamma` and the size of
   :math:`Y` move in small steps where the data say little about :math:`Y` (the funnel of a
   centered hierarchy).

Then, in the sweep, `ImplicitShift` moves each :math:`y_j` together with the rows whose set
holds it (their free parts kept), from its conditional given the responses: without it the
predictions' effective sample size falls several-fold (the rows and :math:`Y` pin each other).
Every step is an exact conditional or leaves one invariant, so the sweep is a valid sampler. Its posterior
variables: ``implicit_weight_user`` (item, factor), the :math:`y_j` of the user side,
``implicit_precision_user`` (:math:`\gamma`), and the item side's (user, factor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.block import Block
from bayesmf.inference.gibbs.kernels.implicit_sets import (
    add_implicit_terms,
    sample_implicit_weights,
    shift_implicit_weights,
)
from bayesmf.inference.gibbs.kernels.structs import Side
from bayesmf.inference.gibbs.kernels.typed import TypedKernel
from bayesmf.inference.gibbs.priors import FactorPrior, FeatureFactors, factor_prior_for

if TYPE_CHECKING:
    import scipy.sparse as sp

    from bayesmf.inference.gibbs.likelihood import Likelihood
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = ["IMPLICIT_PRECISION_PRIOR", "ImplicitSetFactors", "ImplicitShift", "implicit_shifts", "prior_with_sets", "scale_draw"]

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
        # 4. the joint scale move (Y -> cY, gamma -> gamma / c^2)
        effect = np.zeros_like(resid)
        self._terms(side, Y, effect, 0, 1.0)
        weighted = effect / (sd * sd)
        A, B = float(np.sum(effect * weighted)), float(np.sum((resid + effect) * weighted))
        c = np.exp(scale_draw(A, B, rate * gamma[0], shape, rng))
        scaled *= c
        gamma[0] /= c * c

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return `FeatureFactors.draws` and, per side with sets, its implicit weights and their precision."""
        out = super().draws(state)
        for side in self.sets:
            out[f"implicit_weight_{side}"] = self.implicit_weights(state, side)
            out[f"implicit_precision_{side}"] = self._implicit(state, side)[1][0]
        return out


def scale_draw(A: float, B: float, b_gamma: float, a: float, rng: np.random.Generator, width: float = 1.0) -> float:
    r"""One slice-sampling draw (Neal 2003) of :math:`s = \log c` of the joint scale move, from s = 0.

    The density is :math:`\log p(s) = -2as - b\gamma e^{-2s} - \tfrac12 A e^{2s} + B e^s`
    (see `ImplicitSetFactors`); ``b_gamma`` is :math:`b\gamma`.
    """

    def logp(x: float) -> float:
        return -2.0 * a * x - b_gamma * np.exp(-2.0 * x) - 0.5 * A * np.exp(2.0 * x) + B * np.exp(x)

    level = logp(0.0) + np.log(rng.random())
    left = -width * rng.random()
    right = left + width
    steps = 50
    while steps and logp(left) > level:
        left, steps = left - width, steps - 1
    while steps and logp(right) > level:
        right, steps = right + width, steps - 1
    for _ in range(200):
        x = left + (right - left) * rng.random()
        if logp(x) > level:
            return float(x)
        left, right = (x, right) if x < 0.0 else (left, x)
    return 0.0


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


class ImplicitShift(Block):
    r"""Each :math:`y_j` moved with the rows whose set holds it, their free parts :math:`U_i - X_i Y` kept.

    The updates of `ImplicitSetFactors` draw :math:`Y` given the rows (centered); where
    the ratings pin the rows, :math:`Y` and the rows then move together in small steps. This
    step draws, for each j in turn, the shift :math:`\delta` of :math:`y_j` and of every
    :math:`U_i` with :math:`j \in N(i)` (by :math:`X_{ij}\delta`) from its Gaussian
    conditional given the responses (`shift_implicit_weights`; a translation, so exact
    Gibbs), as libFM's updates of the implicit weights against the ratings do. Cost: each
    side's ratings times :math:`K^2`, plus the design's nonzeros times :math:`K^2`.
    The residual sum of squares is left stale. Normals from the chain's generator.
    """

    kernel = shift_implicit_weights

    def __init__(self, problem: Problem, likelihood: Likelihood, prior: ImplicitSetFactors) -> None:
        super().__init__(problem)
        self.likelihood, self.prior = likelihood, prior

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Shift every side with sets, users first."""
        start, prior = self.problem.start, self.prior
        for side in prior.sets:
            scaled, gamma = prior._implicit(state, side)
            sd = np.sqrt(1.0 / state.side(side).prec[start:])
            Y = scaled * sd
            other = state.side("item" if side == "user" else "user").P
            self._kernel(
                self.likelihood.responses(state, side), state.side(side).P, other, self.likelihood.row_fit(state),
                prior.by_member[side], Y, gamma[0] / (sd * sd), rng.standard_normal(Y.shape),
            )
            scaled[:] = Y / sd
        state.sse_stale = True


def implicit_shifts(problem: Problem, likelihood: Likelihood, prior: Any) -> list[ImplicitShift]:
    """Return the `ImplicitShift` step when ``prior`` is an `ImplicitSetFactors`, else none."""
    return [ImplicitShift(problem, likelihood, prior)] if isinstance(prior, ImplicitSetFactors) else []
