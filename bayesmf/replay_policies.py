r"""The replay bandit's policies and the conjugate user posterior they update (`bayesmf.replay`).

`UserPosterior` holds, for ONE user and every posterior draw :math:`s`, the Gaussian
conditional posterior :math:`\mathcal N(m^{(s)}, \Sigma^{(s)})` of the user's unknowns
:math:`x = (U_i, b_i)` given the draw's item side, noise sd and priors: the conditional
that `bayesmf.fold_in` uses for a new user (see its module docstring). It starts from the
user's training ratings in precision form, as fold_in does,

.. math::

    \Lambda^{(s)} = D^{(s)-1} + X^{(s)T} X^{(s)} / \sigma^{(s)2}, \quad
    \Sigma^{(s)} = \Lambda^{(s)-1}, \quad
    m^{(s)} = \Sigma^{(s)} \big(D^{(s)-1} m_0^{(s)} + X^{(s)T}(r - \mu^{(s)} - c^{(s)}_J)
    / \sigma^{(s)2}\big),

and adds each observed rating :math:`r` of an item with design row :math:`w = (V_j, 1)`
by the same conjugate update in covariance form (one rank-one step per draw, vectorized
over the draws; Sherman-Morrison applied to :math:`\Lambda + w w^T / \sigma^2`):

.. math::

    g = \Sigma w / (\sigma^2 + w^T \Sigma w), \quad
    m \leftarrow m + g\,(r - \mu - c_j - w^T m), \quad
    \Sigma \leftarrow \Sigma - g\, w^T \Sigma .

Scores of a user's candidate items are their mean ratings :math:`w_j^T x + \mu + c_j`
(not clipped to the scale), computed per draw from `ItemSide`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bayesmf.predictive.view import ModelView
from bayesmf.ranking import top_k_indices

__all__ = [
    "FREE_POLICIES",
    "MAP_POLICIES",
    "POLICIES",
    "POSTERIOR_POLICIES",
    "ItemSide",
    "UserPosterior",
    "choose",
    "design_sums",
    "item_side",
    "play",
]

#: every policy, in the order of the output frames
POLICIES = ("greedy-map", "greedy-mean", "lower", "thompson", "random", "oracle")
#: policies of a MAP fit (one draw)
MAP_POLICIES = ("greedy-map",)
#: policies that need posterior draws (Gibbs, NUTS, ADVI)
POSTERIOR_POLICIES = ("greedy-mean", "lower", "thompson")
#: training ratings per block when a user's posterior is built (bounds the memory of heavy users)
_CHUNK = 64
#: policies that ignore the fit (their picks depend only on the pool and the seed)
FREE_POLICIES = ("random", "oracle")


@dataclass(frozen=True)
class ItemSide:
    r"""Per draw, the design rows and offsets of some items.

    Attributes
    ----------
    rows : numpy.ndarray
        ``(S, n, D)``: :math:`(V_j, 1)` per draw (just :math:`V_j` without biases).
    offset : numpy.ndarray
        ``(S, n)``: :math:`\mu + c_j` per draw (zeros without biases).
    """

    rows: np.ndarray
    offset: np.ndarray


def item_side(view: ModelView, items: np.ndarray) -> ItemSide:
    """Design rows and offsets of the items ``items`` (indices) under every draw of ``view``."""
    a = view.arrays
    K = view.n_factors
    rows = np.empty((view.n_samples, len(items), K + int(view.has_bias)))
    rows[:, :, :K] = a.V[:, items, :]
    offset = np.zeros((view.n_samples, len(items)))
    if view.has_bias:
        rows[:, :, K] = 1.0
        assert a.item_bias is not None  # the layout has item biases whenever biases=True
        offset += view.mu[:, None] + a.item_bias[:, items]
    return ItemSide(rows, offset)


def design_sums(
    view: ModelView, items: np.ndarray, weight: np.ndarray, weighted_response: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Per draw, :math:`\sum_n a_n w_n w_n^T` ``(S, D, D)`` and :math:`\sum_n (b_n - a_n o_n)\, w_n` ``(S, D)``.

    Over the items ``items`` (indices) with design rows :math:`w_n` and offsets :math:`o_n`
    (`item_side`), weights :math:`a_n` = ``weight`` and :math:`b_n` = ``weighted_response``
    (ratings: :math:`a = 1, b = r`). Summed `_CHUNK` items at a time (heavy users stay small).
    """
    D = view.n_factors + int(view.has_bias)
    gram = np.zeros((view.n_samples, D, D))
    rhs = np.zeros((view.n_samples, D))
    weight = np.asarray(weight, dtype=np.float64)
    weighted_response = np.asarray(weighted_response, dtype=np.float64)
    for lo in range(0, len(items), _CHUNK):  # (S, chunk, D) at a time
        side = item_side(view, items[lo : lo + _CHUNK])
        a = weight[lo : lo + _CHUNK]
        gram += np.matmul(np.swapaxes(side.rows, 1, 2), side.rows * a[None, :, None])
        rhs += np.einsum("snd,sn->sd", side.rows, weighted_response[None, lo : lo + _CHUNK] - a * side.offset)
    return gram, rhs


