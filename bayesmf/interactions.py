r"""Implicit feedback as users have it: (user, item[, count or weight]) rows -> `RatingsData`.

Views, clicks, plays, purchases: each row says that a user chose an item, optionally with a
count or a weight. `interactions_from_dataframe` validates such a table and encodes its ids
(with the validators and encoders of `bayesmf.data.RatingsData.from_dataframe`); `as_implicit`
turns rating data into implicit feedback (every rated pair is a choice). The result is the
training data of ``PMF(likelihood="implicit")``.

Scale
-----
A `RatingsData` carries a ``scale``; implicit data gets ``(0.0, 1.0)`` (`IMPLICIT_SCALE`).
It is the scale of the implicit model's response, not of the values: the preference is 1
for a pair in the data and 0 for every other pair, and predictions (the score
:math:`\eta`, P(chosen)) lie on [0, 1], so everything downstream that reads
``train.scale`` (prediction intervals clipped to it, thresholds checked against it, the
prior of :math:`\mu`) sees the right range. ``rating`` holds each pair's value (a count, a
weight, a rating or 1; always > 0), which only sets the pair's confidence
(`bayesmf.confidence.confidence_weights`) and may exceed 1: the `RatingsData` constructor
checks the scale itself (finite, low < high), not the values against it.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayesmf._validate import _check_ids, _numeric_ratings, _py, validate_choice
from bayesmf.data import RatingsData
from bayesmf.ids import IdEncoder
from bayesmf.link import IMPLICIT_SCALE

__all__ = ["IMPLICIT_SCALE", "as_implicit", "interactions_from_dataframe"]

_DUPLICATES = ("sum", "max", "raise")
_VALUES = ("one", "rating")


def interactions_from_dataframe(
    df: pd.DataFrame,
    user: str = "user",
    item: str = "item",
    value: str | None = None,
    *,
    duplicates: Literal["sum", "max", "raise"] = "sum",
    users: IdEncoder | None = None,
    items: IdEncoder | None = None,
) -> RatingsData:
    """Validate a table of interactions and encode its ids, for ``PMF(likelihood="implicit")``.

    Each (user, item) pair becomes one entry whose value sets its confidence.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per interaction (a view, click, play...); never modified.
    user, item : str
        Column names of the raw user and item ids.
    value : str, optional
        Column of a count or weight per row (finite, >= 0). None: every row counts 1.
    duplicates : {"sum", "max", "raise"}
        Rows with the same (user, item): add their values (default: counts add up), keep
        the largest, or raise naming the pair and its rows.
    users, items : IdEncoder, optional
        Encoders to reuse (so indices agree with another dataset, e.g. a rating set of the
        same users and items); ids they do not know are appended.

    Returns
    -------
    RatingsData
        One entry per (user, item) pair, ``rating`` holding its value (> 0), scale
        `IMPLICIT_SCALE` (see the module docstring for why).

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame; the value column is not numeric; an id is neither an
        int nor a string.
    ValueError
        A missing or repeated column, an empty frame, a missing id, a negative or
        non-finite value (the message names it and its row), no row with a value > 0, or
        a repeated pair with ``duplicates="raise"``.

    Warns
    -----
    UserWarning
        When rows with value 0 are dropped (a zero count is no interaction); it says how
        many.

    Examples
    --------
    >>> plays = pd.DataFrame({"user": ["a", "a", "b"], "item": [1, 1, 2], "n": [3, 2, 1]})
    >>> interactions_from_dataframe(plays, value="n").rating  # doctest: +SKIP
    array([5., 1.])
    """
    validate_choice("duplicates", duplicates, _DUPLICATES)
    frame, column = _clean(df, user, item, value)
    zero = frame[column].to_numpy() == 0
    if zero.any():
        warnings.warn(
            f"dropped {int(zero.sum())} row(s) whose {column!r} is 0 (a zero count is no "
            "interaction)",
            UserWarning,
            stacklevel=2,
        )
        frame = frame[~zero]
        if len(frame) == 0:
            raise ValueError(f"every row has {column!r} = 0: no interaction left")
    frame = _combine(frame, user, item, column, duplicates)
    high = max(float(frame[column].max()), 1.0)
    # values are > 0 and at most `high` here, so this re-check cannot fail; it encodes the ids
    data = RatingsData.from_dataframe(
        frame, user=user, item=item, rating=column, scale=(0.0, high), users=users, items=items
    )
    return dataclasses.replace(data, scale=IMPLICIT_SCALE)


def as_implicit(data: RatingsData, value: Literal["one", "rating"] = "one") -> RatingsData:
    """Turn rating data into implicit feedback: every rated pair is a choice.

    Parameters
    ----------
    data : RatingsData
        Ratings (e.g. MovieLens); never modified.
    value : {"one", "rating"}
        The value of each pair: 1 (every choice alike) or its rating (a higher rating,
        a higher confidence; ratings must then be > 0).

    Returns
    -------
    RatingsData
        The same pairs and encoders, ``rating`` = the values, scale `IMPLICIT_SCALE`.

    Raises
    ------
    TypeError
        ``data`` is not a `RatingsData`.
    ValueError
        A bad ``value``, or with ``value="rating"`` a rating that is not > 0 (named).
    """
    if not isinstance(data, RatingsData):
        raise TypeError(f"data must be a RatingsData, got {type(data).__name__}")
    validate_choice("value", value, _VALUES)
    values = np.ones(data.n_ratings) if value == "one" else np.asarray(data.rating, dtype=np.float64)
    bad = np.flatnonzero(values <= 0)
    if bad.size:
        raise ValueError(
            f"value='rating' needs ratings > 0, but rating {float(values[bad[0]])!r} at position "
            f"{int(bad[0])} is not ({bad.size} such ratings); use value='one'"
        )
    return RatingsData(data.user_idx, data.item_idx, values, IMPLICIT_SCALE, data.users, data.items)


def _clean(df: Any, user: str, item: str, value: str | None) -> tuple[pd.DataFrame, str]:
    """Columns checked, ids cleaned, values numeric, finite and >= 0: a new frame and the value column."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"interactions must be a pandas DataFrame, got {type(df).__name__}")
    names = [user, item] if value is None else [user, item, value]
    if len(set(names)) < len(names):
        raise ValueError(f"user, item and value must be different columns, got {names!r}")
    available: list[Any] = list(df.columns)
    for name in names:
        if name not in df.columns:
            raise ValueError(f"column {name!r} not found; the DataFrame has columns {available!r}")
        if available.count(name) > 1:
            raise ValueError(f"column {name!r} appears {available.count(name)} times")
    if len(df) == 0:
        raise ValueError("the interactions DataFrame is empty (0 rows)")
    column = value if value is not None else "value"
    while value is None and column in (user, item):
        column = f"_{column}"
    values = np.ones(len(df)) if value is None else _numeric_ratings(df[value], value)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"value {float(values[pos])!r} in row {_py(df.index[pos])!r} (column {value!r}) is "
            f"negative or not finite; counts and weights must be finite and >= 0 "
            f"({int(bad.sum())} such row(s))"
        )
    frame = pd.DataFrame(
        {user: _check_ids(df[user].copy(), user), item: _check_ids(df[item].copy(), item)}, index=df.index
    )
    frame[column] = values
    return frame, column


def _combine(frame: pd.DataFrame, user: str, item: str, column: str, duplicates: str) -> pd.DataFrame:
    """One row per (user, item): values summed or maxed (first row's position), or an error."""
    repeated = frame.duplicated(subset=[user, item], keep=False)
    if not repeated.any():
        return frame
    if duplicates == "raise":
        pos = int(np.flatnonzero(repeated.to_numpy())[0])
        pair = (frame[user].iloc[pos], frame[item].iloc[pos])
        same = (frame[user] == pair[0]) & (frame[item] == pair[1])
        raise ValueError(
            f"duplicate (user, item) pair {_py(pair[0])!r}, {_py(pair[1])!r} in rows "
            f"{frame.index[same.to_numpy()].tolist()!r} ({int(repeated.sum())} rows are in repeated "
            "pairs); pass duplicates='sum' (counts add up) or duplicates='max'"
        )
    first = frame[~frame.duplicated(subset=[user, item], keep="first")].copy()
    combined = frame.groupby([user, item], sort=False)[column].agg(duplicates)  # type: ignore[call-overload]
    first[column] = combined.reindex(pd.MultiIndex.from_arrays([first[user], first[item]])).to_numpy()
    return first
