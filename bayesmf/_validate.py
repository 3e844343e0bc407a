"""Validators for user input, in one place.

Every check raises ``ValueError`` or ``TypeError`` whose message names the bad value; none
uses ``assert``. Library modules call these instead of writing their own checks.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "reject_first_bad",
    "validate_bool",
    "validate_choice",
    "validate_in_scale",
    "validate_positive",
    "validate_positive_int",
    "validate_prob",
    "validate_probabilities",
    "validate_ratings_frame",
    "validate_scale",
]


def reject_first_bad(name: str, values: np.ndarray, bad: np.ndarray, need: str) -> None:
    """Raise a ``ValueError`` naming the first of ``values`` where ``bad`` holds, and how many do."""
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{pos}] = {float(values[pos])!r} must be {need} ({int(bad.sum())} such value(s))")


def validate_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not valid; choose one of {listed}")
    return value


def validate_positive(name: str, value: Any, allow_none: bool = False) -> float | None:
    """Return ``value`` as a float if it is finite and > 0."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def validate_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def validate_prob(value: Any, name: str = "prob") -> float:
    """Return ``value`` if it is a probability strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def validate_open_interval(name: str, value: Any, low: float, high: float) -> float:
    """Return ``value`` as a float if it is a number strictly between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in ({low:g}, {high:g}), got {value!r}")
    if not low < float(value) < high:  # NaN fails here too
        raise ValueError(f"{name} must lie strictly between {low:g} and {high:g}, got {value!r}")
    return float(value)


