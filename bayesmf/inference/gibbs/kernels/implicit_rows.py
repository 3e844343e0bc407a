r"""Numba kernels of the implicit-feedback row updates: every pair of the matrix counts.

The model (`bayesmf.inference.gibbs.implicit`): for every (user, item) pair,
:math:`y_{ij} \sim \mathcal N(\eta_{ij}, \sigma^2 / w_{ij})`; an observed pair carries its
response :math:`y_{ij}` and weight :math:`w_{ij} \ge 1` (it weighs at least as much as an
unobserved pair), every other pair the response 0 and the weight 1. The sums over all pairs come from the other side's Gram matrix, computed once
per half-sweep in :math:`O(n_{\text{other}} k^2)`; each row then costs only its observed
pairs, :math:`O(n_i k^2)`, as for ratings. Nothing here is :math:`O(n_{\text{users}}
n_{\text{items}})`.

As in `bayesmf.inference.gibbs.kernels.rows`, every random number comes in as an argument
and the kernels release the GIL; the batched Cholesky factorization and solves are the
rating kernel's (`draw_batch`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from bayesmf.inference._rows import gram_and_rhs
from bayesmf.inference.gibbs.kernels.rows import ROW_BATCH, draw_batch

__all__ = ["WeightedPairs", "dense_sums", "implicit_stats", "sample_implicit_rows"]


class WeightedPairs(NamedTuple):
    """One side's observed pairs grouped by row, each with its response and weight."""

    indptr: np.ndarray  # (n_rows + 1,) int64: row r owns indptr[r]:indptr[r + 1]
    other: np.ndarray  # (n_pairs,) the other side's row of each pair
    rating: np.ndarray  # (n_pairs,) float64: the response y_ij (1 for implicit feedback)
    weight: np.ndarray  # (n_pairs,) float64: the precision weight w_ij >= 1


@numba.njit(cache=True, nogil=True)
def _gather_row(pairs, row, other_params, mu, has_bias, X, scaled, plain, lam, rhs):  # type: ignore[no-untyped-def]
    r"""Fill ``lam`` (lower) and ``rhs`` with row ``row``'s sums over its observed pairs.

    :math:`\sum_{j \in O_i} (w_{ij} - 1) x_j x_j^\top` and :math:`\sum_{j \in O_i}
    (w_{ij}(y_{ij} - o_j) + o_j) x_j`, written as :math:`\sum (w - 1)(y - o) x + \sum y x`
    so that the scaled features :math:`\sqrt{w - 1}\, x_j` (``X``, kp x n) go through the
    rating kernel's `gram_and_rhs`.
    """
    indptr, other, rating, weight = pairs
    kp = lam.shape[0]
    first = indptr[row]
    n = indptr[row + 1] - first
    plain[:] = 0.0  # sum of y x
    for q in range(n):
        j = other[first + q]
        root = np.sqrt(weight[first + q] - 1.0)
        o = 0.0
        if has_bias:
            o = mu + other_params[j, 0]
            X[0, q] = root
            plain[0] += rating[first + q]
        for k in range(1 if has_bias else 0, kp):
            X[k, q] = root * other_params[j, k]
            plain[k] += rating[first + q] * other_params[j, k]
        scaled[q] = root * (rating[first + q] - o)
    gram_and_rhs(X, scaled, n, lam, rhs)
    for a in range(kp):
        rhs[a] += plain[a]


@numba.njit(cache=True, nogil=True)
def _all_pairs_terms(other_params, mu, has_bias, G, s):  # type: ignore[no-untyped-def]
    r"""Fill the lower triangle of :math:`G = \sum_j x_j x_j^\top` and :math:`s = \sum_j o_j x_j`.

    Over every row ``j`` of the other side: :math:`x_j = (1, V_j)` and :math:`o_j = \mu + c_j`
    with biases, :math:`x_j = V_j` and :math:`o_j = 0` without.
    """
    kp = G.shape[0]
    G[:, :] = 0.0
    s[:] = 0.0
    x = np.empty(kp)
    for j in range(other_params.shape[0]):
        for k in range(kp):
            x[k] = other_params[j, k]
        o = 0.0
        if has_bias:
            o = mu + x[0]
            x[0] = 1.0
        for a in range(kp):
            s[a] += o * x[a]
            for b in range(a + 1):
                G[a, b] += x[a] * x[b]


