"""Numba kernels of the collapsed bias-variance step (per-side prior, with biases)."""

from __future__ import annotations

import numba
import numpy as np

from bayesmf.inference.gibbs.kernels.slice_sampler import register_density, slice_step
from bayesmf.inference.gibbs.kernels.structs import BiasVarDensity

__all__ = [
    "bias_free_sums",
    "bias_var_log_density",
    "collapsed_bias_var",
    "collapsed_bias_vars",
    "draw_from_sums",
    "item_and_user_sums",
    "subtract_item_biases",
]

#: stepping-out width and most steps of the slice sampler on log s^2
_WIDTH, _MAX_STEPS = 0.5, 60


@numba.njit(inline="always")
def _pred_without_own_bias(mu, P_own, row, P_other, j):
    """Return one rating's prediction less the own row's bias: ``mu``, the other row's bias, the factors' dot product."""
    pred = mu + P_other[j, 0]
    for k in range(1, P_own.shape[1]):
        pred += P_own[row, k] * P_other[j, k]
    return pred


@numba.njit(cache=True, nogil=True)
def bias_free_sums(ratings, P_own, P_other, mu, out):
    r"""Per row of one side, the sum of its ratings' residuals without that row's own bias.

    For items (``ratings``: the ratings by item, ``P_own`` = items, ``P_other`` = users):
    ``out[j]`` = :math:`\sum_{i \in I_j} (r_{ij} - \mu - b_i - U_i \cdot V_j)`. Both
    ``P`` arrays hold the bias in column 0.
    """
    indptr, other, rating = ratings
    for row in range(indptr.shape[0] - 1):
        acc = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            acc += rating[p] - _pred_without_own_bias(mu, P_own, row, P_other, other[p])
        out[row] = acc


@register_density(BiasVarDensity)
@numba.njit(cache=True, nogil=True)
def bias_var_log_density(t, d):
    r"""Log density of :math:`t = \log s^2` with the biases integrated out (`collapsed_bias_var`).

    ``d`` (`BiasVarDensity`): the rated rows' mean residuals, their noise variances and the
    variance's inverse-gamma prior.
    """
    s2 = np.exp(t)
    total = 0.0
    for j in range(d.chat.shape[0]):
        var = s2 + d.noise[j]
        total += np.log(var) + d.chat[j] * d.chat[j] / var
    return -0.5 * total - d.prior.a * t - d.prior.b / s2


@numba.njit(cache=True, nogil=True)
def collapsed_bias_var(ratings, P_own, P_other, mu, sigma2, bias_var, prior, u, z, sums):
    r"""Redraw one side's bias variance with the biases integrated out, then the biases.

    For items: given everything but :math:`(s_c^2, c)`, item j's ratings see :math:`c_j`
    through :math:`\hat c_j = S_j / n_j`, :math:`S_j = \sum_{i \in I_j} (r_{ij} - \mu - b_i -
    U_i \cdot V_j)` (`bias_free_sums`), so with :math:`c_j \sim \mathcal N(0, s_c^2)`
    integrated out

    .. math::

        p(s_c^2 \mid \cdot) \propto \mathrm{IG}(s_c^2; a_b, b_b)
        \prod_{j:\, n_j > 0} \mathcal N(\hat c_j;\ 0,\ s_c^2 + \sigma^2 / n_j).

    :math:`t = \log s_c^2` takes one slice-sampling step on that density (`slice_step`,
    width 0.5, at most 60 steps; uniforms ``u``); then every :math:`c_j \mid s_c^2, \cdot
    \sim \mathcal N(v_j S_j / \sigma^2, v_j)`, :math:`v_j = (n_j / \sigma^2 + 1 / s_c^2)^{-1}`
    (``z``: one standard normal per row). Together a valid update of the block
    :math:`(s_c^2, c)`, written into ``P_own[:, 0]``. ``ratings``: the side's ratings by
    row; ``prior`` (`InvGamma`): the variance's prior; ``sums``: scratch space, one per row.

    Returns the new :math:`s_c^2` and the change of the residual sum of squares
    :math:`\sum (r_{ij} - \mu - b_i - c_j - U_i \cdot V_j)^2` that the new biases make:
    with :math:`\delta_j = c_j^{\text{new}} - c_j^{\text{old}}` and the residual sum
    :math:`S_j - n_j c_j^{\text{old}}`, it is :math:`\sum_j n_j \delta_j^2 - 2 \delta_j (S_j
    - n_j c_j^{\text{old}})`, so the caller carries the statistic along without a pass over the
    ratings.
    """
    bias_free_sums(ratings, P_own, P_other, mu, sums)
    return draw_from_sums(ratings.indptr, sums, P_own, sigma2, bias_var, prior, u, z)


