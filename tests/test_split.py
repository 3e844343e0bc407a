"""Tests of bayesmf.split: train/test splits and k folds sharing encoders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmf.data import RatingsData
from bayesmf.datasets import simulate
from bayesmf.split import Split, kfold, train_test_split, user_holdout_split


@pytest.fixture(scope="module")
def data():
    # skewed, so users have from a few to many ratings
    return simulate(n_users=80, n_items=60, density=0.12, popularity_skew=0.8, seed=4).data


def pair_keys(part):
    return set(zip(part.user_idx.tolist(), part.item_idx.tolist(), strict=True))


def assert_partition(data, train, test):
    assert train.n_ratings + test.n_ratings == data.n_ratings
    assert pair_keys(train).isdisjoint(pair_keys(test))
    assert pair_keys(train) | pair_keys(test) == pair_keys(data)
    for part in (train, test):
        assert part.users is data.users and part.items is data.items
        assert part.scale == data.scale


@pytest.mark.parametrize("by", ["rating", "user"])
def test_train_test_split_partitions_and_shares_encoders(data, by):
    split = train_test_split(data, test_size=0.25, seed=3, by=by)
    assert isinstance(split, Split)
    train, test = split
    assert_partition(data, train, test)
    flags = test.unseen(train)  # same encoders: no error
    assert list(flags.columns) == ["new_user", "new_item"]
    # ratings follow their pairs
    lookup = dict(
        zip(
            zip(data.user_idx.tolist(), data.item_idx.tolist(), strict=True),
            data.rating.tolist(),
            strict=True,
        )
    )
    for u, i, r in zip(
        test.user_idx.tolist(), test.item_idx.tolist(), test.rating.tolist(), strict=True
    ):
        assert lookup[(u, i)] == r


def test_by_rating_size(data):
    _, test = train_test_split(data, test_size=0.25, seed=0)
    assert test.n_ratings == round(0.25 * data.n_ratings)


def test_by_user_holds_out_each_users_share_and_keeps_one(data):
    train, test = train_test_split(data, test_size=0.3, seed=1, by="user")
    counts = data.user_counts()
    test_counts = test.user_counts()
    np.testing.assert_array_equal(test_counts, np.minimum(np.round(0.3 * counts), counts - 1))
    assert (train.user_counts() >= 1).all()
    assert not test.unseen(train)["new_user"].any()


def test_split_is_deterministic_under_seed(data):
    a, b, c = (train_test_split(data, seed=s, by="user") for s in (7, 7, 8))
    np.testing.assert_array_equal(a.test.rating, b.test.rating)
    np.testing.assert_array_equal(a.test.user_idx, b.test.user_idx)
    assert pair_keys(a.test) != pair_keys(c.test)


def test_split_uses_randomness_not_position(data):
    # the held-out ratings are spread over the whole table, not a block of rows
    _, test = train_test_split(data, test_size=0.2, seed=0)
    positions = np.flatnonzero(
        np.isin(data.user_idx * 1000 + data.item_idx, test.user_idx * 1000 + test.item_idx)
    )
    assert positions.min() < 0.1 * data.n_ratings and positions.max() > 0.9 * data.n_ratings


@pytest.mark.parametrize("by", ["rating", "user"])
def test_kfold_test_parts_partition(data, by):
    folds = list(kfold(data, n_splits=4, seed=2, by=by))
    assert len(folds) == 4
    seen: list[tuple[int, int]] = []
    for train, test in folds:
        assert_partition(data, train, test)
        seen.extend(pair_keys(test))
    assert len(seen) == len(set(seen))  # each rating in at most one test fold
    lone = data.user_counts()[data.user_idx] < 2
    if by == "rating":
        assert set(seen) == pair_keys(data)
        sizes = [len(t) for _, t in folds]
        assert max(sizes) - min(sizes) <= 1
    else:
        assert set(seen) == pair_keys(data.subset(~lone))
        for train, test in folds:
            assert not test.unseen(train)["new_user"].any()
            # round-robin: a user's ratings spread evenly over the folds
        per_fold = np.stack([t.user_counts() for _, t in folds])
        assert (per_fold.max(axis=0) - per_fold.min(axis=0) <= 1).all()


def test_kfold_deterministic(data):
    a = [t.rating.copy() for _, t in kfold(data, 3, seed=5, by="user")]
    b = [t.rating.copy() for _, t in kfold(data, 3, seed=5, by="user")]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_single_rating_users_stay_in_train():
    df = pd.DataFrame({"u": [1, 2, 2, 2, 2], "i": [1, 1, 2, 3, 4], "r": [1.0, 2, 3, 4, 5]})
    data = RatingsData.from_dataframe(df, "u", "i", "r", scale=(1, 5))
    _, test = train_test_split(data, test_size=0.5, seed=0, by="user")
    assert test.user_counts()[0] == 0 and test.user_counts()[1] == 2
    for train, _ in kfold(data, n_splits=2, seed=0, by="user"):
        assert train.user_counts()[0] == 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda d: train_test_split(d, test_size=0.0), ValueError, "test_size"),
        (lambda d: train_test_split(d, test_size=1.0), ValueError, "1.0"),
        (lambda d: train_test_split(d, test_size="0.2"), TypeError, "'0.2'"),
        (lambda d: train_test_split(d, by="item"), ValueError, "'item'"),
        (lambda d: train_test_split(d.to_dataframe()), TypeError, "DataFrame"),
        (lambda d: kfold(d, n_splits=1), ValueError, "n_splits"),
        (lambda d: kfold(d, n_splits=2.0), TypeError, "2.0"),
        (lambda d: kfold(d, by="time"), ValueError, "'time'"),
        (lambda d: kfold(d.subset(np.arange(3)), n_splits=4), ValueError, "n_splits=4"),
    ],
)
def test_bad_arguments(data, call, error, match):
    with pytest.raises(error, match=match):
        call(data)


def test_by_user_with_nothing_to_hold_out():
    df = pd.DataFrame({"u": [1, 2, 3], "i": [1, 1, 2], "r": [1.0, 2, 3]})
    data = RatingsData.from_dataframe(df, "u", "i", "r", scale=(1, 5))
    with pytest.raises(ValueError, match="holds out no rating"):
        train_test_split(data, by="user")


# -- per-user holdout -------------------------------------------------------------------------
def test_user_holdout_by_number(data):
    train, test = user_holdout_split(data, holdout=3, seed=2)
    assert_partition(data, train, test)
    count = data.user_counts()
    held = test.user_counts()
    eligible = count >= 3 + 1  # min_train=1
    np.testing.assert_array_equal(held[eligible], 3)
    np.testing.assert_array_equal(held[~eligible], 0)  # too few: wholly in train
    assert (~eligible).any() and eligible.any()
    np.testing.assert_array_equal(train.user_counts(), count - held)
    # min_train: a user needs holdout + min_train ratings
    _, test5 = user_holdout_split(data, holdout=3, min_train=5, seed=2)
    np.testing.assert_array_equal(test5.user_counts(), np.where(count >= 8, 3, 0))


def test_user_holdout_by_fraction(data):
    train, test = user_holdout_split(data, holdout=0.25, seed=2)
    assert_partition(data, train, test)
    count = data.user_counts()
    expected = np.minimum(np.round(0.25 * count), count - 1)
    np.testing.assert_array_equal(test.user_counts(), expected)
    assert (train.user_counts()[count > 0] >= 1).all()


def test_user_holdout_is_reproducible_and_random(data):
    a = user_holdout_split(data, holdout=2, seed=7)
    b = user_holdout_split(data, holdout=2, seed=7)
    c = user_holdout_split(data, holdout=2, seed=8)
    assert pair_keys(a.test) == pair_keys(b.test)
    assert pair_keys(a.test) != pair_keys(c.test)
    g = user_holdout_split(data, holdout=2, seed=np.random.default_rng(7))
    assert pair_keys(g.test) == pair_keys(a.test)  # default_rng(7) either way


def test_user_holdout_latest_by_timestamp(data):
    rng = np.random.default_rng(0)
    ts = rng.integers(0, 50, data.n_ratings)  # with ties
    train, test = user_holdout_split(data, holdout=2, order="latest", timestamp=ts, seed=1)
    assert_partition(data, train, test)
    time = dict(zip(zip(data.user_idx.tolist(), data.item_idx.tolist(), strict=True), ts.tolist(), strict=True))
    for u in np.flatnonzero(test.user_counts()):
        held = [time[(u, i)] for i in test.item_idx[test.user_idx == u].tolist()]
        kept = [time[(u, i)] for i in train.item_idx[train.user_idx == u].tolist()]
        assert min(held) >= max(kept)
    # datetimes and floats give the same order
    as_dates = np.datetime64("2020-01-01") + ts.astype("timedelta64[s]")
    _, d_test = user_holdout_split(data, holdout=2, order="latest", timestamp=as_dates, seed=1)
    assert pair_keys(d_test) == pair_keys(test)
    _, f_test = user_holdout_split(data, holdout=2, order="latest", timestamp=ts.astype(float) / 7, seed=1)
    assert pair_keys(f_test) == pair_keys(test)
    # distinct times: the split does not depend on the seed
    distinct = rng.permutation(data.n_ratings)
    x = user_holdout_split(data, holdout=0.3, order="latest", timestamp=distinct, seed=1)
    y = user_holdout_split(data, holdout=0.3, order="latest", timestamp=distinct, seed=2)
    assert pair_keys(x.test) == pair_keys(y.test)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"holdout": 0}, ValueError, "holdout must be >= 1, got 0"),
        ({"holdout": -2}, ValueError, "got -2"),
        ({"holdout": 1.0}, ValueError, r"holdout=1\.0: a float must be a fraction"),
        ({"holdout": 1.5}, ValueError, r"holdout=1\.5"),
        ({"holdout": 0.0}, ValueError, r"holdout=0\.0"),
        ({"holdout": True}, TypeError, "got True"),
        ({"holdout": "2"}, TypeError, "got '2'"),
        ({"order": "oldest"}, ValueError, "'oldest'"),
        ({"order": "latest"}, ValueError, "needs timestamp="),
        ({"timestamp": np.arange(3)}, ValueError, "only used with order='latest'"),
        ({"order": "latest", "timestamp": np.arange(3)}, ValueError, r"one value per rating \(\d+\), got shape \(3,\)"),
        ({"min_train": 0}, ValueError, "min_train must be >= 1, got 0"),
        ({"holdout": 1000}, ValueError, "holds out no rating"),
    ],
)
def test_user_holdout_bad_arguments(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        user_holdout_split(data, **kwargs)


def test_user_holdout_bad_timestamps(data):
    n = data.n_ratings
    bad = np.arange(n, dtype=float)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="timestamp nan at position 5 is not finite"):
        user_holdout_split(data, order="latest", timestamp=bad)
    with pytest.raises(TypeError, match="real numbers or datetime64"):
        user_holdout_split(data, order="latest", timestamp=np.array(["x"] * n))
    with pytest.raises(TypeError, match="RatingsData"):
        user_holdout_split(data.to_dataframe())