@numba.njit(cache=True, nogil=True)
def _lifted_gram(P, rows_side, has_bias):  # type: ignore[no-untyped-def]
    """Column sums and Gram matrix of the lifted rows of `dense_sums` (``rows_side``: the a_i)."""
    kp = P.shape[1]
    n = kp + 1 if has_bias else kp
    g = np.zeros((n, n))
    t = np.zeros(n)
    a = np.empty(n)
    for i in range(P.shape[0]):
        if has_bias:  # (b, 1, U) on the rows' side, (1, c, V) on the other
            a[0] = P[i, 0] if rows_side else 1.0
            a[1] = 1.0 if rows_side else P[i, 0]
            for k in range(1, kp):
                a[k + 1] = P[i, k]
        else:
            for k in range(kp):
                a[k] = P[i, k]
        for p in range(n):
            t[p] += a[p]
            for q in range(n):
                g[p, q] += a[p] * a[q]
    return t, g


@numba.njit(cache=True, nogil=True)
def dense_sums(P_rows, P_other, has_bias):  # type: ignore[no-untyped-def]
    r"""Sum and sum of squares of :math:`e_{ij} = b_i + c_j + U_i \cdot V_j` over ALL pairs.

    :math:`e_{ij} = a_i \cdot d_j` with :math:`a_i = (b_i, 1, U_i)`, :math:`d_j = (1, c_j, V_j)`
    (biases) or :math:`a_i = U_i`, :math:`d_j = V_j`: the sum is :math:`(\sum_i a_i) \cdot
    (\sum_j d_j)` and the sum of squares :math:`\operatorname{tr}(A^\top A\, D^\top D)`, in
    :math:`O((n_{\text{rows}} + n_{\text{other}}) k^2)`.
    """
    t_rows, g_rows = _lifted_gram(P_rows, True, has_bias)
    t_other, g_other = _lifted_gram(P_other, False, has_bias)
    total = 0.0
    total_sq = 0.0
    for p in range(t_rows.shape[0]):
        total += t_rows[p] * t_other[p]
        for q in range(t_rows.shape[0]):
            total_sq += g_rows[p, q] * g_other[p, q]
    return total, total_sq


@numba.njit(cache=True, nogil=True, inline="always")
def _latent(P_rows, i, P_other, j, has_bias):  # type: ignore[no-untyped-def]
    """``e = eta - mu`` of the pair (row ``i``, other ``j``): biases (column 0) and factors."""
    e = P_rows[i, 0] + P_other[j, 0] if has_bias else 0.0
    for k in range(1 if has_bias else 0, P_rows.shape[1]):
        e += P_rows[i, k] * P_other[j, k]
    return e


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_sums(y, w, e):  # type: ignore[no-untyped-def]
    """Terms of one observed pair in S_1 and S_2: ``w (y - e) + e`` and ``w (y - e)^2 - e^2``."""
    d = y - e
    return w * d + e, w * d * d - e * e


