"""Tests of bayesmf.split.cold_split: every rating of a share of the users or items held out, re-encoded."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
import pytest

import bayesmf
from bayesmf import PMF, ColdSplit, RatingsData, cold_split
from bayesmf.datasets import simulate
from bayesmf.implicit_sets import with_implicit_pairs
from bayesmf.split import train_test_split

USER: Literal["user"] = "user"
ITEM: Literal["item"] = "item"


@pytest.fixture(scope="module")
def data():
    return simulate(n_users=40, n_items=30, density=0.25, seed=5).data


@pytest.fixture(scope="module")
def featured(data):
    rng = np.random.default_rng(1)
    users = pd.DataFrame({"age": rng.integers(18, 70, data.n_users), "group": rng.choice(["a", "b"], data.n_users)},
                         index=data.users.classes)
    items = pd.DataFrame({"year": rng.integers(1950, 2000, data.n_items)}, index=data.items.classes)
    return data.with_features(users, items)


def hand_made(train, test, fraction, seed):
    """The split as notebook 08 and bench_features.cold_items wrote it before cold_split."""
    both = pd.concat([train.to_dataframe(), test.to_dataframe()], ignore_index=True)
    rated = np.unique(both["item"].to_numpy())
    rng = np.random.default_rng(seed)
    held = set(rng.choice(rated, size=max(1, round(fraction * len(rated))), replace=False).tolist())
    is_cold = both["item"].isin(held).to_numpy()
    warm, cold = both[~is_cold], both[is_cold].reset_index(drop=True)
    return RatingsData.from_dataframe(warm, "user", "item", "rating", scale=train.scale), cold, held


def triples(frame):
    return sorted(zip(frame["user"].tolist(), frame["item"].tolist(), frame["rating"].tolist(), strict=True))


def assert_same_data(a, b):
    for name in ("user_idx", "item_idx", "rating"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.users.equals(b.users) and a.items.equals(b.items) and a.scale == b.scale


@pytest.mark.parametrize("side", ["item", "user"])
def test_cold_ids_unknown_to_train_and_the_ratings_partitioned(data, side):
    split = cold_split(data, side=side, fraction=0.2, seed=3)
    assert isinstance(split, ColdSplit)
    train, test, cold = split
    encoder = train.items if side == "item" else train.users
    assert len(cold) == round(0.2 * (data.n_items if side == "item" else data.n_users))
    assert not any(c in encoder for c in cold.tolist())
    assert set(test[side].tolist()) == set(cold.tolist())  # every held id's ratings, and only those
    assert list(test.columns) == ["user", "item", "rating"] and test.index.equals(pd.RangeIndex(len(test)))
    assert triples(pd.concat([train.to_dataframe(), test])) == triples(data.to_dataframe())
    assert train.scale == data.scale and train.n_ratings + len(test) == data.n_ratings


def test_seeded(data):
    first, again, other = (cold_split(data, fraction=0.3, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(first.cold, again.cold)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert_same_data(first.train, again.train)
    assert set(first.cold.tolist()) != set(other.cold.tolist())
    rng = np.random.default_rng(7)  # a Generator is advanced, as the seed policy says
    assert set(cold_split(data, fraction=0.3, seed=rng).cold.tolist()) == set(first.cold.tolist())
    assert set(cold_split(data, fraction=0.3, seed=rng).cold.tolist()) != set(first.cold.tolist())


@pytest.mark.parametrize(("fraction", "seed"), [(0.1, 0), (0.2, 0), (0.1, 3), (0.37, 11)])
def test_same_split_as_the_hand_made_code(data, fraction, seed):
    train, test = train_test_split(data, test_size=0.2, seed=seed)
    plain, cold, held = hand_made(train, test, fraction, seed)
    split = cold_split((train, test), side="item", fraction=fraction, seed=seed)
    assert_same_data(split.train, plain)
    pd.testing.assert_frame_equal(split.test, cold)
    assert set(split.cold.tolist()) == held and len(split.cold) == len(held)


def test_features_and_implicit_pairs_kept(featured):
    train, test = train_test_split(featured, test_size=0.2, seed=0)
    train = with_implicit_pairs(train, test.to_dataframe())
    split = cold_split([train, test], side="item", fraction=0.2, seed=1)
    for side in ("user", "item"):
        assert getattr(split.train, f"{side}_features") is getattr(featured, f"{side}_features")
    # the cold items keep their feature rows, for a featured fit to predict them from
    rows = featured.item_features.rows_for(split.cold)
    assert rows.shape == (len(split.cold), featured.item_features.n_features)
    # implicit pairs: those of two warm ids, by raw id
    pairs_u, pairs_i = split.train.implicit_pairs or (np.empty(0, int), np.empty(0, int))
    kept = set(zip(split.train.users.to_raw(pairs_u).tolist(), split.train.items.to_raw(pairs_i).tolist(), strict=True))
    pairs = test.to_dataframe()
    warm = pairs[~pairs["item"].isin(split.cold) & pairs["user"].isin(split.train.users.classes)]
    assert kept == set(zip(warm["user"].tolist(), warm["item"].tolist(), strict=True)) and kept
    assert cold_split(featured, fraction=0.2).train.implicit_pairs is None  # none given: strict protocol kept


def test_input_not_modified(featured):
    before = featured.to_dataframe()
    cold_split(featured, side="user", fraction=0.25, seed=0)
    pd.testing.assert_frame_equal(featured.to_dataframe(), before)


def test_als_fit_predicts_every_test_pair_as_new(data):
    for side, flag in ((ITEM, "new_item"), (USER, "new_user")):
        train, test, _ = cold_split(data, side=side, fraction=0.2, seed=2)
        spec = PMF(n_factors=2, priors="fixed", sigma_u=1.0, sigma_v=1.0)
        fit = spec.fit(train, method="als", random_seed=0, progressbar=False)
        out = fit.predict(test, random_seed=0, progressbar=False)
        assert out[flag].all() and len(out) == len(test)
        np.testing.assert_array_equal(out["rating"].to_numpy(), test["rating"].to_numpy())
        assert not fit.predict(train, random_seed=0, progressbar=False)[flag].any()


def test_featured_gibbs_fit_predicts_cold_items_from_their_features(featured):
    train, test, cold = cold_split(featured, side="item", fraction=0.2, seed=4)
    with warnings.catch_warnings():  # a tiny chain warns that it has not converged
        warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
        fit = PMF(n_factors=2, factor_prior="per_side").fit(
            train, method="gibbs", draws=10, tune=5, chains=1, init="prior", random_seed=0, progressbar=False)
    assert "feature_weight_item" in fit.posterior  # a featured fit: the features came along
    out = fit.predict(test, random_seed=0, progressbar=False)  # needs the cold items' feature rows
    assert out["new_item"].all() and np.isfinite(out["mean"]).all() and len(out) == len(test)
    assert set(out["item"].tolist()) == set(cold.tolist())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fraction": 0.0}, ValueError, r"fraction must be in \(0, 1\), got 0.0"),
        ({"fraction": 1.0}, ValueError, r"fraction must be in \(0, 1\), got 1.0"),
        ({"fraction": "0.1"}, TypeError, r"fraction must be a number in \(0, 1\), got '0.1'"),
        ({"side": "rating"}, ValueError, r"side='rating' is not valid; choose one of 'user', 'item'"),
        ({"fraction": 0.99}, ValueError, r"fraction=0.99 holds out 30 of the 30 rated item\(s\), leaving none warm"),
        ({"seed": -1}, ValueError, r"seed must be >= 0, got -1"),
    ],
)
def test_bad_arguments(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        cold_split(data, **kwargs)


def test_bad_data(data, featured):
    with pytest.raises(TypeError, match=r"data must be a bayesmf\.RatingsData, got DataFrame"):
        cold_split(data.to_dataframe())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"data\[1\] must be a bayesmf.RatingsData, got str"):
        cold_split([data, "test"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="data holds no RatingsData"):
        cold_split([])
    train, test = train_test_split(data, test_size=0.2, seed=0)
    with pytest.raises(ValueError, match=r"share the \(user, item\) pair"):
        cold_split([train, train])
    other = RatingsData.from_dataframe(test.to_dataframe(), "user", "item", "rating", scale=(-5, 15))
    with pytest.raises(ValueError, match=r"data\[1\] has the scale \(-5.0, 15.0\)"):
        cold_split([train, other])
    with pytest.raises(ValueError, match="data\\[1\\] and data\\[0\\] carry different user features"):
        cold_split([train, test.with_features(featured.user_features)])
    one = RatingsData.from_dataframe(pd.DataFrame({"user": [1, 2], "item": [5, 5], "rating": [1.0, 2.0]}),
                                     "user", "item", "rating", scale=(1, 5))
    with pytest.raises(ValueError, match=r"holds out 1 of the 1 rated item\(s\), leaving none warm"):
        cold_split(one)
