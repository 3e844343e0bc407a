r"""Numba kernels of the sparse-row scale moves: a prior variance moved with the rows it governs.

A move scales the marked rows' entries (their factors, or their biases) by :math:`t` and
their prior variance :math:`v` by :math:`t^2`. Its conditional with respect to Haar
measure :math:`dt/t` (Liu & Sabatti 2000), in :math:`x = \log t`, is

.. math::

    \log \pi(x) = -\frac{1}{2\sigma^2} \sum_c \left[(f_c - 1)^2 Q_c - 2 (f_c - 1) P_c\right]
    - \text{power}\cdot x - \text{rate}\cdot e^{-2x}, \quad f_c = e^{c x},

with :math:`P_c, Q_c` summed over the ratings with :math:`c` marked ends
(`sparse_scale_sums`), ``power`` :math:`= d\,n_{\text{unmarked}} + 2a` (``d`` entries per
row) and ``rate`` :math:`= (Q_{\text{unmarked}}/2 + b)/v` for the variance's prior
:math:`\mathrm{IG}(a, b)` and :math:`Q_{\text{unmarked}}` the sum of squares of the rows it
also governs that are not moved. :math:`x` takes one slice-sampling step from 0
(`slice_step`, width 0.1, at most 40 steps; should the shrinkages run out, no move).
"""

from __future__ import annotations

import numba
import numpy as np

from bayesmf.inference.gibbs.kernels.slice_sampler import register_density, slice_step
from bayesmf.inference.gibbs.kernels.structs import (
    ITEM_BIAS_VAR,
    MU,
    SIGMA2,
    USER_BIAS_VAR,
    Marks,
    ScaleDensity,
)

__all__ = ["scale_log_density", "scale_move_terms", "sparse_scale_moves", "sparse_scale_sums"]

#: stepping-out width and most steps of the slice sampler on log t
_WIDTH, _MAX_STEPS = 0.1, 40


@numba.njit(cache=True, nogil=True)
def sparse_scale_sums(ratings, P_user, P_item, mu, has_bias, marks, factors, lo, hi):
    r"""Sum what a scale move's density needs: how the residuals move when marked rows scale by t.

    ``marks.user[i]``, ``marks.item[j]`` (0/1) mark the scaled rows. With ``factors`` the
    scaled part of a row is its factor columns ``lo:hi`` of ``P`` (all factors, or one), so
    that part of a rating's :math:`U_i \cdot V_j` is multiplied by :math:`t^c`, :math:`c`
    its number of marked ends; otherwise it is the bias (column 0) and one side only is
    marked (``c <= 1``). With
    :math:`e = r_{ij} - \mu - b_i - c_j - U_i \cdot V_j` and :math:`w` the scaled part,
    returns ``[P1, Q1, P2, Q2]``: :math:`P_c = \sum e\,w`, :math:`Q_c = \sum w^2` over the
    ratings with :math:`c` marked ends. Visits only the ratings of marked rows: every
    marked item's (item layout), then every marked user's with an unmarked item.
    """
    (u_indptr, u_other, u_rating), (i_indptr, i_other, i_rating) = ratings
    return _sparse_scale_sums(
        u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, mu, has_bias,
        marks.user, marks.item, factors, lo, hi,
    )


