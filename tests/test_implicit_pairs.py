"""`RatingsData.implicit_pairs`: the extra pairs of the transductive protocol as a field of the data.

Validation (errors name the bad value), copies not aliases, which transformations keep them,
and `with_implicit_pairs` returning a plain `RatingsData`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.implicit_sets import implicit_design, protocol_of, with_implicit_pairs


def _data() -> tuple[RatingsData, pd.DataFrame]:
    """Ratings over string ids (users 'u0'..'u5', items 'i0'..'i4') and held-out pairs of known ids."""
    rng = np.random.default_rng(0)
    u, i = np.nonzero(rng.random((6, 5)) < 0.6)
    frame = pd.DataFrame({"user": [f"u{k}" for k in u], "item": [f"i{k}" for k in i], "rating": rng.integers(1, 6, u.size)})
    held = frame.sample(frac=0.3, random_state=1)
    users, items = IdEncoder.fit("user", frame["user"]), IdEncoder.fit("item", frame["item"])
    data = RatingsData.from_dataframe(frame.drop(held.index), "user", "item", scale=(1, 5), users=users, items=items)
    return data, held.reset_index(drop=True)


def _raw_pairs(data: RatingsData) -> list[tuple]:
    assert data.implicit_pairs is not None
    return list(zip(data.users.to_raw(data.implicit_pairs[0]), data.items.to_raw(data.implicit_pairs[1]), strict=True))


def test_with_implicit_pairs_returns_plain_ratings_data_with_the_field():
    data, held = _data()
    before = held.copy()
    trans = with_implicit_pairs(data, held)
    assert type(trans) is RatingsData and data.implicit_pairs is None
    assert protocol_of(data) == "strict" and protocol_of(trans) == "transductive"
    assert _raw_pairs(trans) == list(zip(held["user"], held["item"], strict=True))
    for array in trans.implicit_pairs:
        assert array.dtype == np.int64 and not array.flags.writeable
    pd.testing.assert_frame_equal(held, before)  # the caller's frame is not modified
    assert f"{len(held)} implicit pairs" in repr(trans) and "implicit" not in repr(data)
    # attached again: the new pairs are added to those it carries
    twice = with_implicit_pairs(trans, held.head(2))
    assert _raw_pairs(twice) == _raw_pairs(trans) + list(zip(held["user"][:2], held["item"][:2], strict=True))


def test_constructor_validates_and_names_the_bad_value():
    data, _ = _data()
    parts = (data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items)

    def build(pairs):
        return RatingsData(*parts, implicit_pairs=pairs)

    with pytest.raises(ValueError, match=r"user index\(es\) \[6\], outside 0\.\.5 of the user encoder"):
        build((np.array([0, 6, 6]), np.array([0, 1, 2])))
    with pytest.raises(ValueError, match=r"item index\(es\) \[-1\], outside 0\.\.4 of the item encoder"):
        build((np.array([0]), np.array([-1])))
    with pytest.raises(ValueError, match="differ in length: 2 and 1"):
        build((np.array([0, 1]), np.array([0])))
    with pytest.raises(TypeError, match="item indices must be a 1-d integer array, got float64"):
        build((np.array([0]), np.array([0.5])))
    with pytest.raises(TypeError, match="user indices must be a 1-d integer array"):
        build((np.array([[0]]), np.array([0])))
    with pytest.raises(TypeError, match=r"pair \(user_idx, item_idx\).*got ndarray"):
        build(np.zeros((2, 3), dtype=int))
    with pytest.raises(TypeError, match="got tuple"):
        build((np.array([0]),))
    empty = build((np.array([], dtype=np.int64), np.array([], dtype=np.int64)))  # legal: no extra pair
    assert protocol_of(empty) == "transductive" and empty.implicit_pairs[0].size == 0


def test_pairs_are_copied_never_aliased():
    data, _ = _data()
    users, items = np.array([0, 1, 2]), np.array([4, 3, 2], dtype=np.int32)
    frozen = np.array([1, 1, 1])
    frozen.setflags(write=False)
    out = RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items,
                      implicit_pairs=[users, items])
    users[0] = 5
    assert out.implicit_pairs[0].tolist() == [0, 1, 2] and users.flags.writeable and items.flags.writeable
    again = RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items,
                        implicit_pairs=(frozen, items))
    assert not np.shares_memory(again.implicit_pairs[0], frozen)
    assert isinstance(out.implicit_pairs, tuple) and out.implicit_pairs[1].dtype == np.int64


def test_transformations_keep_the_pairs_and_the_sets():
    data, held = _data()
    trans = with_implicit_pairs(data, held)
    features = pd.DataFrame({"age": np.arange(trans.n_users, dtype=float)}, index=trans.users.classes)
    featured = trans.with_features(features)
    kept = {
        "with_features": featured,
        "without_features": featured.without_features(),
        "subset": trans.subset(np.arange(trans.n_ratings) % 2 == 0),
        "replace": dataclasses.replace(trans, scale=(0.0, 5.0)),
    }
    for name, out in kept.items():
        assert _raw_pairs(out) == _raw_pairs(trans), name
    assert featured.without_features().user_features is None
    design = implicit_design(featured.without_features(), "item")
    assert (design != implicit_design(trans, "item")).nnz == 0
    # wider encoders, new ids first: the pairs are re-indexed, the same raw pairs
    wider_users = IdEncoder.fit("user", ["new", *trans.users.classes.tolist()])
    wider_items = IdEncoder.fit("item", ["a-new", *trans.items.classes.tolist()])
    wide = trans.with_encoders(wider_users, wider_items)
    assert _raw_pairs(wide) == _raw_pairs(trans)
    assert not np.array_equal(wide.implicit_pairs[0], trans.implicit_pairs[0])


def test_with_implicit_pairs_names_unknown_ids():
    data, _ = _data()
    with pytest.raises(ValueError, match=r"user id\(s\) \['nobody'\] unknown to the training data"):
        with_implicit_pairs(data, pd.DataFrame({"user": ["u0", "nobody"], "item": ["i0", "i1"]}))
    with pytest.raises(ValueError, match=r"item id\(s\) \['i9'\] unknown"):
        with_implicit_pairs(data, pd.DataFrame({"user": ["u0"], "item": ["i9"]}))
