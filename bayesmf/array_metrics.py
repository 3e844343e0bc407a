"""Accuracy, interval and scoring-rule metrics: arrays in, floats out.

Point accuracy (`rmse`, `mae`); interval quality (`coverage`, `interval_width`); proper
scoring rules for the whole predictive distribution (`crps`, `log_predictive_density`) and
the probability integral transform (`pit`). Every function validates its inputs (equal
lengths, finite values) and names the offending argument in its error. All are re-exported
by `bayesmf.metrics`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp

from bayesmf._validate import validate_positive_int

__all__ = ["coverage", "crps", "interval_width", "log_predictive_density", "mae", "pit", "rmse"]

_LOG_2PI = math.log(2.0 * math.pi)


def check_vector(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a finite, non-empty 1-d float64 array; errors name ``name``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {type(values).__name__}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(array)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} holds a non-finite value ({array[pos]!r} at position {pos})")
    return array


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs differ in length: {lengths}")
    return next(iter(lengths.values()))


def _draws(name: str, draws: Any, n: int) -> np.ndarray:
    array = np.asarray(draws, dtype=np.float64)
    if array.ndim == 1 and n == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-d (sample, observation), got shape {array.shape}")
    if array.shape[1] != n:
        raise ValueError(
            f"{name} has {array.shape[1]} columns but y has {n} values; draws must be (sample, observation)"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds non-finite values")
    return array


def rmse(y: Any, pred: Any) -> float:
    r"""Root mean squared error :math:`\sqrt{\frac1n \sum_n (y_n - \hat y_n)^2}`.

    Parameters
    ----------
    y, pred : array_like
        Observed ratings and point predictions, equal lengths, finite.

    Returns
    -------
    float
    """
    y, pred = check_vector("y", y), check_vector("pred", pred)
    _same_length(y=y, pred=pred)
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def mae(y: Any, pred: Any) -> float:
    r"""Mean absolute error :math:`\frac1n \sum_n |y_n - \hat y_n|`."""
    y, pred = check_vector("y", y), check_vector("pred", pred)
    _same_length(y=y, pred=pred)
    return float(np.mean(np.abs(y - pred)))


def coverage(y: Any, lower: Any, upper: Any) -> float:
    r"""Empirical coverage :math:`\frac1n \sum_n 1[l_n \le y_n \le u_n]` (closed intervals).

    Raises
    ------
    ValueError
        On unequal lengths, non-finite values or any ``lower > upper``.
    """
    y, lower, upper = check_vector("y", y), check_vector("lower", lower), check_vector("upper", upper)
    _same_length(y=y, lower=lower, upper=upper)
    _ordered(lower, upper)
    return float(np.mean((lower <= y) & (y <= upper)))


def interval_width(lower: Any, upper: Any) -> float:
    r"""Mean width :math:`\frac1n \sum_n (u_n - l_n)`."""
    lower, upper = check_vector("lower", lower), check_vector("upper", upper)
    _same_length(lower=lower, upper=upper)
    _ordered(lower, upper)
    return float(np.mean(upper - lower))


def _ordered(lower: np.ndarray, upper: np.ndarray) -> None:
    bad = lower > upper
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"lower > upper at position {pos} ({lower[pos]!r} > {upper[pos]!r})")


def crps(y: Any, draws: Any, *, pointwise: bool = False, chunk_size: int = 1024) -> float | np.ndarray:
    r"""Continuous ranked probability score from predictive draws (lower is better).

    The energy form :math:`\mathrm{CRPS}(F, y) = E|X - y| - \tfrac12 E|X - X'|` with the
    fair (unbiased) estimator over :math:`m` draws :math:`x_1..x_m` of :math:`F`:

    .. math::

        \widehat{\mathrm{CRPS}} = \frac1m \sum_i |x_i - y|
            - \frac{1}{m(m-1)} \sum_{i<j} |x_i - x_j| ,

    the pair sum computed in :math:`O(m \log m)` from the sorted draws as
    :math:`\sum_k x_{(k)} (2k - m - 1)`.

    Parameters
    ----------
    y : array_like
        Observations, length n.
    draws : array_like
        Predictive draws, shape (m, n) (`bayesmf.predict.predict_draws`), m >= 2.
    pointwise : bool
        Return the n scores instead of their mean.
    chunk_size : int
        Observations per chunk (bounds the sorting buffer).

    Returns
    -------
    float or numpy.ndarray

    References
    ----------
    Gneiting & Raftery (2007), JASA 102:359; Zamo & Naveau (2018), Math. Geosci. 50:209
    (the fair estimator).
    """
    y = check_vector("y", y)
    x = _draws("draws", draws, len(y))
    chunk_size = validate_positive_int("chunk_size", chunk_size)
    m = x.shape[0]
    if m < 2:
        raise ValueError("crps needs at least 2 draws per observation (the fair estimator divides by m - 1)")
    weights = 2.0 * np.arange(1, m + 1) - m - 1.0
    out = np.empty(len(y))
    for start in range(0, len(y), chunk_size):
        block = x[:, start : start + chunk_size]
        obs = y[start : start + chunk_size]
        first = np.mean(np.abs(block - obs[None, :]), axis=0)
        pair_sum = weights @ np.sort(block, axis=0)
        out[start : start + chunk_size] = first - pair_sum / (m * (m - 1))
    return out if pointwise else float(np.mean(out))


def log_predictive_density(
    y: Any,
    draws: Any = None,
    *,
    mean: Any = None,
    sd: Any = None,
    pointwise: bool = False,
    discrete: bool | None = None,
) -> float | np.ndarray:
    r"""Log posterior-predictive density at the observations (higher is better).

    With ``mean``/``sd`` (exact, for the normal likelihood): ``mean`` holds the mean rating
    per posterior draw, shape (S, n) (``predict_draws(kind="expected")``) or (n,) for a
    point estimate, and ``sd`` the noise sd (scalar, (S,), (n,) or (S, n)):

    .. math::

        \mathrm{lpd}_n = \log \frac1S \sum_s \mathcal N(y_n \mid m^{(s)}_n, \tau^{(s)2}) .

    With ``draws`` only (shape (m, n) of predictive draws): for a discrete predictive
    (ordinal levels), the log of the empirical frequency of :math:`y_n` among the draws
    (a level never drawn counts half a draw); for a continuous one, a Gaussian kernel
    density estimate with Silverman's bandwidth -- an approximation, biased by the
    smoothing; prefer ``mean``/``sd`` for the normal likelihood.

    Parameters
    ----------
    y : array_like
        Observations, length n.
    draws : array_like, optional
        Predictive draws (m, n).
    mean, sd : array_like, optional
        Component means and noise sds (see above).
    pointwise : bool
        Return the n values instead of their mean (the mean, not the sum, so values are
        comparable across test sets of different sizes).
    discrete : bool, optional
        Treat ``draws`` as discrete levels (True) or continuous (False); default: discrete
        when the draws take at most 64 distinct values, each repeated 4 times on average.

    Returns
    -------
    float or numpy.ndarray
    """
    y = check_vector("y", y)
    n = len(y)
    if (draws is None) == (mean is None):
        raise ValueError("pass either draws= or mean= (with sd=), not both")
    if mean is not None:
        if sd is None:
            raise ValueError("mean= needs sd= (the noise sd)")
        m = np.asarray(mean, dtype=np.float64)
        if m.ndim == 1:
            m = m[None, :]
        if m.ndim != 2 or m.shape[1] != n:
            raise ValueError(f"mean must be (n,) or (S, n) with n = {n}, got shape {np.shape(mean)}")
        s = np.asarray(sd, dtype=np.float64)
        if s.ndim == 1 and s.shape[0] == m.shape[0] and m.shape[0] != n:
            s = s[:, None]
        try:
            s = np.broadcast_to(s, m.shape)
        except ValueError as exc:
            raise ValueError(f"sd of shape {np.shape(sd)} does not broadcast to mean's {m.shape}") from exc
        if not (np.isfinite(m).all() and np.isfinite(s).all()) or (s <= 0).any():
            raise ValueError("mean must be finite and sd finite and > 0")
        z = (y[None, :] - m) / s
        logp = -0.5 * z**2 - np.log(s) - 0.5 * _LOG_2PI
        out = logsumexp(logp, axis=0) - math.log(m.shape[0])
    else:
        x = _draws("draws", draws, n)
        out = _lpd_from_draws(y, x, discrete)
    return out if pointwise else float(np.mean(out))


def _lpd_from_draws(y: np.ndarray, x: np.ndarray, discrete: bool | None) -> np.ndarray:
    m = x.shape[0]
    if discrete is None:
        # heavy ties on a few values: draws of discrete ratings
        n_values = len(np.unique(x))
        discrete = n_values <= 64 and n_values <= x.size / 4
    if discrete:
        # discrete predictive: empirical probability of the observed level
        counts = (x == y[None, :]).sum(axis=0).astype(np.float64)
        return np.log(np.maximum(counts, 0.5) / m)
    sd = x.std(axis=0, ddof=1)
    iqr = np.subtract(*np.percentile(x, [75, 25], axis=0))
    spread = np.minimum(sd, iqr / 1.34)
    spread = np.where(spread > 0, spread, sd)
    h = 0.9 * np.maximum(spread, 1e-12) * m ** (-0.2)
    z = (y[None, :] - x) / h[None, :]
    return logsumexp(-0.5 * z**2, axis=0) - math.log(m) - np.log(h) - 0.5 * _LOG_2PI


def pit(y: Any, draws: Any) -> np.ndarray:
    r"""Probability integral transform :math:`\hat F(y_n)` from predictive draws.

    :math:`\mathrm{PIT}_n = \frac1m (\#\{x_i < y_n\} + \tfrac12 \#\{x_i = y_n\})`: ties
    (discrete ratings, censoring at the scale ends) count half, so a calibrated model gives
    values spread evenly over [0, 1] (a histogram is flat).

    Parameters
    ----------
    y : array_like
        Observations, length n.
    draws : array_like
        Predictive draws (m, n).

    Returns
    -------
    numpy.ndarray
        n values in [0, 1].
    """
    y = check_vector("y", y)
    x = _draws("draws", draws, len(y))
    below = (x < y[None, :]).sum(axis=0)
    ties = (x == y[None, :]).sum(axis=0)
    return (below + 0.5 * ties) / x.shape[0]