@dataclass
class UserPosterior:
    r"""One user's Gaussian conditional posterior per draw (module docstring).

    Attributes
    ----------
    mean : numpy.ndarray
        ``(S, D)``: :math:`m^{(s)}`, the factors then the bias.
    cov : numpy.ndarray
        ``(S, D, D)``: :math:`\Sigma^{(s)}`.
    noise_var : numpy.ndarray
        ``(S,)``: :math:`\sigma^{(s)2}` (rating units).
    """

    mean: np.ndarray
    cov: np.ndarray
    noise_var: np.ndarray

    @classmethod
    def from_ratings(cls, view: ModelView, items: np.ndarray, rating: np.ndarray) -> UserPosterior:
        """Return the conditional posterior given the ratings ``rating`` of the items ``items`` (indices)."""
        rating = np.asarray(rating, dtype=np.float64)
        return cls.from_sums(view, *design_sums(view, items, np.ones(len(items)), rating))

    @classmethod
    def from_sums(cls, view: ModelView, gram: np.ndarray, rhs: np.ndarray) -> UserPosterior:
        r"""Return the posterior of precision :math:`D^{-1} + G/\sigma^2` and right-hand side :math:`D^{-1} m_0 + h/\sigma^2`.

        ``gram`` :math:`G` ``(S, D, D)`` and ``rhs`` :math:`h` ``(S, D)`` are the likelihood's
        sums (`design_sums`); the prior and the noise variance are the draw's.
        """
        if view.noise is None:
            raise ValueError("the replay needs a normal likelihood (a noise sd per draw)")
        K = view.n_factors
        D = K + int(view.has_bias)
        prior_var = np.empty((view.n_samples, D))
        prior_var[:, :K] = view.prior_u**2
        prior_var[:, K:] = view.prior_ub[:, None] ** 2
        noise_var = view.noise**2
        precision = gram / noise_var[:, None, None]
        precision[:, np.arange(D), np.arange(D)] += 1.0 / prior_var
        rhs = rhs / noise_var[:, None]
        rhs[:, :K] += view.prior_mean_u / prior_var[:, :K]
        # Sigma = Lambda^{-1} = L^{-T} L^{-1} from the Cholesky factor L of Lambda
        inv_chol = np.linalg.inv(np.linalg.cholesky(precision))
        cov = np.matmul(np.swapaxes(inv_chol, 1, 2), inv_chol)
        mean = np.einsum("sde,se->sd", cov, rhs)
        return cls(mean, cov, noise_var)

    def copy(self) -> UserPosterior:
        """Return an independent copy (each policy updates its own)."""
        return UserPosterior(self.mean.copy(), self.cov.copy(), self.noise_var)

    def observe(self, row: np.ndarray, offset: np.ndarray, rating: float) -> None:
        """Add one rating of an item with design rows ``row`` (S, D) and offsets ``offset`` (S,)."""
        self.add_term(row, offset, 1.0, rating)

    def add_term(self, row: np.ndarray, offset: np.ndarray, weight: float, weighted_response: float) -> None:
        r"""Add :math:`a\, w w^T / \sigma^2` to the precision and :math:`(b - a\, o)\, w / \sigma^2` to its right-hand side.

        :math:`w` = ``row`` (S, D), :math:`o` = ``offset`` (S,), :math:`a` = ``weight`` (>= 0),
        :math:`b` = ``weighted_response``; a rating :math:`r` is :math:`a = 1, b = r`. In
        covariance form, with :math:`g = \Sigma w`: :math:`m \leftarrow m + g\,(b - a\,o - a\,
        w^T m) / (\sigma^2 + a\, w^T g)`, :math:`\Sigma \leftarrow \Sigma - a\, g g^T / (\sigma^2 +
        a\, w^T g)`.
        """
        cov_row = np.einsum("sde,se->sd", self.cov, row)
        denom = self.noise_var + weight * np.einsum("sd,sd->s", row, cov_row)
        resid = weighted_response - weight * (offset + np.einsum("sd,sd->s", row, self.mean))
        self.mean += cov_row * (resid / denom)[:, None]
        self.cov -= (weight / denom)[:, None, None] * cov_row[:, :, None] * cov_row[:, None, :]
        self.cov = 0.5 * (self.cov + np.swapaxes(self.cov, 1, 2))  # keep it exactly symmetric

    def draw(self, rng: np.random.Generator, sample: np.ndarray | None = None) -> np.ndarray:
        """One draw of :math:`x` per posterior draw (or per draw in ``sample``): ``(n, D)``."""
        mean = self.mean if sample is None else self.mean[sample]
        cov = self.cov if sample is None else self.cov[sample]
        z = rng.standard_normal(mean.shape)
        return mean + np.einsum("sde,se->sd", np.linalg.cholesky(cov), z)


