"""Baselines every recommender should beat: global, user, item and mean-of-means predictions.

Each takes the training ratings and the test pairs (a `RatingsData` with the same or other
encoders, or a frame with ``user``/``item`` columns) and returns one prediction per test
pair; users or items without training ratings get the global mean. All are re-exported by
`bayesmf.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayesmf.data import RatingsData

__all__ = ["global_mean_baseline", "item_mean_baseline", "mean_of_means_baseline", "user_mean_baseline"]


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
