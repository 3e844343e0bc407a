r"""Scores of binary predictions: AUC, log-loss, Brier score, reliability and ECE.

For outcomes :math:`y_n \in \{0, 1\}` and predicted probabilities :math:`\hat p_n = P(y_n = 1)`
(for a ``PMF(likelihood="bernoulli")`` fit, the ``mean`` column of `bayesmf.predict.predict`):

.. math::

    \mathrm{AUC} = P(\hat p_+ > \hat p_-) + \tfrac12 P(\hat p_+ = \hat p_-), \quad
    \text{log-loss} = -\frac1N \sum_n y_n \log \hat p_n + (1 - y_n) \log(1 - \hat p_n), \quad
    \mathrm{Brier} = \frac1N \sum_n (\hat p_n - y_n)^2,

the AUC over every (positive, negative) pair (Mann-Whitney, ties counted half), or with
``groups`` the mean of each group's AUC over the groups that have both outcomes (per user:
myFM's "grouped" AUC). Reliability and the expected calibration error come from
`bayesmf.choice_calibration.reliability_table` (equal-width bins of [0, 1]), the same table
that scores P(chosen) of implicit feedback. `binary_scores` gathers them for a frame of
predictions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from bayesmf.array_metrics import check_vector
from bayesmf.choice_calibration import Reliability, plot_choice_reliability, reliability_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["LOG_LOSS_EPS", "auc", "binary_scores", "brier_score", "log_loss", "plot_reliability", "reliability"]

#: predictions are clipped to [eps, 1 - eps] in `log_loss`, so that one confident miss is
#: a large finite loss (about 34.5 nats), not an infinite one
LOG_LOSS_EPS = 1e-15


def _outcomes_and_probabilities(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    outcome, prob = check_vector("y", y), check_vector("p", p)
    if outcome.size != prob.size:
        raise ValueError(f"y and p must have one length, got {outcome.size} and {prob.size}")
    bad = (outcome != 0) & (outcome != 1)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y must be 0 or 1, got {float(outcome[pos])!r} at position {pos}")
    bad = (prob < 0) | (prob > 1)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"p must be a probability in [0, 1], got {float(prob[pos])!r} at position {pos}")
    return outcome, prob


def _pooled_auc(y: np.ndarray, p: np.ndarray) -> float:
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)  # average ranks: ties count half
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc(y: Any, p: Any, groups: Any = None) -> float:
    """Area under the ROC curve: the chance that a positive outranks a negative (ties half).

    Parameters
    ----------
    y : array_like
        Outcomes, 0 or 1.
    p : array_like of float
        Predicted probabilities (any score that orders them works the same).
    groups : array_like, optional
        A group label per outcome (e.g. the user): the mean of the groups' own AUCs, over
        the groups that hold both outcomes.

    Returns
    -------
    float
        NaN when no group (or the whole data) holds both outcomes.

    Raises
    ------
    ValueError
        On empty or mismatched input, an outcome other than 0/1 or a probability outside
        [0, 1] (named with its position).
    """
    outcome, prob = _outcomes_and_probabilities(y, p)
    if groups is None:
        return _pooled_auc(outcome, prob)
    labels = np.asarray(groups)
    if labels.shape != outcome.shape:
        raise ValueError(f"groups must have one label per outcome ({outcome.size}), got shape {labels.shape}")
    codes = pd.factorize(labels)[0]
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    scores = [_pooled_auc(outcome[part], prob[part]) for part in np.split(order, bounds)]
    valid = [s for s in scores if not np.isnan(s)]
    return float(np.mean(valid)) if valid else float("nan")


def log_loss(y: Any, p: Any) -> float:
    """Mean negative log-likelihood (nats) of the outcomes under ``p`` (clipped by `LOG_LOSS_EPS`)."""
    outcome, prob = _outcomes_and_probabilities(y, p)
    prob = np.clip(prob, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(outcome * np.log(prob) + (1.0 - outcome) * np.log1p(-prob)))


def brier_score(y: Any, p: Any) -> float:
    """Mean squared difference between ``p`` and the 0/1 outcomes."""
    outcome, prob = _outcomes_and_probabilities(y, p)
    return float(np.mean((prob - outcome) ** 2))


def reliability(y: Any, p: Any, n_bins: int = 10) -> Reliability:
    """Reliability table, ECE and Brier score (`bayesmf.choice_calibration.reliability_table`)."""
    outcome, prob = _outcomes_and_probabilities(y, p)
    return reliability_table(prob, outcome, n_bins=n_bins)


def binary_scores(
    predictions: pd.DataFrame, *, outcome_col: str = "rating", prob_col: str = "mean", group_col: str | None = "user",
    n_bins: int = 10,
) -> pd.Series:
    """AUC (pooled and per group), log-loss, Brier score and ECE of a frame of predictions.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per pair, e.g. ``fit.predict(test)`` of a ``likelihood="bernoulli"`` fit
        (its ``mean`` is P(y = 1), its ``rating`` the 0/1 outcome).
    outcome_col, prob_col : str
        Columns of the outcomes and of the predicted probabilities.
    group_col : str, optional
        Column of the groups of the grouped AUC (None: left out).
    n_bins : int
        Bins of the reliability table behind the ECE.

    Returns
    -------
    pandas.Series
        ``auc``, ``auc_grouped`` (with ``group_col``), ``log_loss``, ``brier``, ``ece``,
        ``n``, ``n_positive``.
    """
    for col in (outcome_col, prob_col) + ((group_col,) if group_col else ()):
        if col not in predictions.columns:
            raise ValueError(f"predictions have no column {col!r} (columns: {list(predictions.columns)})")
    y, p = _outcomes_and_probabilities(predictions[outcome_col], predictions[prob_col])
    out: dict[str, float] = {"auc": auc(y, p)}
    if group_col:
        out["auc_grouped"] = auc(y, p, groups=predictions[group_col].to_numpy())
    table = reliability_table(p, y, n_bins=n_bins)
    out |= {"log_loss": log_loss(y, p), "brier": table.brier, "ece": table.ece, "n": float(y.size),
            "n_positive": float(y.sum())}
    return pd.Series(out, name="binary_scores")


def plot_reliability(table: Reliability, ax: Axes | None = None, label: str | None = None) -> Axes:
    """Reliability curve of P(y = 1) (observed frequency against mean prediction, +-2 se) with the diagonal."""
    ax = plot_choice_reliability(table, ax=ax, label=label)
    ax.set_xlabel("mean predicted P(y = 1) in bin")
    ax.set_ylabel("observed frequency of y = 1")
    ax.set_title("Reliability of P(y = 1)")
    return ax
