r"""Scores of ordinal predictions: ranked probability score, log-loss, expected-rating errors, calibration.

For ratings :math:`r_n` on the levels :math:`\ell_0 < \dots < \ell_{L-1}` (a regular grid,
e.g. 1..5 stars) and predicted level probabilities :math:`p_{nk} = P(r_n = \ell_k)` (for a
``PMF(likelihood="ordinal")`` fit, the ``p_<level>`` columns of `bayesmf.predict.predict_proba`),
with :math:`F_{nk} = \sum_{m \le k} p_{nm}`:

.. math::

    \mathrm{RPS} = \frac1N \sum_n \sum_{k=0}^{L-2} \bigl(F_{nk} - [r_n \le \ell_k]\bigr)^2, \quad
    \text{log-loss} = -\frac1N \sum_n \log p_{n k_n}, \quad
    \hat r_n = \sum_k \ell_k p_{nk},

the ranked probability score (Epstein 1969; the Brier scores of the :math:`L - 1` events
:math:`r \le \ell_k` summed, so a miss by two levels costs more than a miss by one), the
multiclass log-loss (nats) and the RMSE and MAE of the expected rating :math:`\hat r_n`.
Calibration of :math:`P(r \ge t)` for a level :math:`t` is the binary reliability table of
`bayesmf.binary_metrics.reliability` on the events :math:`[r_n \ge t]` (ECE, Brier score).
`ordinal_scores` gathers them for a frame of predictions.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from bayesmf.array_metrics import check_vector
from bayesmf.binary_metrics import LOG_LOSS_EPS, reliability
from bayesmf.choice_calibration import Reliability

__all__ = [
    "exceedance_reliability",
    "expected_rating",
    "expected_rating_errors",
    "level_columns",
    "multiclass_log_loss",
    "ordinal_scores",
    "ranked_probability_score",
]

#: tolerance of a rating's match to a level, of the grid's regularity, and of a row's sum to 1
_TOL = 1e-6
_LEVEL_COLUMN = re.compile(r"^p_(.+)$")


def _check_levels(levels: Any) -> np.ndarray:
    grid = check_vector("levels", levels)
    if grid.size < 2:
        raise ValueError(f"levels must hold at least two rating levels, got {grid.tolist()}")
    steps = np.diff(grid)
    if np.any(steps <= 0):
        pos = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ValueError(f"levels must increase, got {float(grid[pos])!r} after {float(grid[pos - 1])!r}")
    off = np.abs(steps - steps[0]) > _TOL * max(1.0, abs(float(steps[0])))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"levels must lie on a regular grid, but level {float(grid[i + 1])!r} follows {float(grid[i])!r} "
            f"(step {float(steps[i]):g}, the first step is {float(steps[0]):g}): got {grid.tolist()}"
        )
    return grid


def _codes(rating: Any, grid: np.ndarray) -> np.ndarray:
    values = check_vector("rating", rating)
    codes = np.abs(values[:, None] - grid[None, :]).argmin(axis=1)
    bad = np.abs(values - grid[codes]) > _TOL * max(1.0, float(np.max(np.abs(grid))))
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"rating {float(values[pos])!r} at position {pos} is not one of the levels {grid.tolist()}")
    return codes


def _check_inputs(rating: Any, probs: Any, levels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (level codes, probabilities (N, L), levels), checked."""
    grid = _check_levels(levels)
    codes = _codes(rating, grid)
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"probs must be numeric, got {type(probs).__name__}") from exc
    if p.shape != (codes.size, grid.size):
        raise ValueError(f"probs must have shape (n ratings, n levels) = ({codes.size}, {grid.size}), got {p.shape}")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        row, col = (int(x[0]) for x in np.nonzero(bad))
        raise ValueError(f"probs must be probabilities in [0, 1], got {float(p[row, col])!r} at row {row}, level {grid[col]:g}")
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > _TOL
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValueError(f"each row of probs must sum to 1, row {row} sums to {float(sums[row])!r}")
    return codes, p, grid


def ranked_probability_score(rating: Any, probs: Any, levels: Any) -> float:
    """Mean ranked probability score: the Brier scores of the events ``r <= level`` summed over the levels.

    Parameters
    ----------
    rating : array_like
        Observed ratings, each one of ``levels``.
    probs : array_like
        Predicted level probabilities, shape ``(len(rating), len(levels))``, rows summing to 1.
    levels : array_like
        The rating levels, increasing on a regular grid.

    Returns
    -------
    float
        0 for certain, correct predictions; at most ``len(levels) - 1``.

    Raises
    ------
    ValueError
        Levels not increasing on a regular grid, a rating that is not a level, or
        probabilities out of [0, 1] or rows not summing to 1 (each named with its position).
    """
    codes, p, grid = _check_inputs(rating, probs, levels)
    cdf = np.cumsum(p, axis=1)[:, :-1]
    observed = codes[:, None] <= np.arange(grid.size - 1)[None, :]
    return float(np.mean(np.sum((cdf - observed) ** 2, axis=1)))


