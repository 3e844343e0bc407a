r"""Top ``n`` by posterior mean for many users at once: `recommend`'s default rule, batched.

`bayesmf.recommend.recommend` scores one user at a time, every candidate under every
draw. To rank all users of a test set (`bayesmf.topn`), this module does the same in two
stages, for the identity link with the normal likelihood:

1. For a batch of users and every item, the exact mixture mean
   :math:`u_{ij} = \overline{a_i} + \overline{c_j} + \frac1S \sum_s U^{(s)}_i \cdot V^{(s)}_j`
   (one matrix product over draws and factors, :math:`a = \mu + b_i`) and an UPPER
   bound on the mixture sd: with :math:`\delta` the deviations from the draw means,
   :math:`\eta^{(s)} - u = \delta a + \delta c_j + \bar U_i \cdot \delta V_j + \delta U_i
   \cdot \bar V_j + (\delta U_i \cdot \delta V_j - \text{its mean})`, so
   :math:`\mathrm{sd}(\eta) \le \mathrm{sd}(a) + \mathrm{sd}(c_j) + \sqrt{\bar U_i^T C_j
   \bar U_i} + \sqrt{\bar V_j^T D_i \bar V_j} + \sqrt{\overline{|\delta U_i|^2 |\delta
   V_j|^2}}` (Minkowski, then Cauchy-Schwarz; :math:`C_j, D_i` the draw covariances of
   :math:`V_j, U_i`), and :math:`s^2 \le \overline{\sigma^2} + \mathrm{sd}(\eta)^2`.
2. Scarf's bound (`scarf_bounds`, increasing in :math:`s`, so valid with a bound on it)
   brackets each censored mean; only the candidates whose upper end reaches the
   ``n``-th largest lower end can be in the top ``n``, and their exact means are
   computed by `bayesmf.predictive.summary.summarize`, as `recommend` computes them.

The ranking is exactly `recommend`'s (same scores; equal means, `recommend`'s ties under
``"mean"``, in item index order, by a stable sort of candidates in that order); only the
work differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bayesmf.data import RatingsData
from bayesmf.options import PredictOptions
from bayesmf.predictive.pairs import resolve_pairs
from bayesmf.predictive.summary import Summary, summarize
from bayesmf.predictive.view import ModelView, model_view
from bayesmf.ranking import top_k_indices

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["batched", "exact_summary", "scarf_bounds", "top_by_mean"]

#: (users x items) elements of each float64 matrix of a batch of users (8 MB)
BATCH_BUDGET = 2**20
#: (draws x items x factors) elements of a block of draws in float64, and (draws x users x
#: factors) elements of a batch's user factors (16 MB)
BLOCK_BUDGET = 2**21
#: slack on the bounds, times the scale's width (float64 rounding of the stage-1 sums)
_SLACK = 1e-8
_NO_QUANTILES = np.empty(0)


def batched(view: ModelView, opts: PredictOptions) -> bool:
    """Whether the batched mean ranking applies: identity link, normal likelihood, mean of it."""
    spec = view.spec
    return (
        not view.ordinal
        and spec.link == "identity"
        and (opts.kind == "predictive" or not opts.clip)
    )


def scarf_bounds(u: np.ndarray, s: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Bounds on the censored mean :math:`E[\mathrm{clip}(Y)]` of ANY law with mean ``u``, sd ``s``.

    :math:`E[\mathrm{clip}(Y)] = E[Y] + E[(l - Y)^+] - E[(Y - h)^+]` and
    :math:`E[(Y - k)^+] \le \tfrac12(\sqrt{s^2 + (u - k)^2} + u - k)` (Scarf's bound), so
    the censored mean lies in ``[u - above, u + below]``. Both ends widen as ``s`` grows.
    """
    above = 0.5 * (np.sqrt(s**2 + (u - high) ** 2) + (u - high))
    below = 0.5 * (np.sqrt(s**2 + (low - u) ** 2) + (low - u))
    return u - above, u + below