@numba.njit(cache=True, nogil=True)
def sample_implicit_rows(pairs, rows, other_params, fit, normals, alpha, resid):
    r"""Draw every row of one side from its conditional under the all-pairs weighted likelihood.

    ``pairs`` (`WeightedPairs`): the side's observed pairs by row; ``rows`` (`Side`), ``fit``
    (`RowFit`), ``normals``, ``alpha``: as in `bayesmf.inference.gibbs.kernels.rows.sample_rows`.

    For row ``i`` (a user, say) with features :math:`x_j` and offsets :math:`o_j` of the
    other side (`_all_pairs_terms`), observed pairs :math:`O_i` with responses :math:`y_{ij}`
    and weights :math:`w_{ij}`, and every other pair at response 0 and weight 1, the
    conditional of :math:`\theta_i` is Gaussian with

    .. math::

        \Lambda_i = \mathrm{diag}(\text{prec}) + \sigma^{-2} \Big[G + \sum_{j \in O_i}
            (w_{ij} - 1)\, x_j x_j^\top\Big], \qquad G = \sum_{\text{all } j} x_j x_j^\top,

        h_i = \mathrm{diag}(\text{prec})\,\text{mean}_i + \sigma^{-2} \Big[\sum_{j \in O_i}
            \big(w_{ij}(y_{ij} - o_j) + o_j\big) x_j - s\Big], \qquad s = \sum_{\text{all } j} o_j x_j.

    :math:`G` and :math:`s` once per call, :math:`O(n_{\text{other}} k^2)`; each row
    :math:`O(|O_i| k^2 + k^3)`. The draw itself (`draw_batch`) is the rating kernel's.

    ``resid``: also return :math:`S_1 = \sum_{\text{all}} w_{ij}(y_{ij} - e_{ij})` and
    :math:`S_2 = \sum_{\text{all}} w_{ij}(y_{ij} - e_{ij})^2` with
    :math:`e_{ij} = \eta_{ij} - \mu` at the new rows (the item pass, which sees the whole new
    point): the sums over :math:`O` of :math:`w(y - e) + e` and :math:`w(y - e)^2 - e^2`,
    plus :math:`-\sum_{\text{all}} e` and :math:`\sum_{\text{all}} e^2` (`dense_sums`).
    Otherwise ``(0.0, 0.0)``.
    """
    indptr, other, rating, weight = pairs
    out, prec, pmean = rows
    mu, inv_sigma2, has_bias = fit
    n_rows = indptr.shape[0] - 1
    kp = out.shape[1]
    G = np.empty((kp, kp))
    s = np.empty(kp)
    _all_pairs_terms(other_params, mu, has_bias, G, s)
    longest = 0
    for i in range(n_rows):
        longest = max(longest, indptr[i + 1] - indptr[i])
    X, scaled = np.empty((kp, longest)), np.empty(longest)  # one row's scaled features
    lam, rhs, plain = np.empty((kp, kp)), np.empty(kp), np.empty(kp)
    L, y, val = np.empty((kp, kp, ROW_BATCH)), np.empty((kp, ROW_BATCH)), np.empty(ROW_BATCH)
    total, total_sq = 0.0, 0.0
    for i0 in range(0, n_rows, ROW_BATCH):
        m = min(ROW_BATCH, n_rows - i0)
        for r in range(m):
            _gather_row(pairs, i0 + r, other_params, mu, has_bias, X, scaled, plain, lam, rhs)
            for a in range(kp):
                y[a, r] = rhs[a] - s[a]
                for b in range(a + 1):
                    L[a, b, r] = G[a, b] + lam[a, b]
        draw_batch(L, y, val, m, i0, prec, pmean, inv_sigma2, normals, alpha, out)
        if resid:
            for r in range(m):
                for p in range(indptr[i0 + r], indptr[i0 + r + 1]):
                    e = _latent(out, i0 + r, other_params, other[p], has_bias)
                    t1, t2 = _pair_sums(rating[p], weight[p], e)
                    total += t1
                    total_sq += t2
    if resid:
        dense, dense_sq = dense_sums(out, other_params, has_bias)
        total -= dense
        total_sq += dense_sq
    return total, total_sq


@numba.njit(cache=True, nogil=True)
def implicit_stats(pairs, P_user, P_item, has_bias):
    r""":math:`S_1, S_2` of `sample_implicit_rows` at the current point, from scratch.

    ``pairs``: the observed pairs by user (`WeightedPairs`). :math:`O(\text{nnz}\, k +
    (n_{\text{users}} + n_{\text{items}}) k^2)`.
    """
    indptr, other, rating, weight = pairs
    total, total_sq = 0.0, 0.0
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            t1, t2 = _pair_sums(rating[p], weight[p], _latent(P_user, i, P_item, other[p], has_bias))
            total += t1
            total_sq += t2
    dense, dense_sq = dense_sums(P_user, P_item, has_bias)
    return total - dense, total_sq + dense_sq
