r"""Numba kernels of the shift moves: translations the likelihood cannot see, drawn exactly.

Each shifts a group of parameters along a direction that leaves every latent score
:math:`\mu + b_i + c_j + U_i \cdot V_j` unchanged, by a :math:`\delta` drawn from its
Gaussian full conditional (only priors see it). Translations have unit Jacobian, so each
is a valid generalized Gibbs step (Liu & Sabatti 2000) that leaves the posterior invariant.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["shift_biases", "shift_side"]


@numba.njit(cache=True, nogil=True)
def shift_biases(params, hyper, z):
    r"""Shift :math:`(\mu, b, c)` along the directions the likelihood cannot see.

    :math:`\mu + \delta_b + \delta_c`, :math:`b_i - \delta_b`, :math:`c_j - \delta_c`
    leave every :math:`\mu + b_i + c_j` unchanged.

    Only the priors of :math:`b, c, \mu` depend on :math:`\delta = (\delta_b, \delta_c)`,
    and :math:`\delta` is drawn from its full conditional
    :math:`\pi(\delta) \propto p(\mu + \delta_b + \delta_c)\,\prod_i p(b_i - \delta_b)
    \prod_j p(c_j - \delta_c)` (Gaussian). Without it :math:`\mu` mixes slowly (the data
    pin :math:`\mu + \bar b + \bar c` to within :math:`\sigma/\sqrt N`, the one-at-a-time
    moves take steps of that size along a ridge set by the priors), and with it the
    predictions of sparsely rated users and items.

    ``params`` (`Params`): biases in column 0 of both sides' rows, their prior precisions
    in ``prec[0]``; ``hyper`` (`Hyper`): the prior of mu; ``z``: 2 standard normals.
    """
    P_user, P_item, scalars = params.user.P, params.item.P, params.scalars
    prec_b, prec_c = params.user.prec[0], params.item.prec[0]
    n_users = P_user.shape[0]
    n_items = P_item.shape[0]
    q0 = hyper.mu_prec
    offset = scalars[0] - hyper.mu_mean
    sum_b = 0.0
    for i in range(n_users):
        sum_b += P_user[i, 0]
    sum_c = 0.0
    for j in range(n_items):
        sum_c += P_item[j, 0]
    # log pi(delta) = -delta' A delta / 2 + h' delta + const
    a11 = n_users * prec_b + q0
    a22 = n_items * prec_c + q0
    a12 = q0
    h1 = sum_b * prec_b - q0 * offset
    h2 = sum_c * prec_c - q0 * offset
    l11 = np.sqrt(a11)
    l21 = a12 / l11
    l22 = np.sqrt(a22 - l21 * l21)
    # delta = L^-T (L^-1 h + z)
    y1 = h1 / l11 + z[0]
    y2 = (h2 - l21 * h1 / l11) / l22 + z[1]
    d2 = y2 / l22
    d1 = (y1 - l21 * d2) / l11
    scalars[0] += d1 + d2
    for i in range(n_users):
        P_user[i, 0] -= d1
    for j in range(n_items):
        P_item[j, 0] -= d2


@numba.njit(cache=True, nogil=True)
def shift_side(own, P_other, prec_other_bias, kappa, z):
    r"""Shift one side's factors and mean by :math:`\delta`, the other side's biases compensating.

    Under ``factor_prior="per_side"`` with biases, for users (items alike):
    :math:`U_i \to U_i + \delta` for every user, :math:`m_U \to m_U + \delta` and
    :math:`c_j \to c_j - \delta \cdot V_j` for every item leave every
    :math:`b_i + c_j + U_i \cdot V_j` and every :math:`U_i - m_U` unchanged. Only the
    priors of :math:`m_U` (:math:`\mathcal N(0, v_k / \kappa)`) and of the item biases
    (:math:`\mathcal N(0, s_c^2)`) see :math:`\delta`, so its full conditional is Gaussian,

    .. math::

        \pi(\delta) \propto \exp\Big(-\frac{\kappa}{2} \sum_k \frac{(m_{U,k} + \delta_k)^2}{v_k}
        - \frac{1}{2 s_c^2} \sum_j (c_j - \delta \cdot V_j)^2\Big),

    with precision :math:`A = \kappa\,\mathrm{diag}(1/v) + V^\top V / s_c^2` and linear
    term :math:`h = -\kappa\, m_U / v + V^\top c / s_c^2`; :math:`\delta = A^{-1} h +
    L^{-\top} z` (:math:`A = L L^\top`), as in `shift_biases`. Without it the item-bias sd
    and mu mix slowly under this prior: the side means trade with the other side's biases
    along this ridge.

    ``own`` (`Side`): rows (n, 1 + K) with the bias in column 0, ``prec[1:]`` =
    :math:`1/v`, ``mean[1:]`` = :math:`m`; ``P_other``: the other side's rows;
    ``prec_other_bias`` = :math:`1/s_c^2`; ``z``: K normals.
    """
    P_own, prec_own, pm_own = own.P, own.prec, own.mean
    n_factors = P_own.shape[1] - 1
    A = np.zeros((n_factors, n_factors))
    h = np.zeros(n_factors)
    for j in range(P_other.shape[0]):
        c = P_other[j, 0]
        for a in range(n_factors):
            va = P_other[j, 1 + a]
            h[a] += c * va
            for b in range(a + 1):
                A[a, b] += va * P_other[j, 1 + b]
    for a in range(n_factors):
        h[a] = h[a] * prec_other_bias - kappa * prec_own[1 + a] * pm_own[1 + a]
        for b in range(a + 1):
            A[a, b] *= prec_other_bias
        A[a, a] += kappa * prec_own[1 + a]
    # Cholesky (lower, in place), then delta = L^-T (L^-1 h + z)
    for a in range(n_factors):
        for b in range(a + 1):
            value = A[a, b]
            for c in range(b):
                value -= A[a, c] * A[b, c]
            A[a, b] = np.sqrt(value) if a == b else value / A[b, b]
    y = np.empty(n_factors)
    for a in range(n_factors):
        value = h[a]
        for c in range(a):
            value -= A[a, c] * y[c]
        y[a] = value / A[a, a]
    for a in range(n_factors):
        y[a] += z[a]
    delta = np.empty(n_factors)
    for a in range(n_factors - 1, -1, -1):
        value = y[a]
        for c in range(a + 1, n_factors):
            value -= A[c, a] * delta[c]
        delta[a] = value / A[a, a]
    for i in range(P_own.shape[0]):
        for a in range(n_factors):
            P_own[i, 1 + a] += delta[a]
    for a in range(n_factors):
        pm_own[1 + a] += delta[a]
    for j in range(P_other.shape[0]):
        shift = 0.0
        for a in range(n_factors):
            shift += delta[a] * P_other[j, 1 + a]
        P_other[j, 0] -= shift
