"""Accuracy, calibration and scoring rules: arrays in, floats out.

Point accuracy (`rmse`, `mae`) and the baselines every recommender should beat; interval
quality (`coverage`, `interval_width`, `calibration_table`); proper scoring rules for the
whole predictive distribution (`crps`, `log_predictive_density`) and the probability
integral transform (`pit`). Every function validates its inputs (equal lengths, finite
values) and names the offending argument in its error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from bayesmf._validate import validate_choice, validate_positive_int, validate_prob
from bayesmf.data import RatingsData

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = [
    "calibration_table",
    "coverage",
    "crps",
    "global_mean_baseline",
    "interval_width",
    "interval_width_by_count",
    "item_mean_baseline",
    "log_predictive_density",
    "mae",
    "mean_of_means_baseline",
    "pit",
    "rmse",
    "user_mean_baseline",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------
def _vector(name: str, values: Any) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------
# point accuracy
# ---------------------------------------------------------------------------------------
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
    y, pred = _vector("y", y), _vector("pred", pred)
    _same_length(y=y, pred=pred)
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def mae(y: Any, pred: Any) -> float:
    r"""Mean absolute error :math:`\frac1n \sum_n |y_n - \hat y_n|`."""
    y, pred = _vector("y", y), _vector("pred", pred)
    _same_length(y=y, pred=pred)
    return float(np.mean(np.abs(y - pred)))


# ---------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------
def _test_indices(train: RatingsData, test: Any) -> tuple[np.ndarray, np.ndarray]:
    """Train-encoder indices (-1 unknown) of the test pairs."""
    if not isinstance(train, RatingsData):
        raise TypeError(f"train must be a RatingsData, got {type(train).__name__}")
    if isinstance(test, RatingsData):
        if test.users.equals(train.users) and test.items.equals(train.items):
            return np.asarray(test.user_idx), np.asarray(test.item_idx)
        users, items = test.users.to_raw(test.user_idx), test.items.to_raw(test.item_idx)
    elif isinstance(test, pd.DataFrame):
        missing = [c for c in ("user", "item") if c not in test.columns]
        if missing:
            raise ValueError(f"test frame lacks column(s) {missing} (its columns: {list(test.columns)})")
        users, items = test["user"].to_numpy(), test["item"].to_numpy()
    else:
        raise TypeError(f"test must be a RatingsData or a DataFrame with user/item columns, got {type(test).__name__}")
    return train.users.to_index(users, unknown="flag"), train.items.to_index(items, unknown="flag")


def _group_means(train: RatingsData, by: str) -> tuple[np.ndarray, np.ndarray]:
    idx = train.user_idx if by == "user" else train.item_idx
    size = train.n_users if by == "user" else train.n_items
    counts = np.bincount(idx, minlength=size)
    sums = np.bincount(idx, weights=train.rating, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts


def _lookup(means: np.ndarray, counts: np.ndarray, idx: np.ndarray, fallback: float) -> np.ndarray:
    ok = idx >= 0
    out = np.full(len(idx), fallback)
    seen = ok.copy()
    seen[ok] = counts[idx[ok]] > 0
    out[seen] = means[idx[seen]]
    return out


def global_mean_baseline(train: RatingsData, test: Any) -> np.ndarray:
    r"""Predict every test pair by the mean training rating :math:`\bar r`.

    Parameters
    ----------
    train : RatingsData
        Training ratings.
    test : RatingsData or pandas.DataFrame
        Test pairs (same or other encoders; a frame with ``user``/``item`` columns).

    Returns
    -------
    numpy.ndarray
        One prediction per test pair.
    """
    _, item_idx = _test_indices(train, test)
    if train.n_ratings == 0:
        raise ValueError("train has no ratings")
    return np.full(len(item_idx), float(np.mean(train.rating)))


def user_mean_baseline(train: RatingsData, test: Any) -> np.ndarray:
    r"""Predict by the user's mean training rating :math:`\bar r_{i\cdot}`.

    Users without training ratings (or unknown to ``train``) get the global mean.
    """
    user_idx, _ = _test_indices(train, test)
    means, counts = _group_means(train, "user")
    return _lookup(means, counts, user_idx, float(np.mean(train.rating)))


def item_mean_baseline(train: RatingsData, test: Any) -> np.ndarray:
    r"""Predict by the item's mean training rating :math:`\bar r_{\cdot j}`.

    Items without training ratings (or unknown to ``train``) get the global mean.
    """
    _, item_idx = _test_indices(train, test)
    means, counts = _group_means(train, "item")
    return _lookup(means, counts, item_idx, float(np.mean(train.rating)))


def mean_of_means_baseline(train: RatingsData, test: Any) -> np.ndarray:
    r"""Predict by :math:`(\bar r + \bar r_{i\cdot} + \bar r_{\cdot j}) / 3`.

    The average of the global, user and item means (the "mean of means" baseline of the
    PyMC PMF case study); unseen users/items contribute the global mean.
    """
    return (
        global_mean_baseline(train, test) + user_mean_baseline(train, test) + item_mean_baseline(train, test)
    ) / 3.0


# ---------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------
def coverage(y: Any, lower: Any, upper: Any) -> float:
    r"""Empirical coverage :math:`\frac1n \sum_n 1[l_n \le y_n \le u_n]` (closed intervals).

    Raises
    ------
    ValueError
        On unequal lengths, non-finite values or any ``lower > upper``.
    """
    y, lower, upper = _vector("y", y), _vector("lower", lower), _vector("upper", upper)
    _same_length(y=y, lower=lower, upper=upper)
    _ordered(lower, upper)
    return float(np.mean((lower <= y) & (y <= upper)))


def interval_width(lower: Any, upper: Any) -> float:
    r"""Mean width :math:`\frac1n \sum_n (u_n - l_n)`."""
    lower, upper = _vector("lower", lower), _vector("upper", upper)
    _same_length(lower=lower, upper=upper)
    _ordered(lower, upper)
    return float(np.mean(upper - lower))


def _ordered(lower: np.ndarray, upper: np.ndarray) -> None:
    bad = lower > upper
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"lower > upper at position {pos} ({lower[pos]!r} > {upper[pos]!r})")


# ---------------------------------------------------------------------------------------
# scoring rules
# ---------------------------------------------------------------------------------------
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
    y = _vector("y", y)
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
    y = _vector("y", y)
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
    y = _vector("y", y)
    x = _draws("draws", draws, len(y))
    below = (x < y[None, :]).sum(axis=0)
    ties = (x == y[None, :]).sum(axis=0)
    return (below + 0.5 * ties) / x.shape[0]


# ---------------------------------------------------------------------------------------
# calibration of fitted results
# ---------------------------------------------------------------------------------------
def _named_results(results: Any) -> dict[str, FitResult]:
    from bayesmf.results import FitResult

    if isinstance(results, FitResult):
        return {results.method: results}
    if isinstance(results, Mapping):
        out = dict(results)
    elif isinstance(results, Sequence) and not isinstance(results, (str, bytes)):
        out = {}
        for r in results:
            name, k = getattr(r, "method", "result"), 2
            while name in out:
                name, k = f"{r.method}_{k}", k + 1
            out[name] = r
    else:
        raise TypeError(f"results must be a FitResult, a dict name -> FitResult or a list, got {type(results).__name__}")
    if not out:
        raise ValueError("no results given")
    for name, r in out.items():
        if not isinstance(r, FitResult):
            raise TypeError(f"results[{name!r}] is a {type(r).__name__}, not a FitResult")
    return out


def _observed(test: Any, rating_col: str = "rating") -> np.ndarray:
    if isinstance(test, RatingsData):
        return np.asarray(test.rating, dtype=np.float64)
    if isinstance(test, pd.DataFrame):
        if rating_col not in test.columns:
            raise ValueError(f"test frame lacks the rating column {rating_col!r} (its columns: {list(test.columns)})")
        return _vector("test rating", test[rating_col].to_numpy())
    raise TypeError(f"test must be a RatingsData or a DataFrame, got {type(test).__name__}")


def calibration_table(
    results: Any,
    test: Any,
    probs: Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    *,
    kind: str = "predictive",
    clip: bool = True,
    unknown: str = "prior",
    random_seed: int | None = 0,
) -> pd.DataFrame:
    r"""Nominal vs empirical coverage of equal-tailed intervals, per result and probability.

    For each result (e.g. a MAP plug-in beside a full posterior) and each nominal ``prob``,
    the fraction of test ratings inside the central ``prob`` interval
    (`bayesmf.predict.predict`), its binomial standard error
    :math:`\sqrt{c(1-c)/n}` and the mean interval width. A calibrated model has coverage
    close to ``prob``; the MAP plug-in ignores parameter uncertainty and usually falls short
    for users with few ratings.

    Parameters
    ----------
    results : FitResult, dict of str to FitResult, or list of FitResult
        The fits to compare (a list is named by method).
    test : RatingsData or pandas.DataFrame
        Held-out ratings (a frame needs ``user``, ``item``, ``rating`` columns).
    probs : sequence of float
        Nominal probabilities, each in (0, 1).
    kind : {"predictive", "expected"}
        Interval kind; against observed (noisy) ratings only ``"predictive"`` is calibrated.
    clip : bool
        Censor predictive draws to the rating scale.
    unknown : {"prior", "raise"}
        Policy for test ids the model does not know.
    random_seed : int, optional
        Seed of the prior draws for unknown ids.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``method``, ``prob``, ``coverage``, ``coverage_se``, ``width``,
        ``n``; one row per (model, prob).
    """
    from bayesmf.predict import summarize_for

    named = _named_results(results)
    probs = [validate_prob(p, "probs") for p in probs]
    if not probs:
        raise ValueError("probs is empty")
    validate_choice("kind", kind, ("predictive", "expected"))
    y = _observed(test)
    rows = []
    for name, result in named.items():
        _, intervals = summarize_for(
            result, test, probs, kind=kind, clip=clip, unknown=unknown, random_seed=random_seed
        )
        for p in probs:
            lower, upper = intervals[p]
            inside = (lower <= y) & (y <= upper)
            c = float(np.mean(inside))
            rows.append(
                {
                    "model": name,
                    "method": result.method,
                    "prob": p,
                    "coverage": c,
                    "coverage_se": math.sqrt(max(c * (1.0 - c), 0.0) / len(y)),
                    "width": float(np.mean(upper - lower)),
                    "n": len(y),
                }
            )
    return pd.DataFrame(rows)


def interval_width_by_count(
    results: Any,
    test: Any,
    prob: float = 0.9,
    bins: Sequence[float] = (0, 1, 5, 10, 20, 50, 100, 200, np.inf),
    *,
    kind: str = "predictive",
    clip: bool = True,
    unknown: str = "prior",
    random_seed: int | None = 0,
) -> pd.DataFrame:
    """Mean interval width and coverage grouped by the user's number of training ratings.

    Shows where the full posterior differs from a MAP plug-in: users with few ratings get
    wider (honest) intervals from the posterior, the same width from MAP.

    Parameters
    ----------
    results : FitResult, dict of str to FitResult, or list of FitResult
        The fits to compare.
    test : RatingsData or pandas.DataFrame
        Held-out ratings.
    prob : float
        Interval probability.
    bins : sequence of float
        Increasing edges of the count bins, left-closed: ``[bins[k], bins[k+1])``.
    kind, clip, unknown, random_seed
        As in `calibration_table`.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``method``, ``bin`` (label like ``"20-49"``), ``count_low``,
        ``count_high``, ``width``, ``coverage``, ``n``; empty bins are left out.
    """
    from bayesmf.predict import summarize_for

    named = _named_results(results)
    prob = validate_prob(prob)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or (np.diff(edges) <= 0).any():
        raise ValueError(f"bins must be at least two increasing edges, got {bins!r}")
    y = _observed(test)
    rows = []
    for name, result in named.items():
        _, intervals = summarize_for(
            result, test, [prob], kind=kind, clip=clip, unknown=unknown, random_seed=random_seed
        )
        lower, upper = intervals[prob]
        user_idx, _ = _test_indices(result.train, test)
        counts = result.train.user_counts()
        n_user = np.where(user_idx >= 0, counts[np.maximum(user_idx, 0)], 0)
        which = np.digitize(n_user, edges) - 1
        for k in range(len(edges) - 1):
            sel = which == k
            if not sel.any():
                continue
            lo, hi = edges[k], edges[k + 1]
            label = f"{lo:g}+" if not np.isfinite(hi) else (f"{lo:g}" if hi - lo == 1 else f"{lo:g}-{hi - 1:g}")
            rows.append(
                {
                    "model": name,
                    "method": result.method,
                    "bin": label,
                    "count_low": lo,
                    "count_high": hi,
                    "width": float(np.mean(upper[sel] - lower[sel])),
                    "coverage": float(np.mean((lower[sel] <= y[sel]) & (y[sel] <= upper[sel]))),
                    "n": int(sel.sum()),
                }
            )
    return pd.DataFrame(rows)
