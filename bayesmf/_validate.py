"""Validators for user input, in one place.

Every check raises ``ValueError`` or ``TypeError`` whose message names the bad value; none
uses ``assert``. Library modules call these instead of writing their own checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "validate_choice",
    "validate_positive",
    "validate_positive_int",
    "validate_prob",
    "validate_ratings_frame",
    "validate_scale",
]


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
    user: str,
    item: str,
    rating: str,
    scale: Any,
    duplicates: str,
) -> pd.DataFrame:
    """Check a ratings table and return a cleaned copy (the caller's frame is untouched).

    See `bayesmf.RatingsData.from_dataframe` for the rules.
    """
    raise NotImplementedError  # filled in by the data-layer work (issue 2)
