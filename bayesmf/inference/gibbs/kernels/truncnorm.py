r"""Numba kernels of the probit block: latent scores per rating and truncated-normal draws.

A truncated normal is drawn by inversion with one uniform :math:`u \in (0, 1]`, in log
space so that it stays exact in either tail. For :math:`X \sim \mathcal N(0, 1)` cut to
:math:`X < b`,

.. math::

    X = \Phi^{-1}\bigl(u\,\Phi(b)\bigr) = \texttt{ndtri\_exp}\bigl(\log u + \log\Phi(b)\bigr),

with scipy's ``log_ndtr`` and ``ndtri_exp`` (called from numba through
``scipy.special.cython_special``), which keep full relative precision where
:math:`\Phi(b)` underflows (:math:`b \ll 0`) and where it rounds to 1 (:math:`b \gg 0`).
A latent response :math:`z \sim \mathcal N(\eta, 1)` cut to :math:`z > 0` (:math:`y = 1`) or
:math:`z \le 0` (:math:`y = 0`) is then, with :math:`s = 2y - 1`,
:math:`z = \eta - s X`, :math:`X` cut to :math:`X < s\eta`. One uniform on (0, 1) per draw: a chain stays a
deterministic function of its generator (`bayesmf.inference.gibbs.kernels`).

The ordered probit (`bayesmf.inference.gibbs.ordinal`) cuts each latent response to the
interval of its level between two cutpoints, :math:`(c_{k-1}, c_k]` (`truncated_interval`,
`draw_interval`), and its likelihood is :math:`\log(\Phi(c_k - \eta) - \Phi(c_{k-1} -
\eta))` (`log_interval`, `interval_log_likelihood`).

Fast paths. Where the normal probabilities in play are neither tiny nor close to 1, the
same quantities come from :math:`\Phi(x) = \tfrac12\,\mathrm{erfc}(-x/\sqrt 2)` (libm's
``erfc``, full relative precision on the lower side) and scipy's ``ndtri``, with no logs:
:math:`\log(\Phi(b) - \Phi(a))` directly when :math:`\Phi(a) \le \Phi(b)/2` (no
cancellation), and the inverse-CDF draws as :math:`\Phi^{-1}(p)` when the probability
:math:`p` it inverts lies in :math:`[10^{-280}, 0.99]` (so :math:`x` is resolved to a few
ulps). Elsewhere (the far tails, narrow intervals, draws near the top) the log-space
formulas above run as before. Both give the same numbers to rounding (the tests hold
either path to the exact quantiles). The ordered probit's cutpoint update evaluates the
interval probability four times per rating and sweep: with the fast paths its sweep on
ML-100K u1 went from 0.046 to 0.026 s, the binary probit's from 0.012 to 0.0096 s
(``benchmarks/RESULTS.md``, "Ordinal ratings" and "Binary feedback").

The scipy functions are C function pointers, which numba cannot cache on disk, so
`draw_latent` and the interval kernels compile once per process (well under a second);
`latent_scores` is cached.
"""

from __future__ import annotations

import ctypes
import math

import numba
from numba.extending import get_cython_function_address

from bayesmf._normal_kernels import norm_cdf

__all__ = [
    "draw_interval",
    "draw_latent",
    "interval_log_likelihood",
    "interval_means",
    "latent_scores",
    "log_cdf_sum",
    "log_interval",
    "log_ndtr",
    "ndtri_exp",
    "truncated_interval",
    "truncated_normal",
]

_DOUBLE_FN = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_int)
#: log Phi(x) and its inverse, scipy's (the int argument skips Python dispatch)
_log_ndtr = _DOUBLE_FN(get_cython_function_address("scipy.special.cython_special", "__pyx_fuse_1log_ndtr"))
_ndtri_exp = _DOUBLE_FN(get_cython_function_address("scipy.special.cython_special", "ndtri_exp"))
#: Phi^{-1}(p), scipy's (a plain double function: no fused-type argument)
_ndtri = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(
    get_cython_function_address("scipy.special.cython_special", "ndtri"))
#: log of the standard normal density's constant, sqrt(2 pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: the fast paths' range of probabilities: below it (far tails) the log-space formulas run
_FAST_MIN = 1e-280
#: the largest probability the fast draws invert (above it, Phi^{-1} would lose digits)
_FAST_MAX = 0.99


@numba.njit(nogil=True)
def log_ndtr(x):  # type: ignore[no-untyped-def]
    r""":math:`\log\Phi(x)`, accurate in both tails."""
    return _log_ndtr(x, 0)