def validate_probabilities(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a float array if every one lies in [0, 1] (NaN does not), else name the first bad one."""
    p = np.asarray(values, dtype=np.float64)
    flat = p.ravel()
    reject_first_bad(name, flat, ~((flat >= 0) & (flat <= 1)), "a probability in [0, 1]")
    return p


def validate_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False (numpy bools included), else a ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def validate_in_scale(name: str, value: Any, scale: tuple[float, float]) -> float:
    """Return ``value`` as a float if it is a finite number in the closed interval ``scale``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number on the rating scale, got {value!r}")
    low, high = scale
    if not (math.isfinite(float(value)) and low <= float(value) <= high):
        raise ValueError(f"{name}={value!r} is outside the rating scale [{low:g}, {high:g}]")
    return float(value)


def validate_scale(scale: Any) -> tuple[float, float]:
    """Return ``(low, high)`` as floats if finite with low < high."""
    try:
        low, high = (float(s) for s in scale)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scale must be a pair of numbers (low, high), got {scale!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"scale must satisfy low < high (both finite), got {scale!r}")
    return low, high


def validate_ratings_frame(
    df: Any,
    user: Hashable,
    item: Hashable,
    rating: Hashable,
    scale: Any,
    duplicates: str = "raise",
) -> pd.DataFrame:
    """Check a ratings table and return a cleaned copy (the caller's frame is untouched).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per rating.
    user, item, rating : hashable
        Column names of the raw user id, raw item id and rating.
    scale : tuple of float
        ``(low, high)``; every rating must lie in the closed interval.
    duplicates : {"raise", "mean", "last"}
        Repeated (user, item) pairs: raise, keep their mean rating, or keep the last row.

    Returns
    -------
    pandas.DataFrame
        A new frame with exactly the columns ``user``, ``item``, ``rating`` (float64) and
        the caller's row labels (of the kept rows). Ids that are floats with integral values
        (as pandas reads an integer column holding a gap) become int64.

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame; the rating column is not numeric; an id is a
        non-integral float; ``scale`` is not a pair of numbers.
    ValueError
        A missing or repeated column name, an empty frame, a missing id, a NaN/inf rating,
        a rating outside ``scale``, a bad scale, a bad ``duplicates`` or a duplicate pair
        (with ``duplicates="raise"``). Each message names the offending value and its row
        label.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"ratings must be a pandas DataFrame, got {type(df).__name__}")
    low, high = validate_scale(scale)
    validate_choice("duplicates", duplicates, ("raise", "mean", "last"))
    roles = {"user": user, "item": item, "rating": rating}
    if len({user, item, rating}) < 3:
        raise ValueError(f"user, item and rating must be three different columns, got {roles!r}")
    available: list[Any] = list(df.columns)
    for role, column in roles.items():
        if column not in df.columns:
            raise ValueError(
                f"{role} column {column!r} not found; the DataFrame has columns {available!r}"
            )
        if available.count(column) > 1:
            raise ValueError(f"{role} column {column!r} appears {available.count(column)} times")
    if len(df) == 0:
        raise ValueError("the ratings DataFrame is empty (0 rows)")

    # a new frame built from the three columns: nothing below can touch the caller's data
    frame = pd.DataFrame(
        {user: df[user].copy(), item: df[item].copy(), rating: df[rating].copy()}, index=df.index
    )
    for column in (user, item):
        frame[column] = _check_ids(frame[column], column)
    values = _numeric_ratings(frame[rating], rating)

    bad = ~np.isfinite(values)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"rating {float(values[pos])!r} in row {_py(frame.index[pos])!r} (column {rating!r}) is not "
            f"finite; {int(bad.sum())} row(s) have NaN or infinite ratings: drop them first"
        )
    outside = (values < low) | (values > high)
    if outside.any():
        pos = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"rating {float(values[pos])!r} in row {_py(frame.index[pos])!r} (column {rating!r}) is "
            f"outside the scale ({low:g}, {high:g}); {int(outside.sum())} row(s) are outside: "
            "pass the right scale=(low, high)"
        )
    frame[rating] = values

    repeated = frame.duplicated(subset=[user, item], keep=False)
    if repeated.any():
        if duplicates == "raise":
            pos = int(np.flatnonzero(repeated.to_numpy())[0])
            pair = (frame[user].iloc[pos], frame[item].iloc[pos])
            same = (frame[user] == pair[0]) & (frame[item] == pair[1])
            rows = frame.index[same.to_numpy()].tolist()
            raise ValueError(
                f"duplicate (user, item) pair {_py(pair[0])!r}, {_py(pair[1])!r} in rows "
                f"{rows!r} ({int(repeated.sum())} rows are in repeated pairs); pass "
                "duplicates='mean' or duplicates='last' to combine them"
            )
        if duplicates == "last":
            frame = frame[~frame.duplicated(subset=[user, item], keep="last")]
        else:  # mean, one row per pair at the position (and label) of its first occurrence
            first = frame[~frame.duplicated(subset=[user, item], keep="first")]
            means = frame.groupby([user, item], sort=False)[rating].mean()  # type: ignore[call-overload]
            keys = pd.MultiIndex.from_arrays([first[user], first[item]])
            first = first.copy()
            first[rating] = means.reindex(keys).to_numpy()
            frame = first
    return frame


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_ids(ids: pd.Series, column: Hashable) -> pd.Series:
    """Refuse missing ids; turn integral float ids into int64; refuse other floats."""
    missing = ids.isna().to_numpy()
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"missing id ({_py(ids.iloc[pos])!r}) in row {_py(ids.index[pos])!r} of column {column!r}; "
            f"{int(missing.sum())} row(s) have no id: drop or fill them first"
        )
    if pd.api.types.is_bool_dtype(ids.dtype):
        raise TypeError(f"ids in column {column!r} must be ints or strings, got booleans")
    if pd.api.types.is_float_dtype(ids.dtype):
        values = ids.to_numpy(dtype=np.float64)
        fractional = values != np.round(values)
        if fractional.any() or not np.isfinite(values).all():
            pos = int(np.flatnonzero(fractional | ~np.isfinite(values))[0])
            raise TypeError(
                f"id {float(values[pos])!r} in row {_py(ids.index[pos])!r} of column {column!r} is not an "
                "int or a string"
            )
        return pd.Series(values.astype(np.int64), index=ids.index, name=ids.name)
    return ids


def _numeric_ratings(ratings: pd.Series, column: Hashable) -> np.ndarray:
    """Ratings as float64, or a TypeError naming the first value that is not a number."""
    dtype = ratings.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and ratings.isna().any():
            # nullable ints/floats: pd.NA cannot become float64, report it as missing
            pos = int(np.flatnonzero(ratings.isna().to_numpy())[0])
            raise ValueError(
                f"rating {_py(ratings.iloc[pos])!r} in row {_py(ratings.index[pos])!r} (column "
                f"{column!r}) is missing; drop those rows first"
            )
        return ratings.to_numpy(dtype=np.float64, copy=True)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        values = [np.nan if v is None or v is pd.NA else v for v in ratings.tolist()]
        ok = [
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_))
            for v in values
        ]
        if all(ok):
            return np.asarray(values, dtype=np.float64)
        pos = ok.index(False)
    else:
        pos = 0
    value = _py(ratings.iloc[pos])
    raise TypeError(
        f"rating column {column!r} must be numeric (dtype {dtype}); row {_py(ratings.index[pos])!r} "
        f"holds {value!r} ({type(value).__name__}): convert it with pd.to_numeric first"
    )
