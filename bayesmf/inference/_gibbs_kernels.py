"""Numba kernels of the blocked conjugate Gibbs sampler (`bayesmf.inference.gibbs`).

Symbols, mapped to the public names of `bayesmf.posterior`:

- ``P_user`` (n_users, kp): row ``i`` is :math:`(b_i, U_i)` with biases (``kp = K + 1``),
  :math:`U_i` without (``kp = K``); ``P_item`` likewise :math:`(c_j, V_j)`.
- ``scalars``: ``[mu, sigma2, user_bias_var, item_bias_var]`` (``mu`` = global mean,
  ``sigma2`` = noise variance, the bias variances are the squares of ``sigma_user_bias``,
  ``sigma_item_bias``).
- ``factor_var`` (K,): prior variance of factor ``k`` of U and V (``sigma_factor**2``).
- ``prec_user``, ``prec_item`` (kp,): the prior precisions of one row of ``P_user`` /
  ``P_item`` (bias first).

Every random number comes in as an argument (standard normals, standard gammas, uniforms drawn by
a numpy ``Generator`` in the caller), so a chain is a deterministic function of its
generator whatever thread runs it. The kernels release the GIL (``nogil=True``) so chains
run in parallel threads.
"""

from __future__ import annotations

import numba
import numpy as np

from bayesmf.inference._rows import gram_and_rhs

__all__ = [
    "ROW_BATCH",
    "bias_free_sums",
    "collapsed_bias_var",
    "gibbs_sweep",
    "residual_stats",
    "sample_rows",
    "scale_move_terms",
    "slice_log_scale",
    "sparse_scale_moves",
    "sparse_scale_sums",
]


#: rows whose Cholesky factorizations and solves run together, one row per SIMD lane: one
#: row's factorization is a chain of dependent operations, so alone it leaves the core idle
ROW_BATCH = 8


