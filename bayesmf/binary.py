"""Binary feedback for ``PMF(likelihood="bernoulli")``: 0/1 data, or ratings cut at a threshold.

`binarize` turns ratings into thumbs up (1: rating >= threshold) and thumbs down (0), as a
`bayesmf.data.RatingsData` on the scale (0, 1) or a copy of a ratings frame;
`check_binary` is the check every inference route runs on the data of a Bernoulli model
(`bayesmf.inference._contract.check_inputs`).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import pandas as pd

from bayesmf.data import RatingsData

__all__ = ["BINARY_SCALE", "binarize", "check_binary"]

#: the scale of binary data: every value 0 or 1
BINARY_SCALE = (0.0, 1.0)


def check_binary(data: RatingsData) -> None:
    """Raise ``ValueError`` naming the first value that is neither 0 nor 1, with its row and ids.

    Parameters
    ----------
    data : RatingsData
        The training data of a ``likelihood="bernoulli"`` model.
    """
    rating = np.asarray(data.rating)
    bad = np.flatnonzero((rating != 0.0) & (rating != 1.0))
    if bad.size:
        row = int(bad[0])
        user = data.users.to_raw(data.user_idx[row : row + 1]).tolist()[0]
        item = data.items.to_raw(data.item_idx[row : row + 1]).tolist()[0]
        raise ValueError(
            f"likelihood='bernoulli' needs every value 0 or 1, but row {row} (user {user!r}, item "
            f"{item!r}) holds {float(rating[row])!r} ({bad.size} such rows); cut ratings at a "
            "threshold first: bayesmf.binarize(data, threshold=4)"
        )


def _check_threshold(threshold: float, low: float, high: float) -> float:
    value = float(threshold)
    if not np.isfinite(value) or not low < value <= high:
        raise ValueError(
            f"threshold={threshold!r} must lie in ({low:g}, {high:g}] of the rating scale, so that "
            "some rating could fall on either side of it"
        )
    return value


@overload
def binarize(data: RatingsData, threshold: float, *, rating_col: str = "rating") -> RatingsData: ...
@overload
def binarize(data: pd.DataFrame, threshold: float, *, rating_col: str = "rating") -> pd.DataFrame: ...


def binarize(
    data: RatingsData | pd.DataFrame, threshold: float, *, rating_col: str = "rating"
) -> RatingsData | pd.DataFrame:
    """Cut ratings at ``threshold``: 1 (liked) if rating >= threshold, else 0.

    Parameters
    ----------
    data : RatingsData or pandas.DataFrame
        Ratings. A `RatingsData` gives a `RatingsData` with the same ids and encoders (a
        train/test split stays aligned) on the scale `BINARY_SCALE`; a frame gives a copy
        whose ``rating_col`` holds the 0/1 values (read it with
        ``RatingsData.from_dataframe(..., scale=(0, 1))``). Never modified.
    threshold : float
        The lowest rating that counts as a like. A `RatingsData` needs it in
        ``(low, high]`` of its scale.
    rating_col : str
        Column of the ratings in a frame.

    Returns
    -------
    RatingsData or pandas.DataFrame

    Raises
    ------
    ValueError
        A threshold outside the scale, or a frame without ``rating_col`` or with missing
        ratings (named).
    """
    if isinstance(data, RatingsData):
        low, high = data.scale
        cut = _check_threshold(threshold, low, high)
        liked = (np.asarray(data.rating) >= cut).astype(np.float64)
        return RatingsData(data.user_idx, data.item_idx, liked, BINARY_SCALE, data.users, data.items)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a RatingsData or a pandas DataFrame, got {type(data).__name__}")
    if rating_col not in data.columns:
        raise ValueError(f"the frame has no column {rating_col!r} (columns: {list(data.columns)})")
    values = pd.to_numeric(data[rating_col], errors="raise").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        row = data.index[int(np.flatnonzero(np.isnan(values))[0])]
        raise ValueError(f"column {rating_col!r} is missing a rating at row {row!r}")
    cut = _check_threshold(threshold, float(values.min()) - 1.0, float(values.max()))
    out = data.copy()
    out[rating_col] = (values >= cut).astype(np.float64)
    return out
