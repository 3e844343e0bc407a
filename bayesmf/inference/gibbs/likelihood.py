r"""The likelihood block: what the row updates regress on, and the likelihood's own parameters.

How a likelihood plugs in: subclass `Likelihood` and have
`bayesmf.inference.gibbs.sweep.likelihood_for` pick it for the spec; the sweep (`bayesmf.inference.gibbs.sweep`) calls, in every sampling sweep:

1. `Likelihood.augment` first: data augmentation. A probit or ordered-probit model redraws
   its latent continuous responses :math:`z_{ij} \sim \mathcal N(\eta_{ij}, 1)` truncated
   to the interval of :math:`r_{ij}` (kept per chain in ``state.extra``); the row updates
   then regress on them. Gaussian: nothing to do.
2. `Likelihood.responses` and `Likelihood.row_fit` in each row update: the responses grouped
   by that side's rows (the ratings, or the latent responses), the offset ``mu`` and the
   noise precision; `GaussianLikelihood.ratings`: both orders at once, the responses the
   moves `CollapsedBiasScale` and `SparseScaleMoves` regress on. Per-rating noise (a scale mixture, heteroscedastic ratings): a
   likelihood with ``weighted = True`` gives per-rating precision weights :math:`w_{ij}`
   (noise precision :math:`w_{ij}/\sigma^2`) by `Likelihood.weights`; the row kernel is to
   apply them by scaling each gathered rating's features and target by
   :math:`\sqrt{w_{ij}}` (not wired yet: `RowUpdate` refuses a weighted likelihood). A
   likelihood in which every pair of the matrix counts (implicit feedback,
   `bayesmf.inference.gibbs.implicit`) names its own row kernel (``row_kernel``) and gives
   the responses with their weights.
3. `Likelihood.observe` after the item rows and the global mean: the fit statistic of the
   new point (here the residual sum of squares, from the sums ``state.resid`` of the
   weighted residuals without mu over the likelihood's terms).
4. `Likelihood.update` among the hyperparameter draws: its own parameters (here
   :math:`\sigma^2`, hierarchical priors only; a probit model has none; an ordered probit
   draws its cutpoints in `Likelihood.augment`, with the latent responses integrated out,
   before it redraws them: `bayesmf.inference.gibbs.ordinal`).
5. `Likelihood.refresh` last, when a move changed the latent scores without carrying the
   statistic along.

`Likelihood.draws` and `Likelihood.log_likelihood` give what each kept draw records. A
conditional-mean sweep (the ``"map"`` start) calls `Likelihood.expect` in place of
`Likelihood.augment`: latent responses set to their conditional means, so that the start's
sweeps are an EM toward the posterior mode on the latent scale.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs.kernels.rows import residual_stats, sample_rows
from bayesmf.inference.gibbs.kernels.structs import MU, SIGMA2, Csr, Ratings, RowFit

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = ["GaussianLikelihood", "GlobalMean", "Likelihood"]


class Likelihood(ABC):
    """Interface of a likelihood block (see the module docstring for when each is called)."""

    #: True if `weights` gives per-rating precision weights
    weighted = False
    #: the numba kernel drawing one side's rows (`RowUpdate` calls it through the class)
    row_kernel: Any = sample_rows

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def augment(self, state: ChainState, rng: np.random.Generator) -> None:  # noqa: B027
        """Redraw latent responses given the current point (data augmentation); default none."""

    def expect(self, state: ChainState) -> None:  # noqa: B027
        """Set latent responses to their conditional means (the E step of the start's EM); default none."""

    @abstractmethod
    def responses(self, state: ChainState, side: str) -> Csr:
        """Return what the rows of ``side`` regress on, grouped by those rows."""

    def weights(self, state: ChainState, side: str) -> np.ndarray | None:
        """Per-rating precision weights in the order of `responses` (``weighted``); None: all 1."""
        return None

    @abstractmethod
    def row_fit(self, state: ChainState) -> RowFit:
        """Return the offset ``mu`` and noise precision the row updates use."""

    @abstractmethod
    def observe(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Set the fit statistic from ``state.resid`` (the item pass) and the new ``mu``."""

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:  # noqa: B027
        """Draw the likelihood's own parameters given the rest; default none."""

    @abstractmethod
    def refresh(self, state: ChainState) -> None:
        """Recompute the fit statistic if ``state.sse_stale``."""

    @abstractmethod
    def log_likelihood(self, state: ChainState) -> float:
        """Return the training log-likelihood at the current point."""

    @abstractmethod
    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return the posterior variables this block owns, by layout name."""


class GaussianLikelihood(Likelihood):
    r""":math:`r_{ij} \sim \mathcal N(\mu + b_i + c_j + U_i \cdot V_j, \sigma^2)`.

    :math:`\sigma^2 \sim \mathrm{IG}(a_\sigma, b_\sigma)` under hierarchical priors (drawn
    from its conditional :math:`\mathrm{IG}(a_\sigma + N/2, b_\sigma + \tfrac12
    \mathrm{SSE})`), fixed at ``spec.noise_sd(scale)**2`` otherwise (fixed priors, or a
    ``spec.sigma`` given under hierarchical ones: ``problem.learn_noise``).
    """

    def responses(self, state: ChainState, side: str) -> Csr:
        """Return the training ratings by ``side``."""
        return self.problem.ratings.by_user if side == "user" else self.problem.ratings.by_item

    def ratings(self, state: ChainState) -> Ratings:
        """Return the chain's current responses by user and by item: here the training ratings.

        What the moves that integrate or move along the Gaussian likelihood of the responses
        (`CollapsedBiasScale`, `SparseScaleMoves`) read, with noise variance
        ``state.scalars[SIGMA2]``; a likelihood with latent responses gives its latent ones.
        """
        return self.problem.ratings

    def row_fit(self, state: ChainState) -> RowFit:
        r"""Return ``mu``, :math:`1/\sigma^2` and whether rows carry biases."""
        return RowFit(state.scalars[MU], 1.0 / state.scalars[SIGMA2], self.problem.has_bias)

    def observe(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Set the residual sum of squares from the item pass's residual sums and ``mu``."""
        total, total_sq = state.resid
        mu = state.scalars[MU]
        sse = total_sq - 2.0 * mu * total + self.problem.weight_sum * mu * mu
        state.sse = 0.0 if sse < 0.0 else float(sse)  # rounding: it cannot be negative
        state.sse_stale = False

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        r"""Draw :math:`\sigma^2` from its inverse-gamma conditional (when learned: ``problem.learn_noise``)."""
        if self.problem.learn_noise:
            prior = self.problem.hyper.sigma2
            state.scalars[SIGMA2] = (prior.b + 0.5 * state.sse) / variates.noise[0]

    def refresh(self, state: ChainState) -> None:
        """Recompute the residual sum of squares from the ratings if a move left it stale."""
        if state.sse_stale:
            by_user = self.problem.ratings.by_user
            total, total_sq = residual_stats(by_user, state.P_user, state.P_item, self.problem.has_bias)
            mu = state.scalars[MU]
            state.sse = max(total_sq - 2.0 * mu * total + len(by_user.rating) * mu * mu, 0.0)
            state.sse_stale = False

    def log_likelihood(self, state: ChainState) -> float:
        """Sum of the normal log densities of the training ratings."""
        sigma2 = state.scalars[SIGMA2]
        n_obs = self.problem.n_obs
        return -0.5 * n_obs * np.log(2.0 * np.pi * sigma2) - 0.5 * state.sse / sigma2  # type: ignore[no-any-return]

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return ``sigma``."""
        return {"sigma": np.sqrt(state.scalars[SIGMA2])}


class GlobalMean:
    r"""The step :math:`\mu \mid \cdot \sim \mathcal N(m, 1/q)` (with biases).

    :math:`q = W/\sigma^2 + q_0`, :math:`m = (\sum_{ij} w_{ij} e_{ij}/\sigma^2 + q_0 \mu_0) / q`
    with :math:`e_{ij}` the residuals without :math:`\mu` (their weighted sum
    ``state.resid[0]``), :math:`W = \sum w_{ij}` (`Problem.weight_sum`: :math:`N` for
    ratings, all weights 1; implicit feedback sums over every pair) and the prior
    :math:`\mathcal N(\mu_0, 1/q_0)` (:math:`q_0 = 0`: flat, under fixed priors).
    Variates: ``variates.mu``.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    @staticmethod
    def applies(problem: Problem) -> bool:
        """Return whether the model has biases (and so a global mean)."""
        return problem.has_bias

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Draw mu."""
        hyper = self.problem.hyper
        inv_sigma2 = 1.0 / state.scalars[SIGMA2]
        q = self.problem.weight_sum * inv_sigma2 + hyper.mu_prec
        m = (state.resid[0] * inv_sigma2 + hyper.mu_mean * hyper.mu_prec) / q
        state.scalars[MU] = m + variates.mu[0] / np.sqrt(q)

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return ``mu``."""
        return {"mu": state.scalars[MU]}