@numba.njit(cache=True, nogil=True)
def sample_rows(
    indptr, other, rating, other_params, mu, inv_sigma2, prec, has_bias, normals, out, alpha, pmean, resid
):
    r"""Draw every row of one side from its conditional, in place into ``out``.

    For row ``i`` (a user, say) with ratings :math:`r_{ij}` on items :math:`j \in J_i`, the
    features of item :math:`j` are :math:`x_j = (1, V_j)` and the offset :math:`\mu + c_j`
    (biases), or :math:`x_j = V_j` and 0 (no biases). The conditional of
    :math:`\theta_i = (b_i, U_i)` is Gaussian:

    .. math::

        \Lambda_i = \mathrm{diag}(\text{prec}) + \sigma^{-2} \sum_j x_j x_j^\top, \quad
        h_i = \sigma^{-2} \sum_j x_j (r_{ij} - \text{offset}_j)
              + \mathrm{diag}(\text{prec})\, \text{pmean}, \quad
        \theta_i \sim \mathcal N(\Lambda_i^{-1} h_i, \Lambda_i^{-1}).

    With :math:`\Lambda_i = L L^\top` (Cholesky), :math:`\theta_i = L^{-\top}(L^{-1} h_i + z)`
    for a standard normal :math:`z` (``normals[i]``); ``z = 0`` gives the conditional mean
    (an ALS step).

    ``alpha`` (overrelaxation, :math:`-1 < \alpha < 1`) draws instead
    :math:`m + \alpha(\theta_i^{\text{old}} - m) + \sqrt{1 - \alpha^2}\, L^{-\top} z` with
    :math:`m = \Lambda_i^{-1} h_i` and the old row read from ``out``, computed as
    :math:`L^{-\top}((1 - \alpha) L^{-1} h_i + \sqrt{1 - \alpha^2} z) + \alpha\,\theta_i^{\text{old}}`.

    Rows go in batches of `ROW_BATCH`: each row's Gram matrix is summed on its own, then the
    batch is factorized and solved together with the row index innermost. Every row sees
    the same operations in the same order as it would alone.

    ``resid``: also return the sum and the sum of squares of the residuals
    :math:`r_{ij} - b_i - c_j - U_i \cdot V_j` (no :math:`\mu`) at the new rows, from the
    features already gathered (the item pass, after the user pass, sees the new state);
    otherwise ``(0.0, 0.0)``.
    """
    n_rows = indptr.shape[0] - 1
    kp = out.shape[1]
    start = 1 if has_bias else 0
    noise_scale = np.sqrt(1.0 - alpha * alpha)
    batch = ROW_BATCH
    longest = 0
    for i in range(n_rows):
        longest = max(longest, indptr[i + 1] - indptr[i])
    # features gathered row by row as (kp, n) so the Gram sums are contiguous dot products;
    # one buffer per row of the batch, kept for the residuals
    X = np.empty((batch, kp, longest))
    target = np.empty((batch, longest))
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
            Xr = X[r]
            tr = target[r]
            for q in range(n):
                j = other[first + q]
                if has_bias:
                    Xr[0, q] = 1.0
                    tr[q] = rating[first + q] - mu - other_params[j, 0]
                else:
                    tr[q] = rating[first + q]
                for k in range(start, kp):
                    Xr[k, q] = other_params[j, k]
            gram_and_rhs(Xr, tr, n, lam, rhs)
            for a in range(kp):
                y[a, r] = rhs[a]
                for b in range(a + 1):
                    L[a, b, r] = lam[a, b]
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
            h = prec[a] * pmean[a]
            for r in range(m):
                val[r] = y[a, r] * inv_sigma2 + h
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
        if resid:
            for r in range(m):
                Xr = X[r]
                tr = target[r]
                for q in range(indptr[i0 + r + 1] - indptr[i0 + r]):
                    pred = 0.0
                    for k in range(kp):
                        pred += Xr[k, q] * out[i0 + r, k]
                    e = tr[q] - pred + mu if has_bias else tr[q] - pred
                    total += e
                    total_sq += e * e
    return total, total_sq


@numba.njit(cache=True, nogil=True)
def residual_stats(indptr, other, rating, P_user, P_item, has_bias):
    r"""Sum and sum of squares of :math:`e_{ij} = r_{ij} - b_i - c_j - U_i \cdot V_j` (no mu)."""
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


@numba.njit(cache=True, nogil=True)
def _shift_biases(P_user, P_item, scalars, prec_b, prec_c, consts, z_scalar):
    r"""Shift :math:`(\mu, b, c)` along the directions the likelihood cannot see.

    :math:`\mu + \delta_b + \delta_c`, :math:`b_i - \delta_b`, :math:`c_j - \delta_c`
    leave every :math:`\mu + b_i + c_j` unchanged.

    Only the priors of :math:`b, c, \mu` depend on :math:`\delta = (\delta_b, \delta_c)`,
    and :math:`\delta` is drawn from its full conditional
    :math:`\pi(\delta) \propto p(\mu + \delta_b + \delta_c)\,\prod_i p(b_i - \delta_b)
    \prod_j p(c_j - \delta_c)` (Gaussian). Translations have unit Jacobian, so this is a
    valid generalized Gibbs step (Liu & Sabatti 2000) that leaves the posterior invariant.
    Without it :math:`\mu` mixes slowly (the data pin :math:`\mu + \bar b + \bar c` to
    within :math:`\sigma/\sqrt N`, the one-at-a-time moves take steps of that size along a
    ridge set by the priors), and with it the predictions of sparsely rated users and items.
    """
    n_users = P_user.shape[0]
    n_items = P_item.shape[0]
    q0 = consts[7]
    offset = scalars[0] - consts[6]
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
    y1 = h1 / l11 + z_scalar[1]
    y2 = (h2 - l21 * h1 / l11) / l22 + z_scalar[2]
    d2 = y2 / l22
    d1 = (y1 - l21 * d2) / l11
    scalars[0] += d1 + d2
    for i in range(n_users):
        P_user[i, 0] -= d1
    for j in range(n_items):
        P_item[j, 0] -= d2


