"""Reading the files of ML-1M, ML-10M, ML-20M and ML-25M into ratings and titles.

Two formats: ml-1m and ml-10m write ``UserID::MovieID::Rating::Timestamp`` lines
(``ratings.dat``) and ``MovieID::Title::Genres`` lines (``movies.dat``); ml-20m and ml-25m
write CSV with a header (``userId,movieId,rating,timestamp``; ``movieId,title,genres``).
Up to 25 million ratings are read with pandas' C parser into int32 ids and float32
ratings, and encoded by sorting (`encode`) rather than one dictionary look-up per rating.
Where the files are is `bayesmf._movielens_archives`.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd

from bayesmf._movielens_archives import Source
from bayesmf._validate import validate_ratings_frame
from bayesmf.data import IdEncoder, RatingsData

__all__ = ["encode", "item_features", "ml100k_users", "read_items", "read_ratings", "title_years"]

log = logging.getLogger("bayesmf")

_RATING_DTYPES = {"user": np.int32, "item": np.int32, "rating": np.float32}
_CSV_COLUMNS = {"userId": "user", "movieId": "item", "rating": "rating"}
NO_GENRES = "(no genres listed)"


def read_ratings(source: Source) -> pd.DataFrame:
    """Read the ratings file of ``source``.

    Parameters
    ----------
    source : Source
        Where the set is (folder or verified zip).

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item`` (int32 raw ids) and ``rating`` (float32), in file order;
        the timestamps are not kept.

    Raises
    ------
    ValueError
        The file is not in the set's format; the message names it.
    """
    filename = source.archive.ratings
    try:
        with source.open(filename) as handle:
            if filename.endswith(".csv"):
                frame = pd.read_csv(
                    handle,
                    usecols=list(_CSV_COLUMNS),
                    dtype={"userId": np.int32, "movieId": np.int32, "rating": np.float32},
                )
                return frame.rename(columns=_CSV_COLUMNS)[["user", "item", "rating"]]
            # "::" is two characters, which the C parser cannot split on: make it one
            payload = handle.read().replace(b"::", b"\t")
        return pd.read_csv(
            io.BytesIO(payload),
            sep="\t",
            header=None,
            names=["user", "item", "rating", "timestamp"],
            usecols=["user", "item", "rating"],
            dtype=_RATING_DTYPES,
        )
    except ValueError as exc:  # pandas' ParserError is a ValueError
        layout = (
            "a CSV with header userId,movieId,rating,timestamp"
            if filename.endswith(".csv")
            else "UserID::MovieID::Rating::Timestamp lines"
        )
        raise ValueError(
            f"{source.describe(filename)} is not in the {source.archive.name} ratings "
            f"format ({layout}): {exc}"
        ) from exc


def read_items(source: Source) -> pd.DataFrame:
    """Read the titles and genres of ``source``'s movies (``movies.dat`` or ``movies.csv``).

    Parameters
    ----------
    source : Source
        The set's unpacked folder or its verified zip.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (int64 raw movie id), ``title`` and ``genres`` (``"|"``-separated,
        ``"(no genres listed)"`` when none), one row per movie in file order, indexed from 0.

    Raises
    ------
    ValueError
        A line or row that is not ``id, title, genres``; the message names the file.
    """
    archive = source.archive
    with source.open(archive.movies) as handle:
        payload = handle.read()
    where = source.describe(archive.movies)
    if archive.movies.endswith(".csv"):
        try:
            movies = pd.read_csv(
                io.BytesIO(payload),
                usecols=["movieId", "title", "genres"],
                dtype={"movieId": np.int64, "title": str, "genres": str},
                encoding=archive.movies_encoding,
                keep_default_na=False,
            )
        except ValueError as exc:
            raise ValueError(
                f"{where} is not in the {archive.name} movies format (a CSV with header "
                f"movieId,title,genres): {exc}"
            ) from exc
        movies = movies.rename(columns={"movieId": "item"})[["item", "title", "genres"]]
    else:
        rows = [
            _movie_line(line, number, where)
            for number, line in enumerate(_decode(payload, archive.movies_encoding, where), 1)
            if line.strip()
        ]
        movies = pd.DataFrame(rows, columns=["item", "title", "genres"])
        movies["item"] = movies["item"].astype(np.int64)
    movies["genres"] = movies["genres"].replace("", NO_GENRES)
    return movies.reset_index(drop=True)


def _decode(payload: bytes, encoding: str, where: str) -> list[str]:
    """Split ``payload`` into lines, decoded as ``encoding`` or else latin-1 (reads any byte)."""
    try:
        text = payload.decode(encoding)
    except UnicodeDecodeError:
        log.info("%s is not %s; reading it as latin-1", where, encoding)
        text = payload.decode("latin-1")
    return text.splitlines()


def _movie_line(line: str, number: int, where: str) -> tuple[int, str, str]:
    """Split ``MovieID::Title::Genres``; a title may itself hold ``::``, ``:`` or commas."""
    head, sep, rest = line.partition("::")
    title, sep2, genres = rest.rpartition("::")
    try:
        if not (sep and sep2):
            raise ValueError("fewer than three '::'-separated fields")
        return int(head), title, genres
    except ValueError as exc:
        raise ValueError(
            f"line {number} of {where} is not MovieID::Title::Genres ({exc}): {line[:80]!r}"
        ) from exc


def encode(frame: pd.DataFrame, scale: tuple[float, float]) -> RatingsData:
    """Validate ``user``/``item``/``rating`` columns and encode them, as ``from_dataframe`` does.

    The result equals ``RatingsData.from_dataframe(frame, "user", "item", "rating",
    scale=scale)`` (encoders over the sorted distinct ids, ratings in row order), but the
    indices come from one sort (`numpy.unique`) instead of a dictionary look-up per rating,
    which matters at 25 million ratings.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``user``, ``item`` (integer raw ids) and ``rating``.
    scale : tuple of float
        ``(low, high)`` of the rating scale.

    Returns
    -------
    RatingsData

    Raises
    ------
    ValueError
        What ``from_dataframe`` raises on: a rating off the scale or not finite, a
        missing id, a repeated (user, item) pair.
    """
    clean = validate_ratings_frame(frame, "user", "item", "rating", scale)
    users, user_idx = np.unique(clean["user"].to_numpy(), return_inverse=True)
    items, item_idx = np.unique(clean["item"].to_numpy(), return_inverse=True)
    return RatingsData(
        user_idx=user_idx,
        item_idx=item_idx,
        rating=clean["rating"].to_numpy(),
        scale=scale,
        users=IdEncoder("user", users.astype(np.int64)),
        items=IdEncoder("item", items.astype(np.int64)),
    )


# -- side information ---------------------------------------------------------------------
def title_years(titles: pd.Series) -> pd.Series:
    """Return the year in parentheses at the end of each title (``"Toy Story (1995)"``), float, NaN when none."""
    return titles.str.extract(r"\((\d{4})\)\s*$", expand=False).astype(np.float64)


def item_features(item: pd.Series, genres: pd.Series, year: pd.Series) -> pd.DataFrame:
    """Return the items' features: ``genres`` (a tuple of names, ``()`` for none) and ``year``, indexed by ``item``.

    ``genres``: ``"|"``-separated names (`NO_GENRES` for none). A missing year (an item
    without a date) gets the median year of the others, so every item has features.
    """
    year = pd.Series(np.asarray(year, dtype=np.float64), index=item.to_numpy())
    if year.isna().all():
        raise ValueError("no item has a year")
    missing = year.index[year.isna()].tolist()
    if missing:
        log.info("item(s) %s have no year: given the median year", missing[:5])
        year = year.fillna(float(year.median()))
    names = [() if g == NO_GENRES else tuple(part for part in str(g).split("|") if part) for g in genres.tolist()]
    return pd.DataFrame(
        {"genres": names, "year": year.to_numpy()}, index=pd.Index(item.to_numpy(), name="item")
    )


def ml100k_users(payload: bytes) -> pd.DataFrame:
    """Read ml-100k's ``u.user`` (``id|age|gender|occupation|zip``): ``age``, ``gender``, ``occupation`` by user."""
    try:
        users = pd.read_csv(
            io.BytesIO(payload), sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
            dtype={"user": np.int64, "age": np.int64, "gender": str, "occupation": str, "zip": str},
            encoding="latin-1",
        )
    except ValueError as exc:
        raise ValueError(f"u.user is not in the ml-100k format (id|age|gender|occupation|zip): {exc}") from exc
    return users.set_index("user")[["age", "gender", "occupation"]]
