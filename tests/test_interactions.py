"""Implicit feedback from (user, item[, value]) tables and from ratings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayesmf import as_implicit, interactions_from_dataframe
from bayesmf.data import RatingsData
from bayesmf.interactions import IMPLICIT_SCALE


def _pairs(data: RatingsData) -> dict[tuple, float]:
    frame = data.to_dataframe()
    return {(u, i): r for u, i, r in frame.itertuples(index=False)}


def test_counts_add_up_and_no_value_column_counts_rows() -> None:
    df = pd.DataFrame({"user": ["a", "a", "b", "a"], "item": [1, 2, 1, 1], "n": [3.0, 1.0, 2.0, 4.0]})
    before = df.copy()
    data = interactions_from_dataframe(df, value="n")
    assert _pairs(data) == {("a", 1): 7.0, ("a", 2): 1.0, ("b", 1): 2.0}
    assert data.scale == IMPLICIT_SCALE
    assert not data.rating.flags.writeable
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is untouched
    rows = interactions_from_dataframe(df)
    assert _pairs(rows) == {("a", 1): 2.0, ("a", 2): 1.0, ("b", 1): 1.0}
    assert _pairs(interactions_from_dataframe(df, value="n", duplicates="max"))[("a", 1)] == 4.0


def test_duplicates_raise_names_the_pair_and_rows() -> None:
    df = pd.DataFrame({"user": ["a", "b", "a"], "item": [1, 1, 1]}, index=[10, 11, 12])
    with pytest.raises(ValueError, match=r"'a', 1 in rows \[10, 12\]"):
        interactions_from_dataframe(df, duplicates="raise")
    with pytest.raises(ValueError, match="'mean'"):
        interactions_from_dataframe(df, duplicates="mean")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_negative_or_nonfinite_values_are_named_with_their_row(bad: float) -> None:
    df = pd.DataFrame({"u": [1, 2, 3], "i": [1, 1, 2], "w": [1.0, bad, 2.0]}, index=["x", "y", "z"])
    with pytest.raises(ValueError, match=rf"value {bad!r} in row 'y' \(column 'w'\)"):
        interactions_from_dataframe(df, "u", "i", "w")


def test_zeros_are_dropped_with_a_warning_saying_how_many() -> None:
    df = pd.DataFrame({"user": [1, 1, 2, 3], "item": [1, 2, 1, 1], "plays": [0, 2, 0, 5]})
    with pytest.warns(UserWarning, match="dropped 2 row"):
        data = interactions_from_dataframe(df, value="plays")
    assert _pairs(data) == {(1, 2): 2.0, (3, 1): 5.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no interaction left"):
            interactions_from_dataframe(df.assign(plays=0), value="plays")


def test_bad_tables() -> None:
    df = pd.DataFrame({"user": [1, 2], "item": ["a", "b"], "n": ["x", 2]})
    with pytest.raises(TypeError, match="'x'"):
        interactions_from_dataframe(df, value="n")
    with pytest.raises(ValueError, match="'clicks' not found"):
        interactions_from_dataframe(df, value="clicks")
    with pytest.raises(ValueError, match="missing id"):
        interactions_from_dataframe(pd.DataFrame({"user": [1, None], "item": [1, 2]}))
    with pytest.raises(ValueError, match="empty"):
        interactions_from_dataframe(df.iloc[:0])
    with pytest.raises(TypeError, match="DataFrame"):
        interactions_from_dataframe(df.to_dict())  # type: ignore[arg-type]


def test_encoders_are_shared_with_a_rating_set() -> None:
    ratings = RatingsData.from_dataframe(
        pd.DataFrame({"userId": [5, 6], "movieId": [10, 20], "rating": [4.0, 2.0]}), scale=(1, 5)
    )
    clicks = pd.DataFrame({"user": [6, 7], "item": [20, 30]})
    data = interactions_from_dataframe(clicks, users=ratings.users, items=ratings.items)
    assert data.users.to_raw([0, 1, 2]).tolist() == [5, 6, 7]
    assert data.items.to_raw(data.item_idx).tolist() == [20, 30]


def test_as_implicit() -> None:
    ratings = RatingsData.from_dataframe(
        pd.DataFrame({"userId": [5, 6, 6], "movieId": [10, 20, 10], "rating": [4.0, 2.5, 5.0]}), scale=(0.5, 5)
    )
    ones = as_implicit(ratings)
    assert ones.scale == IMPLICIT_SCALE and np.all(ones.rating == 1.0)
    assert ones.users is ratings.users and np.array_equal(ones.item_idx, ratings.item_idx)
    assert np.array_equal(as_implicit(ratings, value="rating").rating, ratings.rating)
    signed = RatingsData.from_dataframe(
        pd.DataFrame({"userId": [1, 2], "movieId": [1, 1], "rating": [-3.0, 2.0]}), scale=(-10, 10)
    )
    with pytest.raises(ValueError, match=r"-3\.0 at position 0"):
        as_implicit(signed, value="rating")
    with pytest.raises(ValueError, match="'stars'"):
        as_implicit(ratings, value="stars")  # type: ignore[arg-type]
