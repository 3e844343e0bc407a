"""Tests of bayesmf.data (RatingsData, IdEncoder) and the ratings-frame validator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayesmf.data import IdEncoder, RatingsData, UnknownIdError


def frame(**overrides):
    base = {
        "userId": [10, 10, 42, 7],
        "movieId": ["b", "a", "a", "c"],
        "rating": [4.0, 3.5, 5.0, 1.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


# -- IdEncoder ------------------------------------------------------------------------------
def test_encoder_ints_non_contiguous_sorted_and_round_trip():
    enc = IdEncoder.fit("user", [105, 3, 3, 77, 105])
    assert enc.classes.tolist() == [3, 77, 105]
    assert enc.classes.dtype == np.int64
    np.testing.assert_array_equal(enc.to_index([77, 3, 105, 3]), [1, 0, 2, 0])
    np.testing.assert_array_equal(enc.to_raw([2, 0]), [105, 3])
    assert np.int64(77) in enc and 77 in enc and "77" not in enc


def test_encoder_strings():
    enc = IdEncoder.fit("item", pd.Series(["tt9", "tt1", "tt5", "tt1"]))
    assert enc.classes.tolist() == ["tt1", "tt5", "tt9"]
    np.testing.assert_array_equal(enc.to_index(np.array(["tt9", "tt1"])), [2, 0])
    assert enc.to_raw([1]).tolist() == ["tt5"]


@pytest.mark.parametrize(
    "raw", [[5, 1, 999_999_999_999], ["x", "a", "é"], [3, "a", 1]], ids=["ints", "strings", "mixed"]
)
def test_encoder_json_round_trip_keeps_types(raw):
    enc = IdEncoder.fit("user", raw)
    back = IdEncoder.from_json(enc.to_json())
    assert back.name == "user"
    assert back.equals(enc)
    assert [type(v) for v in back.classes.tolist()] == [type(v) for v in enc.classes.tolist()]
    assert json.loads(enc.to_json())["classes"] == enc.classes.tolist()
    np.testing.assert_array_equal(back.to_index(raw), enc.to_index(raw))


def test_encoder_int_and_str_ids_are_different():
    enc = IdEncoder.fit("user", [1, 2])
    assert not enc.equals(IdEncoder.fit("user", ["1", "2"]))
    with pytest.raises(UnknownIdError, match="'1'"):
        enc.to_index(["1"])


def test_encoder_unknown_id_error_names_it():
    enc = IdEncoder.fit("item", [1, 2, 3])
    with pytest.raises(KeyError, match=r"unknown item id.*\[99\]"):
        enc.to_index([1, 99])
    with pytest.raises(ValueError, match="99"):  # also a ValueError, per the house rule
        enc.to_index([99])
    np.testing.assert_array_equal(enc.to_index([1, 99], unknown="flag"), [0, -1])
    with pytest.raises(ValueError, match="'ignore'"):
        enc.to_index([1], unknown="ignore")
    with pytest.raises(IndexError, match="index 3"):
        enc.to_raw([3])


def test_encoder_extend_keeps_indices_and_int_dtype():
    enc = IdEncoder.fit("user", [3, 1])
    wider = enc.extend([1, 9, 5, 9])
    assert wider.classes.tolist() == [1, 3, 5, 9]
    assert wider.classes.dtype == np.int64
    assert enc.extend([3]) is enc
    assert len(enc) == 2  # the original is unchanged


def test_encoder_rejects_repeated_ids_and_is_immutable():
    with pytest.raises(ValueError, match="'a' repeats"):
        IdEncoder("user", np.array(["a", "b", "a"], dtype=object))
    enc = IdEncoder.fit("user", [1, 2])
    with pytest.raises(ValueError):
        enc.classes[0] = 5
    with pytest.raises(AttributeError):
        enc.name = "item"  # type: ignore[misc]


# -- RatingsData ----------------------------------------------------------------------------
def test_from_dataframe_encodes_and_is_immutable():
    data = RatingsData.from_dataframe(frame(), scale=(1, 5))
    assert (data.n_users, data.n_items, data.n_ratings) == (3, 3, 4)
    assert data.users.classes.tolist() == [7, 10, 42]
    assert data.items.classes.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(data.user_idx, [1, 1, 2, 0])
    np.testing.assert_array_equal(data.item_idx, [1, 0, 0, 2])
    assert data.user_idx.dtype == np.int64 and data.rating.dtype == np.float64
    for array in (data.user_idx, data.item_idx, data.rating):
        with pytest.raises(ValueError):
            array[0] = 0
    with pytest.raises(AttributeError):
        data.scale = (0, 1)  # type: ignore[misc]


def test_constructor_does_not_freeze_or_alias_callers_arrays():
    users, items, ratings = np.array([0, 1]), np.array([1, 0]), np.array([2.0, 3.0])
    data = RatingsData(
        users, items, ratings, (1, 5), IdEncoder.fit("user", [0, 1]), IdEncoder.fit("item", [0, 1])
    )
    ratings[0] = 5.0  # the caller's array stays writable ...
    assert data.rating[0] == 2.0  # ... and writing it does not change the data


def test_constructor_structural_checks():
    enc = IdEncoder.fit("user", [0, 1])
    with pytest.raises(ValueError, match="one length"):
        RatingsData([0, 1], [0], [1.0, 2.0], (1, 5), enc, enc)
    with pytest.raises(ValueError, match="holds 2"):
        RatingsData([0, 2], [0, 1], [1.0, 2.0], (1, 5), enc, enc)


def test_from_dataframe_reuses_encoders():
    first = RatingsData.from_dataframe(frame(), scale=(1, 5))
    other = pd.DataFrame({"userId": [42, 99], "movieId": ["c", "z"], "rating": [2.0, 3.0]})
    second = RatingsData.from_dataframe(other, scale=(1, 5), users=first.users, items=first.items)
    assert second.users.classes.tolist() == [7, 10, 42, 99]
    np.testing.assert_array_equal(second.user_idx, [2, 3])
    np.testing.assert_array_equal(second.item_idx, [2, 3])


def test_to_dataframe_round_trip():
    df = frame()
    data = RatingsData.from_dataframe(df, scale=(1, 5))
    out = data.to_dataframe("userId", "movieId", "rating")
    pd.testing.assert_frame_equal(
        out.reset_index(drop=True), df.reset_index(drop=True), check_dtype=False
    )
    again = RatingsData.from_dataframe(out, scale=data.scale)
    assert again.users.equals(data.users) and again.items.equals(data.items)
    np.testing.assert_array_equal(again.rating, data.rating)
    np.testing.assert_array_equal(again.user_idx, data.user_idx)


@pytest.mark.parametrize(
    ("ratings", "scale", "expected"),
    [
        ([1, 2, 5, 3], (1, 5), [1, 2, 3, 4, 5]),
        ([0.5, 5.0, 3.5, 2.0], (0.5, 5), [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]),
        ([1.0, 1.25, 2.0, 2.5], (1, 2.5), [1, 1.25, 1.5, 1.75, 2, 2.25, 2.5]),
        ([1.03, 2.7, 4.2, 3.3], (1, 5), None),
    ],
)
def test_levels(ratings, scale, expected):
    data = RatingsData.from_dataframe(frame(rating=ratings), scale=scale)
    if expected is None:
        assert data.levels is None
    else:
        np.testing.assert_allclose(data.levels, expected)


def test_levels_never_exceed_the_scale():
    data = RatingsData.from_dataframe(frame(rating=[1.0, 2.0, 3.0, 4.0]), scale=(1, 4.6))
    assert data.levels.max() <= 4.6


def test_subset_unseen_and_counts():
    df = pd.DataFrame({"u": [1, 1, 2, 3, 3], "i": [1, 2, 1, 3, 1], "r": [1.0, 2, 3, 4, 5]})
    data = RatingsData.from_dataframe(df, "u", "i", "r", scale=(1, 5))
    train, test = data.subset(np.array([0, 1, 2])), data.subset(np.array([3, 4]))
    np.testing.assert_array_equal(train.user_counts(), [2, 1, 0])
    np.testing.assert_array_equal(train.item_counts(), [2, 1, 0])
    flags = test.unseen(train)
    assert flags["new_user"].tolist() == [True, True]  # user 3 is only in test
    assert flags["new_item"].tolist() == [True, False]  # item 3 only in test, item 1 in train
    mask = data.subset(np.array([True, False, False, False, True]))
    np.testing.assert_array_equal(mask.rating, [1.0, 5.0])
    separate = RatingsData.from_dataframe(df.iloc[3:], "u", "i", "r", scale=(1, 5))
    with pytest.raises(ValueError, match="different id encoders"):
        separate.unseen(train)


def test_with_encoders_and_summary():
    data = RatingsData.from_dataframe(frame(), scale=(1, 5))
    users = data.users.extend([1])
    wide = data.with_encoders(users, data.items)
    assert wide.n_users == 4
    np.testing.assert_array_equal(
        wide.users.to_raw(wide.user_idx), data.users.to_raw(data.user_idx)
    )
    summary = data.summary()
    assert summary["ratings"] == 4 and summary["density"] == pytest.approx(4 / 9)


# -- validation (validate_ratings_frame via from_dataframe) ------------------------------
def build(df, **kw):
    kw.setdefault("scale", (1, 5))
    return RatingsData.from_dataframe(df, **kw)


def test_validation_does_not_modify_callers_frame():
    df = frame(userId=[10.0, 10.0, 42.0, 7.0], rating=[4, 4, 5, 1], movieId=["a", "a", "b", "c"])
    before = df.copy()
    data = build(df, duplicates="mean")
    pd.testing.assert_frame_equal(df, before)
    assert data.users.classes.dtype == np.int64  # integral float ids became ints


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "match"),
    [
        (lambda: frame().to_numpy(), {}, TypeError, "ndarray"),
        (
            lambda: frame(),
            {"user": "user_id"},
            ValueError,
            r"'user_id' not found.*'userId', 'movieId', 'rating'",
        ),
        (lambda: frame().iloc[:0], {}, ValueError, "empty"),
        (lambda: frame(rating=[4.0, np.nan, 5.0, 1.0]), {}, ValueError, r"rating nan in row 1"),
        (lambda: frame(rating=[4.0, 2.0, np.inf, 1.0]), {}, ValueError, r"rating inf in row 2"),
        (lambda: frame(rating=[4.0, 2.0, 3.0, -np.inf]), {}, ValueError, r"rating -inf in row 3"),
        (
            lambda: frame(rating=[4.0, 7.5, 5.0, 1.0]),
            {},
            ValueError,
            r"rating 7\.5 in row 1.*scale \(1, 5\)",
        ),
        (
            lambda: frame(rating=[4.0, 3.0, 0.5, 1.0]),
            {},
            ValueError,
            r"rating 0\.5 in row 2.*\(1, 5\)",
        ),
        (lambda: frame(rating=["4", "3", "five", "1"]), {}, TypeError, r"row 0 holds '4'"),
        (
            lambda: frame(rating=pd.Series([4, 3, "five", 1], dtype=object)),
            {},
            TypeError,
            r"row 2 holds 'five'",
        ),
        (lambda: frame(rating=[True, False, True, True]), {}, TypeError, "True"),
        (
            lambda: frame(userId=[10, None, 42, 7]),
            {},
            ValueError,
            r"missing id .* row 1 of column 'userId'",
        ),
        (
            lambda: frame(movieId=["b", "a", None, "c"]),
            {},
            ValueError,
            r"row 2 of column 'movieId'",
        ),
        (lambda: frame(userId=[10.0, 10.5, 42.0, 7.0]), {}, TypeError, r"id 10\.5 in row 1"),
        (
            lambda: frame(movieId=["a", "b", "a", "a"], userId=[1, 1, 1, 2]),
            {},
            ValueError,
            r"duplicate .* pair 1, 'a' in rows \[0, 2\]",
        ),
        (lambda: frame(), {"scale": (5, 1)}, ValueError, r"\(5, 1\)"),
        (lambda: frame(), {"scale": (1, np.inf)}, ValueError, "inf"),
        (lambda: frame(), {"scale": "1-5"}, TypeError, "'1-5'"),
        (lambda: frame(), {"duplicates": "first"}, ValueError, "'first'"),
        (lambda: frame(), {"item": "userId"}, ValueError, "three different columns"),
    ],
    ids=[
        "not-a-frame",
        "missing-column",
        "empty",
        "nan",
        "inf",
        "-inf",
        "above-scale",
        "below-scale",
        "string-dtype",
        "object-mixed",
        "bool",
        "missing-user",
        "missing-item",
        "float-id",
        "duplicate",
        "scale-order",
        "scale-inf",
        "scale-type",
        "bad-policy",
        "same-column",
    ],
)
def test_validation_errors_name_the_offender(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        build(make(), **kwargs)


def test_validation_names_row_labels_not_positions():
    df = frame(rating=[4.0, 9.0, 5.0, 1.0]).set_index(pd.Index(["r1", "r2", "r3", "r4"]))
    with pytest.raises(ValueError, match="row 'r2'"):
        build(df)


def test_object_rating_column_of_numbers_is_accepted():
    data = build(frame(rating=pd.Series([4, 3.5, np.int64(5), 1], dtype=object)))
    np.testing.assert_array_equal(data.rating, [4.0, 3.5, 5.0, 1.0])


def test_nullable_rating_with_missing_value():
    with pytest.raises(ValueError, match="row 1"):
        build(frame(rating=pd.array([4, None, 5, 1], dtype="Int64")))
    data = build(frame(rating=pd.array([4, 2, 5, 1], dtype="Int64")))
    assert data.rating.dtype == np.float64


@pytest.mark.parametrize(("policy", "expected"), [("mean", [3.0, 4.0]), ("last", [4.0, 2.0])])
def test_duplicate_policies(policy, expected):
    df = pd.DataFrame({"u": ["x", "y", "x"], "i": [1, 1, 1], "r": [4.0, 2.0, 2.0]})
    before = df.copy()
    data = build(df, user="u", item="i", rating="r", duplicates=policy)
    pd.testing.assert_frame_equal(df, before)
    got = data.to_dataframe().set_index("user")["rating"]
    if policy == "mean":
        assert got.to_dict() == {"x": expected[0], "y": 2.0}
    else:
        assert got.to_dict() == {"x": 2.0, "y": 2.0}
    assert data.n_ratings == 2


def test_ids_as_strings_and_ints_mixed():
    df = pd.DataFrame(
        {"u": pd.Series([1, "a", 2], dtype=object), "i": [1, 2, 3], "r": [1.0, 2.0, 3.0]}
    )
    data = build(df, user="u", item="i", rating="r")
    assert set(data.users.classes.tolist()) == {1, "a", 2}
    back = IdEncoder.from_json(data.users.to_json())
    assert back.equals(data.users)


def test_validation_row_labels_print_plainly():
    df = frame(rating=[4.0, 9.0, 5.0, 1.0]).set_index(pd.Index([100, 200, 300, 400]))
    with pytest.raises(ValueError, match=r"rating 9\.0 in row 200 "):
        build(df)


def test_repeated_column_name_is_refused():
    df = pd.concat([frame(), frame()[["rating"]]], axis=1)
    with pytest.raises(ValueError, match="'rating' appears 2 times"):
        build(df)


def test_data_reexports_the_id_encoding():
    """``from bayesmf.data import IdEncoder, UnknownIdError`` keeps working (defined in ids)."""
    from bayesmf import data, exceptions, ids

    assert data.IdEncoder is ids.IdEncoder
    assert data.UnknownIdError is ids.UnknownIdError is exceptions.UnknownIdError
