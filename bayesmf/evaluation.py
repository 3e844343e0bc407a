"""Evaluation of fitted results on held-out ratings: calibration of their intervals.

`calibration_table` (nominal vs empirical coverage per result and probability) and
`interval_width_by_count` (width and coverage by the user's number of training ratings).
Both predict through the machinery of `bayesmf.predict` with one `PredictOptions`; both
are re-exported by `bayesmf.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike
from bayesmf._validate import validate_prob
from bayesmf.array_metrics import check_vector
from bayesmf.data import RatingsData
from bayesmf.options import PredictOptions, resolve_options
from bayesmf.predictive.pairs import Pairs, resolve_pairs
from bayesmf.predictive.summary import summarize
from bayesmf.predictive.view import model_view
from bayesmf.results import FitResult

__all__ = ["calibration_table", "interval_width_by_count"]


def _named_results(results: Any) -> dict[str, FitResult]:
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
        return check_vector("test rating", test[rating_col].to_numpy())
    raise TypeError(f"test must be a RatingsData or a DataFrame, got {type(test).__name__}")


def _intervals(
    result: FitResult, test: Any, probs: Sequence[float], opts: PredictOptions, progressbar: bool = False
) -> tuple[Pairs, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """Return the test pairs and their equal-tailed intervals ``{prob: (lower, upper)}``, in one pass."""
    view = model_view(result, lazy=True)
    pairs = resolve_pairs(result, test, unknown=opts.unknown)
    tails = np.array([t for p in probs for t in ((1 - p) / 2, 1 - (1 - p) / 2)])
    summary = summarize(
        view, pairs, kind=opts.kind, qs=tails, threshold=math.nan, clip=opts.clip, hdi_prob=math.nan,
        chunk_size=opts.chunk_size, base=opts.base_seed(), progressbar=progressbar,
    )
    q = summary.quantiles
    return pairs, {p: (q[:, 2 * k], q[:, 2 * k + 1]) for k, p in enumerate(probs)}


def calibration_table(
    results: Any,
    test: Any,
    probs: Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    *,
    kind: str = "predictive",
    clip: bool = True,
    unknown: str = "prior",
    random_seed: SeedLike = 0,
    options: PredictOptions | None = None,
    progressbar: bool = True,
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
    random_seed : int or numpy.random.Generator, optional
        Seed of the prior draws for unknown ids.
    options : PredictOptions, optional
        ``kind``, ``clip``, ``unknown``, ``random_seed`` (and ``chunk_size``) as one object
        (its ``prob``, ``interval`` and ``threshold`` are not used here).
    progressbar : bool
        Show a progress bar over the chunks of test pairs of each result (as `predict`;
        exact intervals over every draw of a large posterior take a while: tens of seconds
        for 20,000 pairs and 4,000 draws).

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``method``, ``prob``, ``coverage``, ``coverage_se``, ``width``,
        ``n``; one row per (model, prob).
    """
    opts = resolve_options(
        calibration_table, options, kind=kind, clip=clip, unknown=unknown, random_seed=random_seed
    )
    named = _named_results(results)
    probs = [validate_prob(p, "probs") for p in probs]
    if not probs:
        raise ValueError("probs is empty")
    y = _observed(test)
    rows = []
    for name, result in named.items():
        _, intervals = _intervals(result, test, probs, opts, progressbar)
        for p in probs:
            lower, upper = intervals[p]
            c = float(np.mean((lower <= y) & (y <= upper)))
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


def _bin_label(lo: float, hi: float) -> str:
    if not np.isfinite(hi):
        return f"{lo:g}+"
    return f"{lo:g}" if hi - lo == 1 else f"{lo:g}-{hi - 1:g}"


def interval_width_by_count(
    results: Any,
    test: Any,
    prob: float = 0.9,
    bins: Sequence[float] = (0, 1, 5, 10, 20, 50, 100, 200, np.inf),
    *,
    kind: str = "predictive",
    clip: bool = True,
    unknown: str = "prior",
    random_seed: SeedLike = 0,
    options: PredictOptions | None = None,
    progressbar: bool = True,
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
    kind, clip, unknown, random_seed, options, progressbar
        As in `calibration_table` (``options`` carries ``prob`` too).

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``method``, ``bin`` (label like ``"20-49"``), ``count_low``,
        ``count_high``, ``width``, ``coverage``, ``n``; empty bins are left out.
    """
    opts = resolve_options(
        interval_width_by_count, options, prob=prob, kind=kind, clip=clip, unknown=unknown,
        random_seed=random_seed,
    )
    named = _named_results(results)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or (np.diff(edges) <= 0).any():
        raise ValueError(f"bins must be at least two increasing edges, got {bins!r}")
    y = _observed(test)
    rows = []
    for name, result in named.items():
        pairs, intervals = _intervals(result, test, [opts.prob], opts, progressbar)
        lower, upper = intervals[opts.prob]
        counts = result.train.user_counts()
        n_user = np.where(pairs.uidx >= 0, counts[np.maximum(pairs.uidx, 0)], 0)
        which = np.digitize(n_user, edges) - 1
        for k in range(len(edges) - 1):
            sel = which == k
            if not sel.any():
                continue
            rows.append(
                {
                    "model": name,
                    "method": result.method,
                    "bin": _bin_label(edges[k], edges[k + 1]),
                    "count_low": edges[k],
                    "count_high": edges[k + 1],
                    "width": float(np.mean(upper[sel] - lower[sel])),
                    "coverage": float(np.mean((lower[sel] <= y[sel]) & (y[sel] <= upper[sel]))),
                    "n": int(sel.sum()),
                }
            )
    return pd.DataFrame(rows)