@numba.njit(cache=True, nogil=True)
def _sparse_scale_sums(
    u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, mu, has_bias,
    scale_user, scale_item, factors, lo, hi,
):  # type: ignore[no-untyped-def]
    """Run `sparse_scale_sums` on its arrays one by one.

    The residual of a rating and its scaled part are written out in both passes: a helper
    returning them, even inlined, made this kernel several times slower
    (``benchmarks/RESULTS.md``, "Kernel calls before and after the restructuring").
    """
    start = 1 if has_bias else 0
    kp = P_user.shape[1]
    out = np.zeros(4)
    for j in range(i_indptr.shape[0] - 1):
        if scale_item[j] == 0:
            continue
        for p in range(i_indptr[j], i_indptr[j + 1]):
            i = i_other[p]
            uv = 0.0
            part = 0.0
            for k in range(start, kp):
                prod = P_user[i, k] * P_item[j, k]
                uv += prod
                if lo <= k < hi:
                    part += prod
            e = i_rating[p] - mu - uv
            if has_bias:
                e -= P_user[i, 0] + P_item[j, 0]
            if factors:
                w = part
                c = 1 + scale_user[i]
            else:
                w = P_item[j, 0]
                c = 1
            out[2 * c - 2] += e * w
            out[2 * c - 1] += w * w
    for i in range(u_indptr.shape[0] - 1):
        if scale_user[i] == 0:
            continue
        for p in range(u_indptr[i], u_indptr[i + 1]):
            j = u_other[p]
            if scale_item[j] != 0:
                continue
            uv = 0.0
            part = 0.0
            for k in range(start, kp):
                prod = P_user[i, k] * P_item[j, k]
                uv += prod
                if lo <= k < hi:
                    part += prod
            e = u_rating[p] - mu - uv
            if has_bias:
                e -= P_user[i, 0] + P_item[j, 0]
            w = part if factors else P_user[i, 0]
            out[0] += e * w
            out[1] += w * w
    return out


@register_density(ScaleDensity)
@numba.njit(cache=True, nogil=True)
def scale_log_density(x, d):
    r"""Log density of :math:`x = \log t` of a scale move, up to a constant (``d``: `ScaleDensity`)."""
    sums = d.sums
    f1 = np.exp(x) - 1.0
    f2 = np.exp(2.0 * x) - 1.0
    change = -2.0 * (f1 * sums[0] + f2 * sums[2]) + f1 * f1 * sums[1] + f2 * f2 * sums[3]
    return -0.5 * d.inv_sigma2 * change - d.power * x - d.rate * np.exp(-2.0 * x)


@numba.njit(cache=True, nogil=True)
def scale_move_terms(ratings, params, hyper, marks, has_bias, move, column):
    r"""Terms of one sparse-row scale move's density: ``(sums, power, rate)``.

    ``move``: 0 moves the factor variance (``column`` -1: the one shared by all factors, else
    that factor's) with the marked rows' factors of both sides; 1 the item-bias variance
    with the marked items' biases; 2 the user-bias variance with the marked users'.
    ``power`` :math:`= d\,n_{\text{unmarked}} + 2a` and ``rate``
    :math:`= (Q_{\text{unmarked}}/2 + b)/v`, with :math:`d` entries per row and
    :math:`Q_{\text{unmarked}}` the sum of squares of the unmarked rows' entries. A move
    with no marked row has ``sums`` all zero.
    """
    P_user, P_item, scalars = params.user.P, params.item.P, params.scalars
    sparse_user, sparse_item = marks
    start = 1 if has_bias else 0
    kp = P_user.shape[1]
    if move == 0:
        lo, hi = (start, kp) if column < 0 else (start + column, start + column + 1)
        mark_u, mark_i = sparse_user, sparse_item
        n_free = 0
        q_free = 0.0
        for P, marked in ((P_user, sparse_user), (P_item, sparse_item)):
            for r in range(P.shape[0]):
                if marked[r] == 0:
                    n_free += 1
                    for k in range(lo, hi):
                        q_free += P[r, k] * P[r, k]
        power = (hi - lo) * n_free + 2.0 * hyper.factor.a
        rate = (0.5 * q_free + hyper.factor.b) / params.factor_var[0 if column < 0 else column]
    else:
        lo, hi = start, kp
        if move == 1:
            mark_u, mark_i = np.zeros(P_user.shape[0], dtype=np.uint8), sparse_item
            P, marked, var = P_item, sparse_item, scalars[ITEM_BIAS_VAR]
        else:
            mark_u, mark_i = sparse_user, np.zeros(P_item.shape[0], dtype=np.uint8)
            P, marked, var = P_user, sparse_user, scalars[USER_BIAS_VAR]
        n_free = 0
        q_free = 0.0
        for r in range(P.shape[0]):
            if marked[r] == 0:
                n_free += 1
                q_free += P[r, 0] * P[r, 0]
        power = n_free + 2.0 * hyper.bias.a
        rate = (0.5 * q_free + hyper.bias.b) / var
    sums = sparse_scale_sums(
        ratings, P_user, P_item, scalars[MU], has_bias, Marks(mark_u, mark_i), move == 0, lo, hi
    )
    return sums, power, rate


