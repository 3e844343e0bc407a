"""MovieLens ratings and item titles: ml-latest-small (bundled), ml-100k, ml-1m to ml-25m.

`load_movielens` reads the ratings (whole, or ml-100k's canonical splits) into
`bayesmf.RatingsData`; `movielens_items` reads titles and genres; `movielens_features` the
users' and items' features (side information, `bayesmf.RatingsData.with_features`). Where the files are and
their SHA-256 checks (including the one-time downloads) are `bayesmf._movielens_files`
(bundled, ml-100k) and `bayesmf._movielens_archives` (ml-1m, ml-10m, ml-20m, ml-25m);
the formats of the last four are read by `bayesmf._movielens_formats`. `cache_dir`,
`download_ml100k` and `download_movielens` are re-exported here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, overload

import numpy as np
import pandas as pd

from bayesmf._movielens_archives import ARCHIVES, download_movielens, find_archive
from bayesmf._movielens_files import (
    cache_dir,
    download_ml100k,
    find_ml100k,
    open_bundled,
    read_verified,
)
from bayesmf._movielens_formats import (
    encode,
    item_features,
    ml100k_users,
    read_items,
    read_ratings,
    title_years,
)
from bayesmf._validate import validate_choice
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.split import Split

__all__ = [
    "DATASETS",
    "ML100K_SPLITS",
    "cache_dir",
    "download_ml100k",
    "download_movielens",
    "load_movielens",
    "movielens_features",
    "movielens_items",
]

DATASETS = ("ml-latest-small", "ml-100k", *ARCHIVES)
ML100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_ML100K_COLUMNS = ["user", "item", "rating", "timestamp"]


@overload
def load_movielens(
    name: str = ...,
    split: None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> RatingsData: ...


@overload
def load_movielens(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Split: ...


def load_movielens(
    name: str = "ml-latest-small",
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> RatingsData | Split:
    """Load a MovieLens ratings set.

    Parameters
    ----------
    name : {"ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m"}
        ``"ml-latest-small"``: 100,836 ratings of 9,724 movies by 610 users on a 0.5-5
        scale in half stars, bundled with the package. The others may not be
        redistributed, so they are found on disk or downloaded (see Notes):
        ``"ml-100k"``: 100,000 ratings of 1,682 movies by 943 users, 1-5 stars;
        ``"ml-1m"``: 1,000,209 ratings of 3,706 movies by 6,040 users, 1-5 stars;
        ``"ml-10m"``: 10,000,054 ratings of 10,677 movies by 69,878 users, 0.5-5 in half
        stars; ``"ml-20m"``: 20,000,263 ratings of 26,744 movies by 138,493 users, and
        ``"ml-25m"``: 25,000,095 ratings of 59,047 movies by 162,541 users, both 0.5-5 in
        half stars.
    split : {None, "u1", ..., "u5", "ua", "ub"}
        ml-100k only: return the canonical ``(train, test)`` pair ``u?.base`` / ``u?.test``
        (u1-u5: the five 80/20 folds; ua/ub: 10 ratings per user held out). The other
        sets have no canonical split: load them whole and split them with
        `bayesmf.train_test_split`, `bayesmf.kfold` or `bayesmf.split.user_holdout_split`.
    data_dir : path, optional
        Directory holding the set as it unpacks (``ml-100k/u.data``,
        ``ml-1m/ratings.dat``, ``ml-10M100K/ratings.dat``, ``ml-20m/ratings.csv``,
        ``ml-25m/ratings.csv``), or that folder itself; for ml-1m to ml-25m also the zip
        as downloaded (``ml-1m.zip``, ...). When given, it must hold the files (no
        fallback).
    download : bool
        Allow downloading a set that is not found.

    Returns
    -------
    RatingsData or Split
        The whole set, or ``(train, test)`` sharing one pair of encoders built over both
        files, so an index means the same user/item in each; ``test.unseen(train)`` flags
        the test ratings whose user or item has no training rating. Raw ids are
        MovieLens's integer user and movie ids.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``split``; a file or zip whose SHA-256 does not match (it is
        left as it is); a file not in its set's format.
    FileNotFoundError
        The set not found and ``download=False`` (or not in the given ``data_dir``).
    OSError
        The download failed (nothing is left behind).

    Notes
    -----
    A set not bundled is looked up in ``data_dir``; else ``$BAYESMF_DATA_DIR``; else the
    cache directory ``$XDG_CACHE_HOME/bayesmf`` (default ``~/.cache/bayesmf``); else its
    zip is downloaded from GroupLens (``https://files.grouplens.org/datasets/movielens/``)
    into the cache and its SHA-256 checked before it is kept.

    - ml-100k: the zip's files are extracted and checked against SHA-256 sums held in the
      package before they are moved into place; every ml-100k file read is checked
      against its sum.
    - ml-1m, ml-10m, ml-20m, ml-25m: the zip is kept as it is and read directly; every
      time a zip is used (cached, in ``data_dir`` or in ``$BAYESMF_DATA_DIR``) its size
      and SHA-256 are checked first, and one that does not match raises, naming it, and is
      never replaced or deleted. An unpacked folder is read unchecked (GroupLens publishes
      no sums of the files inside): it is the user's own copy. Ids are parsed as int32
      and ratings as float32; the result holds 24 bytes per rating (int64 indices,
      float64 ratings).

    The MovieLens licenses allow research use only, not commercial use without permission
    from GroupLens; cite F. M. Harper and J. A. Konstan (2015), "The MovieLens Datasets:
    History and Context", ACM TiiS 5(4).

    Examples
    --------
    >>> data = load_movielens("ml-latest-small")
    >>> data.n_ratings, data.n_users, data.n_items
    (100836, 610, 9724)
    """
    validate_choice("name", name, DATASETS)
    if name != "ml-100k" and split is not None:
        raise ValueError(
            f"split={split!r}: {name} has no canonical split; load it whole and use "
            f"bayesmf.train_test_split(load_movielens({name!r})), bayesmf.kfold or "
            "bayesmf.split.user_holdout_split"
        )
    if name in ARCHIVES:
        return encode(read_ratings(find_archive(name, data_dir, download)), ARCHIVES[name].scale)
    if name == "ml-latest-small":
        with open_bundled("ratings.csv") as handle:
            df = pd.read_csv(
                handle,
                usecols=["userId", "movieId", "rating"],
                dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float64},
            )
        return _encode(df, "userId", "movieId", (0.5, 5.0))

    if split is not None:
        validate_choice("split", split, ML100K_SPLITS)
    root = find_ml100k(data_dir, download)
    if split is None:
        return _encode(_read_ml100k(root, "u.data"), "user", "item", (1.0, 5.0))
    base = _read_ml100k(root, f"{split}.base")
    test = _read_ml100k(root, f"{split}.test")
    users = IdEncoder.fit(
        "user", np.concatenate([base["user"].to_numpy(), test["user"].to_numpy()])
    )
    items = IdEncoder.fit(
        "item", np.concatenate([base["item"].to_numpy(), test["item"].to_numpy()])
    )
    return Split(
        _encode(base, "user", "item", (1.0, 5.0), users, items),
        _encode(test, "user", "item", (1.0, 5.0), users, items),
    )


def movielens_items(
    name: str = "ml-latest-small",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> pd.DataFrame:
    """Return the titles and genres of the MovieLens items, to show next to recommendations.

    Parameters
    ----------
    name : {"ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m"}
        The data set (as in `load_movielens`).
    data_dir : path, optional
        Where the set is (as in `load_movielens`).
    download : bool
        Allow downloading a set that is not found.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (the raw item id used by `load_movielens`), ``title`` and
        ``genres`` (``"|"``-separated names, ``"(no genres listed)"`` when none), one row
        per movie in the file's order, indexed from 0. Titles are read from the set's own
        encoding (latin-1 for ml-100k and ml-1m, UTF-8 for the others). A movie may be
        listed without ratings.

    Examples
    --------
    >>> movielens_items("ml-latest-small").loc[0, "title"]
    'Toy Story (1995)'
    """
    validate_choice("name", name, DATASETS)
    if name in ARCHIVES:
        return read_items(find_archive(name, data_dir, download))
    if name == "ml-latest-small":
        with open_bundled("movies.csv") as handle:
            movies = pd.read_csv(handle, dtype={"movieId": np.int64})
        return movies.rename(columns={"movieId": "item"})[["item", "title", "genres"]]

    raw = _ml100k_items(find_ml100k(data_dir, download))
    return raw[["item", "title", "genres"]]


def movielens_features(
    name: str = "ml-latest-small",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """Return the users' and the items' features, ready for `bayesmf.RatingsData.with_features`.

    Parameters
    ----------
    name, data_dir, download
        As in `load_movielens`.

    Returns
    -------
    users : pandas.DataFrame or None
        ml-100k: ``age`` (years), ``gender`` and ``occupation`` from ``u.user``, indexed
        by raw user id. None for the other sets (ml-latest-small has no user data).
    items : pandas.DataFrame
        ``genres`` (a tuple of genre names, ``()`` for none: encoded as one indicator per
        genre) and ``year`` (ml-100k: of the release date in ``u.item``; the others: the
        year in the title), indexed by raw item id; every movie in the file, rated or not.
        A movie without a year (one in ml-100k) gets the median year.

    Examples
    --------
    >>> users, items = movielens_features("ml-latest-small")
    >>> users is None, list(items.columns)
    (True, ['genres', 'year'])
    >>> data = load_movielens("ml-latest-small").with_features(users, items)
    """
    validate_choice("name", name, DATASETS)
    if name != "ml-100k":
        movies = movielens_items(name, data_dir, download=download)
        return None, item_features(movies["item"], movies["genres"], title_years(movies["title"]))
    root = find_ml100k(data_dir, download)
    raw = _ml100k_items(root)
    year = raw["release_date"].str[-4:].astype(np.float64)
    return ml100k_users(read_verified(root, "u.user")), item_features(raw["item"], raw["genres"], year)


def _ml100k_items(root: Path) -> pd.DataFrame:
    """Read ml-100k's ``u.item``: ``item``, ``title``, ``release_date`` and ``genres`` ("|"-joined)."""
    genre_names = [
        line.rsplit("|", 1)[0]
        for line in read_verified(root, "u.genre").decode("latin-1").splitlines()
        if line.strip()
    ]
    columns = ["item", "title", "release_date", "video_release_date", "url", *genre_names]
    raw = pd.read_csv(
        _as_stream(read_verified(root, "u.item")),
        sep="|",
        header=None,
        names=columns,
        encoding="latin-1",
        dtype={"item": np.int64},
    )
    flags = raw[genre_names].to_numpy(dtype=bool)
    names = np.asarray(genre_names, dtype=object)
    genres = ["|".join(names[row]) if row.any() else "(no genres listed)" for row in flags]
    return pd.DataFrame(
        {"item": raw["item"], "title": raw["title"], "release_date": raw["release_date"], "genres": genres}
    )


# -- helpers ----------------------------------------------------------------------------
def _encode(
    df: pd.DataFrame,
    user: str,
    item: str,
    scale: tuple[float, float],
    users: IdEncoder | None = None,
    items: IdEncoder | None = None,
) -> RatingsData:
    return RatingsData.from_dataframe(
        df, user, item, "rating", scale=scale, users=users, items=items
    )


def _as_stream(payload: bytes) -> IO[bytes]:
    return io.BytesIO(payload)


def _read_ml100k(root: Path, filename: str) -> pd.DataFrame:
    return pd.read_csv(
        _as_stream(read_verified(root, filename)),
        sep="\t",
        header=None,
        names=_ML100K_COLUMNS,
        dtype=np.int64,
    )
