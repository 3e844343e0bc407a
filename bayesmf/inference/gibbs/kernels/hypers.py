r"""Numba kernels of the conjugate hyperparameter draws (inverse-gamma, normal-inverse-gamma).

An inverse gamma :math:`\mathrm{IG}(a', b')` draw is :math:`b' / g` with
:math:`g \sim \mathrm{Gamma}(a', 1)`; the caller draws the standard gammas ``g`` with the
posterior shapes :math:`a' = a + n/2` and passes them in.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bias_var", "shared_factor_var", "side_hypers"]


@numba.njit(cache=True, nogil=True)
def shared_factor_var(params, start, b_f, per_factor, gammas):
    r"""Draw the factor variance(s) shared by U and V; set both sides' prior precisions.

    :math:`s^2 \mid \cdot \sim \mathrm{IG}(a_f + n/2, b_f + \tfrac12 \sum x^2)` over the
    entries of U and V (of column k with ``per_factor``); ``gammas``: one standard gamma
    per variance (shapes set by the caller). ``start``: 1 with biases (column 0 of the
    rows), else 0. Writes ``params.factor_var`` and ``prec[start:]`` of both sides.
    """
    P_user, P_item, factor_var = params.user.P, params.item.P, params.factor_var
    prec_user, prec_item = params.user.prec, params.item.prec
    n_factors = P_user.shape[1] - start
    total_ss = 0.0
    for k in range(n_factors):
        ss = 0.0
        for i in range(P_user.shape[0]):
            ss += P_user[i, start + k] ** 2
        for j in range(P_item.shape[0]):
            ss += P_item[j, start + k] ** 2
        if per_factor:
            factor_var[k] = (b_f + 0.5 * ss) / gammas[k]
        total_ss += ss
    if not per_factor:
        shared = (b_f + 0.5 * total_ss) / gammas[0]
        for k in range(n_factors):
            factor_var[k] = shared
    for k in range(n_factors):
        prec_user[start + k] = 1.0 / factor_var[k]
        prec_item[start + k] = 1.0 / factor_var[k]


@numba.njit(cache=True, nogil=True)
def side_hypers(side, start, b_f, kappa, per_factor, z, gammas):
    r"""Draw one side's factor means and variance(s) jointly (normal-inverse-gamma).

    With :math:`v_k \sim \mathrm{IG}(a_f, b_f)`, :math:`m_k \mid v_k \sim \mathcal N(0,
    v_k/\kappa)` and the n rows :math:`x_{ik} \sim \mathcal N(m_k, v_k)`:
    :math:`v_k \mid x \sim \mathrm{IG}(a_f + n/2, b_f + \tfrac12 [\sum_i (x_{ik} -
    \bar x_k)^2 + \tfrac{n\kappa}{n+\kappa} \bar x_k^2])` (one :math:`v` summing over k
    without ``per_factor``, shape :math:`a_f + nK/2`), then :math:`m_k \mid v_k, x \sim
    \mathcal N(n \bar x_k / (n + \kappa), v_k / (n + \kappa))`. ``gammas``: one standard
    gamma per variance; ``z``: K normals. Writes ``side.prec[start + k] = 1/v_k`` and
    ``side.mean[start + k] = m_k``.
    """
    P, prec, pmean = side.P, side.prec, side.mean
    n = P.shape[0]
    n_factors = P.shape[1] - start
    xbar = np.empty(n_factors)
    ss = np.empty(n_factors)
    for k in range(n_factors):
        total = 0.0
        for i in range(n):
            total += P[i, start + k]
        xbar[k] = total / n
        acc = 0.0
        for i in range(n):
            d = P[i, start + k] - xbar[k]
            acc += d * d
        ss[k] = acc + n * kappa / (n + kappa) * xbar[k] ** 2
    shared = 0.0
    if not per_factor:
        shared = (b_f + 0.5 * ss.sum()) / gammas[0]
    for k in range(n_factors):
        v = (b_f + 0.5 * ss[k]) / gammas[k] if per_factor else shared
        prec[start + k] = 1.0 / v
        pmean[start + k] = n * xbar[k] / (n + kappa) + z[k] * np.sqrt(v / (n + kappa))


@numba.njit(cache=True, nogil=True)
def bias_var(side, scalars, index, b_b, gamma):
    r"""Draw one side's bias variance :math:`\mathrm{IG}(a_b + n/2, b_b + \tfrac12 \sum_i b_i^2)`.

    The biases are column 0 of ``side.P``; ``gamma``: the standard gamma of shape
    :math:`a_b + n/2`. Writes ``scalars[index]`` and ``side.prec[0]``.
    """
    P = side.P
    ss = 0.0
    for i in range(P.shape[0]):
        ss += P[i, 0] ** 2
    scalars[index] = (b_b + 0.5 * ss) / gamma
    side.prec[0] = 1.0 / scalars[index]