@numba.njit(cache=True, nogil=True)
def _any(marked):
    for r in range(marked.shape[0]):
        if marked[r] != 0:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def sparse_scale_moves(ratings, params, hyper, marks, has_bias, per_factor, u, sse, only):
    r"""Run the sparse-row scale moves in place; return the new residual sum of squares.

    In turn (see `scale_move_terms`): the factor variance (each factor's, with
    ``per_factor``), then with biases the item-bias and the user-bias variance. Each draws
    :math:`x = \log t` by `slice_step` (uniforms: one row of ``u`` per move), scales
    the marked rows' entries by :math:`t` and the variance by :math:`t^2`, updates the
    prior precisions and carries ``sse`` along exactly. A move with no marked row is
    skipped (its row of ``u`` unused); ``only`` >= 0 runs the moves of that kind alone
    (0 factor, 1 item bias, 2 user bias; for tests).
    """
    P_user, P_item, scalars, factor_var = params.user.P, params.item.P, params.scalars, params.factor_var
    prec_user, prec_item = params.user.prec, params.item.prec
    sparse_user, sparse_item = marks
    start = 1 if has_bias else 0
    n_factors = P_user.shape[1] - start
    inv_sigma2 = 1.0 / scalars[SIGMA2]
    any_user = _any(sparse_user)
    any_item = _any(sparse_item)
    n_factor_moves = n_factors if per_factor else 1
    n_moves = n_factor_moves + (2 if has_bias else 0)
    for m in range(n_moves):
        if m < n_factor_moves:
            move, column = 0, (m if per_factor else -1)
            if not (any_user or any_item):
                continue
        else:
            move, column = m - n_factor_moves + 1, -1
            if (move == 1 and not any_item) or (move == 2 and not any_user):
                continue
        if only >= 0 and move != only:
            continue
        sums, power, rate = scale_move_terms(ratings, params, hyper, marks, has_bias, move, column)
        x = slice_step(ScaleDensity(sums, inv_sigma2, power, rate), 0.0, _WIDTH, _MAX_STEPS, u[m])
        t = np.exp(x)
        f1 = t - 1.0
        f2 = t * t - 1.0
        sse = sse - 2.0 * (f1 * sums[0] + f2 * sums[2]) + f1 * f1 * sums[1] + f2 * f2 * sums[3]
        if sse < 0.0:
            sse = 0.0
        if move == 0:
            lo, hi = (start, start + n_factors) if column < 0 else (start + column, start + column + 1)
            for P, marked in ((P_user, sparse_user), (P_item, sparse_item)):
                for r in range(P.shape[0]):
                    if marked[r] != 0:
                        for k in range(lo, hi):
                            P[r, k] *= t
            for k in range(lo, hi):
                factor_var[k - start] *= t * t
                prec_user[k] = 1.0 / factor_var[k - start]
                prec_item[k] = 1.0 / factor_var[k - start]
        else:
            P, marked, col = (P_item, sparse_item, ITEM_BIAS_VAR) if move == 1 else (P_user, sparse_user, USER_BIAS_VAR)
            for r in range(P.shape[0]):
                if marked[r] != 0:
                    P[r, 0] *= t
            scalars[col] *= t * t
            if move == 1:
                prec_item[0] = 1.0 / scalars[ITEM_BIAS_VAR]
            else:
                prec_user[0] = 1.0 / scalars[USER_BIAS_VAR]
    return sse
