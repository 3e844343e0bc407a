r"""Numba kernels of the implicit-set block (SVD++): the rows' implicit terms and the weights' draw.

The design of a side is sparse, :math:`X_{ij} = |N(i)|^{-1/2}` for :math:`j \in N(i)`,
passed as CSR arrays (``indptr``, ``cols``, ``vals``) by row i (`add_implicit_terms`) or,
transposed, by member j (`sample_implicit_weights`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["add_implicit_terms", "sample_implicit_weights", "shift_implicit_weights"]


@numba.njit(cache=True, nogil=True)
def add_implicit_terms(indptr, cols, vals, Y, out, start, sign):
    r"""Add ``sign`` times :math:`X_i Y` to row i of ``out`` from column ``start`` on, for every row i.

    ``Y`` (n_other, K); ``out`` (n_rows, start + K), updated in place.
    """
    n_factors = Y.shape[1]
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            x = sign * vals[p]
            j = cols[p]
            for k in range(n_factors):
                out[i, start + k] += x * Y[j, k]


@numba.njit(cache=True, nogil=True)
def sample_implicit_weights(indptr, rows, vals, resid, Y, beta, sd, z):
    r"""Single-site Gibbs over the rows :math:`y_j` of ``Y``, each from its Gaussian conditional.

    The model of the residuals :math:`r_i = U_i - m - W^\top x_i - X_i Y` is
    :math:`r_i \sim \mathcal N(0, \mathrm{diag}(v))` with :math:`y_{jk} \sim \mathcal
    N(0, v_k / \beta)`, so given the rest each :math:`y_{jk}` is independent over k:

    .. math::

        y_{jk} \mid \cdot \sim \mathcal N\Big(\frac{\sum_i X_{ij} (r_{ik} + X_{ij} y_{jk})}{q_j},
        \frac{v_k}{q_j}\Big), \qquad q_j = \beta + \sum_i X_{ij}^2,

    the sums over the rows i whose set holds j. ``indptr``, ``rows``, ``vals``: the
    transposed design (by j); ``resid`` (n_rows, K) the residuals at the current ``Y``,
    kept up to date in place as each :math:`y_j` moves; ``sd`` (K,) :math:`\sqrt{v_k}`;
    ``z`` (n_other, K) standard normals. Cost: the design's nonzeros times K.
    """
    n_factors = Y.shape[1]
    s = np.empty(n_factors)
    for j in range(indptr.shape[0] - 1):
        q = beta
        s[:] = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            i = rows[p]
            x = vals[p]
            q += x * x
            for k in range(n_factors):
                s[k] += x * (resid[i, k] + x * Y[j, k])
        root = math.sqrt(q)
        for k in range(n_factors):
            new = s[k] / q + sd[k] / root * z[j, k]
            s[k] = new - Y[j, k]  # now the change
            Y[j, k] = new
        for p in range(indptr[j], indptr[j + 1]):
            i = rows[p]
            x = vals[p]
            for k in range(n_factors):
                resid[i, k] -= x * s[k]


@numba.njit(cache=True, nogil=True)
def shift_implicit_weights(ratings, P_own, P_other, fit, by_member, Y, prior_prec, z):
    r"""Move each :math:`y_j` with the rows whose set holds it: :math:`y_j \to y_j + \delta`, :math:`U_i \to U_i + X_{ij}\delta`.

    The free parts :math:`P_i = U_i - X_i Y` do not move, so only :math:`y_j`'s prior
    :math:`\mathcal N(0, \mathrm{diag}(v)/\gamma)` and the likelihood of the moved rows see
    :math:`\delta`, whose conditional is Gaussian (a translation: no Jacobian):

    .. math::

        \Lambda = \mathrm{diag}(\gamma / v) + \sigma^{-2} \sum_i X_{ij}^2 G_i, \quad
        h = -\mathrm{diag}(\gamma / v)\, y_j + \sum_i X_{ij} g_i, \quad
        \delta = \Lambda^{-1} h + L^{-\top} z_j,

    with :math:`G_i = \sum_l V_l V_l^\top` over row i's ratings and :math:`g_i = \sigma^{-2}
    \sum_l e_{il} V_l` (:math:`e_{il}` the rating's residual, kept up to date as the rows
    move). ``ratings`` (`Csr`): the side's responses by row; ``P_own``, ``P_other``: the rows
    (bias first with ``fit.has_bias``); ``by_member``: the transposed design (indptr, rows,
    values); ``Y`` (J, K) unscaled; ``prior_prec`` (K,) :math:`\gamma / v`; ``z`` (J, K)
    standard normals. Updates ``Y`` and the factors of ``P_own`` in place.
    """
    indptr, other, response = ratings.indptr, ratings.other, ratings.rating
    start = 1 if fit.has_bias else 0
    n_rows, n_factors = P_own.shape[0], Y.shape[1]
    G = np.zeros((n_rows, n_factors, n_factors))
    g = np.zeros((n_rows, n_factors))
    for i in range(n_rows):
        for p in range(indptr[i], indptr[i + 1]):
            j = other[p]
            e = response[p]
            if fit.has_bias:
                e -= fit.mu + P_own[i, 0] + P_other[j, 0]
            for k in range(n_factors):
                e -= P_own[i, start + k] * P_other[j, start + k]
            for a in range(n_factors):
                va = P_other[j, start + a]
                g[i, a] += fit.inv_sigma2 * e * va
                for b in range(n_factors):
                    G[i, a, b] += va * P_other[j, start + b]
    m_indptr, m_rows, m_vals = by_member
    A = np.empty((n_factors, n_factors))
    h = np.empty(n_factors)
    for j in range(m_indptr.shape[0] - 1):
        for a in range(n_factors):
            h[a] = -prior_prec[a] * Y[j, a]
            for b in range(n_factors):
                A[a, b] = prior_prec[a] if a == b else 0.0
        for p in range(m_indptr[j], m_indptr[j + 1]):
            i, x = m_rows[p], m_vals[p]
            for a in range(n_factors):
                h[a] += x * g[i, a]
                for b in range(n_factors):
                    A[a, b] += fit.inv_sigma2 * x * x * G[i, a, b]
        L = np.linalg.cholesky(A)
        w = np.empty(n_factors)  # L w = h, then L^T delta = w + z
        for a in range(n_factors):
            s = h[a]
            for b in range(a):
                s -= L[a, b] * w[b]
            w[a] = s / L[a, a]
        delta = np.empty(n_factors)
        for a in range(n_factors - 1, -1, -1):
            s = w[a] + z[j, a]
            for b in range(a + 1, n_factors):
                s -= L[b, a] * delta[b]
            delta[a] = s / L[a, a]
        for a in range(n_factors):
            Y[j, a] += delta[a]
        for p in range(m_indptr[j], m_indptr[j + 1]):
            i, x = m_rows[p], m_vals[p]
            for a in range(n_factors):
                P_own[i, start + a] += x * delta[a]
                s = 0.0
                for b in range(n_factors):
                    s += G[i, a, b] * delta[b]
                g[i, a] -= fit.inv_sigma2 * x * s
