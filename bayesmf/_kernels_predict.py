"""numba kernels behind `bayesmf.latent` and the predictive machinery (`bayesmf.predictive`).

Symbols follow the seeds' maths: for posterior draw ``s`` (a "component"), pair ``p`` of
user ``u`` and item ``i``, the latent score is
``eta[p, s] = mu[s] + ub[s, u] + ib[s, i] + U[s, u] . V[s, i]``, the mean rating
``m[p, c]`` (rating units) and the noise sd ``sd[c]`` (rating units). Every kernel works
one pair at a time with O(components) scratch, so memory never depends on the number of
pairs beyond the caller's output arrays.

The loops over pairs (or draws) run in parallel threads (``numba.prange``; the thread count
is numba's, set with ``numba.set_num_threads``). Results do not depend on the number of
threads: every pair is computed on its own, and random draws are seeded per pair (numba's
generator state is per thread).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesmf._normal_kernels import norm_cdf

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _eta_known(U, V, mu, ub, ib, uidx, iidx, has_bias, out):  # type: ignore[no-untyped-def]
    """Latent scores ``out[s, p]`` (draw-major) for pairs whose user and item the model knows.

    The draw loop is outermost so that draw ``s``'s factor matrices stay in cache while every
    pair reads them. `eta_known` runs the draws in parallel; `eta_known_serial` is the same
    loop on the calling thread (for one draw, e.g. from a Gibbs chain's thread), with the
    same result bit for bit.
    """
    n_factors = U.shape[2]
    for s in numba.prange(U.shape[0]):
        Us = U[s]
        Vs = V[s]
        for p in range(uidx.shape[0]):
            u = uidx[p]
            i = iidx[p]
            acc = 0.0
            for k in range(n_factors):
                acc += np.float64(Us[u, k]) * np.float64(Vs[i, k])
            if has_bias:
                acc += mu[s] + ub[s, u] + ib[s, i]
            out[s, p] = acc


eta_known = numba.njit(cache=True, parallel=True)(_eta_known)
eta_known_serial = numba.njit(cache=True)(_eta_known)


@numba.njit(cache=True, parallel=True)
def transpose_tiled(src, dst, reps):  # type: ignore[no-untyped-def]
    """``dst[p, r * S + s] = src[s, p]`` for every repeat ``r``, in cache-sized tiles."""
    n_samples, n_pairs = src.shape
    tile = 32
    for t in numba.prange((n_samples + tile - 1) // tile):
        s0 = t * tile
        s1 = min(s0 + tile, n_samples)
        for p0 in range(0, n_pairs, tile):
            p1 = min(p0 + tile, n_pairs)
            for p in range(p0, p1):
                for s in range(s0, s1):
                    v = src[s, p]
                    for r in range(reps):
                        dst[p, r * n_samples + s] = v


@numba.njit(cache=True, parallel=True)
def mixture_summary(means, sds, qs, zq, low, high, clip, threshold, tol, stop, mean_out, sd_out, q_out, pge_out):  # type: ignore[no-untyped-def]
    """Exact summaries of the normal mixture ``(1/C) sum_c N(means[p, c], sds[c]^2)``.

    Mean and sd are the mixture's (of the censored mixture when ``clip``: each component
    censored to ``[low, high]``, closed-form censored-normal moments); ``pge_out`` is
    ``P(Y >= threshold)`` (skipped when ``threshold`` is NaN). Quantile ``qs[j]`` is the root
    of ``F(x) = qs[j]`` with ``F`` the mixture CDF, by Newton's method safeguarded by
    bisection inside the bracket ``[min_c(m_c + sd_c z), max_c(m_c + sd_c z)]`` (``z =
    zq[j]``, the standard-normal quantile): every component CDF is ``>= q`` at the right end
    and ``<= q`` at the left, so the root lies inside. Censoring is monotone, so quantiles
    of the censored mixture are the clipped quantiles. Iteration stops once the Newton correction
    (the distance to the root) is below ``stop`` times the mixture sd -- the Halley step
    then leaves an error of order ``stop**3`` sd -- or the bracket is narrower than ``tol``.
    """
    n_pairs, n_comp = means.shape
    n_q = qs.shape[0]
    inv = 1.0 / sds
    has_thr = not math.isnan(threshold)
    for p in numba.prange(n_pairs):
        s1 = 0.0
        s2 = 0.0
        c1 = 0.0
        c2 = 0.0
        pge = 0.0
        for c in range(n_comp):
            m = means[p, c]
            sd = sds[c]
            s1 += m
            s2 += m * m + sd * sd
            if clip:
                a = (low - m) * inv[c]
                b = (high - m) * inv[c]
                pa = norm_cdf(a)
                pb = norm_cdf(b)
                fa = _INV_SQRT2PI * math.exp(-0.5 * a * a)
                fb = _INV_SQRT2PI * math.exp(-0.5 * b * b)
                mid = pb - pa
                tail_hi = 1.0 - pb
                c1 += low * pa + high * tail_hi + m * mid + sd * (fa - fb)
                c2 += (
                    low * low * pa
                    + high * high * tail_hi
                    + (m * m + sd * sd) * mid
                    + 2.0 * m * sd * (fa - fb)
                    + sd * sd * (a * fa - b * fb)
                )
            if has_thr:
                pge += 0.5 * math.erfc((threshold - m) * inv[c] * _INV_SQRT2)
        mean0 = s1 / n_comp
        var0 = max(s2 / n_comp - mean0 * mean0, 0.0)
        sd0 = math.sqrt(var0)
        if clip:
            mean_c = c1 / n_comp
            mean_out[p] = mean_c
            sd_out[p] = math.sqrt(max(c2 / n_comp - mean_c * mean_c, 0.0))
        else:
            mean_out[p] = mean0
            sd_out[p] = sd0
        if has_thr:
            pge_out[p] = 1.0 if (clip and threshold <= low) else pge / n_comp
        for j in range(n_q):
            q = qs[j]
            z = zq[j]
            lo = np.inf
            hi = -np.inf
            for c in range(n_comp):
                v = means[p, c] + sds[c] * z
                lo = min(lo, v)
                hi = max(hi, v)
            x = min(max(mean0 + sd0 * z, lo), hi)
            for _ in range(200):
                if hi - lo <= tol:
                    break
                cdf = 0.0
                pdf = 0.0
                dpdf = 0.0
                for c in range(n_comp):
                    t = (x - means[p, c]) * inv[c]
                    e = inv[c] * math.exp(-0.5 * t * t)
                    cdf += 0.5 * math.erfc(-t * _INV_SQRT2)
                    pdf += e
                    dpdf -= t * inv[c] * e
                diff = cdf / n_comp - q
                pdf *= _INV_SQRT2PI / n_comp
                dpdf *= _INV_SQRT2PI / n_comp
                if diff == 0.0:
                    break
                if diff > 0.0:
                    hi = x
                else:
                    lo = x
                if pdf > 0.0:
                    newton = diff / pdf
                    # Halley's step (cubic convergence); Newton's when the correction misbehaves
                    denom = 2.0 * pdf * pdf - diff * dpdf
                    step = 2.0 * diff * pdf / denom if denom > 0.0 else newton
                    x_new = x - step
                else:
                    newton = np.inf
                    x_new = 0.5 * (lo + hi)
                if not (lo < x_new < hi):
                    x_new = 0.5 * (lo + hi)
                    newton = np.inf
                x = x_new
                # |newton| estimates the error before this step; Halley's leaves ~|newton|^3
                if abs(newton) <= stop * sd0:
                    break
            if clip:
                x = min(max(x, low), high)
            q_out[p, j] = x


@numba.njit(cache=True)
def _sorted_quantile(row, q):  # type: ignore[no-untyped-def]
    # numpy's default "linear" method: h = (n - 1) q
    n = row.shape[0]
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return row[lo] + (h - lo) * (row[hi] - row[lo])


@numba.njit(cache=True)
def _sorted_hdi(row, prob):  # type: ignore[no-untyped-def]
    # shortest interval holding floor(prob * n) + 1 sorted draws (as arviz's hdi)
    n = row.shape[0]
    inc = math.floor(prob * n)
    if inc >= n:
        return row[0], row[n - 1]
    best = np.inf
    start = 0
    for k in range(n - inc):
        w = row[k + inc] - row[k]
        if w < best:
            best = w
            start = k
    return row[start], row[start + inc]


@numba.njit(cache=True, parallel=True)
def sample_summary(values, qs, threshold, hdi_prob, mean_out, sd_out, q_out, pge_out, hdi_out):  # type: ignore[no-untyped-def]
    """Summaries of draws ``values[p, :]``: mean, sd (ddof 1), linear quantiles, HDI.

    ``pge_out[p]`` is the fraction of draws ``>= threshold`` (skipped when NaN); the HDI
    (skipped when ``hdi_prob`` is NaN) is the shortest window of sorted draws.
    """
    n_pairs, n = values.shape
    has_thr = not math.isnan(threshold)
    has_hdi = not math.isnan(hdi_prob)
    need_sort = qs.shape[0] > 0 or has_hdi
    for p in numba.prange(n_pairs):
        row = np.sort(values[p]) if need_sort else values[p]
        total = 0.0
        for c in range(n):
            total += row[c]
        mean = total / n
        ss = 0.0
        count = 0
        for c in range(n):
            d = row[c] - mean
            ss += d * d
            if has_thr and row[c] >= threshold:
                count += 1
        mean_out[p] = mean
        sd_out[p] = math.sqrt(ss / (n - 1)) if n > 1 else 0.0
        if has_thr:
            pge_out[p] = count / n
        for j in range(qs.shape[0]):
            q_out[p, j] = _sorted_quantile(row, qs[j])
        if has_hdi:
            a, b = _sorted_hdi(row, hdi_prob)
            hdi_out[p, 0] = a
            hdi_out[p, 1] = b


@numba.njit(cache=True, parallel=True)
def normal_hdi(means, sds, seeds, n_rep, prob, hdi_out):  # type: ignore[no-untyped-def]
    """HDI of the normal mixture from ``n_rep`` seeded draws per component (pair ``p`` uses ``seeds[p]``)."""
    n_pairs, n_comp = means.shape
    for p in numba.prange(n_pairs):
        buf = np.empty(n_comp * n_rep)
        np.random.seed(seeds[p])  # noqa: NPY002 (numba supports only the legacy API)
        k = 0
        for _ in range(n_rep):
            for c in range(n_comp):
                buf[k] = means[p, c] + sds[c] * np.random.standard_normal()  # noqa: NPY002
                k += 1
        row = np.sort(buf)
        a, b = _sorted_hdi(row, prob)
        hdi_out[p, 0] = a
        hdi_out[p, 1] = b


@numba.njit(cache=True, parallel=True)
def normal_draws(means, sds, seeds, clip, low, high, out):  # type: ignore[no-untyped-def]
    """``out[c, p] = means[p, c] + sds[c] * z`` with pair ``p``'s noise seeded by ``seeds[p]``."""
    n_pairs, n_comp = means.shape
    for p in numba.prange(n_pairs):
        np.random.seed(seeds[p])  # noqa: NPY002 (numba supports only the legacy API)
        for c in range(n_comp):
            y = means[p, c] + sds[c] * np.random.standard_normal()  # noqa: NPY002
            if clip:
                y = min(max(y, low), high)
            out[c, p] = y


@numba.njit(cache=True, parallel=True)
def ordinal_level_draws(eta, cuts, levels, probit, seeds, out):  # type: ignore[no-untyped-def]
    """One ordinal draw per component: ``out[c, p]`` a level, ``P(r <= l_k) = F(c_k - eta)``.

    ``F``: the logistic function (ordered logistic), or with ``probit`` the normal CDF
    (ordered probit).
    """
    n_pairs, n_comp = eta.shape
    n_cut = cuts.shape[1]
    for p in numba.prange(n_pairs):
        np.random.seed(seeds[p])  # noqa: NPY002 (numba supports only the legacy API)
        for c in range(n_comp):
            u = np.random.random()  # noqa: NPY002
            k = 0
            while k < n_cut:
                gap = cuts[c, k] - eta[p, c]
                cdf = 0.5 * math.erfc(-gap / math.sqrt(2.0)) if probit else 1.0 / (1.0 + math.exp(-gap))
                if u < cdf:
                    break
                k += 1
            out[c, p] = levels[k]
