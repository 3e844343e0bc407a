r"""Prior blocks: the Gaussian prior of each side's rows and the draws of its hyperparameters.

A row of side ``s`` (a user's :math:`(b_i, U_i)`, an item's :math:`(c_j, V_j)`) has prior
:math:`\mathcal N(\text{mean}, \mathrm{diag}(1/\text{prec}))`; ``prec`` and ``mean`` live in
the chain state (``prec_user``, ``pm_user``, ...), coordinate 0 for the bias. A
`FactorPrior` owns the factor coordinates, a `BiasPrior` the bias coordinate.

How a prior plugs in: subclass `FactorPrior` (or `BiasPrior`) and have
`bayesmf.inference.gibbs.sweep` pick it for the spec. In each sampling sweep the row
update of side ``s`` asks `FactorPrior.row_prior` for the rows and their prior (a `Side`);
later `FactorPrior.update` draws the hyperparameters given the rows and writes the
precisions and means the next row update will use. A prior mean that depends on features
(side information, Macau-style: :math:`\text{mean}_i = \beta^\top x_i`) returns from
`FactorPrior.row_prior` a ``mean`` of shape (n_rows, kp), one row per row (kept per chain
in ``state.extra``), which the row kernel takes as is, and draws :math:`\beta` in
`FactorPrior.update`. `FactorPrior.draws` names the posterior variables it records;
`FeatureFactors` is that prior.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.block import Block
from bayesmf.inference.gibbs.kernels.hypers import bias_var, shared_factor_var, side_hypers
from bayesmf.inference.gibbs.kernels.structs import ITEM_BIAS_VAR, USER_BIAS_VAR, Side
from bayesmf.spec import FEATURE_PRECISION_PRIOR

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = [
    "FEATURE_PRECISION_PRIOR",
    "BiasPrior",
    "FactorPrior",
    "FeatureFactors",
    "FixedBiases",
    "FixedFactors",
    "HierarchicalBiases",
    "PerSideFactors",
    "PriorBlock",
    "SharedFactorScale",
    "bias_prior_for",
    "factor_prior_for",
]


class PriorBlock(Block):
    """What every prior block has: a hyperparameter update and the variables it records."""

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Draw the hyperparameters given the rows (none by default)."""

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return the posterior variables this prior owns, by layout name (none by default)."""
        return {}


class FactorPrior(PriorBlock):
    """Interface of a factor prior block: the rows' prior, the hyperparameters' update."""

    def row_prior(self, state: ChainState, side: str) -> Side:
        """Return the rows of ``side`` and their prior (``mean`` (kp,) or one per row)."""
        return state.side(side)


class FixedFactors(FactorPrior):
    r"""Fixed factor priors :math:`U_i \sim \mathcal N(0, \sigma_U^2 I)`, :math:`V_j \sim \mathcal N(0, \sigma_V^2 I)`."""


class SharedFactorScale(FactorPrior):
    r"""One factor variance shared by U and V (one per factor with ``per_factor_scales``).

    :math:`s^2 \sim \mathrm{IG}(a_f, b_f)`, rows :math:`\sim \mathcal N(0, s^2 I)`;
    gammas: ``variates.factor``.
    """

    kernel = shared_factor_var

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Draw the variance(s) from the inverse-gamma conditional (`shared_factor_var`)."""
        problem = self.problem
        self._kernel(state.params, problem.start, problem.hyper.factor.b, problem.per_factor, variates.factor)

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return ``sigma_factor``."""
        sd = np.sqrt(state.factor_var)
        return {"sigma_factor": sd if self.problem.per_factor else sd[0]}


class PerSideFactors(FactorPrior):
    r"""``factor_prior="per_side"``: each side's own factor means and variance(s) (BPMF).

    :math:`v_k \sim \mathrm{IG}(a_f, b_f)` (one :math:`v` per side without
    ``per_factor_scales``), :math:`m_k \mid v_k \sim \mathcal N(0, v_k/\kappa)`, rows
    :math:`\sim \mathcal N(m, \mathrm{diag}(v))`; each side drawn jointly
    (`side_hypers`), users then items. Variates: ``variates.side[0]``, ``[1]`` and the
    user side's then the item side's gammas of ``variates.factor``.
    """

    kernel = side_hypers

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Each side's (mean, variance) pair from its normal-inverse-gamma conditional."""
        problem = self.problem
        n = variates.factor.shape[0] // 2
        for k, side in enumerate(("user", "item")):
            self._kernel(
                state.side(side), problem.start, problem.hyper.factor.b, problem.kappa, problem.per_factor,
                variates.side[k], variates.factor[k * n : (k + 1) * n],
            )

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return ``sigma_factor_user``, ``factor_mean_user`` and the item side's."""
        start = self.problem.start
        out: dict[str, Any] = {}
        for side in ("user", "item"):
            rows = state.side(side)
            sd = 1.0 / np.sqrt(rows.prec[start:])
            out[f"sigma_factor_{side}"] = sd if self.problem.per_factor else sd[0]
            out[f"factor_mean_{side}"] = rows.mean[start:]
        return out




