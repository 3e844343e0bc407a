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

The ranking is exactly `recommend`'s (same scores, same ties: candidates in index order,
stable sort); only the work differs.
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

#: users per batch (the (users x items) matrices of one batch stay small)
USER_BATCH = 256
#: draws per block of the mean's matrix product
DRAW_BLOCK = 128
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


def _offsets(view: ModelView, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: user offsets ``mu + b_i`` (S, B) and item offsets ``c_j`` (S, J)."""
    a = view.arrays
    S, n_items = view.n_samples, a.V.shape[1]
    user_off = np.zeros((S, len(users)))
    item_off = np.zeros((S, n_items))
    if view.has_bias:
        if a.mu is not None:
            user_off += np.asarray(a.mu, dtype=np.float64).reshape(S, 1)
        if a.user_bias is not None:
            user_off += a.user_bias[:, users]
        if a.item_bias is not None:
            item_off += a.item_bias
    return user_off, item_off


def _item_side(view: ModelView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item factor means (J, K), draw covariances (J, K, K) and squared deviations (S, J)."""
    V, S, K = view.arrays.V, view.n_samples, view.n_factors
    v_bar = V.mean(axis=0, dtype=np.float64)
    cov_v = np.zeros((V.shape[1], K, K))
    dev_v_sq = np.empty((S, V.shape[1]))
    for s0 in range(0, S, DRAW_BLOCK):
        dv = np.asarray(V[s0 : s0 + DRAW_BLOCK], dtype=np.float64) - v_bar
        cov_v += np.matmul(dv.transpose(1, 2, 0), dv.transpose(1, 0, 2))
        dev_v_sq[s0 : s0 + DRAW_BLOCK] = (dv**2).sum(axis=2)
    return v_bar, cov_v / S, dev_v_sq


def _mean_and_sd_bound(
    view: ModelView, users: np.ndarray, item_side: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mixture means (B, J) of the users' pairs with every item, and sd upper bounds."""
    S, K = view.n_samples, view.n_factors
    v_bar, cov_v, dev_v_sq = item_side
    U = np.asarray(view.arrays.U[:, users], dtype=np.float64)  # (S, B, K)
    V = view.arrays.V  # (S, J, K), float32 in the stored layout
    B, J = len(users), V.shape[1]
    dot = np.zeros((B, J))
    for s0 in range(0, S, DRAW_BLOCK):
        Vc = np.asarray(V[s0 : s0 + DRAW_BLOCK], dtype=np.float64).transpose(1, 0, 2).reshape(J, -1)
        dot += U[s0 : s0 + DRAW_BLOCK].transpose(1, 0, 2).reshape(B, -1) @ Vc.T
    u_bar = U.mean(axis=0)
    du = U - u_bar
    cov_u = np.matmul(du.transpose(1, 2, 0), du.transpose(1, 0, 2)) / S  # (B, K, K)
    user_off, item_off = _offsets(view, users)
    u = user_off.mean(axis=0)[:, None] + item_off.mean(axis=0)[None, :] + dot / S
    outer_u = np.einsum("bk,bl->bkl", u_bar, u_bar).reshape(B, K * K)
    outer_v = np.einsum("jk,jl->jkl", v_bar, v_bar).reshape(J, K * K)
    q_v = np.maximum(outer_u @ cov_v.reshape(J, K * K).T, 0.0)  # Ubar' C_j Ubar
    q_u = np.maximum(cov_u.reshape(B, K * K) @ outer_v.T, 0.0)  # Vbar' D_i Vbar
    q_uv = (du**2).sum(axis=2).T @ dev_v_sq / S  # mean |dU|^2 |dV|^2
    sd_eta = (
        user_off.std(axis=0)[:, None] + item_off.std(axis=0)[None, :]
        + np.sqrt(q_v) + np.sqrt(q_u) + np.sqrt(q_uv)
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
    view = model_view(result)
    item_side = _item_side(view)
    slack = _SLACK * (view.high - view.low)
    out: list[np.ndarray] = []
    for b0 in range(0, len(users), USER_BATCH):
        batch = np.asarray(users[b0 : b0 + USER_BATCH], dtype=np.int64)
        cands = candidates[b0 : b0 + USER_BATCH]
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
