"""(user, item) pairs asked about: raw ids -> the model's indices, unknown ids, flags."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf.data import RatingsData, UnknownIdError
from bayesmf.predictive.cold import unknown_rows

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["Pairs", "frame", "py_value", "resolve_pairs"]


@dataclass(frozen=True, eq=False)
class Pairs:
    """Pairs in input order: raw ids, indices (-1: unknown to the model), flags."""

    user: np.ndarray  # raw ids
    item: np.ndarray
    uidx: np.ndarray  # int64, -1 for an id the model does not know
    iidx: np.ndarray
    rating: np.ndarray | None
    new_user: np.ndarray  # unknown or no training rating
    new_item: np.ndarray
    user_code: np.ndarray  # per pair: 0.. over the distinct unknown users (-1 when known)
    item_code: np.ndarray
    # the model's indices, when uidx/iidx index a gathered part of the draws (`localized`)
    user_key: np.ndarray | None = None
    item_key: np.ndarray | None = None
    # encoded features of the unknown ids, by code (a model with features on that side; `cold`)
    user_x: np.ndarray | None = None
    item_x: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.uidx)

    @property
    def keys(self) -> tuple[np.ndarray, np.ndarray]:
        """The model's user and item indices (-1 unknown): what a pair's seeds are keyed by."""
        return (
            self.uidx if self.user_key is None else self.user_key,
            self.iidx if self.item_key is None else self.item_key,
        )

    def localized(self, uidx: np.ndarray, iidx: np.ndarray) -> Pairs:
        """Return the pairs with indices ``uidx``, ``iidx`` into a gathered part of the draws.

        Their seeds stay keyed by the model's indices (`keys`), so every number is the one
        the whole posterior gives.
        """
        user_key, item_key = self.keys
        return replace(self, uidx=uidx, iidx=iidx, user_key=user_key, item_key=item_key)

    @property
    def unknown(self) -> np.ndarray:
        """Pairs with a user or an item the model does not know."""
        return (self.uidx < 0) | (self.iidx < 0)

    def subset(self, rows: np.ndarray) -> Pairs:
        """Return the pairs at ``rows`` (unknown ids keep their codes, hence their seeds)."""
        return Pairs(
            user=self.user[rows],
            item=self.item[rows],
            uidx=self.uidx[rows],
            iidx=self.iidx[rows],
            rating=None if self.rating is None else self.rating[rows],
            new_user=self.new_user[rows],
            new_item=self.new_item[rows],
            user_code=self.user_code[rows],
            item_code=self.item_code[rows],
            user_key=None if self.user_key is None else self.user_key[rows],
            item_key=None if self.item_key is None else self.item_key[rows],
            user_x=self.user_x,
            item_x=self.item_x,
        )


def py_value(value: Any) -> Any:
    """Return a numpy scalar as the Python scalar it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _codes(raw: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Give the distinct unknown ids codes 0, 1, ... by first appearance (-1 marks a known id)."""
    codes = np.full(len(raw), -1, dtype=np.int64)
    if unknown.any():
        seen: dict[Any, int] = {}
        for pos in np.flatnonzero(unknown).tolist():
            codes[pos] = seen.setdefault(py_value(raw[pos]), len(seen))
    return codes


def _raw_ids(
    result: FitResult, data: Any, user_col: str, item_col: str, rating_col: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Raw ids, the model's indices (-1 unknown) and the ratings (if any) of ``data``."""
    train = result.train
    if isinstance(data, RatingsData):
        if data.users.equals(train.users) and data.items.equals(train.items):
            uidx = np.asarray(data.user_idx, dtype=np.int64)
            iidx = np.asarray(data.item_idx, dtype=np.int64)
            user_raw = train.users.to_raw(uidx)
            item_raw = train.items.to_raw(iidx)
        else:  # other encoders: go through the raw ids
            user_raw = data.users.to_raw(data.user_idx)
            item_raw = data.items.to_raw(data.item_idx)
            uidx = train.users.to_index(user_raw, unknown="flag")
            iidx = train.items.to_index(item_raw, unknown="flag")
        return user_raw, item_raw, uidx, iidx, np.asarray(data.rating, dtype=np.float64)
    if isinstance(data, pd.DataFrame):
        missing = [c for c in (user_col, item_col) if c not in data.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} not in the frame (its columns: {list(data.columns)}); "
                "name the id columns with user_col=/item_col="
            )
        user_raw = data[user_col].to_numpy()
        item_raw = data[item_col].to_numpy()
        uidx = train.users.to_index(user_raw, unknown="flag")
        iidx = train.items.to_index(item_raw, unknown="flag")
        rating = None
        if rating_col is not None and rating_col in data.columns:
            rating = pd.to_numeric(data[rating_col]).to_numpy(dtype=np.float64)
        return user_raw, item_raw, uidx, iidx, rating
    raise TypeError(
        "data must be a RatingsData or a pandas DataFrame of (user, item) ids, got "
        f"{type(data).__name__}"
    )


def resolve_pairs(
    result: FitResult,
    data: Any,
    *,
    unknown: str,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
) -> Pairs:
    """Resolve the pairs of ``data`` (a `RatingsData` or a frame of raw ids) against ``result``.

    Raises
    ------
    ValueError
        Missing id columns (named).
    TypeError
        ``data`` of another type.
    bayesmf.data.UnknownIdError
        An unknown id with ``unknown="raise"`` (a ``KeyError``; the message names it).
    ValueError
        An unknown id of a side with features whose features the model lacks
        (`bayesmf.predictive.cold`).
    """
    train = result.train
    user_raw, item_raw, uidx, iidx, rating = _raw_ids(result, data, user_col, item_col, rating_col)
    if unknown == "raise":
        for name, raw, idx, encoder in (("user", user_raw, uidx, train.users), ("item", item_raw, iidx, train.items)):
            if (idx < 0).any():
                bad = list(dict.fromkeys(py_value(v) for v in raw[idx < 0]))
                raise UnknownIdError(
                    f"unknown {name} id(s) {bad[:5]!r}{' and more' if len(bad) > 5 else ''}: not in "
                    f"the model's {encoder.name} encoder; pass unknown='prior' for prior predictions"
                )
    user_x, item_x = (
        unknown_rows(train, name, list(dict.fromkeys(py_value(v) for v in raw[idx < 0])))
        for name, raw, idx in (("user", user_raw, uidx), ("item", item_raw, iidx))
    )
    counts_u = train.user_counts()
    counts_i = train.item_counts()
    new_user = (uidx < 0) | (counts_u[np.maximum(uidx, 0)] == 0)
    new_item = (iidx < 0) | (counts_i[np.maximum(iidx, 0)] == 0)
    return Pairs(
        user=np.asarray(user_raw),
        item=np.asarray(item_raw),
        uidx=uidx,
        iidx=iidx,
        rating=rating,
        new_user=np.asarray(new_user, dtype=bool),
        new_item=np.asarray(new_item, dtype=bool),
        user_code=_codes(np.asarray(user_raw, dtype=object), uidx < 0),
        item_code=_codes(np.asarray(item_raw, dtype=object), iidx < 0),
        user_x=user_x,
        item_x=item_x,
    )


def frame(pairs: Pairs, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per pair: ``user``, ``item`` (, ``rating``), ``columns``, ``new_user``, ``new_item``."""
    out: dict[str, Any] = {"user": pairs.user, "item": pairs.item}
    if pairs.rating is not None:
        out["rating"] = pairs.rating
    out.update(columns)
    out["new_user"] = pairs.new_user
    out["new_item"] = pairs.new_item
    return pd.DataFrame(out)