@numba.njit(nogil=True)
def ndtri_exp(y):  # type: ignore[no-untyped-def]
    r""":math:`\Phi^{-1}(e^y)` for :math:`y \le 0`, accurate for :math:`y` near 0 and very negative."""
    return _ndtri_exp(y, 0)


@numba.njit(nogil=True)
def truncated_normal(mean, positive, u):  # type: ignore[no-untyped-def]
    r"""Draw :math:`z \sim \mathcal N(\text{mean}, 1)` cut to :math:`z > 0` (``positive``) or :math:`z \le 0`.

    ``u`` is a uniform on (0, 1) (open: ``u = 1`` would be the untruncated tail's end when
    :math:`\Phi(s\,\text{mean})` rounds to 1); the draw is its inverse-CDF image (module
    docstring). A draw that rounding puts a hair across 0 is put on 0.
    """
    s = 1.0 if positive else -1.0
    p = u * norm_cdf(s * mean)
    if _FAST_MIN <= p <= _FAST_MAX:  # the fast path (module docstring)
        x = _ndtri(p)
    else:
        x = _ndtri_exp(math.log(u) + _log_ndtr(s * mean, 0), 0)
    z = mean - s * x
    return max(z, 0.0) if positive else min(z, 0.0)


@numba.njit(nogil=True)
def truncated_interval(mean, lower, upper, u):  # type: ignore[no-untyped-def]
    r"""Draw :math:`z \sim \mathcal N(\text{mean}, 1)` cut to :math:`[\text{lower}, \text{upper}]`.

    ``lower`` may be ``-inf`` and ``upper`` ``inf`` (not both needed); ``u`` is a uniform on
    (0, 1). With :math:`a, b` the bounds less the mean and :math:`X = z - \text{mean}`, an
    interval whose middle lies above the mean is inverted through the survival function,

    .. math::

        \log\Phi(-x) = \log\Phi(-a) + \log\bigl(u + (1 - u)\,e^{\log\Phi(-b) - \log\Phi(-a)}\bigr),
        \quad x = -\texttt{ndtri\_exp}(\cdot),

    (the last log as a log-sum-exp: exact for one-sided intervals and u near 0 or 1; then
    :math:`P(X > x \mid a < X < b) = u`), and one below it
    through the same formula mirrored (:math:`X \to -X`), so that the probabilities in play
    are never those of the far side rounding to 1. The one-sided `truncated_normal` is the
    case of one infinite bound. The ordered probit's latent responses lie between two
    cutpoints.
    """
    a = lower - mean
    b = upper - mean
    flip = a + b < 0.0  # the interval's middle lies below the mean: mirror it
    if flip:
        a, b = -b, -a
    # Phi(-x) = u Phi(-a) + (1 - u) Phi(-b); -a + -b <= 0, so both are lower-side probabilities
    p = u * norm_cdf(-a) + (1.0 - u) * norm_cdf(-b)
    if _FAST_MIN <= p <= _FAST_MAX:  # the fast path (module docstring)
        x = -_ndtri(p)
    else:
        hi = _log_ndtr(-a, 0)
        lo = _log_ndtr(-b, 0)
        # log(u + (1 - u) e^d), d = lo - hi <= 0, as a log-sum-exp: exact for u near 0 or 1 and d = -inf
        t1 = math.log(u)
        t2 = math.log1p(-u) + (lo - hi)
        top = max(t1, t2)
        x = -_ndtri_exp(hi + top + math.log1p(math.exp(min(t1, t2) - top)), 0)
    x = min(max(x, a), b)
    return mean - x if flip else mean + x


@numba.njit(nogil=True)
def draw_latent(eta, y, uniforms, out):  # type: ignore[no-untyped-def]
    """``out[n]`` = `truncated_normal` (``eta[n]``, ``y[n] > 0.5``, ``uniforms[n]``) for every rating."""
    for n in range(eta.shape[0]):
        out[n] = truncated_normal(eta[n], y[n] > 0.5, uniforms[n])


@numba.njit(nogil=True)
def log_cdf_sum(x):  # type: ignore[no-untyped-def]
    r""":math:`\sum_n \log\Phi(x_n)`: the binary probit's log-likelihood at :math:`x = s\eta`.

    By ``erfc`` where :math:`\Phi(x_n) \ge 10^{-280}` (the fast path of the module docstring:
    full relative precision below 0, an absolute error of a few ulps above), scipy's
    ``log_ndtr`` in the far lower tail.
    """
    total = 0.0
    for n in range(x.shape[0]):
        p = norm_cdf(x[n])
        total += math.log(p) if p >= _FAST_MIN else _log_ndtr(x[n], 0)
    return total


