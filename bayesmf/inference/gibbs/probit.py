r"""The probit likelihood block: binary ratings by data augmentation (Albert & Chib 1993).

For ``PMF(likelihood="bernoulli")`` each observed pair has :math:`y_{ij} \in \{0, 1\}` and

.. math::

    y_{ij} \sim \mathrm{Bernoulli}(\Phi(\eta_{ij})), \qquad
    \eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j \ (\text{biases optional}),

equivalently :math:`y_{ij} = [z_{ij} > 0]` with :math:`z_{ij} \sim \mathcal N(\eta_{ij}, 1)`.
Given :math:`z`, the model is the Gaussian rating model with responses :math:`z` and noise
variance fixed at 1; given everything else, the :math:`z_{ij}` are independent normals
:math:`\mathcal N(\eta_{ij}, 1)` cut to :math:`(0, \infty)` if :math:`y_{ij} = 1` and to
:math:`(-\infty, 0]` if :math:`y_{ij} = 0`. So each sweep:

- `ProbitLikelihood.augment` draws every :math:`z_{ij}` from that conditional (one
  uniform per rating, inverse CDF in log space, exact in both tails:
  `bayesmf.inference.gibbs.kernels.truncnorm`) and keeps them per chain in
  ``state.extra`` (``"z_user"``: in the order of the ratings by user, ``"z_item"``: by
  item);
- the row updates, the global mean and the priors run unchanged on :math:`z` (the rating
  row kernel, `bayesmf.inference.gibbs.kernels.rows.sample_rows`, with precision 1);
- there is no noise variance to draw (``state.scalars[SIGMA2]`` is held at 1).

Moves (`bayesmf.inference.gibbs.moves`): `BiasShift`, `SideShift` and `RescaleSides` see
only the priors. `CollapsedBiasScale` and `SparseScaleMoves` integrate or move along the
Gaussian likelihood of the responses; they read them from `ProbitLikelihood.ratings`, the
chain's current :math:`z` (never the 0/1 labels of ``problem.ratings``), with noise
variance 1. Given :math:`z` the labels add nothing (:math:`y = [z > 0]`), so each is a
valid update of the conditional given :math:`z`, as in the rating model.

The data-augmentation sampler is the one of myFM's ``MyFMGibbsClassifier`` and of
Bayesian probit regression generally. Cost per sweep: the rating sampler's plus one
:math:`O(\text{nnz}\, k)` pass for the latent scores and one truncated-normal draw per
rating.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import log_ndtr

from bayesmf.inference.gibbs.kernels.rows import residual_stats
from bayesmf.inference.gibbs.kernels.structs import MU, SIGMA2, Csr, Ratings, RowFit
from bayesmf.inference.gibbs.kernels.truncnorm import draw_latent, latent_scores, log_cdf_sum
from bayesmf.inference.gibbs.kernels.typed import TypedKernel
from bayesmf.inference.gibbs.likelihood import GaussianLikelihood

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = ["START_RESPONSE", "ProbitLikelihood", "by_item_order"]

#: start value of :math:`|z|` before the first draw: :math:`E[z \mid z > 0]` at
#: :math:`\eta = 0`, :math:`\sqrt{2/\pi}`
START_RESPONSE = float(np.sqrt(2.0 / np.pi))
#: added to numpy's uniforms on [0, 1) to make them uniform on (0, 1), as the kernel needs
_HALF_ULP = 2.0**-54


def by_item_order(by_user: Csr, by_item: Csr) -> np.ndarray:
    """Return ``perm`` with ``by_item`` entry ``q`` the ``by_user`` entry ``perm[q]``.

    Entries of one (user, item) pair (a repeated pair) are matched by label, so a latent
    response always goes with a rating of the same value.
    """
    users_u = np.repeat(np.arange(len(by_user.indptr) - 1), np.diff(by_user.indptr))
    items_i = np.repeat(np.arange(len(by_item.indptr) - 1), np.diff(by_item.indptr))
    key_user = np.lexsort((by_user.rating, users_u, by_user.other))
    key_item = np.lexsort((by_item.rating, by_item.other, items_i))
    perm = np.empty(len(key_user), dtype=np.int64)
    perm[key_item] = key_user
    return perm


class ProbitLikelihood(GaussianLikelihood):
    r""":math:`y_{ij} \sim \mathrm{Bernoulli}(\Phi(\eta_{ij}))` by latent :math:`z_{ij} \sim \mathcal N(\eta_{ij}, 1)`.

    See the module docstring. ``state.sse``/``state.resid`` hold the statistics of the
    latent responses (as the Gaussian block's of the ratings); the log-likelihood is the
    Bernoulli one, :math:`\sum \log\Phi(s_{ij} \eta_{ij})`, :math:`s = 2y - 1`.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        ratings = problem.ratings
        self._labels = ratings.by_user.rating
        self._signs = 2.0 * self._labels - 1.0
        self._to_item = by_item_order(ratings.by_user, ratings.by_item)
        self._scores = TypedKernel(latent_scores)
        self._draw = TypedKernel(draw_latent)

    def _latent(self, state: ChainState) -> tuple[np.ndarray, np.ndarray]:
        """Return the chain's latent responses by user and by item (first: +-`START_RESPONSE`)."""
        extra = state.extra
        if "z_user" not in extra:
            extra["z_user"] = self._signs * START_RESPONSE
            extra["z_item"] = extra["z_user"][self._to_item]
            extra["eta"] = np.empty(self.problem.n_obs)
            extra["uniforms"] = np.empty(self.problem.n_obs)
        return extra["z_user"], extra["z_item"]

    def _eta(self, state: ChainState) -> np.ndarray:
        """Return the latent scores of the ratings at the current point, in by-user order."""
        self._latent(state)
        eta: np.ndarray = state.extra["eta"]
        self._scores(
            self.problem.ratings.by_user, state.P_user, state.P_item, float(state.scalars[MU]),
            self.problem.has_bias, eta,
        )
        return eta

    def augment(self, state: ChainState, rng: np.random.Generator) -> None:
        """Draw every latent response from its truncated normal given the current point."""
        z_user, z_item = self._latent(state)
        state.scalars[SIGMA2] = 1.0
        eta = self._eta(state)
        uniforms = state.extra["uniforms"]
        rng.random(out=uniforms)
        uniforms += _HALF_ULP
        self._draw(eta, self._labels, uniforms, z_user)
        np.take(z_user, self._to_item, out=z_item)

    def expect(self, state: ChainState) -> None:
        r"""Set every latent response to :math:`E[z_{ij} \mid y_{ij}, \eta_{ij}]`, the E step of the start's EM."""
        z_user, z_item = self._latent(state)
        state.scalars[SIGMA2] = 1.0
        eta = self._eta(state)
        # E[z | z > 0] = eta + phi(eta) / Phi(eta); E[z | z <= 0] = eta - phi(eta) / Phi(-eta)
        ratio = np.exp(-0.5 * eta**2 - 0.5 * np.log(2.0 * np.pi) - log_ndtr(self._signs * eta))
        np.add(eta, self._signs * ratio, out=z_user)
        np.take(z_user, self._to_item, out=z_item)

    def responses(self, state: ChainState, side: str) -> Csr:
        """Return the latent responses grouped by the rows of ``side``."""
        z_user, z_item = self._latent(state)
        csr = self.problem.ratings.by_user if side == "user" else self.problem.ratings.by_item
        return Csr(csr.indptr, csr.other, z_user if side == "user" else z_item)

    def ratings(self, state: ChainState) -> Ratings:
        """Return the chain's latent responses by user and by item (what the moves regress on)."""
        return Ratings(self.responses(state, "user"), self.responses(state, "item"))

    def row_fit(self, state: ChainState) -> RowFit:
        """Return ``mu``, noise precision 1 and whether rows carry biases."""
        return RowFit(state.scalars[MU], 1.0, self.problem.has_bias)

    def update(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Nothing to draw: the latent noise variance is 1."""

    def refresh(self, state: ChainState) -> None:
        """Recompute the latent responses' residual sum of squares if a move left it stale."""
        if state.sse_stale:
            z_user, _ = self._latent(state)
            by_user = self.problem.ratings.by_user
            csr = Csr(by_user.indptr, by_user.other, z_user)
            total, total_sq = residual_stats(csr, state.P_user, state.P_item, self.problem.has_bias)
            mu = state.scalars[MU]
            state.sse = max(total_sq - 2.0 * mu * total + len(z_user) * mu * mu, 0.0)
            state.sse_stale = False

    def log_likelihood(self, state: ChainState) -> float:
        r""":math:`\sum_{ij} \log\Phi(s_{ij}\eta_{ij})` over the training ratings at the current point."""
        return float(log_cdf_sum(self._signs * self._eta(state)))

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Nothing: the probit has no noise sd in the posterior."""
        return {}
