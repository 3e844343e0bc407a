"""MovieLens ratings and item titles: ``ml-latest-small`` (bundled) and ``ml-100k``.

`load_movielens` reads the ratings (whole, or ml-100k's canonical splits) into
`bayesmf.RatingsData`; `movielens_items` reads titles and genres. Where the files are and
their SHA-256 checks (including the one-time ml-100k download) are
`bayesmf._movielens_files`; `cache_dir` and `download_ml100k` are re-exported here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, overload

import numpy as np
import pandas as pd

from bayesmf._movielens_files import (
    cache_dir,
    download_ml100k,
    find_ml100k,
    open_bundled,
    read_verified,
)
from bayesmf._validate import validate_choice
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.split import Split

__all__ = [
    "DATASETS",
    "ML100K_SPLITS",
    "cache_dir",
    "download_ml100k",
    "load_movielens",
    "movielens_items",
]

DATASETS = ("ml-latest-small", "ml-100k")
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
    name : {"ml-latest-small", "ml-100k"}
        ``"ml-latest-small"``: 100,836 ratings of 9,724 movies by 610 users on a 0.5-5
        scale in half stars, bundled with the package. ``"ml-100k"``: 100,000 ratings of
        1,682 movies by 943 users on a 1-5 scale; not redistributable, so found on disk or
        downloaded (see Notes).
    split : {None, "u1", ..., "u5", "ua", "ub"}
        ml-100k only: return the canonical ``(train, test)`` pair ``u?.base`` / ``u?.test``
        (u1-u5: the five 80/20 folds; ua/ub: 10 ratings per user held out).
    data_dir : path, optional
        Directory holding ``ml-100k/u.data`` or ``u.data``. When given, it must hold the
        files (no fallback).
    download : bool
        Allow downloading ml-100k when it is not found.

    Returns
    -------
    RatingsData or Split
        The whole set, or ``(train, test)`` sharing one pair of encoders built over both
        files, so an index means the same user/item in each; ``test.unseen(train)`` flags
        the test ratings whose user or item has no training rating. Raw ids are the
        integer ``userId``/``movieId`` (ml-latest-small) or user/item ids (ml-100k).

    Raises
    ------
    ValueError
        Unknown ``name`` or ``split``; a file whose SHA-256 does not match.
    FileNotFoundError
        ml-100k not found and ``download=False`` (or not in the given ``data_dir``).
    OSError
        The download failed (nothing is left behind).

    Notes
    -----
    ml-100k is looked up in ``data_dir``; else ``$BAYESMF_DATA_DIR``; else the cache
    directory ``$XDG_CACHE_HOME/bayesmf`` (default ``~/.cache/bayesmf``); else
    ``ml-100k.zip`` is downloaded from GroupLens into the cache, its SHA-256 checked, and
    its files extracted and checked against SHA-256 sums held in the package before they
    are moved into place. Every ml-100k file read is checked against its sum.

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
    if name == "ml-latest-small":
        if split is not None:
            raise ValueError(
                f"split={split!r}: ml-latest-small has no canonical split; use "
                "bayesmf.train_test_split(load_movielens('ml-latest-small'))"
            )
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
    name : {"ml-latest-small", "ml-100k"}
        The data set (as in `load_movielens`).
    data_dir : path, optional
        Where ml-100k is (as in `load_movielens`).
    download : bool
        Allow downloading ml-100k when it is not found.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (the raw item id used by `load_movielens`), ``title`` and
        ``genres`` (``"|"``-separated names, ``"(no genres listed)"`` when none), one row
        per movie, indexed from 0.

    Examples
    --------
    >>> movielens_items("ml-latest-small").loc[0, "title"]
    'Toy Story (1995)'
    """
    validate_choice("name", name, DATASETS)
    if name == "ml-latest-small":
        with open_bundled("movies.csv") as handle:
            movies = pd.read_csv(handle, dtype={"movieId": np.int64})
        return movies.rename(columns={"movieId": "item"})[["item", "title", "genres"]]

    root = find_ml100k(data_dir, download)
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
    return pd.DataFrame({"item": raw["item"], "title": raw["title"], "genres": genres})


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