@numba.njit(nogil=True)
def log_interval(a, b):  # type: ignore[no-untyped-def]
    r""":math:`\log(\Phi(b) - \Phi(a))` for :math:`a \le b` (either may be infinite), accurate in both tails.

    An interval above 0 is mirrored (:math:`\Phi(-a) - \Phi(-b)`), so the two
    probabilities subtracted are never both near 1; then :math:`\log(\Phi(b) - \Phi(a))`
    directly where that loses nothing (the fast path of the module docstring), else
    :math:`\log\Phi(b) + \log(-\mathrm{expm1}(\log\Phi(a) - \log\Phi(b)))`.
    """
    if a + b > 0.0:
        a, b = -b, -a
    upper = norm_cdf(b)
    if upper >= _FAST_MIN:  # the fast path (module docstring): no cancellation when Phi(a) <= Phi(b) / 2
        lower = norm_cdf(a)
        if lower <= 0.5 * upper:
            return math.log(upper - lower)
    hi = _log_ndtr(b, 0)
    lo = _log_ndtr(a, 0)
    if lo == -math.inf:
        return hi
    if lo >= hi:
        return -math.inf
    return hi + math.log(-math.expm1(lo - hi))


@numba.njit(nogil=True)
def draw_interval(eta, codes, cuts, uniforms, out):  # type: ignore[no-untyped-def]
    r"""``out[n]`` = `truncated_interval` (``eta[n]``, ``cuts[codes[n]]``, ``cuts[codes[n] + 1]``, ``uniforms[n]``).

    ``cuts``: the cutpoints padded with :math:`-\infty` first and :math:`+\infty` last, so
    that level ``k`` (``codes[n] = k``) is the interval ``(cuts[k], cuts[k + 1]]``.
    """
    for n in range(eta.shape[0]):
        k = codes[n]
        out[n] = truncated_interval(eta[n], cuts[k], cuts[k + 1], uniforms[n])


@numba.njit(nogil=True)
def interval_means(eta, codes, cuts, out):  # type: ignore[no-untyped-def]
    r"""``out[n]`` = :math:`E[z \mid c_{k-1} < z \le c_k]`, :math:`z \sim \mathcal N(\eta_n, 1)` (``cuts`` padded as in `draw_interval`).

    :math:`\eta + (\varphi(a) - \varphi(b)) / (\Phi(b) - \Phi(a))` with :math:`a, b` the
    bounds less :math:`\eta`, each ratio from :math:`\log\varphi - \log(\Phi(b) - \Phi(a))`
    (`log_interval`), finite in the tails; kept inside the interval.
    """
    for n in range(eta.shape[0]):
        k = codes[n]
        a = cuts[k] - eta[n]
        b = cuts[k + 1] - eta[n]
        log_mass = log_interval(a, b)
        shift = 0.0
        if a > -math.inf:
            shift += math.exp(-0.5 * a * a - _LOG_SQRT_2PI - log_mass)
        if b < math.inf:
            shift -= math.exp(-0.5 * b * b - _LOG_SQRT_2PI - log_mass)
        out[n] = eta[n] + min(max(shift, a), b)


@numba.njit(nogil=True)
def interval_log_likelihood(eta, codes, cuts):  # type: ignore[no-untyped-def]
    r""":math:`\sum_n \log P(c_{k_n - 1} < z_n \le c_{k_n})`, :math:`z_n \sim \mathcal N(\eta_n, 1)` (``cuts`` padded as in `draw_interval`)."""
    total = 0.0
    for n in range(eta.shape[0]):
        k = codes[n]
        total += log_interval(cuts[k] - eta[n], cuts[k + 1] - eta[n])
    return total


@numba.njit(cache=True, nogil=True)
def latent_scores(ratings, P_user, P_item, mu, has_bias, out):  # type: ignore[no-untyped-def]
    r"""``out[p]`` = :math:`\eta = \mu + b_i + c_j + U_i \cdot V_j` of each rating, in ``ratings`` order.

    ``ratings``: the ratings by user (`Csr`); rows of ``P_user``/``P_item`` are
    :math:`(b_i, U_i)` with biases (then ``mu`` is added), :math:`U_i` without.
    """
    indptr, other, _ = ratings
    kp = P_user.shape[1]
    start = 1 if has_bias else 0
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            j = other[p]
            e = mu + P_user[i, 0] + P_item[j, 0] if has_bias else 0.0
            for k in range(start, kp):
                e += P_user[i, k] * P_item[j, k]
            out[p] = e