def multiclass_log_loss(rating: Any, probs: Any, levels: Any) -> float:
    """Mean negative log probability (nats) of the observed levels (clipped below at `LOG_LOSS_EPS`).

    Arguments and errors as in `ranked_probability_score`.
    """
    codes, p, _ = _check_inputs(rating, probs, levels)
    chosen = np.clip(p[np.arange(codes.size), codes], LOG_LOSS_EPS, 1.0)
    return float(-np.mean(np.log(chosen)))


def expected_rating(probs: Any, levels: Any) -> np.ndarray:
    r"""Return the expected rating :math:`\sum_k \ell_k p_{nk}` of each row of ``probs``."""
    grid = _check_levels(levels)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != grid.size:
        raise ValueError(f"probs must have one column per level ({grid.size}), got shape {p.shape}")
    return np.asarray(p @ grid)


def expected_rating_errors(rating: Any, probs: Any, levels: Any) -> dict[str, float]:
    """RMSE and MAE of the expected rating against the observed one: ``{"rmse": ..., "mae": ...}``.

    Arguments and errors as in `ranked_probability_score`.
    """
    codes, p, grid = _check_inputs(rating, probs, levels)
    error = p @ grid - grid[codes]
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


def _check_threshold(threshold: Any, grid: np.ndarray) -> int:
    """Index of the level ``threshold`` (above the lowest level), or a ValueError naming it."""
    try:
        t = float(threshold)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"threshold must be a rating level, got {threshold!r}") from exc
    match = np.flatnonzero(np.abs(grid - t) <= _TOL * max(1.0, abs(t)))
    if match.size == 0 or match[0] == 0:
        raise ValueError(
            f"threshold={threshold!r} must be one of the levels above the lowest, {grid[1:].tolist()} "
            "(P(r >= lowest level) is 1)"
        )
    return int(match[0])


def exceedance_reliability(rating: Any, probs: Any, levels: Any, threshold: float = 4.0, n_bins: int = 10) -> Reliability:
    """Reliability table, ECE and Brier score of the predicted ``P(r >= threshold)``.

    The binary table of `bayesmf.binary_metrics.reliability` on the events ``r >= threshold``
    with probabilities the predicted mass of the levels at or above ``threshold``.

    Raises
    ------
    ValueError
        As `ranked_probability_score`, or a ``threshold`` that is not a level above the
        lowest (named, with the levels).
    """
    codes, p, grid = _check_inputs(rating, probs, levels)
    k = _check_threshold(threshold, grid)
    return reliability((codes >= k).astype(np.float64), np.clip(p[:, k:].sum(axis=1), 0.0, 1.0), n_bins=n_bins)


def level_columns(predictions: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Return the ``p_<level>`` columns of a `bayesmf.predict.predict_proba` frame and their levels, in level order."""
    found = []
    for col in predictions.columns:
        match = _LEVEL_COLUMN.match(str(col))
        if match:
            try:
                found.append((float(match.group(1)), str(col)))
            except ValueError:
                continue
    if len(found) < 2:
        raise ValueError(
            f"predictions need a column p_<level> per rating level (predict_proba), got columns {list(predictions.columns)}"
        )
    found.sort()
    return [col for _, col in found], np.array([level for level, _ in found])


def ordinal_scores(
    predictions: pd.DataFrame, *, rating_col: str = "rating", threshold: float = 4.0, n_bins: int = 10
) -> pd.Series:
    """RPS, log-loss, RMSE and MAE of the expected rating, and calibration of P(r >= threshold).

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per pair with the observed rating and a column ``p_<level>`` per level,
        e.g. ``fit.predict_proba(test)`` of a ``likelihood="ordinal"`` fit.
    rating_col : str
        Column of the observed ratings.
    threshold : float
        The level ``t`` of the calibrated event ``r >= t``.
    n_bins : int
        Bins of the reliability table behind the ECE.

    Returns
    -------
    pandas.Series
        ``rps``, ``log_loss``, ``rmse``, ``mae``, ``ece`` and ``brier`` (of P(r >= t)), ``n``.
    """
    if rating_col not in predictions.columns:
        raise ValueError(f"predictions have no column {rating_col!r} (columns: {list(predictions.columns)})")
    cols, grid = level_columns(predictions)
    rating, probs = predictions[rating_col].to_numpy(), predictions[cols].to_numpy()
    table = exceedance_reliability(rating, probs, grid, threshold=threshold, n_bins=n_bins)
    out = {"rps": ranked_probability_score(rating, probs, grid), "log_loss": multiclass_log_loss(rating, probs, grid)}
    out |= expected_rating_errors(rating, probs, grid)
    out |= {"ece": table.ece, "brier": table.brier, "n": float(len(rating))}
    return pd.Series(out, name="ordinal_scores")
