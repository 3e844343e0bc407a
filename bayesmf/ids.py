"""Raw user/item ids and the dense indices ``0..n-1`` that stand for them (`IdEncoder`).

Raw ids (ints or strings, not necessarily contiguous) are mapped to dense indices by an
`IdEncoder`; an id the encoder has never seen raises `UnknownIdError`. Two
`bayesmf.RatingsData` that share encoders (a train/test split) use the same indices.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["IdEncoder", "UnknownIdError"]


def _readonly(array: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Return a read-only array with these values, never freezing (or aliasing) the caller's array.

    An array that is already read-only and owns its data is shared (it is one of ours, or
    frozen on purpose); anything else is copied, so the caller's array stays writable and
    later writes to it cannot change ours.
    """
    array = np.asarray(array, dtype=dtype)
    if array.flags.writeable or array.base is not None or not array.flags.c_contiguous:
        array = np.array(array, dtype=dtype, order="C", copy=True)
    array.setflags(write=False)
    return array


class UnknownIdError(KeyError, ValueError):
    """A raw user/item id that the encoder has never seen (a `KeyError` and a `ValueError`)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _as_id_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Raw ids as int64 when they are all integers, else as an object array."""
    items = [_scalar(v) for v in (values.tolist() if isinstance(values, np.ndarray) else values)]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=np.int64)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


@dataclass(frozen=True, eq=False)
class IdEncoder:
    """Bijection between raw ids (ints or strings) and dense indices ``0..n-1``.

    Parameters
    ----------
    name : str
        What the ids are ("user" or "item"); used in error messages.
    classes : numpy.ndarray
        The raw ids; ``classes[i]`` is the raw id of index ``i``.
    """

    name: str
    classes: np.ndarray
    _lookup: dict[Hashable, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        classes = np.asarray(self.classes)
        if classes.ndim != 1:
            raise ValueError(f"{self.name} ids must be one-dimensional, got shape {classes.shape}")
        classes = _as_id_array(classes)
        object.__setattr__(self, "classes", _readonly(classes))
        lookup = {raw: i for i, raw in enumerate(classes.tolist())}
        if len(lookup) != len(classes):
            repeated = pd.Series(classes.tolist()).loc[lambda c: c.duplicated()].iloc[0]
            raise ValueError(
                f"{self.name} ids passed to IdEncoder are not unique: {repeated!r} repeats"
            )
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def fit(cls, name: str, raw_ids: Iterable[Any]) -> IdEncoder:
        """Build an encoder over the distinct raw ids, in sorted order when sortable.

        Ids of mixed types (ints and strings) cannot be sorted and keep first-seen order.
        """
        return cls(name, _sorted_unique(raw_ids))

    def __len__(self) -> int:
        return len(self.classes)

    def __contains__(self, raw: object) -> bool:
        return _scalar(raw) in self._lookup

    def to_index(
        self, raw_ids: Iterable[Any], unknown: Literal["raise", "flag"] = "raise"
    ) -> np.ndarray:
        """Map raw ids to indices.

        Parameters
        ----------
        raw_ids : iterable
            Raw ids to encode.
        unknown : {"raise", "flag"}
            ``"raise"``: an id never seen raises ``KeyError`` naming it; ``"flag"``: it maps
            to ``-1``.

        Returns
        -------
        numpy.ndarray
            int64 indices.
        """
        if unknown not in ("raise", "flag"):
            raise ValueError(f"unknown={unknown!r} is not one of 'raise', 'flag'")
        values = (
            raw_ids.tolist()
            if isinstance(raw_ids, (np.ndarray, pd.Series, pd.Index))
            else list(raw_ids)
        )
        lookup = self._lookup
        out = np.fromiter(
            (lookup.get(_scalar(v), -1) for v in values), dtype=np.int64, count=len(values)
        )
        if unknown == "raise" and (out < 0).any():
            missing = np.flatnonzero(out < 0)
            bad = [_scalar(values[i]) for i in missing[:5]]
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise UnknownIdError(
                f"unknown {self.name} id(s) {bad!r}{more} (not seen when the encoder was built)"
            )
        return out

    def to_raw(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        """Map indices back to raw ids."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            bad = index[(index < 0) | (index >= len(self))][0]
            raise IndexError(f"{self.name} index {int(bad)} out of range 0..{len(self) - 1}")
        return self.classes[index]

    def extend(self, raw_ids: Iterable[Any]) -> IdEncoder:
        """Return a new encoder with ``raw_ids`` not yet known appended (indices kept).

        The new ids are appended in sorted order (first-seen order if unsortable); the
        result is int64 when every id is an integer.
        """
        new = [v for v in _sorted_unique(raw_ids).tolist() if v not in self]
        if not new:
            return self
        return IdEncoder(self.name, _as_id_array([*self.classes.tolist(), *new]))

    def to_json(self) -> str:
        """Serialize to JSON (ids keep their int/str type)."""
        return json.dumps(
            {"name": self.name, "classes": [_scalar(c) for c in self.classes.tolist()]}
        )

    @classmethod
    def from_json(cls, text: str) -> IdEncoder:
        """Inverse of `to_json`."""
        payload = json.loads(text)
        return cls(payload["name"], _as_id_array(payload["classes"]))

    def equals(self, other: IdEncoder) -> bool:
        """Return True when both encoders map the same raw ids to the same indices."""
        return self is other or (
            len(self) == len(other) and self.classes.tolist() == other.classes.tolist()
        )


def _scalar(value: Any) -> Any:
    """Normalize numpy scalars so ``np.int64(3)`` and ``3`` are the same key."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _sorted_unique(raw_ids: Iterable[Any]) -> np.ndarray:
    """Distinct raw ids (as `_as_id_array`), sorted, or in first-seen order if unsortable."""
    values = (
        raw_ids.tolist()
        if isinstance(raw_ids, (np.ndarray, pd.Series, pd.Index))
        else list(raw_ids)
    )
    unique = list(dict.fromkeys(_scalar(v) for v in values))
    try:
        unique.sort()
    except TypeError:  # ints mixed with strings
        pass
    return _as_id_array(unique)