class FeatureFactors(PerSideFactors):
    r"""The per-side prior with side information (BPMF with features, Macau-style).

    For a side with features :math:`x_i` (F standardized columns and indicators,
    `bayesmf.features`), with diagonal precisions as in `PerSideFactors`:

    .. math::

        U_{ik} \sim \mathcal N(m_k + x_i^\top W_k,\ v_k), \quad
        m_k \mid v_k \sim \mathcal N(0, v_k/\kappa), \quad
        W_k \mid v_k, \beta \sim \mathcal N(0, (v_k/\beta) I_F), \quad
        v_k \sim \mathrm{IG}(a_f, b_f), \quad \beta \sim \mathrm{Gamma}(a_\beta, b_\beta)

    (one :math:`v` per side without ``per_factor_scales``; :math:`(a_\beta, b_\beta)` =
    `bayesmf.spec.FEATURE_PRECISION_PRIOR`, shape and rate). The weights' precision scales with the
    rows' (Macau: :math:`W \sim \mathcal{MN}(0, (\beta\Lambda_U)^{-1})`), and
    :math:`\beta` is drawn, so how much the features explain is learned.

    `update` draws, given the rows, :math:`(\theta_k, v_k)` jointly with
    :math:`\theta_k = (m_k, W_k)` and the design :math:`\tilde X = [1, X]`:
    :math:`A = \tilde X^\top \tilde X + \mathrm{diag}(\kappa, \beta, \dots, \beta)`,
    :math:`\hat\theta_k = A^{-1} \tilde X^\top u_k`,
    :math:`v_k \sim \mathrm{IG}(a_f + n/2, b_f + \tfrac12 (u_k^\top u_k - \hat\theta_k^\top
    \tilde X^\top u_k))` (summed over k, shape :math:`a_f + nK/2`, for one :math:`v`), then
    :math:`\theta_k \sim \mathcal N(\hat\theta_k, v_k A^{-1})`; then
    :math:`\beta \sim \mathrm{Gamma}(a_\beta + FK/2, b_\beta + \tfrac12 \sum_k W_k^\top
    W_k / v_k)`. A side without features is drawn as in `PerSideFactors`.

    The chain keeps :math:`\tilde W_k = W_k / \sqrt{v_k}` (``state.extra``), whose prior
    :math:`\mathcal N(0, 1/\beta)` does not involve :math:`v`, so the moves of the
    per-side prior stay exact: `RescaleSides` scales :math:`U, m, \sqrt v` and with them
    :math:`W = \tilde W \sqrt v`; `SideShift` moves :math:`m` and the rows together,
    leaving every :math:`U_i - m - W^\top x_i`. Variates: the gammas of ``variates.factor``
    (the shapes are those of `PerSideFactors`); the normals of :math:`\theta` and the gamma
    of :math:`\beta` come from the chain's generator.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        #: the sides with features (whose weights are recorded)
        self.featured = tuple(side for side, X in zip(("user", "item"), problem.features, strict=True) if X is not None)
        self.design: dict[str, np.ndarray] = {}
        self.gram: dict[str, np.ndarray] = {}
        for side in self.regressed_sides():
            X = problem.features[0 if side == "user" else 1]
            n = problem.n_users if side == "user" else problem.n_items
            design = np.ones((n, 1)) if X is None else np.hstack([np.ones((n, 1)), X])
            self.design[side] = design
            self.gram[side] = design.T @ design

    def regressed_sides(self) -> tuple[str, ...]:
        """Return the sides whose hyperparameters this block draws by regression (those with features)."""
        return self.featured

    def _chain(self, state: ChainState, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the chain's standardized weights (F, K), beta (1,) and per-row mean buffer of ``side``."""
        extra = state.extra
        key = f"feature_weight_{side}"
        if key not in extra:  # start: no feature effect, beta = 1
            n, f = self.design[side].shape
            extra[key] = np.zeros((f - 1, self.problem.n_factors))
            extra[f"feature_precision_{side}"] = np.ones(1)
            extra[f"feature_mean_{side}"] = np.zeros((n, self.problem.kp))
        return extra[key], extra[f"feature_precision_{side}"], extra[f"feature_mean_{side}"]

    def weights(self, state: ChainState, side: str) -> np.ndarray:
        r"""Return the feature weights :math:`W = \tilde W \sqrt v` of ``side``, (F, K)."""
        scaled = self._chain(state, side)[0]
        return scaled / np.sqrt(state.side(side).prec[self.problem.start :])

    def row_prior(self, state: ChainState, side: str) -> Side:
        """Return the rows of ``side`` and their prior, with a mean per row where it has features."""
        rows = state.side(side)
        if side not in self.design:
            return rows
        mean = self._chain(state, side)[2]
        mean[:] = rows.mean
        mean[:, self.problem.start :] += self.design[side][:, 1:] @ self.weights(state, side)
        return Side(rows.P, rows.prec, mean)

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Each side's (mean, weights, variance) given its rows, then its beta; see the class docstring."""
        problem = self.problem
        n = variates.factor.shape[0] // 2
        for k, side in enumerate(("user", "item")):
            gammas = variates.factor[k * n : (k + 1) * n]
            if side not in self.design:
                self._kernel(
                    state.side(side), problem.start, problem.hyper.factor.b, problem.kappa, problem.per_factor,
                    variates.side[k], gammas,
                )
                continue
            self._draw_side(state, side, gammas, rng)

    def _draw_side(self, state: ChainState, side: str, gammas: np.ndarray, rng: np.random.Generator) -> None:
        self._regress(state, side, state.side(side).P[:, self.problem.start :], gammas, rng)

    def _regress(
        self,
        state: ChainState,
        side: str,
        U: np.ndarray,
        gammas: np.ndarray,
        rng: np.random.Generator,
        extra_ss: np.ndarray | float = 0.0,
    ) -> None:
        """Draw ``side``'s (v, m, W) given the regression targets ``U`` (n, K), then beta.

        ``gammas``: the standard gammas of v (their shapes set by the caller); ``extra_ss``
        (per factor): terms added to the sums of squares of v's rate (other variables whose
        prior scales with v).
        """
        problem, start = self.problem, self.problem.start
        rows = state.side(side)
        scaled, beta, _ = self._chain(state, side)
        design = self.design[side]
        n_coef = design.shape[1]
        A = self.gram[side].copy()
        A[np.diag_indices(n_coef)] += np.r_[problem.kappa, np.full(n_coef - 1, beta[0])]
        chol = np.linalg.cholesky(A)
        rhs = design.T @ U  # (F + 1, K)
        theta_hat = np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
        ss = np.einsum("ik,ik->k", U, U) - np.einsum("fk,fk->k", theta_hat, rhs) + extra_ss
        b_f = problem.hyper.factor.b
        if problem.per_factor:
            v = (b_f + 0.5 * ss) / gammas
        else:
            v = np.full(problem.n_factors, (b_f + 0.5 * ss.sum()) / gammas[0])
        z = rng.standard_normal(theta_hat.shape)
        theta = theta_hat + np.linalg.solve(chol.T, z) * np.sqrt(v)
        rows.prec[start:] = 1.0 / v
        rows.mean[start:] = theta[0]
        scaled[:] = theta[1:] / np.sqrt(v)
        shape, rate = FEATURE_PRECISION_PRIOR
        beta[0] = rng.standard_gamma(shape + 0.5 * scaled.size) / (rate + 0.5 * float(np.sum(scaled**2)))

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return `PerSideFactors.draws` and, per side with features, its weights and their precision."""
        out = super().draws(state)
        for side in self.featured:
            out[f"feature_weight_{side}"] = self.weights(state, side)
            out[f"feature_precision_{side}"] = self._chain(state, side)[1][0]
        return out


def factor_prior_for(problem: Problem) -> FactorPrior:
    """Return the factor prior block of ``problem``'s spec (`FeatureFactors` when the data carry features)."""
    if any(X is not None for X in problem.features):
        if not problem.per_side:
            raise ValueError(
                "ratings with features need the per-side prior they extend: PMF(priors='hierarchical', "
                "factor_prior='per_side') (each side's factor mean becomes m + W^T x)"
            )
        return FeatureFactors(problem)
    if not problem.hierarchical:
        return FixedFactors(problem)
    return PerSideFactors(problem) if problem.per_side else SharedFactorScale(problem)