def choose(
    policy: str,
    post: UserPosterior | None,
    side: ItemSide | None,
    pool_rating: np.ndarray,
    remaining: np.ndarray,
    rng: np.random.Generator,
    quantile: float,
) -> int:
    """Position (in the pool) of the item ``policy`` shows next, among ``remaining`` positions.

    Exact ties are broken uniformly at random (`bayesmf.ranking.top_k_indices`).
    """
    if policy == "random":
        return int(remaining[rng.integers(len(remaining))])
    if policy == "oracle":
        score = pool_rating[remaining]
    else:
        if post is None or side is None:
            raise ValueError(f"policy {policy!r} needs the fit's draws")
        rows, offset = side.rows[:, remaining], side.offset[:, remaining]
        if policy in ("greedy-map", "greedy-mean"):
            # the posterior mean of the mean rating: E over draws of w_j . m^(s) + offsets
            score = (np.einsum("snd,sd->sn", rows, post.mean) + offset).mean(axis=0)
        elif policy == "lower":
            x = post.draw(rng)
            score = np.quantile(np.einsum("snd,sd->sn", rows, x) + offset, quantile, axis=0)
        elif policy == "thompson":
            s = rng.integers(len(post.mean), size=1)
            x = post.draw(rng, s)
            score = rows[s[0]] @ x[0] + offset[s[0]]
        else:
            raise ValueError(f"unknown policy {policy!r}")
    return int(remaining[top_k_indices(np.asarray(score, dtype=np.float64), 1, rng)[0]])


def play(
    names: Sequence[str],
    seed: int,
    user: int,
    start: UserPosterior | None,
    side: ItemSide | None,
    relevance: np.ndarray,
    rounds: int,
    quantile: float,
    feedback: Callable[[UserPosterior, int], None],
) -> np.ndarray:
    """Pool positions each policy shows ONE user, round by round: ``(len(names), rounds)``, -1 once the pool is spent.

    Each policy gets its own stream (spawn key ``(1 + POLICIES.index(name), user)`` of
    ``seed``) and its own copy of ``start`` (None for the free policies), into which
    ``feedback(post, pos)`` folds what the user did with the item shown; ``relevance``
    (one per pool position) is what the oracle ranks by.
    """
    n_pool = len(relevance)
    shown = np.full((len(names), rounds), -1, dtype=np.int64)
    for p, name in enumerate(names):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1 + POLICIES.index(name), user)))
        post = start.copy() if start is not None and name not in FREE_POLICIES else None
        remaining = np.arange(n_pool)
        for t in range(min(rounds, n_pool)):
            pos = choose(name, post, side, relevance, remaining, rng, quantile)
            shown[p, t] = pos
            remaining = remaining[remaining != pos]
            if post is not None:
                feedback(post, pos)
    return shown
