"""MovieLens side information: the users' and items' feature frames the loaders return."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmf._movielens_formats import NO_GENRES, item_features, ml100k_users, title_years
from bayesmf.movielens import load_movielens, movielens_features

# u.user lines as ml-100k writes them (id|age|gender|occupation|zip), zip codes with letters
U_USER = b"1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|T8H1N\n"


def test_ml100k_users_format():
    users = ml100k_users(U_USER)
    assert users.index.tolist() == [1, 2, 3] and users.index.name == "user"
    assert users.columns.tolist() == ["age", "gender", "occupation"]
    assert users["age"].tolist() == [24, 53, 23] and users.loc[3, "occupation"] == "writer"
    with pytest.raises(ValueError, match=r"u\.user is not in the ml-100k format"):
        ml100k_users(b"1|x|M|technician|85711\n")


def test_item_features_genres_and_years():
    titles = pd.Series(["Toy Story (1995)", "Babylon 5", "Misérables, Les (1995) (2012)", "Old (1920) "])
    np.testing.assert_array_equal(title_years(titles), [1995, np.nan, 2012, 1920])
    frame = item_features(pd.Series([1, 7, 9, 4]), pd.Series(["Action|Comedy", NO_GENRES, "Drama", "Action"]),
                          title_years(titles))
    assert frame.index.tolist() == [1, 7, 9, 4]
    assert frame["genres"].tolist() == [("Action", "Comedy"), (), ("Drama",), ("Action",)]
    assert frame.loc[7, "year"] == 1995.0  # the median of the others
    with pytest.raises(ValueError, match="no item has a year"):
        item_features(pd.Series([1]), pd.Series(["Drama"]), pd.Series([np.nan]))


def test_ml_latest_small_features_attach():
    users, items = movielens_features("ml-latest-small")
    assert users is None
    assert items.loc[1, "genres"] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert items.loc[1, "year"] == 1995.0
    data = load_movielens("ml-latest-small").with_features(users, items)
    names = data.item_features.names
    assert "genres=Comedy" in names and names[-1] == "year" and len(names) == 20  # 19 genres + year
    X = data.feature_matrix("item")
    assert X.shape == (data.n_items, 20) and np.isfinite(X).all()


def test_ml100k_features(shared_data_dir):
    if shared_data_dir is None:
        pytest.skip("ml-100k not found (set BAYESMF_DATA_DIR)")
    users, items = movielens_features("ml-100k", data_dir=shared_data_dir, download=False)
    assert users.shape == (943, 3) and items.shape == (1682, 2)
    assert users.loc[1].tolist() == [24, "M", "technician"]
    assert items.loc[1, "genres"] == ("Animation", "Children's", "Comedy") and items.loc[1, "year"] == 1995.0
    train, _ = load_movielens("ml-100k", "u1", data_dir=shared_data_dir, download=False)
    data = train.with_features(users, items)
    assert data.feature_matrix("user").shape == (943, 1 + 2 + 21)  # age, 2 genders, 21 occupations
    assert data.feature_matrix("item").shape == (1682, 19 + 1)  # 19 genre flags, year


def test_reexported():
    from bayesmf import datasets, movielens

    assert datasets.movielens_features is movielens.movielens_features