def _user_offsets(view: ModelView, users: np.ndarray) -> np.ndarray:
    """Per draw: the users' offsets ``mu + b_i`` (S, B)."""
    a = view.arrays
    user_off = np.zeros((view.n_samples, len(users)))
    if view.has_bias:
        if a.mu is not None:
            user_off += np.asarray(a.mu, dtype=np.float64).reshape(view.n_samples, 1)
        if a.user_bias is not None:
            user_off += np.asarray(a.user_bias[:, users])
    return user_off


def _draw_blocks(view: ModelView) -> range:
    """Return the starts of the draw blocks whose float64 copies of V stay near `BLOCK_BUDGET` elements."""
    size = max(1, BLOCK_BUDGET // max(view.arrays.V.shape[1] * view.n_factors, 1))
    return range(0, view.n_samples, size)


def _item_side(view: ModelView) -> tuple[np.ndarray, ...]:
    """Item factor means (J, K), their draw covariances (J, K, K), item offsets' means and sds (J,)."""
    a, S, K = view.arrays, view.n_samples, view.n_factors
    J = a.V.shape[1]
    ib = a.item_bias if view.has_bias and a.item_bias is not None else None
    # np.asarray: a lazy posterior's (dask) means are computed here, a stored block at a time
    v_bar = np.asarray(a.V.mean(axis=0, dtype=np.float64))
    c_bar = np.zeros(J) if ib is None else np.asarray(ib.mean(axis=0, dtype=np.float64))
    cov_v = np.zeros((J, K, K))
    c_ss = np.zeros(J)
    blocks = _draw_blocks(view)
    for s0 in blocks:
        dv = np.asarray(a.V[s0 : s0 + blocks.step], dtype=np.float64) - v_bar
        cov_v += np.matmul(dv.transpose(1, 2, 0), dv.transpose(1, 0, 2))
        if ib is not None:
            c_ss += ((np.asarray(ib[s0 : s0 + blocks.step], dtype=np.float64) - c_bar) ** 2).sum(axis=0)
    return v_bar, cov_v / S, c_bar, np.sqrt(c_ss / S)


def _mean_and_sd_bound(
    view: ModelView, users: np.ndarray, item_side: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mixture means (B, J) of the users' pairs with every item, and sd upper bounds."""
    S, K = view.n_samples, view.n_factors
    v_bar, cov_v, c_bar, c_sd = item_side
    U = np.asarray(view.arrays.U[:, users], dtype=np.float64)  # (S, B, K)
    V = view.arrays.V  # (S, J, K), float32 in the stored layout
    B, J = len(users), V.shape[1]
    u_bar = U.mean(axis=0)
    du = U - u_bar
    du_sq = (du**2).sum(axis=2)  # (S, B)
    dot = np.zeros((B, J))
    q_uv = np.zeros((B, J))  # sum over draws of |dU|^2 |dV|^2
    blocks = _draw_blocks(view)
    for s0 in blocks:
        Vb = np.asarray(V[s0 : s0 + blocks.step], dtype=np.float64)
        Vc = Vb.transpose(1, 0, 2).reshape(J, -1)
        dot += U[s0 : s0 + blocks.step].transpose(1, 0, 2).reshape(B, -1) @ Vc.T
        q_uv += du_sq[s0 : s0 + blocks.step].T @ ((Vb - v_bar) ** 2).sum(axis=2)
    cov_u = np.matmul(du.transpose(1, 2, 0), du.transpose(1, 0, 2)) / S  # (B, K, K)
    user_off = _user_offsets(view, users)
    u = user_off.mean(axis=0)[:, None] + c_bar[None, :] + dot / S
    outer_u = np.einsum("bk,bl->bkl", u_bar, u_bar).reshape(B, K * K)
    outer_v = np.einsum("jk,jl->jkl", v_bar, v_bar).reshape(J, K * K)
    q_v = np.maximum(outer_u @ cov_v.reshape(J, K * K).T, 0.0)  # Ubar' C_j Ubar
    q_u = np.maximum(cov_u.reshape(B, K * K) @ outer_v.T, 0.0)  # Vbar' D_i Vbar
    sd_eta = (
        user_off.std(axis=0)[:, None] + c_sd[None, :]
        + np.sqrt(q_v) + np.sqrt(q_u) + np.sqrt(q_uv / S)
    )
    noise = view.noise if view.noise is not None else np.zeros(1)
    return u, np.sqrt(np.mean(noise**2) + sd_eta**2)


def top_by_mean(
    result: FitResult, users: Sequence[int], candidates: Sequence[np.ndarray], n: int, opts: PredictOptions
) -> list[np.ndarray]:
    """Top ``n`` candidate item indices of each user by the ``"mean"`` rule of `recommend`.

    Parameters
    ----------
    result : FitResult
        The fit (identity link, normal likelihood: see `batched`).
    users : sequence of int
        User indices of ``result.train``.
    candidates : sequence of numpy.ndarray
        Each user's candidate item indices, increasing.
    n : int
        Items kept per user.
    opts : PredictOptions
        ``kind``, ``clip`` and ``chunk_size`` as in `recommend`.

    Returns
    -------
    list of numpy.ndarray
        Item indices, best first, one array per user.
    """
    view = model_view(result, lazy=True)
    item_side = _item_side(view)
    slack = _SLACK * (view.high - view.low)
    out: list[np.ndarray] = []
    # a batch's (users x items) matrices and (draws x users x factors) copies of U stay bounded
    size = max(1, min(BATCH_BUDGET // max(view.arrays.V.shape[1], 1), BLOCK_BUDGET // (view.n_samples * view.n_factors)))
    for b0 in range(0, len(users), size):
        batch = np.asarray(users[b0 : b0 + size], dtype=np.int64)
        cands = candidates[b0 : b0 + size]
        u, s = _mean_and_sd_bound(view, batch, item_side)
        if opts.kind == "predictive" and opts.clip:
            lower, upper = scarf_bounds(u, s, view.low, view.high)
        else:
            lower, upper = u, u
        keep = []
        for row, cand in enumerate(cands):
            lo = lower[row, cand]
            nth = len(lo) - min(n, len(lo))  # position of the n-th largest lower end
            kth = np.partition(lo, nth)[nth] if len(lo) else 0.0
            keep.append(cand[upper[row, cand] >= kth - slack])
        sizes = [len(k) for k in keep]
        exact = exact_summary(result, view, np.repeat(batch, sizes), np.concatenate(keep), opts).mean
        for items, score in zip(keep, np.split(exact, np.cumsum(sizes)[:-1]), strict=True):
            out.append(items[top_k_indices(score, n)])
    return out


def exact_summary(
    result: FitResult,
    view: ModelView,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    opts: PredictOptions,
    qs: np.ndarray = _NO_QUANTILES,
    threshold: float = math.nan,
) -> Summary:
    """Summaries of index pairs exactly as `recommend` scores them (same kernel, same numbers).

    Every pair is summarized on its own (`bayesmf.predictive.summary.summarize`), so its
    numbers do not depend on which other pairs are asked for; no HDI (its draws are seeded).
    """
    train = result.train
    pairs = RatingsData(
        np.asarray(user_idx, dtype=np.int64), np.asarray(item_idx, dtype=np.int64),
        np.full(len(user_idx), view.low), train.scale, train.users, train.items,
    )
    return summarize(
        view, resolve_pairs(result, pairs, unknown="raise", rating_col=None), kind=opts.kind,
        qs=qs, threshold=threshold, clip=opts.clip, hdi_prob=math.nan, chunk_size=opts.chunk_size, base=0,
    )
