r"""Numba kernels of the implicit-set block (SVD++): the rows' implicit terms and the weights' draw.

The design of a side is sparse, :math:`X_{ij} = |N(i)|^{-1/2}` for :math:`j \in N(i)`,
passed as CSR arrays (``indptr``, ``cols``, ``vals``) by row i (`add_implicit_terms`) or,
transposed, by member j (`sample_implicit_weights`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["add_implicit_terms", "sample_implicit_weights"]


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
