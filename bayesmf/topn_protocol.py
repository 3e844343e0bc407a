"""The top-N protocol of `bayesmf.topn`: who is evaluated, on which candidates, against what.

`test_scale` says on which scale the test ratings (and so the relevance threshold) live;
`check_protocol` validates the protocol's options; `make_plan` turns a test set (a
`RatingsData` or a frame of raw ids) into every evaluated user's candidates and relevant
items, with the counts `bayesmf.topn` reports (module docstring there).

The test scale is not always the training scale: an implicit-feedback fit is trained on
choices (scale (0, 1), `bayesmf.link.IMPLICIT_SCALE`) and evaluated on held-out ratings
(e.g. 1-5 stars). `test_scale` takes it from the test set itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmf._validate import (
    validate_choice,
    validate_in_scale,
    validate_positive_int,
    validate_ratings_frame,
    validate_scale,
)
from bayesmf.data import RatingsData, UnknownIdError
from bayesmf.link import IMPLICIT_SCALE
from bayesmf.predictive.pairs import py_value

__all__ = [
    "CANDIDATES", "SAMPLED_WARNING", "Plan", "UnratedItems", "check_protocol", "encode_test", "index_pairs", "make_plan",
    "test_scale",
]

CANDIDATES = ("unrated", "sampled")
_UNKNOWN = ("raise", "drop")
SAMPLED_WARNING = (
    "metrics over sampled negatives are not the full-ranking metrics and can order "
    "systems differently (Krichene and Rendle, 'On sampled metrics for item "
    "recommendation', KDD 2020); report candidates='unrated' where you can"
)


@dataclass
class Plan:
    """Who is evaluated on what: per user its index, candidates and relevant items."""

    users: list[int]
    candidates: list[np.ndarray]
    relevant: list[np.ndarray]
    counts: dict[str, Any]


def test_scale(train: RatingsData, test: Any, scale: Any = None) -> tuple[float, float]:
    """Return the scale ``(low, high)`` of the test ratings, against which the threshold is checked.

    ``scale`` given: it (checked: finite, low < high). Otherwise a `RatingsData` test's own
    ``scale``; a frame's: ``train``'s scale, unless ``train`` is implicit feedback (its scale
    `IMPLICIT_SCALE` is the choice response's, not a rating scale), in which case the
    smallest interval holding [0, 1] and every finite rating of the frame.

    Raises
    ------
    TypeError
        ``test`` is neither a `RatingsData` nor a DataFrame, or ``scale`` not a pair of numbers.
    ValueError
        A bad ``scale``.
    """
    if scale is not None:
        return validate_scale(scale)
    if isinstance(test, RatingsData):
        return test.scale
    if not isinstance(test, pd.DataFrame):
        raise TypeError(
            "test must be a RatingsData or a pandas DataFrame of raw ids (columns user, item, "
            f"rating), got {type(test).__name__}"
        )
    if tuple(train.scale) != IMPLICIT_SCALE or "rating" not in test.columns:
        return train.scale
    values = pd.to_numeric(test["rating"], errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    low, high = IMPLICIT_SCALE
    if values.size:
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    return low, high


def encode_test(
    train: RatingsData, test: Any, unknown: str, scale: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Return the test ratings as the fit's (user, item) indices, their ratings and the number dropped.

    ``test`` is a `RatingsData` (any encoders: other ones go through the raw ids) or a frame
    of raw ids with columns ``user``, ``item``, ``rating`` (as `RatingsData.to_dataframe`
    writes it; checked by `bayesmf._validate.validate_ratings_frame`: a missing column, a
    missing id, a NaN rating or one off ``scale`` (default: ``test_scale``), a duplicate
    pair raise, naming it). Ids the fit does not know raise `bayesmf.data.UnknownIdError`
    naming them, or with ``unknown="drop"`` are dropped and counted.
    """
    if isinstance(test, pd.DataFrame):
        scale = test_scale(train, test) if scale is None else scale
        frame = validate_ratings_frame(test, "user", "item", "rating", scale)
        user_raw, item_raw = frame["user"].to_numpy(), frame["item"].to_numpy()
        rating = frame["rating"].to_numpy(dtype=np.float64)
    elif isinstance(test, RatingsData):
        if test.users.equals(train.users) and test.items.equals(train.items):
            return np.asarray(test.user_idx), np.asarray(test.item_idx), np.asarray(test.rating), 0
        user_raw, item_raw = test.users.to_raw(test.user_idx), test.items.to_raw(test.item_idx)
        rating = np.asarray(test.rating)
    else:
        raise TypeError(
            "test must be a RatingsData or a pandas DataFrame of raw ids (columns user, item, "
            f"rating), got {type(test).__name__}"
        )
    uidx, iidx, keep = index_pairs(train, user_raw, item_raw, unknown, "test rating(s)")
    return uidx[keep], iidx[keep], rating[keep], int((~keep).sum())


def index_pairs(
    train: RatingsData, user_raw: np.ndarray, item_raw: np.ndarray, unknown: str, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (user, item) ids as ``train``'s indices (-1: unknown) and the mask of known pairs.

    Unknown ids raise `bayesmf.data.UnknownIdError` naming them (``what`` names the rows)
    with ``unknown="raise"``; with ``"drop"`` they are only flagged.
    """
    uidx = train.users.to_index(user_raw, unknown="flag")
    iidx = train.items.to_index(item_raw, unknown="flag")
    bad = (uidx < 0) | (iidx < 0)
    if bad.any() and unknown == "raise":
        users = list(dict.fromkeys(py_value(v) for v in user_raw[uidx < 0]))
        items = list(dict.fromkeys(py_value(v) for v in item_raw[iidx < 0]))
        raise UnknownIdError(
            f"{int(bad.sum())} {what} have ids the fit does not know: users {users[:5]!r}, "
            f"items {items[:5]!r}; pass unknown='drop' to leave them out (they are counted)"
        )
    return uidx, iidx, ~bad


class UnratedItems:
    """Per user index: a boolean mask over ``train``'s items, True where the user has no training pair."""

    def __init__(self, train: RatingsData) -> None:
        self._train = train
        self._by_user = np.argsort(train.user_idx, kind="stable")
        self._starts = np.concatenate([[0], np.cumsum(train.user_counts())])

    def __call__(self, u: int) -> np.ndarray:
        """Return a fresh mask of user ``u`` (callers may change it)."""
        mask = np.ones(self._train.n_items, dtype=bool)
        mask[self._train.item_idx[self._by_user[self._starts[u] : self._starts[u + 1]]]] = False
        return mask


def make_plan(
    train: RatingsData, test: Any, threshold: float, candidates: str, n_negatives: int | None,
    rng: np.random.Generator, unknown: str, scale: tuple[float, float] | None = None,
) -> Plan:
    """Relevant items and candidate sets of every test user (protocol: `bayesmf.topn`).

    Candidates exclude the user's training pairs (its ratings, or for implicit feedback its
    choices); ``scale`` is the test ratings' (`test_scale`).
    """
    uidx, iidx, rating, n_unknown = encode_test(train, test, unknown, scale)
    unrated_of = UnratedItems(train)
    order = np.argsort(uidx, kind="stable")
    test_users, first = np.unique(uidx[order], return_index=True)
    bounds = np.append(first, len(order))
    plan = Plan([], [], [], {"n_test_users": len(test_users), "n_users_skipped": 0, "n_unknown_dropped": n_unknown,
                              "n_test_in_train": 0, "n_users_short_of_negatives": 0})
    for pos, u in enumerate(test_users.tolist()):
        rows = order[bounds[pos] : bounds[pos + 1]]
        unrated = unrated_of(u)
        fresh = unrated[iidx[rows]]
        plan.counts["n_test_in_train"] += int((~fresh).sum())
        items, ratings = iidx[rows][fresh], rating[rows][fresh]
        relevant = np.unique(items[ratings >= threshold])
        if len(relevant) == 0:
            plan.counts["n_users_skipped"] += 1
            continue
        if candidates == "unrated" or n_negatives is None:
            cand = np.flatnonzero(unrated)
        else:
            unrated[items] = False
            pool = np.flatnonzero(unrated)
            plan.counts["n_users_short_of_negatives"] += int(len(pool) < n_negatives)
            negatives = rng.choice(pool, size=min(n_negatives, len(pool)), replace=False)
            cand = np.sort(np.concatenate([negatives, np.unique(items)]))
        plan.users.append(u)
        plan.candidates.append(cand)
        plan.relevant.append(relevant)
    if not plan.users:
        raise ValueError(
            f"no test user has a relevant item (a test rating >= threshold={threshold:g} on an item "
            "unrated in training): nothing to evaluate; lower the threshold"
        )
    return plan


def check_protocol(
    scale: tuple[float, float], k: Any, threshold: Any, candidates: Any, n_negatives: Any, unknown: Any
) -> tuple[int, float, int | None]:
    """Validate the protocol's options; return ``k``, ``threshold`` and ``n_negatives``, checked.

    ``threshold`` must lie on ``scale``, the test ratings' scale (`test_scale`). Warns
    (`SAMPLED_WARNING`) with ``candidates="sampled"``, at the caller of its caller.
    """
    k = validate_positive_int("k", k)
    try:
        threshold = validate_in_scale("threshold", threshold, scale)
    except ValueError as exc:
        raise ValueError(f"{exc} of the test ratings (pass scale=(low, high) if that is not their scale)") from None
    validate_choice("candidates", candidates, CANDIDATES)
    validate_choice("unknown", unknown, _UNKNOWN)
    if candidates == "sampled":
        n_negatives = validate_positive_int("n_negatives", n_negatives)
        warnings.warn(SAMPLED_WARNING, UserWarning, stacklevel=3)
    elif n_negatives is not None:
        raise ValueError(f"n_negatives={n_negatives!r} needs candidates='sampled' (candidates='unrated' ranks every unrated item)")
    return k, threshold, n_negatives
