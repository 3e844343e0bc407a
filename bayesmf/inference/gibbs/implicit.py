r"""The implicit-feedback likelihood block (Hu, Koren & Volinsky 2008, in Bayesian form).

Every pair :math:`(i, j)` of the users x items matrix counts:

.. math::

    y_{ij} \sim \mathcal N(\eta_{ij}, \sigma^2 / w_{ij}), \qquad
    \eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j \ (\text{biases optional}),

with :math:`y_{ij} = 1` and :math:`w_{ij} = c_{ij}` (the confidence weight,
`bayesmf.confidence.confidence_weights`) on the observed pairs :math:`O`, and
:math:`y_{ij} = 0`, :math:`w_{ij} = 1` on every other pair. The priors are the rating
model's; :math:`\sigma^2` is fixed (``spec.sigma`` or 1/4.5,
`bayesmf.spec.PMF.noise_sd`) under fixed priors and drawn from
:math:`\mathrm{IG}(a + n_{\text{users}} n_{\text{items}}/2, b + \mathrm{SSE}/2)` under
hierarchical ones, with the weighted :math:`\mathrm{SSE} = \sum_{\text{all}} w_{ij}
(y_{ij} - \eta_{ij})^2`.

How each block of the sweep sees it:

- rows: `bayesmf.inference.gibbs.kernels.implicit_rows.sample_implicit_rows` (the other
  side's Gram matrix once per half-sweep, then each row's observed pairs);
- the global mean: `bayesmf.inference.gibbs.likelihood.GlobalMean` as for ratings, with
  the weighted residual sum over all pairs that the item pass returns and the weight sum
  :math:`W = n_{\text{users}} n_{\text{items}} + \sum_O (w_{ij} - 1)`;
- the SSE: :math:`S_2 - 2\mu S_1 + \mu^2 W` from those sums (`GaussianLikelihood.observe`).

Moves (`bayesmf.inference.gibbs.moves`): `BiasShift`, `SideShift` and `RescaleSides`
leave every :math:`\eta_{ij}` unchanged and see only the priors, so they hold for any
likelihood and stay on. `CollapsedBiasScale` and `SparseScaleMoves` use the rating
likelihood (per-row rating counts and residual means, the rating SSE along the move) and
are switched off for implicit feedback; the bias and factor variances are then drawn by
their plain conditionals (`bayesmf.inference.gibbs.priors`), which is valid, only slower
to mix where those moves helped (rows with few ratings, which implicit feedback does not
have: every row sees every pair).

Cost per sweep: :math:`O(\text{nnz}\, k^2 + (n_{\text{users}} + n_{\text{items}}) k^2 +
(n_{\text{users}} + n_{\text{items}}) k^3)`, the rating sampler's plus two Gram matrices
per half-sweep; nothing is :math:`O(n_{\text{users}} n_{\text{items}})`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.kernels.implicit_rows import (
    WeightedPairs,
    implicit_stats,
    sample_implicit_rows,
)
from bayesmf.inference.gibbs.kernels.structs import MU, SIGMA2
from bayesmf.inference.gibbs.likelihood import GaussianLikelihood

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState

__all__ = ["ImplicitLikelihood", "implicit_data_scales", "implicit_mean"]


class ImplicitLikelihood(GaussianLikelihood):
    r"""Every pair counts: :math:`y_{ij} \sim \mathcal N(\eta_{ij}, \sigma^2 / w_{ij})`.

    See the module docstring. ``state.sse`` is the weighted SSE over all pairs,
    ``state.resid`` the sums :math:`S_1 = \sum w (y - e)`, :math:`S_2 = \sum w (y - e)^2`
    over all pairs with :math:`e = \eta - \mu`.
    """

    row_kernel: Any = sample_implicit_rows

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        if problem.weights is None:
            raise ValueError("the implicit likelihood needs a Problem built for likelihood='implicit'")
        ratings = problem.ratings
        self._pairs = {
            "user": WeightedPairs(*ratings.by_user, problem.weights[0]),
            "item": WeightedPairs(*ratings.by_item, problem.weights[1]),
        }
        #: the constant of the log-likelihood that the weights add: sum_O log(w) / 2
        self._half_log_weights = 0.5 * float(np.sum(np.log(problem.weights[0])))

    def responses(self, state: ChainState, side: str) -> WeightedPairs:  # type: ignore[override]
        """Return the observed pairs of ``side`` with their responses and weights."""
        return self._pairs[side]

    def refresh(self, state: ChainState) -> None:
        """Recompute the weighted SSE over all pairs if a move left it stale."""
        if state.sse_stale:
            total, total_sq = implicit_stats(self._pairs["user"], state.P_user, state.P_item, self.problem.has_bias)
            mu = state.scalars[MU]
            state.sse = max(total_sq - 2.0 * mu * total + self.problem.weight_sum * mu * mu, 0.0)
            state.sse_stale = False

    def log_likelihood(self, state: ChainState) -> float:
        r""":math:`-\tfrac12 \sum_{\text{all}} \log(2\pi\sigma^2 / w_{ij}) - \mathrm{SSE}/(2\sigma^2)`."""
        sigma2 = state.scalars[SIGMA2]
        n_terms = self.problem.n_terms
        return float(-0.5 * n_terms * np.log(2.0 * np.pi * sigma2) + self._half_log_weights - 0.5 * state.sse / sigma2)


def implicit_mean(problem: Problem) -> float:
    r"""Return the weighted mean response over all pairs, :math:`\sum_O w y / W` (a start for mu)."""
    assert problem.weights is not None  # internal: only called for implicit problems
    return float(np.dot(problem.weights[0], problem.ratings.by_user.rating) / problem.weight_sum)


def _row_means(indptr: np.ndarray, weights: np.ndarray, values: np.ndarray, n_other: int, mean: float) -> np.ndarray:
    """Per row: weighted mean over all its pairs of (response - mean)."""
    rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    n_rows = indptr.shape[0] - 1
    wy = np.bincount(rows, weights * values, n_rows)
    w = n_other + np.bincount(rows, weights - 1.0, n_rows)
    return wy / w - mean  # type: ignore[no-any-return]


def implicit_data_scales(problem: Problem) -> tuple[float, float, float]:
    r"""Rough noise variance, bias variance and factor variance read off implicit data.

    The implicit counterpart of the rating start's data scales
    (`bayesmf.inference.gibbs.start`): each user's and item's weighted mean response over
    all its pairs, less the overall one, gives the biases; the weighted mean square of the
    responses about the overall mean, per pair, the variance left, half credited to noise
    and half to :math:`U_i \cdot V_j`. :math:`O(\text{nnz})`.
    """
    assert problem.weights is not None  # internal: only called for implicit problems
    mean = implicit_mean(problem)
    ratings, weights = problem.ratings, problem.weights
    y = ratings.by_user.rating
    if problem.has_bias:
        user = _row_means(ratings.by_user.indptr, weights[0], y, problem.n_items, mean)
        item = _row_means(ratings.by_item.indptr, weights[1], ratings.by_item.rating, problem.n_users, mean)
        bias_var = max(float(np.var(np.r_[user, item])), 1e-3)
    else:
        mean, bias_var = 0.0, 1.0
    wy = float(np.dot(weights[0], y))
    left = (float(np.dot(weights[0], y * y)) - 2.0 * mean * wy + mean * mean * problem.weight_sum) / problem.n_terms
    left = max(left, 1e-6)
    return left / 2.0, bias_var, float(np.sqrt(left / (2.0 * problem.n_factors)))