class BiasPrior(PriorBlock):
    """Interface of a bias prior block (coordinate 0 of the rows)."""


class FixedBiases(BiasPrior):
    r"""Fixed bias priors :math:`b_i, c_j \sim \mathcal N(0, \sigma_b^2)`, or no biases."""


class HierarchicalBiases(BiasPrior):
    r"""User- and item-bias variances, each :math:`\mathrm{IG}(a_b, b_b)`; gammas: ``variates.bias``."""

    kernel = bias_var

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Each side's bias variance from its inverse-gamma conditional (`bias_var`)."""
        b_b = self.problem.hyper.bias.b
        self._kernel(state.user, state.scalars, USER_BIAS_VAR, b_b, variates.bias[0])
        self._kernel(state.item, state.scalars, ITEM_BIAS_VAR, b_b, variates.bias[1])

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return ``sigma_user_bias``, ``sigma_item_bias``."""
        return {
            "sigma_user_bias": np.sqrt(state.scalars[USER_BIAS_VAR]),
            "sigma_item_bias": np.sqrt(state.scalars[ITEM_BIAS_VAR]),
        }


def bias_prior_for(problem: Problem) -> BiasPrior:
    """Return the bias prior block of ``problem``'s spec."""
    return HierarchicalBiases(problem) if problem.hierarchical and problem.has_bias else FixedBiases(problem)
