"""Numba kernels of the row updates: every row of one side drawn from its Gaussian conditional.

Every random number comes in as an argument (standard normals drawn by the chain's numpy
``Generator`` in the caller), so a chain is a deterministic function of its generator
whatever thread runs it; the kernels release the GIL (``nogil=True``) so chains run in
parallel threads.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

from bayesmf.inference._rows import gram_and_rhs

__all__ = ["ROW_BATCH", "draw_batch", "residual_stats", "sample_rows"]


#: rows whose Cholesky factorizations and solves run together, one row per SIMD lane: one
#: row's factorization is a chain of dependent operations, so alone it leaves the core idle.
#: 32 rather than 8 gives the same draws and, with the blocked Gram sums of `gram_and_rhs`,
#: passes 3-9 % faster at rank 10 and 25-39 % at rank 64 on ML-100K u1 and ml-latest-small
#: (``benchmarks/RESULTS.md``, "Row kernels of this tree against an earlier commit")
ROW_BATCH = 32


def _prior_term(prec, mean, row, a):  # type: ignore[no-untyped-def]
    """``prec[a] * mean[a]`` (one mean for every row) or ``prec[a] * mean[row, a]`` (per row)."""
    raise NotImplementedError("compiled by numba only (see the overload below)")


@overload(_prior_term)
def _prior_term_impl(prec, mean, row, a):  # type: ignore[no-untyped-def]
    if mean.ndim == 1:
        return lambda prec, mean, row, a: prec[a] * mean[a]
    return lambda prec, mean, row, a: prec[a] * mean[row, a]


@numba.njit(cache=True, nogil=True)
def sample_rows(ratings, rows, other_params, fit, normals, alpha, resid):
    r"""Draw every row of one side from its conditional, in place into ``rows.P``.

    ``ratings`` (`Csr`): the side's ratings by row; ``rows`` (`Side`): its rows ``P`` and
    their prior (``prec``, ``mean``); ``other_params``: the other side's rows; ``fit``
    (`RowFit`): ``mu``, the noise precision ``inv_sigma2`` and ``has_bias``.

    For row ``i`` (a user, say) with ratings :math:`r_{ij}` on items :math:`j \in J_i`, the
    features of item :math:`j` are :math:`x_j = (1, V_j)` and the offset :math:`\mu + c_j`
    (biases), or :math:`x_j = V_j` and 0 (no biases). The conditional of
    :math:`\theta_i = (b_i, U_i)` is Gaussian:

    .. math::

        \Lambda_i = \mathrm{diag}(\text{prec}) + \sigma^{-2} \sum_j x_j x_j^\top, \quad
        h_i = \sigma^{-2} \sum_j x_j (r_{ij} - \text{offset}_j)
              + \mathrm{diag}(\text{prec})\, \text{mean}_i, \quad
        \theta_i \sim \mathcal N(\Lambda_i^{-1} h_i, \Lambda_i^{-1}).

    With :math:`\Lambda_i = L L^\top` (Cholesky), :math:`\theta_i = L^{-\top}(L^{-1} h_i + z)`
    for a standard normal :math:`z` (``normals[i]``); ``z = 0`` gives the conditional mean
    (an ALS step). ``rows.mean`` is one mean for all rows (kp,) or one per row (n_rows, kp).

    ``alpha`` (overrelaxation, :math:`-1 < \alpha < 1`) draws instead
    :math:`m + \alpha(\theta_i^{\text{old}} - m) + \sqrt{1 - \alpha^2}\, L^{-\top} z` with
    :math:`m = \Lambda_i^{-1} h_i` and the old row read from ``rows.P``, computed as
    :math:`L^{-\top}((1 - \alpha) L^{-1} h_i + \sqrt{1 - \alpha^2} z) + \alpha\,\theta_i^{\text{old}}`.

    Rows go in batches of `ROW_BATCH`: each row's Gram matrix is summed on its own, then the
    batch is factorized and solved together with the row index innermost. Every row sees
    the same operations in the same order as it would alone, whatever the batch.

    ``resid``: also return the sum and the sum of squares of the residuals
    :math:`r_{ij} - b_i - c_j - U_i \cdot V_j` (no :math:`\mu`) at the new rows (the item
    pass, after the user pass, sees the new state); otherwise ``(0.0, 0.0)``.
    """
    indptr, other, rating = ratings
    out, prec, pmean = rows
    mu, inv_sigma2, has_bias = fit
    return _sample_rows(
        indptr, other, rating, out, prec, pmean, mu, inv_sigma2, has_bias, other_params, normals, alpha, resid
    )


@numba.njit(cache=True, nogil=True)
def _sample_rows(indptr, other, rating, out, prec, pmean, mu, inv_sigma2, has_bias, other_params, normals, alpha, resid):  # type: ignore[no-untyped-def]
    """Run `sample_rows` on its arguments one by one.

    Read out of the tuple arguments, the arrays made the loops measurably slower (see
    ``benchmarks/RESULTS.md``, "Kernel calls before and after the restructuring").
    """
    n_rows = indptr.shape[0] - 1
    kp = out.shape[1]
    start = 1 if has_bias else 0
    batch = ROW_BATCH
    longest = 0
    for i in range(n_rows):
        longest = max(longest, indptr[i + 1] - indptr[i])
    # one row's features gathered as (kp, n) so the Gram sums are contiguous dot products;
    # one buffer for the batch (its memory does not grow with the batch: the residuals read
    # the other side's rows again)
    X = np.empty((kp, longest))
    target = np.empty(longest)
    lam = np.empty((kp, kp))
    rhs = np.empty(kp)
    L = np.empty((kp, kp, batch))  # lower triangles, row of the batch last
    y = np.empty((kp, batch))
    val = np.empty(batch)
    total = 0.0
    total_sq = 0.0
    for i0 in range(0, n_rows, batch):
        m = min(batch, n_rows - i0)
        for r in range(m):
            first = indptr[i0 + r]
            n = indptr[i0 + r + 1] - first
            for q in range(n):
                j = other[first + q]
                if has_bias:
                    X[0, q] = 1.0
                    target[q] = rating[first + q] - mu - other_params[j, 0]
                else:
                    target[q] = rating[first + q]
                for k in range(start, kp):
                    X[k, q] = other_params[j, k]
            gram_and_rhs(X, target, n, lam, rhs)
            for a in range(kp):
                y[a, r] = rhs[a]
                for b in range(a + 1):
                    L[a, b, r] = lam[a, b]
        draw_batch(L, y, val, m, i0, prec, pmean, inv_sigma2, normals, alpha, out)
        if not resid:
            continue
        for i in range(i0, i0 + m):
            for p in range(indptr[i], indptr[i + 1]):
                j = other[p]
                # the residual of the features above, in the same order: x_j . theta_i with
                # x_j = (1, V_j) under biases
                pred = 0.0
                if has_bias:
                    pred += 1.0 * out[i, 0]
                    t = rating[p] - mu - other_params[j, 0]
                else:
                    t = rating[p]
                for k in range(start, kp):
                    pred += other_params[j, k] * out[i, k]
                e = t - pred + mu if has_bias else t - pred
                total += e
                total_sq += e * e
    return total, total_sq


@numba.njit(cache=True, nogil=True, inline="always")
def draw_batch(L, y, val, m, i0, prec, pmean, inv_sigma2, normals, alpha, out):  # type: ignore[no-untyped-def]
    r"""Draw rows ``i0 .. i0 + m - 1`` of a batch from their Gaussian conditionals, into ``out``.

    On entry ``L[a, b, r]`` (lower triangle, ``b <= a``) holds the data part :math:`S_r` of
    row ``r``'s precision and ``y[a, r]`` the data part :math:`t_r` of its linear term,
    both before the noise precision: the conditional is
    :math:`\Lambda = \mathrm{diag}(\text{prec}) + \sigma^{-2} S_r`,
    :math:`h = \sigma^{-2} t_r + \mathrm{diag}(\text{prec})\,\text{mean}`. Factorizes
    :math:`\Lambda = L L^\top` in place, then draws with ``normals`` and the overrelaxation
    ``alpha`` as in `sample_rows` (the old rows read from ``out``). ``val`` (batch,) is
    scratch. Shared by the row kernels so that each sees the same operations in the same
    order; the row index is innermost so the batch runs one row per SIMD lane.
    """
    kp = L.shape[0]
    noise_scale = np.sqrt(1.0 - alpha * alpha)
    # Cholesky factors of the lower triangles, in place
    for a in range(kp):
        for b in range(a + 1):
            for r in range(m):
                val[r] = L[a, b, r] * inv_sigma2
            if a == b:
                for r in range(m):
                    val[r] += prec[a]
            for c in range(b):
                for r in range(m):
                    val[r] -= L[a, c, r] * L[b, c, r]
            if a == b:
                for r in range(m):
                    L[a, a, r] = np.sqrt(val[r])
            else:
                for r in range(m):
                    L[a, b, r] = val[r] / L[b, b, r]
    # forward solve L y = h, then y += z, then back solve L^T theta = y
    for a in range(kp):
        if pmean.ndim == 1:  # one mean for every row: hoisted out of the batch loop
            h = _prior_term(prec, pmean, 0, a)
            for r in range(m):
                val[r] = y[a, r] * inv_sigma2 + h
        else:
            for r in range(m):
                val[r] = y[a, r] * inv_sigma2 + _prior_term(prec, pmean, i0 + r, a)
        for c in range(a):
            for r in range(m):
                val[r] -= L[a, c, r] * y[c, r]
        for r in range(m):
            y[a, r] = val[r] / L[a, a, r]
    if alpha == 0.0:
        for a in range(kp):
            for r in range(m):
                y[a, r] += normals[i0 + r, a]
    else:
        for a in range(kp):
            for r in range(m):
                y[a, r] = (1.0 - alpha) * y[a, r] + noise_scale * normals[i0 + r, a]
    for a in range(kp - 1, -1, -1):
        for r in range(m):
            val[r] = y[a, r]
        for c in range(a + 1, kp):
            for r in range(m):
                val[r] -= L[c, a, r] * y[c, r]
        for r in range(m):
            y[a, r] = val[r] / L[a, a, r]
    for r in range(m):
        for a in range(kp):
            if alpha == 0.0:
                out[i0 + r, a] = y[a, r]
            else:
                out[i0 + r, a] = y[a, r] + alpha * out[i0 + r, a]


@numba.njit(cache=True, nogil=True)
def residual_stats(ratings, P_user, P_item, has_bias):
    r"""Sum and sum of squares of :math:`e_{ij} = r_{ij} - b_i - c_j - U_i \cdot V_j` (no mu).

    ``ratings``: the ratings by user (`Csr`).
    """
    indptr, other, rating = ratings
    kp = P_user.shape[1]
    start = 1 if has_bias else 0
    total = 0.0
    total_sq = 0.0
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            j = other[p]
            pred = 0.0
            if has_bias:
                pred = P_user[i, 0] + P_item[j, 0]
            for k in range(start, kp):
                pred += P_user[i, k] * P_item[j, k]
            e = rating[p] - pred
            total += e
            total_sq += e * e
    return total, total_sq
