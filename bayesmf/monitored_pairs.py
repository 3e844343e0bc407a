"""Which (user, item) pairs the diagnostics and the stopping rule watch (`monitored_pairs`).

`bayesmf.identified` monitors the mean rating of a seeded sample of pairs: training pairs
(drawn uniformly from the ratings, so in proportion to how active their user and item are)
and held-out pairs when a test set is given, else pairs the user has not rated.

Unrated pairs are drawn with probability proportional to (the user's training ratings) x
(the item's training ratings), the pairs a recommender is asked about. Drawn uniformly they
are mostly obscure items of quiet users: their predictions are close to prior draws and mix
at once, so they vouch for nothing, while held-out ratings land on active users and popular
items. On ML-100K u1 with 50 + 50 uniform pairs, 6 of 15 runs of the default prior stopped
with a held-out pair at bulk ESS 50-345; with 200 + 200 activity-weighted pairs every
held-out check passed (``benchmarks/RESULTS.md``, "How far one seed's time can be trusted").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmf._validate import validate_positive_int
from bayesmf.data import RatingsData

__all__ = ["DEFAULT_N_PAIRS", "MonitoredPairs", "monitored_pairs"]

#: training pairs, and as many held-out (or unrated) pairs, monitored by default
DEFAULT_N_PAIRS = 200
#: below this many cells of active users x active items, unrated pairs are drawn exactly
#: from the enumerated cells; above it by rejection (the data are then sparse)
_ENUMERATE_CELLS = 4_000_000


@dataclass(frozen=True)
class MonitoredPairs:
    """The (user, item) index pairs whose mean rating is monitored, by quantity name.

    ``pairs[name] = (dim, users, items, labels)``: ``name`` is ``pred_train`` and
    ``pred_test`` or ``pred_unrated``; ``labels`` are ``"<user id>:<item id>"``.
    """

    pairs: dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]]


def monitored_pairs(
    train: RatingsData, n_pairs: int = DEFAULT_N_PAIRS, test: RatingsData | None = None, seed: int = 0
) -> MonitoredPairs:
    """Draw the seeded sample of training and held-out (or unrated) pairs to monitor.

    Raises
    ------
    TypeError
        If ``test`` is not a `RatingsData`.
    ValueError
        If ``test`` does not share the training encoders.
    """
    n_pairs = validate_positive_int("n_pairs", n_pairs)
    if test is not None:
        if not isinstance(test, RatingsData):
            raise TypeError(f"test must be a RatingsData, got {type(test).__name__}")
        if not (test.users.equals(train.users) and test.items.equals(train.items)):
            raise ValueError(
                "test does not share the training encoders; build both from one split "
                "(or re-encode test with test.with_encoders(train.users, train.items))"
            )
    rng = np.random.default_rng(seed)
    train_pairs = _sample_rows(rng, train.user_idx, train.item_idx, train.n_items, n_pairs)
    if test is not None:
        other_name, other_dim = "pred_test", "test_pair"
        other_pairs = _sample_rows(rng, test.user_idx, test.item_idx, train.n_items, n_pairs)
    else:
        other_name, other_dim = "pred_unrated", "unrated_pair"
        other_pairs = _sample_unrated(rng, train, n_pairs)
    out = {}
    for name, dim, (users, items) in (
        ("pred_train", "train_pair", train_pairs),
        (other_name, other_dim, other_pairs),
    ):
        if len(users) == 0:
            continue
        raw_u = train.users.to_raw(users).tolist()
        raw_i = train.items.to_raw(items).tolist()
        labels = np.asarray([f"{u}:{i}" for u, i in zip(raw_u, raw_i, strict=True)])
        out[name] = (dim, users, items, labels)
    return MonitoredPairs(out)


def _sample_rows(
    rng: np.random.Generator, user_idx: np.ndarray, item_idx: np.ndarray, n_items: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` distinct (user, item) pairs of the given ratings (without replacement)."""
    codes = np.unique(
        np.asarray(user_idx, dtype=np.int64) * n_items + np.asarray(item_idx, dtype=np.int64)
    )
    chosen = np.sort(rng.choice(codes, size=min(n, len(codes)), replace=False))
    return chosen // n_items, chosen % n_items


def _sample_unrated(
    rng: np.random.Generator, train: RatingsData, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` distinct pairs absent from the training data, weighted by activity.

    Pair (i, j) is drawn with probability proportional to n_i x n_j (training ratings of user
    i and of item j), without replacement; users and items with no training rating are never
    drawn. Fewer pairs are returned when fewer such pairs exist.
    """
    n_items = train.n_items
    user_idx = np.asarray(train.user_idx, dtype=np.int64)
    item_idx = np.asarray(train.item_idx, dtype=np.int64)
    user_w = np.bincount(user_idx, minlength=train.n_users).astype(np.float64)
    item_w = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    rated = np.unique(user_idx * n_items + item_idx)
    users, items = np.flatnonzero(user_w), np.flatnonzero(item_w)
    n = min(n, len(users) * len(items) - len(rated))
    if n <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if len(users) * len(items) <= _ENUMERATE_CELLS:
        cells = (users[:, None] * n_items + items[None, :]).ravel()
        weight = np.outer(user_w[users], item_w[items]).ravel()
        weight[np.isin(cells, rated, assume_unique=True)] = 0.0
        chosen = rng.choice(cells, size=n, replace=False, p=weight / weight.sum())
    else:
        # sequential weighted draws, keeping the first appearance of each unrated cell: the
        # same law as drawing without replacement; the data are sparse, so this loops once
        p_user, p_item = user_w / user_w.sum(), item_w / item_w.sum()
        found: list[np.ndarray] = []
        seen = np.empty(0, np.int64)
        while len(seen) < n:
            m = 4 * n + 16
            proposal = rng.choice(train.n_users, size=m, p=p_user) * n_items + rng.choice(n_items, size=m, p=p_item)
            proposal = proposal[~np.isin(proposal, rated)]
            _, first = np.unique(proposal, return_index=True)
            proposal = proposal[np.sort(first)]
            proposal = proposal[~np.isin(proposal, seen)]
            found.append(proposal)
            seen = np.concatenate([seen, proposal])
        chosen = np.concatenate(found)[:n]
    chosen = np.sort(chosen)
    return chosen // n_items, chosen % n_items