@numba.njit(cache=True, nogil=True)
def gibbs_sweep(
    u_indptr,
    u_other,
    u_rating,
    i_indptr,
    i_other,
    i_rating,
    P_user,
    P_item,
    scalars,
    factor_var,
    prec_user,
    prec_item,
    consts,
    z_user,
    z_item,
    z_scalar,
    gammas,
    has_bias,
    hierarchical,
    per_factor,
    alpha,
    per_side,
    pm_user,
    pm_item,
    z_side,
    kappa,
):
    r"""Run one systematic-scan sweep, in place; return the residual sum of squares.

    Updates ``P_user``, ``P_item``, ``scalars``, ``factor_var``, ``prec_user`` and
    ``prec_item`` (and, with ``per_side``, the prior means ``pm_user``, ``pm_item``).

    Order: :math:`(b_i, U_i) \mid \cdot` for all users, :math:`(c_j, V_j) \mid \cdot` for all
    items, :math:`\mu \mid \cdot`, a joint shift of :math:`(\mu, b, c)` (biases;
    `_shift_biases`), then (``hierarchical``) :math:`\sigma^2 \mid \cdot`, the
    factor variance(s), the two bias variances. ``consts`` = ``[a_sigma2, b_sigma2,
    a_factor, b_factor, a_bias, b_bias, mu_prior_mean, mu_prior_precision]`` (precision 0:
    flat prior on mu). ``z_scalar`` holds 3 standard normals (mu, then the shift).
    ``gammas`` holds standard-gamma draws whose shapes are the posterior
    shapes (``a + n/2``), in the order sigma2, factor variance(s), user-bias variance,
    item-bias variance; an inverse gamma :math:`\mathrm{IG}(a', b')` draw is
    :math:`b' / g` with :math:`g \sim \mathrm{Gamma}(a', 1)`.

    ``per_side`` (``factor_prior="per_side"``): instead of the shared factor variance, each
    side's (mean, variance) pair is drawn jointly from its normal-inverse-gamma conditional
    (`_side_hypers`); the factor gammas are then the user side's then the item side's. With
    biases, each side then moves jointly with its mean along a direction the likelihood
    cannot see (`_shift_side`). ``z_side`` (4, K) holds the normals of the two mean vectors,
    then of the two shifts. ``alpha`` is the overrelaxation of the rows (`sample_rows`).

    Returns the residual sum of squares of the training ratings at the new state, for the
    log-likelihood.
    """
    mu = scalars[0]
    inv_sigma2 = 1.0 / scalars[1]
    sample_rows(
        u_indptr, u_other, u_rating, P_item, mu, inv_sigma2, prec_user, has_bias, z_user, P_user, alpha, pm_user,
        False,
    )
    total, total_sq = sample_rows(
        i_indptr, i_other, i_rating, P_user, mu, inv_sigma2, prec_item, has_bias, z_item, P_item, alpha, pm_item,
        True,
    )
    n_obs = u_rating.shape[0]
    if has_bias:
        # mu | rest ~ N(m, 1/q), q = N/sigma2 + prior precision
        q = n_obs * inv_sigma2 + consts[7]
        m = (total * inv_sigma2 + consts[6] * consts[7]) / q
        mu = m + z_scalar[0] / np.sqrt(q)
        scalars[0] = mu
    else:
        mu = 0.0
    sse = total_sq - 2.0 * mu * total + n_obs * mu * mu
    if sse < 0.0:  # rounding: the sum of squares cannot be negative
        sse = 0.0
    if has_bias:
        _shift_biases(P_user, P_item, scalars, prec_user[0], prec_item[0], consts, z_scalar)
    if not hierarchical:
        return sse
    scalars[1] = (consts[1] + 0.5 * sse) / gammas[0]
    kp = P_user.shape[1]
    start = 1 if has_bias else 0
    n_factors = kp - start
    n_factor_gammas = n_factors if per_factor else 1
    if per_side:
        _side_hypers(P_user, start, prec_user, pm_user, consts[3], kappa, per_factor, z_side[0], gammas, 1)
        _side_hypers(
            P_item, start, prec_item, pm_item, consts[3], kappa, per_factor, z_side[1], gammas, 1 + n_factor_gammas
        )
        n_factor_gammas *= 2
        if has_bias:
            _shift_side(P_user, pm_user, prec_user, P_item, prec_item[0], kappa, z_side[2])
            _shift_side(P_item, pm_item, prec_item, P_user, prec_user[0], kappa, z_side[3])
    else:
        _shared_factor_var(P_user, P_item, start, factor_var, prec_user, prec_item, consts[3], per_factor, gammas)
    if has_bias:
        g = 1 + n_factor_gammas  # after sigma2 and the factor draws
        ss_u = 0.0
        for i in range(P_user.shape[0]):
            ss_u += P_user[i, 0] ** 2
        ss_i = 0.0
        for j in range(P_item.shape[0]):
            ss_i += P_item[j, 0] ** 2
        scalars[2] = (consts[5] + 0.5 * ss_u) / gammas[g]
        scalars[3] = (consts[5] + 0.5 * ss_i) / gammas[g + 1]
        prec_user[0] = 1.0 / scalars[2]
        prec_item[0] = 1.0 / scalars[3]
    return sse