@numba.njit(cache=True, nogil=True)
def draw_from_sums(indptr, sums, P_own, sigma2, bias_var, prior, u, z):
    """`collapsed_bias_var` given the bias-free residual sums ``sums`` of the rows (row pointers ``indptr``)."""
    n_rows = indptr.shape[0] - 1
    n_rated = 0
    for row in range(n_rows):
        if indptr[row + 1] > indptr[row]:
            n_rated += 1
    chat = np.empty(n_rated)
    noise = np.empty(n_rated)
    q = 0
    for row in range(n_rows):
        n = indptr[row + 1] - indptr[row]
        if n > 0:
            chat[q] = sums[row] / n
            noise[q] = sigma2 / n
            q += 1
    density = BiasVarDensity(chat, noise, prior)
    new_var = np.exp(slice_step(density, np.log(bias_var), _WIDTH, _MAX_STEPS, u))
    d_sse = 0.0
    for row in range(n_rows):
        n = indptr[row + 1] - indptr[row]
        post_var = 1.0 / (n / sigma2 + 1.0 / new_var)
        old = P_own[row, 0]
        P_own[row, 0] = post_var * sums[row] / sigma2 + np.sqrt(post_var) * z[row]
        delta = P_own[row, 0] - old
        d_sse += n * delta * delta - 2.0 * delta * (sums[row] - n * old)
    return new_var, d_sse


@numba.njit(cache=True, nogil=True)
def item_and_user_sums(by_item, P_item, P_user, mu, item_sums, user_sums):
    r"""One pass over the ratings by item: `bias_free_sums` of the items, and per user the sum without either bias.

    ``item_sums[j]`` = :math:`\sum_{i \in I_j} (r_{ij} - \mu - b_i - U_i \cdot V_j)` (the
    same numbers as `bias_free_sums`); ``user_sums[i]`` = :math:`\sum_{j \in J_i} (r_{ij} -
    \mu - U_i \cdot V_j)`, from which `subtract_item_biases` makes the users' bias-free sums
    once the item biases are drawn, without a second pass through the factors.
    """
    indptr, other, rating = by_item
    user_sums[:] = 0.0
    for row in range(indptr.shape[0] - 1):
        acc = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            i = other[p]
            resid = rating[p] - _pred_without_own_bias(mu, P_item, row, P_user, i)
            acc += resid
            user_sums[i] += resid + P_user[i, 0]
        item_sums[row] = acc


@numba.njit(cache=True, nogil=True)
def subtract_item_biases(by_item, P_item, user_sums):
    """Subtract each rating's item bias from its user's sum: ``user_sums`` become the users' `bias_free_sums`."""
    indptr, other, _ = by_item
    for row in range(indptr.shape[0] - 1):
        c = P_item[row, 0]
        for p in range(indptr[row], indptr[row + 1]):
            user_sums[other[p]] -= c


@numba.njit(cache=True, nogil=True)
def collapsed_bias_vars(ratings, P_user, P_item, mu, sigma2, item_var, user_var, prior, u_item, z_item, u_user, z_user):
    r"""`collapsed_bias_var` for the items, then for the users, with one pass through the factors.

    The users' bias-free sums :math:`\sum_j (r_{ij} - \mu - c_j - U_i \cdot V_j)` differ
    from the sums the item pass saw only by the item biases just drawn, so they are made from
    that pass (`item_and_user_sums`, `subtract_item_biases`) instead of a second pass through
    the factors (the same numbers up to rounding). ``ratings`` (`Ratings`): the responses by
    user and by item. Returns the new item-bias and user-bias variances and the change of the
    residual sum of squares the new biases make (both sides').
    """
    by_item, by_user = ratings.by_item, ratings.by_user
    item_sums = np.empty(P_item.shape[0])
    user_sums = np.empty(P_user.shape[0])
    item_and_user_sums(by_item, P_item, P_user, mu, item_sums, user_sums)
    new_item, d_item = draw_from_sums(by_item.indptr, item_sums, P_item, sigma2, item_var, prior, u_item, z_item)
    subtract_item_biases(by_item, P_item, user_sums)
    new_user, d_user = draw_from_sums(by_user.indptr, user_sums, P_user, sigma2, user_var, prior, u_user, z_user)
    return new_item, new_user, d_item + d_user
