"""Accuracy, calibration and scoring rules: the metrics namespace.

Re-exports, by job:

* `bayesmf.array_metrics` -- arrays in, floats out: `rmse`, `mae`, `coverage`,
  `interval_width`, `crps`, `log_predictive_density`, `pit`;
* `bayesmf.baselines` -- the predictions every recommender should beat:
  `global_mean_baseline`, `user_mean_baseline`, `item_mean_baseline`,
  `mean_of_means_baseline`;
* `bayesmf.evaluation` -- fitted results on held-out ratings: `calibration_table`,
  `interval_width_by_count`.

``from bayesmf import metrics; metrics.rmse(y, pred)`` and
``from bayesmf.metrics import calibration_table`` keep working.
"""

from __future__ import annotations

from bayesmf.array_metrics import (
    coverage,
    crps,
    interval_width,
    log_predictive_density,
    mae,
    pit,
    rmse,
)
from bayesmf.baselines import (
    global_mean_baseline,
    item_mean_baseline,
    mean_of_means_baseline,
    user_mean_baseline,
)
from bayesmf.evaluation import calibration_table, interval_width_by_count

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
