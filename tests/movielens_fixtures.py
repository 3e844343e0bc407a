"""Tiny copies of ML-1M, ML-10M, ML-20M and ML-25M in their own formats, for offline tests.

Each writer lays the files out as GroupLens's zip unpacks (``ml-1m/``, ``ml-10M100K/``,
``ml-20m/``, ``ml-25m/``), with the real separators, header, text encoding and rating
grid, and returns what a loader should read back. Nothing here is GroupLens's data.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmf._movielens_archives import ARCHIVES

# movie id, title, genres: a colon, a comma and quotes in titles, accented letters, a
# movie without genres and one without ratings (id 9999)
MOVIES = [
    (1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    (11, "American President, The (1995)", "Comedy|Drama|Romance"),
    (73, "Misérables, Les (1995)", "Drama|War"),
    (260, "Star Wars: Episode IV - A New Hope (1977)", "Action|Adventure|Sci-Fi"),
    (1193, "One Flew Over the Cuckoo's Nest (1975)", "Drama"),
    (2571, 'Matrix, The "Reloaded" Test (1999)', "Action|Sci-Fi|Thriller"),
    (4973, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", ""),
    (9999, "Never Rated (2000)", "Documentary"),
]
USERS = [3, 7, 12, 40, 41, 1005]


@dataclass(frozen=True)
class Written:
    """What a writer put on disk."""

    root: Path  # the folder the zip unpacks to
    ratings: pd.DataFrame  # user, item, rating in file order
    movies: pd.DataFrame  # item, title, genres (genres as the loader reports them)


def ratings_frame(name: str, n: int = 30, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct (user, item) pairs with ratings on the set's grid, both ends included."""
    rng = np.random.default_rng(seed)
    rated = [m[0] for m in MOVIES if m[0] != 9999]
    pairs = [(u, i) for u in USERS for i in rated]
    chosen = rng.choice(len(pairs), size=n, replace=False)
    low, high = ARCHIVES[name].scale
    step = 1.0 if low == 1.0 else 0.5
    grid = np.arange(low, high + step / 2, step)
    rating = rng.choice(grid, size=n)
    rating[:2] = (low, high)
    if step == 0.5:
        rating[2] = 3.5  # at least one half star
    return pd.DataFrame(
        {
            "user": [pairs[k][0] for k in chosen],
            "item": [pairs[k][1] for k in chosen],
            "rating": rating,
        }
    )


def _fmt(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def movielens_files(name: str, n: int = 30, seed: int = 0) -> tuple[Written, dict[str, bytes]]:
    """The set's ratings and movies files as bytes, keyed by file name."""
    archive = ARCHIVES[name]
    ratings = ratings_frame(name, n, seed)
    times = 978300760 + np.arange(len(ratings)) * 37
    files: dict[str, bytes] = {}
    if archive.ratings.endswith(".dat"):
        lines = [
            f"{u}::{i}::{_fmt(r)}::{t}\n"
            for u, i, r, t in zip(ratings.user, ratings.item, ratings.rating, times, strict=True)
        ]
        files[archive.ratings] = "".join(lines).encode("ascii")
        movie_lines = [f"{m}::{title}::{genres}\n" for m, title, genres in MOVIES]
        files[archive.movies] = "".join(movie_lines).encode(archive.movies_encoding)
    else:
        table = ratings.assign(timestamp=times).rename(
            columns={"user": "userId", "item": "movieId"}
        )
        buffer = io.StringIO()
        table.to_csv(buffer, index=False, lineterminator="\n", float_format="%g")
        files[archive.ratings] = buffer.getvalue().encode("utf-8")
        movies = pd.DataFrame(MOVIES, columns=["movieId", "title", "genres"])
        movies["genres"] = movies["genres"].replace("", "(no genres listed)")
        files[archive.movies] = movies.to_csv(index=False, lineterminator="\n").encode("utf-8")
    expected_movies = pd.DataFrame(MOVIES, columns=["item", "title", "genres"])
    expected_movies["genres"] = expected_movies["genres"].replace("", "(no genres listed)")
    return Written(Path(archive.folder), ratings, expected_movies), files


def write_movielens(directory: Path, name: str, n: int = 30, seed: int = 0) -> Written:
    """Write the set unpacked into ``directory/<folder>/``, as GroupLens's zip unpacks."""
    written, files = movielens_files(name, n, seed)
    root = directory / written.root
    root.mkdir(parents=True, exist_ok=True)
    for filename, payload in files.items():
        (root / filename).write_bytes(payload)
    return Written(root, written.ratings, written.movies)


def movielens_zip(name: str, n: int = 30, seed: int = 0) -> tuple[Written, bytes]:
    """The set as a zip laid out like GroupLens's (members under ``<folder>/``)."""
    written, files = movielens_files(name, n, seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for filename, payload in files.items():
            zf.writestr(f"{ARCHIVES[name].folder}/{filename}", payload)
    return written, buffer.getvalue()
