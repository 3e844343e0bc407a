"""The monitored pairs: unrated pairs drawn in proportion to user x item activity, both routes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fake_train
from scipy import stats

import bayesmf.monitored_pairs as mp
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.monitored_pairs import monitored_pairs


def _data(rated: list[tuple[int, int]], n_users: int, n_items: int) -> RatingsData:
    u, i = (np.asarray(x, dtype=np.int64) for x in zip(*rated, strict=True))
    users = IdEncoder("user", np.arange(n_users, dtype=np.int64))
    items = IdEncoder("item", np.arange(n_items, dtype=np.int64))
    return RatingsData(u, i, np.full(len(u), 3.0), (1.0, 5.0), users, items)


#: 4 users x 4 items (+ user 4 and item 4 with no rating): activities differ a lot
RATED = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 3), (2, 0), (3, 1), (3, 0)]


@pytest.fixture(params=["enumerate", "reject"])
def route(request, monkeypatch):
    if request.param == "reject":
        monkeypatch.setattr(mp, "_ENUMERATE_CELLS", 0)
    return request.param


def test_unrated_pairs_follow_the_activity_weights(route):
    data = _data(RATED, 5, 5)
    user_w = np.bincount(data.user_idx, minlength=5).astype(float)
    item_w = np.bincount(data.item_idx, minlength=5).astype(float)
    weight = np.outer(user_w, item_w)
    weight[data.user_idx, data.item_idx] = 0.0
    expected = weight.ravel() / weight.sum()
    counts = np.zeros(25)
    n_draws = 4000
    for seed in range(n_draws):
        _, users, items, _ = monitored_pairs(data, n_pairs=1, seed=seed).pairs["pred_unrated"]
        counts[users[0] * 5 + items[0]] += 1
    assert counts[expected == 0].sum() == 0, "a rated pair, or one of a user or item without ratings, was drawn"
    keep = expected > 0
    chi2 = stats.chisquare(counts[keep], n_draws * expected[keep])
    assert chi2.pvalue > 1e-3, (route, chi2)
    # and not uniform over the unrated cells: the busiest pair is drawn far more than the rarest
    assert counts.max() > 3 * counts[keep].min()


def test_unrated_pairs_are_distinct_unrated_and_capped(route):
    data = _data(RATED, 5, 5)
    _, users, items, labels = monitored_pairs(data, n_pairs=100, seed=0).pairs["pred_unrated"]
    # 4 x 4 active cells less 8 rated: 8 unrated pairs exist among users and items with ratings
    assert len(users) == 8 and len(set(labels)) == 8
    rated = set(zip(data.user_idx.tolist(), data.item_idx.tolist(), strict=True))
    assert not rated & set(zip(users.tolist(), items.tolist(), strict=True))
    assert users.max() < 4 and items.max() < 4


def test_same_seed_same_pairs_and_activity_shows(route):
    data = fake_train(n_users=300, n_items=200, density=0.02, seed=4)
    a = monitored_pairs(data, n_pairs=50, seed=7).pairs["pred_unrated"][3]
    b = monitored_pairs(data, n_pairs=50, seed=7).pairs["pred_unrated"][3]
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) == 50


def test_no_unrated_pair_left():
    full = [(u, i) for u in range(3) for i in range(3)]
    assert "pred_unrated" not in monitored_pairs(_data(full, 3, 3), n_pairs=5).pairs
