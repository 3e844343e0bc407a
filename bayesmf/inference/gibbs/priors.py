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
`FactorPrior.update`. `FactorPrior.draws` names the posterior variables it records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.block import Block
from bayesmf.inference.gibbs.kernels.hypers import bias_var, shared_factor_var, side_hypers
from bayesmf.inference.gibbs.kernels.structs import ITEM_BIAS_VAR, USER_BIAS_VAR, Side

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = [
    "BiasPrior",
    "FactorPrior",
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


def factor_prior_for(problem: Problem) -> FactorPrior:
    """Return the factor prior block of ``problem``'s spec."""
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
