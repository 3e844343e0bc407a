"""Plots of predictions, their calibration, and convergence: drawing only.

Each plot gets its numbers from a compute function -- `bayesmf.metrics.calibration_table`,
`bayesmf.recommend.recommend`, `bayesmf.metrics.interval_width_by_count` (DataFrames, or
pass that DataFrame directly) or `bayesmf.identified.identified_quantities` (draws) -- and
then draws them. The prediction plots use matplotlib; each accepts ``ax=`` and returns the
Axes. `plot_diagnostics` (trace and rank plots with arviz_plots) is defined in
`bayesmf.convergence_plots`, which imports no prediction code, so that
`bayesmf.diagnostics` can re-export it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf.convergence_plots import plot_diagnostics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_calibration", "plot_diagnostics", "plot_interval_width", "plot_recommendations"]


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; pass the output of the matching compute function")


def plot_calibration(
    results: Any,
    test: Any = None,
    probs: Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    *,
    ax: Axes | None = None,
    kind: str = "predictive",
    deviation: bool = False,
    **kwargs: Any,
) -> Axes:
    """Nominal vs empirical coverage of central intervals, one line per model.

    Parameters
    ----------
    results : dict of str to FitResult, FitResult, list, or pandas.DataFrame
        Fits to compare (e.g. ``{"MAP": map_fit, "Gibbs": gibbs_fit}``), or a table from
        `bayesmf.metrics.calibration_table`.
    test : RatingsData or pandas.DataFrame, optional
        Held-out ratings (needed unless ``results`` is a table).
    probs : sequence of float
        Nominal probabilities.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    kind : {"predictive", "expected"}
        Interval kind (see `bayesmf.predict.predict`).
    deviation : bool
        Plot coverage minus nominal (zero is perfect calibration) instead of coverage
        against the diagonal, with the models side by side at each probability. Use it
        when the models differ by a point or two: on the diagonal their lines overlap.
    **kwargs
        Passed to `bayesmf.metrics.calibration_table`.

    Returns
    -------
    matplotlib.axes.Axes
        The diagonal (or zero line) is perfect calibration; error bars are +-2 binomial
        standard errors. Points below it are over-confident intervals.
    """
    if isinstance(results, pd.DataFrame):
        table = results
    else:
        if test is None:
            raise ValueError("plot_calibration needs test= (held-out ratings) unless given a calibration table")
        from bayesmf.metrics import calibration_table

        table = calibration_table(results, test, probs, kind=kind, **kwargs)
    _require(table, ["model", "prob", "coverage", "coverage_se"], "the calibration table")
    if deviation:
        return _plot_coverage_gap(table, ax)
    ax = _axes(ax, (4.5, 4.5))
    lo = min(float(table["prob"].min()), float(table["coverage"].min())) - 0.05
    ax.plot([lo, 1.0], [lo, 1.0], color="0.6", linestyle="--", linewidth=1, label="ideal")
    for name, group in table.groupby("model", sort=False):
        group = group.sort_values("prob")
        ax.errorbar(
            group["prob"], group["coverage"], yerr=2 * group["coverage_se"], marker="o", capsize=3, label=str(name)
        )
    ax.set_xlabel("nominal probability of the interval")
    ax.set_ylabel("empirical coverage on held-out ratings")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.0)
    ax.set_aspect("equal", adjustable="box")
    ax.set_title("Calibration of predictive intervals")
    ax.legend(loc="lower right", frameon=False)
    return ax


_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


def _plot_coverage_gap(table: pd.DataFrame, ax: Axes | None) -> Axes:
    """Coverage minus nominal per probability, models dodged side by side, +-2 se bars."""
    ax = _axes(ax, (7.5, 4.0))
    probs = np.sort(table["prob"].unique())
    groups = list(table.groupby("model", sort=False))
    step = 0.6 / max(len(groups), 1)
    for k, (name, group) in enumerate(groups):
        group = group.set_index("prob").reindex(probs)
        x = np.arange(len(probs)) + (k - (len(groups) - 1) / 2) * step
        ax.errorbar(
            x, 100 * (group["coverage"].to_numpy(float) - probs), yerr=200 * group["coverage_se"].to_numpy(float),
            marker=_MARKERS[k % len(_MARKERS)], linestyle="none", capsize=3, label=str(name),
        )
    ax.axhline(0.0, color="0.4", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(probs)), [f"{p:.0%}" for p in probs])
    ax.set_xlabel("nominal probability of the interval")
    ax.set_ylabel("coverage - nominal (percentage points)")
    ax.set_title("Calibration of intervals (+-2 se)")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # clear of the points
    return ax


def plot_recommendations(
    result: Any,
    user: Any = None,
    n: int = 10,
    *,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Top-``n`` items for one user with their intervals, best at the top.

    Parameters
    ----------
    result : FitResult or pandas.DataFrame
        A fitted model, or the output of `bayesmf.recommend.recommend` for one user.
    user : raw id
        The user (needed with a FitResult).
    n : int
        Number of items.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to `bayesmf.recommend.recommend` (``prob``, ``rank_by``, ``kind``...).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(result, pd.DataFrame):
        table = result
    else:
        if user is None:
            raise ValueError("plot_recommendations needs user= with a FitResult")
        from bayesmf.recommend import recommend

        table = recommend(result, user, n=n, **kwargs)
    _require(table, ["user", "rank", "item", "mean", "lower", "upper"], "the recommendations table")
    users = pd.unique(table["user"])
    if len(users) != 1:
        raise ValueError(f"plot_recommendations draws one user; the table holds {len(users)}: {list(users)[:5]!r}")
    table = table.sort_values("rank")
    ax = _axes(ax, (6.0, 0.35 * len(table) + 1.2))
    pos = np.arange(len(table))[::-1]
    mean = table["mean"].to_numpy()
    err = np.vstack([mean - table["lower"].to_numpy(), table["upper"].to_numpy() - mean])
    ax.errorbar(mean, pos, xerr=np.maximum(err, 0), fmt="o", capsize=3)
    ax.set_yticks(pos)
    ax.set_yticklabels([str(i) for i in table["item"].tolist()])
    prob = table.attrs.get("prob")
    kind = table.attrs.get("kind", "predictive")
    label = f"{kind} rating" + (f" (mean, {prob:.0%} interval)" if isinstance(prob, float) else "")
    ax.set_xlabel(label)
    ax.set_ylabel("item")
    ax.set_title(f"Top {len(table)} for user {users[0]!s}")
    return ax


def plot_interval_width(
    results: Any,
    test: Any = None,
    prob: float = 0.9,
    *,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Mean interval width by how many training ratings the user has, one line per model.

    The full posterior widens the intervals of users with few ratings; a MAP plug-in gives
    every user the same noise-only width.

    Parameters
    ----------
    results : dict of str to FitResult, FitResult, list, or pandas.DataFrame
        Fits to compare, or a table from `bayesmf.metrics.interval_width_by_count`.
    test : RatingsData or pandas.DataFrame, optional
        Held-out ratings (needed unless ``results`` is a table).
    prob : float
        Interval probability.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to `bayesmf.metrics.interval_width_by_count` (``bins``, ``kind``...).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(results, pd.DataFrame):
        table = results
    else:
        if test is None:
            raise ValueError("plot_interval_width needs test= unless given a width table")
        from bayesmf.metrics import interval_width_by_count

        table = interval_width_by_count(results, test, prob, **kwargs)
    _require(table, ["model", "bin", "count_low", "width"], "the width table")
    ax = _axes(ax, (6.0, 4.0))
    bins = table[["count_low", "bin"]].drop_duplicates().sort_values("count_low")
    where = {label: k for k, label in enumerate(bins["bin"].tolist())}
    for name, group in table.groupby("model", sort=False):
        group = group.sort_values("count_low")
        ax.plot([where[b] for b in group["bin"]], group["width"], marker="o", label=str(name))
    ax.set_xticks(range(len(where)))
    ax.set_xticklabels(list(where))
    ax.set_xlabel("ratings by the user in the training data")
    ax.set_ylabel(f"mean width of the {prob:.0%} interval" if isinstance(prob, float) else "mean interval width")
    ax.set_title("Interval width by user activity")
    ax.legend(frameon=False)
    return ax