@numba.njit(cache=True, nogil=True)
def _shared_factor_var(P_user, P_item, start, factor_var, prec_user, prec_item, b_f, per_factor, gammas):
    r"""Draw the factor variance(s) shared by U and V; set both sides' prior precisions.

    :math:`s^2 \mid \cdot \sim \mathrm{IG}(a_f + n/2, b_f + \tfrac12 \sum x^2)` over the
    entries of U and V (of column k with ``per_factor``); the gamma draws are
    ``gammas[1:]`` (shapes set by the caller).
    """
    n_factors = P_user.shape[1] - start
    total_ss = 0.0
    for k in range(n_factors):
        ss = 0.0
        for i in range(P_user.shape[0]):
            ss += P_user[i, start + k] ** 2
        for j in range(P_item.shape[0]):
            ss += P_item[j, start + k] ** 2
        if per_factor:
            factor_var[k] = (b_f + 0.5 * ss) / gammas[1 + k]
        total_ss += ss
    if not per_factor:
        shared = (b_f + 0.5 * total_ss) / gammas[1]
        for k in range(n_factors):
            factor_var[k] = shared
    for k in range(n_factors):
        prec_user[start + k] = 1.0 / factor_var[k]
        prec_item[start + k] = 1.0 / factor_var[k]


@numba.njit(cache=True, nogil=True)
def _side_hypers(P, start, prec, pmean, b_f, kappa, per_factor, z, gammas, g0):
    r"""Draw one side's factor means and variance(s) jointly (normal-inverse-gamma).

    With :math:`v_k \sim \mathrm{IG}(a_f, b_f)`, :math:`m_k \mid v_k \sim \mathcal N(0,
    v_k/\kappa)` and the n rows :math:`x_{ik} \sim \mathcal N(m_k, v_k)`:
    :math:`v_k \mid x \sim \mathrm{IG}(a_f + n/2, b_f + \tfrac12 [\sum_i (x_{ik} -
    \bar x_k)^2 + \tfrac{n\kappa}{n+\kappa} \bar x_k^2])` (one :math:`v` summing over k
    without ``per_factor``, shape :math:`a_f + nK/2`), then :math:`m_k \mid v_k, x \sim
    \mathcal N(n \bar x_k / (n + \kappa), v_k / (n + \kappa))`. Gammas from ``gammas[g0]``;
    normals ``z`` (K,). Writes ``prec[start + k] = 1/v_k`` and ``pmean[start + k] = m_k``.
    """
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
        shared = (b_f + 0.5 * ss.sum()) / gammas[g0]
    for k in range(n_factors):
        v = (b_f + 0.5 * ss[k]) / gammas[g0 + k] if per_factor else shared
        prec[start + k] = 1.0 / v
        pmean[start + k] = n * xbar[k] / (n + kappa) + z[k] * np.sqrt(v / (n + kappa))


