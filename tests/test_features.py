"""Side information as data: encoding feature frames and attaching them to ratings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayesmf.data import RatingsData
from bayesmf.features import FeatureEncoder, Features


def user_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20, 30, 40, 50],
            "gender": ["M", "F", "M", "F"],
            "occupation": pd.Categorical(["doctor", "artist", "artist", "none"]),
            "genres": ["Action|Comedy", "Comedy", "", "Drama|Action"],
            "tags": [["a"], ["a", "b"], [], ("b",)],
        },
        index=pd.Index([10, 11, 12, 13], name="user"),
    )


def ratings() -> RatingsData:
    frame = pd.DataFrame({"user": [10, 11, 12, 13, 10], "item": ["x", "y", "x", "z", "z"], "rating": [1, 2, 3, 4, 5]})
    return RatingsData.from_dataframe(frame, "user", "item", "rating", scale=(1, 5))


def test_encoding_of_each_kind():
    frame = user_frame()
    before = frame.copy(deep=True)
    f = Features.from_frame(frame, "user", multi=["genres"])
    pd.testing.assert_frame_equal(frame, before)  # nothing passed in is modified
    assert f.names == [
        "age", "gender=F", "gender=M", "occupation=artist", "occupation=doctor", "occupation=none",
        "genres=Action", "genres=Comedy", "genres=Drama", "tags=a", "tags=b",
    ]
    age = np.array([20, 30, 40, 50.0])
    np.testing.assert_allclose(f.values[:, 0], (age - age.mean()) / age.std())
    np.testing.assert_array_equal(f.values[:, 1:3], [[0, 1], [1, 0], [0, 1], [1, 0]])  # no level dropped
    np.testing.assert_array_equal(f.values[:, 3:6].sum(axis=1), 1)
    np.testing.assert_array_equal(f.values[:, 6:9], [[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(f.values[:, 9:], [[1, 0], [1, 1], [0, 0], [0, 1]])
    assert not f.values.flags.writeable


def test_id_column_and_constant_numeric_column():
    frame = user_frame().reset_index()
    frame["const"] = 7.0
    f = Features.from_frame(frame[["user", "age", "const"]], "user", id_column="user")
    assert f.ids.classes.tolist() == [10, 11, 12, 13]
    np.testing.assert_array_equal(f.values[:, 1], 0.0)  # scale 1, not a division by zero


def test_new_rows_are_encoded_the_same_way_and_round_trip_through_json():
    f = Features.from_frame(user_frame(), "user", multi=["genres"])
    again = Features.from_dict(json.loads(json.dumps(f.to_dict())))
    np.testing.assert_array_equal(again.values, f.values)
    assert again.names == f.names and again.ids.classes.tolist() == f.ids.classes.tolist()
    new = user_frame().iloc[[2, 0]].set_axis([99, 98])
    encoded = again.encode(new)
    np.testing.assert_array_equal(encoded.values, f.values[[2, 0]])  # the old centre and scale
    assert encoded.ids.classes.tolist() == [99, 98]
    both = f.append(encoded)
    np.testing.assert_array_equal(both.rows_for([98, 10]), f.values[[0, 0]])
    assert FeatureEncoder.from_dict(f.encoder.to_dict()) == f.encoder


def test_unseen_category_raises_or_is_zero_by_policy():
    f = Features.from_frame(user_frame(), "user", multi=["genres"])
    new = user_frame().iloc[[0]].set_axis([77])
    new.loc[77, "gender"] = "X"
    with pytest.raises(ValueError, match=r"'gender' has value 'X' \(id 77\)"):
        f.encode(new)
    zero = f.encode(new, unknown="zero")
    np.testing.assert_array_equal(zero.values[0, 1:3], [0, 0])
    new.loc[77, "gender"] = "M"
    new.loc[77, "genres"] = "Western"
    with pytest.raises(ValueError, match="'genres' has value 'Western'"):
        f.encode(new)
    with pytest.raises(ValueError, match="unknown="):
        f.encode(new, unknown="drop")


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("age", np.nan, r"'age' has missing values \(NaN/None\) for id\(s\) \[12\]"),
        ("age", np.inf, r"'age' has infinite values for id\(s\) \[12\]"),
        ("gender", None, r"'gender' has missing values \(NaN/None\) for id\(s\) \[12\]"),
        ("genres", np.nan, r"'genres' has missing values"),
    ],
)
def test_bad_values_name_column_and_id(column, value, match):
    frame = user_frame()
    frame[column] = frame[column].astype(object if value is None or column == "genres" else float)
    frame.loc[12, column] = value
    with pytest.raises(ValueError, match=match):
        Features.from_frame(frame, "user", multi=["genres"])
    good = Features.from_frame(user_frame(), "user", multi=["genres"])
    with pytest.raises(ValueError, match=match):
        good.encode(frame)


def test_bad_frames():
    frame = user_frame()
    with pytest.raises(TypeError, match="DataFrame"):
        Features.from_frame(frame.to_dict(), "user")
    with pytest.raises(ValueError, match=r"repeats id\(s\) \[10\]"):
        Features.from_frame(frame.set_axis([10, 10, 12, 13]), "user")
    with pytest.raises(ValueError, match="id column 'uid' not in"):
        Features.from_frame(frame, "user", id_column="uid")
    with pytest.raises(ValueError, match=r"multi= names column\(s\) \['genre'\]"):
        Features.from_frame(frame, "user", multi=["genre"])
    with pytest.raises(ValueError, match="no feature columns"):
        Features.from_frame(frame[[]], "user")
    f = Features.from_frame(frame[["age"]], "user")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['age'\]"):
        f.encode(frame[["gender"]])
    with pytest.raises(ValueError, match="was numeric"):
        f.encode(frame[["gender"]].rename(columns={"gender": "age"}))


def test_with_features_follows_the_encoders_and_is_carried_along():
    data = ratings()
    frame = user_frame()
    extra = frame.iloc[[0]].set_axis([500])  # a user without ratings: kept for cold start
    items = pd.DataFrame({"id": ["z", "y", "x"], "year": [1990, 2000, 1995]})
    with_f = data.with_features(pd.concat([frame, extra]), items, item_id="id")
    assert data.user_features is None  # a new object
    X = with_f.feature_matrix("user")
    assert X.shape == (4, 12)
    year = with_f.feature_matrix("item")[:, 0]  # items in index order x, y, z: 1995, 2000, 1990
    np.testing.assert_allclose(year, (np.array([1995, 2000, 1990]) - 1995) / np.std([1990, 2000, 1995]))
    sub = with_f.subset(np.array([0, 1]))
    assert sub.user_features is with_f.user_features
    np.testing.assert_array_equal(sub.feature_matrix("user"), X)
    wider = with_f.with_encoders(with_f.users.extend([500]), with_f.items)
    assert wider.feature_matrix("user").shape == (5, 12)
    with pytest.raises(ValueError, match=r"no user features for 1 of 5 user id\(s\), e.g. \[501\]"):
        with_f.with_encoders(with_f.users.extend([501]), with_f.items)
    assert with_f.with_features().user_features is with_f.user_features
    assert repr(with_f).endswith("12 user features, 1 item features)")


def test_with_features_refuses_missing_or_mismatched_ids():
    data = ratings()
    frame = user_frame()
    with pytest.raises(ValueError, match=r"no user features for 1 of 4 user id\(s\), e.g. \[13\]"):
        data.with_features(frame.iloc[:3])
    with pytest.raises(ValueError, match="none matches"):
        data.with_features(frame.set_axis(["10", "11", "12", "13"]))
    with pytest.raises(TypeError, match="user_features must be user Features"):
        RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items,
                    Features.from_frame(frame, "item"))