@numba.njit(cache=True, nogil=True)
def _shift_side(P_own, pm_own, prec_own, P_other, prec_other_bias, kappa, z):
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
    term :math:`h = -\kappa\, m_U / v + V^\top c / s_c^2`. Translations have unit
    Jacobian, so drawing :math:`\delta = A^{-1} h + L^{-\top} z` (:math:`A = L L^\top`) is
    a valid generalized Gibbs step (Liu & Sabatti 2000), as `_shift_biases` is. Without it
    the item-bias sd and mu mix slowly under this prior: the side means trade with the other
    side's biases along this ridge.

    ``P_own``, ``P_other``: (n, 1 + K), bias in column 0; ``prec_own[1:]`` = :math:`1/v`,
    ``pm_own[1:]`` = :math:`m`; ``prec_other_bias`` = :math:`1/s_c^2`; ``z``: K normals.
    """
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


@numba.njit(cache=True, nogil=True)
def bias_free_sums(indptr, other, rating, P_own, P_other, mu, out):
    r"""Per row of one side, the sum of its ratings' residuals without that row's own bias.

    For items (``indptr`` etc. of the item-major layout, ``P_own`` = items, ``P_other`` =
    users): ``out[j]`` = :math:`\sum_{i \in I_j} (r_{ij} - \mu - b_i - U_i \cdot V_j)`. Both
    ``P`` arrays hold the bias in column 0.
    """
    kp = P_own.shape[1]
    for row in range(indptr.shape[0] - 1):
        acc = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            j = other[p]
            pred = mu + P_other[j, 0]
            for k in range(1, kp):
                pred += P_own[row, k] * P_other[j, k]
            acc += rating[p] - pred
        out[row] = acc


@numba.njit(cache=True, nogil=True)
def _bias_var_log_density(t, chat, noise, a_b, b_b):
    r"""Log density of :math:`t = \log s^2` with the biases integrated out (`collapsed_bias_var`)."""
    s2 = np.exp(t)
    total = 0.0
    for j in range(chat.shape[0]):
        var = s2 + noise[j]
        total += np.log(var) + chat[j] * chat[j] / var
    return -0.5 * total - a_b * t - b_b / s2


@numba.njit(cache=True, nogil=True)
def _slice_log_bias_var(t0, chat, noise, a_b, b_b, u):
    r"""One slice-sampling update of :math:`t` under `_bias_var_log_density`.

    Neal (2003): stepping out (width 0.5, at most 60 steps split at random between the two
    sides), then shrinkage.

    ``u``: uniforms (level, placement, split, then one per shrinkage). Should they run out,
    :math:`t_0` is kept; that takes over ``len(u) - 3`` shrinkages, each cutting the interval
    (of at most 30 units) to a uniformly placed part of itself, so it does not happen in
    practice.
    """
    width = 0.5
    max_steps = 60
    level = _bias_var_log_density(t0, chat, noise, a_b, b_b) + np.log(u[0])
    left = t0 - width * u[1]
    right = left + width
    steps_left = int(max_steps * u[2])
    steps_right = max_steps - 1 - steps_left
    while steps_left > 0 and _bias_var_log_density(left, chat, noise, a_b, b_b) > level:
        left -= width
        steps_left -= 1
    while steps_right > 0 and _bias_var_log_density(right, chat, noise, a_b, b_b) > level:
        right += width
        steps_right -= 1
    for k in range(3, u.shape[0]):
        t1 = left + (right - left) * u[k]
        if _bias_var_log_density(t1, chat, noise, a_b, b_b) > level:
            return t1
        if t1 < t0:
            left = t1
        else:
            right = t1
    return t0


@numba.njit(cache=True, nogil=True)
def collapsed_bias_var(indptr, other, rating, P_own, P_other, mu, sigma2, bias_var, a_b, b_b, u, z, sums):
    r"""Redraw one side's bias variance with the biases integrated out, then the biases.

    For items: given everything but :math:`(s_c^2, c)`, item j's ratings see :math:`c_j`
    through :math:`\hat c_j = S_j / n_j`, :math:`S_j = \sum_{i \in I_j} (r_{ij} - \mu - b_i -
    U_i \cdot V_j)` (`bias_free_sums`), so with :math:`c_j \sim \mathcal N(0, s_c^2)`
    integrated out

    .. math::

        p(s_c^2 \mid \cdot) \propto \mathrm{IG}(s_c^2; a_b, b_b)
        \prod_{j:\, n_j > 0} \mathcal N(\hat c_j;\ 0,\ s_c^2 + \sigma^2 / n_j).

    :math:`t = \log s_c^2` takes one slice-sampling step on that density
    (`_slice_log_bias_var`, uniforms ``u``); then every :math:`c_j \mid s_c^2, \cdot \sim
    \mathcal N(v_j S_j / \sigma^2, v_j)`, :math:`v_j = (n_j / \sigma^2 + 1 / s_c^2)^{-1}`
    (``z``: one standard normal per row). Together a valid update of the block
    :math:`(s_c^2, c)`, written into ``P_own[:, 0]``; returns the new :math:`s_c^2`.
    ``sums``: scratch space, one per row.
    """
    bias_free_sums(indptr, other, rating, P_own, P_other, mu, sums)
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
    new_var = np.exp(_slice_log_bias_var(np.log(bias_var), chat, noise, a_b, b_b, u))
    for row in range(n_rows):
        n = indptr[row + 1] - indptr[row]
        post_var = 1.0 / (n / sigma2 + 1.0 / new_var)
        P_own[row, 0] = post_var * sums[row] / sigma2 + np.sqrt(post_var) * z[row]
    return new_var



@numba.njit(cache=True, nogil=True)
def sparse_scale_sums(
    u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, mu, has_bias,
    scale_user, scale_item, factors, lo, hi,
):
    r"""Sum what `slice_log_scale` needs: how the residuals move when marked rows scale by t.

    ``scale_user[i]``, ``scale_item[j]`` (0/1) mark the scaled rows. With ``factors`` the
    scaled part of a row is its factor columns ``lo:hi`` of ``P`` (all factors, or one), so
    that part of a rating's :math:`U_i \cdot V_j` is multiplied by :math:`t^c`, :math:`c`
    its number of marked ends; otherwise it is the bias (column 0) and one side only is
    marked (``c <= 1``). With
    :math:`e = r_{ij} - \mu - b_i - c_j - U_i \cdot V_j` and :math:`w` the scaled part,
    returns ``[P1, Q1, P2, Q2]``: :math:`P_c = \sum e\,w`, :math:`Q_c = \sum w^2` over the
    ratings with :math:`c` marked ends. Visits only the ratings of marked rows: every
    marked item's (item layout), then every marked user's with an unmarked item.
    """
    kp = P_user.shape[1]
    start = 1 if has_bias else 0
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


@numba.njit(cache=True, nogil=True)
def _scale_log_density(x, sums, inv_sigma2, power, rate):
    r"""Log density of :math:`x = \log t` for `slice_log_scale` (up to a constant)."""
    f1 = np.exp(x) - 1.0
    f2 = np.exp(2.0 * x) - 1.0
    change = -2.0 * (f1 * sums[0] + f2 * sums[2]) + f1 * f1 * sums[1] + f2 * f2 * sums[3]
    return -0.5 * inv_sigma2 * change - power * x - rate * np.exp(-2.0 * x)


@numba.njit(cache=True, nogil=True)
def slice_log_scale(sums, inv_sigma2, power, rate, u):
    r"""Draw :math:`x = \log t` of a scale move by one slice-sampling step from :math:`x = 0`.

    The move scales the marked rows (`sparse_scale_sums`) by :math:`t` and their prior
    variance :math:`v` by :math:`t^2`. Its conditional with respect to Haar measure
    :math:`dt/t` (Liu & Sabatti 2000) is

    .. math::

        \log \pi(x) = -\frac{1}{2\sigma^2} \sum_c \left[(f_c - 1)^2 Q_c - 2 (f_c - 1) P_c\right]
        - \text{power}\cdot x - \text{rate}\cdot e^{-2x}, \quad f_c = e^{c x},

    with ``power`` :math:`= d\,n_{\text{unmarked}} + 2a` (``d`` entries per row) and
    ``rate`` :math:`= (Q_{\text{unmarked}}/2 + b)/v` for the variance's prior
    :math:`\mathrm{IG}(a, b)` and :math:`Q_{\text{unmarked}}` the sum of squares of the
    rows it also governs that are not moved. Neal's (2003) stepping out (width 0.1, at most
    40 steps) then shrinkage; ``u``: uniforms (level, placement, split, one per shrinkage).
    Should the shrinkages run out, 0 (no move) is returned.
    """
    width = 0.1
    max_steps = 40
    level = _scale_log_density(0.0, sums, inv_sigma2, power, rate) + np.log(u[0])
    left = -width * u[1]
    right = left + width
    steps_left = int(max_steps * u[2])
    steps_right = max_steps - 1 - steps_left
    while steps_left > 0 and _scale_log_density(left, sums, inv_sigma2, power, rate) > level:
        left -= width
        steps_left -= 1
    while steps_right > 0 and _scale_log_density(right, sums, inv_sigma2, power, rate) > level:
        right += width
        steps_right -= 1
    for k in range(3, u.shape[0]):
        x = left + (right - left) * u[k]
        if _scale_log_density(x, sums, inv_sigma2, power, rate) > level:
            return x
        if x < 0.0:
            left = x
        else:
            right = x
    return 0.0


@numba.njit(cache=True, nogil=True)
def scale_move_terms(
    u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, scalars, factor_var, consts,
    sparse_user, sparse_item, has_bias, move, column,
):
    r"""Terms of one sparse-row scale move for `slice_log_scale`: ``(sums, power, rate)``.

    ``move``: 0 moves the factor variance (``column`` -1: the one shared by all factors, else
    that factor's) with the marked rows' factors of both sides; 1 the item-bias variance
    with the marked items' biases; 2 the user-bias variance with the marked users'.
    ``power`` :math:`= d\,n_{\text{unmarked}} + 2a` and ``rate``
    :math:`= (Q_{\text{unmarked}}/2 + b)/v`, with :math:`d` entries per row and
    :math:`Q_{\text{unmarked}}` the sum of squares of the unmarked rows' entries. A move
    with no marked row has ``sums`` all zero.
    """
    start = 1 if has_bias else 0
    kp = P_user.shape[1]
    if move == 0:
        lo, hi = (start, kp) if column < 0 else (start + column, start + column + 1)
        mark_u, mark_i = sparse_user, sparse_item
        n_free = 0
        q_free = 0.0
        for P, marks in ((P_user, sparse_user), (P_item, sparse_item)):
            for r in range(P.shape[0]):
                if marks[r] == 0:
                    n_free += 1
                    for k in range(lo, hi):
                        q_free += P[r, k] * P[r, k]
        power = (hi - lo) * n_free + 2.0 * consts[2]
        rate = (0.5 * q_free + consts[3]) / factor_var[0 if column < 0 else column]
    else:
        lo, hi = start, kp
        if move == 1:
            mark_u, mark_i = np.zeros(P_user.shape[0], dtype=np.uint8), sparse_item
            P, marks, var = P_item, sparse_item, scalars[3]
        else:
            mark_u, mark_i = sparse_user, np.zeros(P_item.shape[0], dtype=np.uint8)
            P, marks, var = P_user, sparse_user, scalars[2]
        n_free = 0
        q_free = 0.0
        for r in range(P.shape[0]):
            if marks[r] == 0:
                n_free += 1
                q_free += P[r, 0] * P[r, 0]
        power = n_free + 2.0 * consts[4]
        rate = (0.5 * q_free + consts[5]) / var
    sums = sparse_scale_sums(
        u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, scalars[0], has_bias,
        mark_u, mark_i, move == 0, lo, hi,
    )
    return sums, power, rate


@numba.njit(cache=True, nogil=True)
def sparse_scale_moves(
    u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, scalars, factor_var,
    prec_user, prec_item, consts, sparse_user, sparse_item, has_bias, per_factor, u, sse, only,
):
    r"""Run the sparse-row scale moves in place; return the new residual sum of squares.

    In turn (see `scale_move_terms`): the factor variance (each factor's, with
    ``per_factor``), then with biases the item-bias and the user-bias variance. Each draws
    :math:`x = \log t` by `slice_log_scale` (uniforms: one row of ``u`` per move), scales
    the marked rows' entries by :math:`t` and the variance by :math:`t^2`, updates the
    prior precisions and carries ``sse`` along exactly. A move with no marked row is
    skipped (its row of ``u`` unused); ``only`` >= 0 runs the moves of that kind alone
    (0 factor, 1 item bias, 2 user bias; for tests).
    """
    start = 1 if has_bias else 0
    n_factors = P_user.shape[1] - start
    inv_sigma2 = 1.0 / scalars[1]
    any_user = False
    for r in range(sparse_user.shape[0]):
        if sparse_user[r] != 0:
            any_user = True
            break
    any_item = False
    for r in range(sparse_item.shape[0]):
        if sparse_item[r] != 0:
            any_item = True
            break
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
        sums, power, rate = scale_move_terms(
            u_indptr, u_other, u_rating, i_indptr, i_other, i_rating, P_user, P_item, scalars, factor_var,
            consts, sparse_user, sparse_item, has_bias, move, column,
        )
        x = slice_log_scale(sums, inv_sigma2, power, rate, u[m])
        t = np.exp(x)
        f1 = t - 1.0
        f2 = t * t - 1.0
        sse = sse - 2.0 * (f1 * sums[0] + f2 * sums[2]) + f1 * f1 * sums[1] + f2 * f2 * sums[3]
        if sse < 0.0:
            sse = 0.0
        if move == 0:
            lo, hi = (start, start + n_factors) if column < 0 else (start + column, start + column + 1)
            for P, marks in ((P_user, sparse_user), (P_item, sparse_item)):
                for r in range(P.shape[0]):
                    if marks[r] != 0:
                        for k in range(lo, hi):
                            P[r, k] *= t
            for k in range(lo, hi):
                factor_var[k - start] *= t * t
                prec_user[k] = 1.0 / factor_var[k - start]
                prec_item[k] = 1.0 / factor_var[k - start]
        else:
            P, marks, col = (P_item, sparse_item, 3) if move == 1 else (P_user, sparse_user, 2)
            for r in range(P.shape[0]):
                if marks[r] != 0:
                    P[r, 0] *= t
            scalars[col] *= t * t
            if move == 1:
                prec_item[0] = 1.0 / scalars[3]
            else:
                prec_user[0] = 1.0 / scalars[2]
    return sse
