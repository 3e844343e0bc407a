r"""Side information as numbers: user or item features encoded into a dense matrix.

`Features.from_frame` reads a pandas frame keyed by raw id (its index, or an id column)
and encodes each column by its kind, remembered in a `FeatureEncoder` so that new rows
(cold start) are encoded the same way later:

- numeric columns (bool included) are standardized, :math:`(x - \text{centre}) /
  \text{scale}` with the centre and scale (population sd; 1 for a constant column) of the
  frame the encoder was fitted on;
- categorical columns (strings, pandas categoricals, anything not numeric) become one 0/1
  indicator per level, **dropping no level**. The feature prior of
  `bayesmf.inference.gibbs.priors.FeatureFactors` puts a proper Gaussian prior on every
  weight, so the full set is identified with the intercept, and every level gets the same
  prior (a reference level would get a different one, and which level it is would change
  the model);
- multi-valued columns (``multi=``, or any column holding lists, tuples or sets), such as
  genres ``"Action|Comedy"``, become one 0/1 indicator per value seen.

Encoded columns are named ``"age"``, ``"gender=F"``, ``"genres=Comedy"``.

Bad input raises ``ValueError`` naming what is wrong: a NaN, None or infinite value (the
column and the id), a duplicate id, and, when new rows are encoded, a category the
encoder has not seen (``unknown="raise"``, the default; ``unknown="zero"`` gives it all-zero
indicators, the prior mean of an average level). Attaching features to ratings
(`bayesmf.data.RatingsData.with_features`) refuses ids of the ratings that have no features
(the one policy: the error names examples) and a frame none of whose ids are in the ratings;
rows for ids the ratings lack are kept, for later cold start. Nothing passed in is modified.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayesmf.ids import IdEncoder, _as_id_array, _readonly, _scalar

__all__ = ["ColumnCode", "FeatureEncoder", "Features"]

Kind = Literal["numeric", "categorical", "multi"]
UnknownPolicy = Literal["raise", "zero"]
_KINDS = ("numeric", "categorical", "multi")


@dataclass(frozen=True)
class ColumnCode:
    """How one column of a feature frame is encoded (JSON-able through `FeatureEncoder`)."""

    name: str
    kind: Kind
    levels: tuple[Any, ...] = ()  # categorical and multi: the indicator columns, in order
    center: float = 0.0  # numeric
    scale: float = 1.0  # numeric
    sep: str = "|"  # multi: the separator of a string of values

    @property
    def names(self) -> list[str]:
        """Names of the encoded columns this column becomes."""
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}={level}" for level in self.levels]


def _is_listlike(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _values_of(code: ColumnCode, value: Any) -> list[Any]:
    """Return the values of one cell of a multi-valued column (a list, or a string split on ``sep``)."""
    if _is_listlike(value):
        return [_scalar(v) for v in value]
    if isinstance(value, str):
        return [part for part in value.split(code.sep) if part]
    return [_scalar(value)]


def _bad_cell(column: str, ids: Sequence[Any], where: np.ndarray, what: str) -> ValueError:
    at = np.flatnonzero(where)
    shown = [_scalar(ids[i]) for i in at[:5]]
    more = f" and {at.size - 5} more" if at.size > 5 else ""
    return ValueError(f"feature column {column!r} has {what} for id(s) {shown!r}{more}")


def _check_cells(column: str, series: pd.Series, ids: Sequence[Any]) -> None:
    cells = series.tolist()
    missing = np.array([not _is_listlike(v) and _missing(v) for v in cells], dtype=bool)
    if missing.any():
        raise _bad_cell(column, ids, missing, "missing values (NaN/None)")


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)


@dataclass(frozen=True)
class FeatureEncoder:
    """The encoding of a feature frame: one `ColumnCode` per column, in the frame's order."""

    columns: tuple[ColumnCode, ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, multi: Iterable[str] = (), sep: str = "|") -> FeatureEncoder:
        """Choose each column's encoding from ``frame`` (its index holds the ids; see the module docstring)."""
        multi = set(multi)
        unknown_multi = sorted(multi - {str(c) for c in frame.columns})
        if unknown_multi:
            raise ValueError(f"multi= names column(s) {unknown_multi} not in the frame (its columns: {list(frame.columns)})")
        ids = frame.index.tolist()
        codes = []
        for column in frame.columns:
            series = frame[column]
            name = str(column)
            _check_cells(name, series, ids)
            is_multi = name in multi or (series.dtype == object and any(_is_listlike(v) for v in series.tolist()))
            if is_multi:
                code = ColumnCode(name, "multi", sep=sep)
                seen = {v for cell in series.tolist() for v in _values_of(code, cell)}
                codes.append(ColumnCode(name, "multi", levels=tuple(_sorted(seen)), sep=sep))
            elif _numeric(series):
                values = series.to_numpy(dtype=np.float64)
                if not np.all(np.isfinite(values)):
                    raise _bad_cell(name, ids, ~np.isfinite(values), "infinite values")
                sd = float(values.std()) if values.size else 0.0
                center = float(values.mean()) if values.size else 0.0
                codes.append(ColumnCode(name, "numeric", center=center, scale=sd if sd > 0 else 1.0))
            else:
                levels = series.cat.categories.tolist() if isinstance(series.dtype, pd.CategoricalDtype) else series.tolist()
                codes.append(ColumnCode(name, "categorical", levels=tuple(_sorted({_scalar(v) for v in levels}))))
        if not codes:
            raise ValueError("the feature frame has no feature columns")
        return cls(tuple(codes))

    @property
    def names(self) -> list[str]:
        """Names of the encoded columns, in order."""
        return [name for code in self.columns for name in code.names]

    def transform(self, frame: pd.DataFrame, unknown: UnknownPolicy = "raise") -> np.ndarray:
        """Encode ``frame`` (index: the ids; the columns this encoder was fitted on) as (rows, features)."""
        if unknown not in ("raise", "zero"):
            raise ValueError(f"unknown={unknown!r} is not one of 'raise', 'zero'")
        absent = [c.name for c in self.columns if c.name not in {str(k) for k in frame.columns}]
        if absent:
            raise ValueError(f"the feature frame lacks column(s) {absent} (its columns: {list(frame.columns)})")
        by_name = {str(k): k for k in frame.columns}
        ids = frame.index.tolist()
        blocks = []
        for code in self.columns:
            series = frame[by_name[code.name]]
            _check_cells(code.name, series, ids)
            if code.kind == "numeric":
                if not _numeric(series):
                    raise ValueError(f"feature column {code.name!r} was numeric when encoded, got dtype {series.dtype}")
                values = series.to_numpy(dtype=np.float64)
                if not np.all(np.isfinite(values)):
                    raise _bad_cell(code.name, ids, ~np.isfinite(values), "infinite values")
                blocks.append(((values - code.center) / code.scale)[:, None])
                continue
            position = {level: k for k, level in enumerate(code.levels)}
            block = np.zeros((len(ids), len(code.levels)))
            for row, cell in enumerate(series.tolist()):
                cell_values = _values_of(code, cell) if code.kind == "multi" else [_scalar(cell)]
                for value in cell_values:
                    k = position.get(value)
                    if k is not None:
                        block[row, k] = 1.0
                    elif unknown == "raise":
                        raise ValueError(
                            f"feature column {code.name!r} has value {value!r} (id {_scalar(ids[row])!r}) that was not "
                            f"seen when the features were encoded (known: {list(code.levels)[:10]!r}); pass "
                            "unknown='zero' to encode it as no level"
                        )
            blocks.append(block)
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(ids), 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (inverse: `from_dict`)."""
        return {"columns": [
            {"name": c.name, "kind": c.kind, "levels": list(c.levels), "center": c.center, "scale": c.scale, "sep": c.sep}
            for c in self.columns
        ]}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> FeatureEncoder:
        """Inverse of `to_dict`."""
        codes = []
        for c in payload["columns"]:
            if c["kind"] not in _KINDS:
                raise ValueError(f"unknown feature column kind {c['kind']!r}; known: {_KINDS}")
            codes.append(ColumnCode(str(c["name"]), c["kind"], tuple(c["levels"]), float(c["center"]),
                                    float(c["scale"]), str(c["sep"])))
        return cls(tuple(codes))


def _sorted(values: Iterable[Any]) -> list[Any]:
    out = list(values)
    try:
        out.sort()
    except TypeError:  # mixed types: sort by text
        out.sort(key=str)
    return out


def _keyed(frame: pd.DataFrame, side: str, id_column: str | None) -> pd.DataFrame:
    """``frame`` indexed by its ids (a shallow copy), checked for duplicate and missing ids."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{side} features must be a pandas DataFrame, got {type(frame).__name__}")
    if id_column is not None:
        if id_column not in frame.columns:
            raise ValueError(f"id column {id_column!r} not in the {side} feature frame (its columns: {list(frame.columns)})")
        frame = frame.set_index(id_column)
    ids = pd.Index([_scalar(v) for v in frame.index.tolist()])
    if any(_missing(v) for v in ids):
        raise ValueError(f"the {side} feature frame has a missing id")
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"the {side} feature frame repeats id(s) {duplicated[:5]!r}: one row per {side}")
    return frame.set_axis(ids, axis=0)


@dataclass(frozen=True, eq=False)
class Features:
    """Encoded features of one side's rows, keyed by raw id.

    Attributes
    ----------
    side : str
        ``"user"`` or ``"item"``.
    encoder : FeatureEncoder
        How the columns were encoded (encode new rows with `Features.encode`).
    ids : IdEncoder
        The raw ids of the rows of ``values``.
    values : numpy.ndarray
        (rows, features) float64, read-only.
    """

    side: str
    encoder: FeatureEncoder
    ids: IdEncoder
    values: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _readonly(self.values, dtype=np.float64))
        if self.values.shape != (len(self.ids), len(self.encoder.names)):
            raise ValueError(
                f"feature values have shape {self.values.shape}, expected ({len(self.ids)}, {len(self.encoder.names)})"
            )
        if not np.all(np.isfinite(self.values)):
            raise ValueError(f"{self.side} feature values must be finite")

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, side: str = "user", *, id_column: str | None = None,
        multi: Iterable[str] = (), sep: str = "|",
    ) -> Features:
        """Encode a frame keyed by raw id (its index, or ``id_column``); see the module docstring."""
        keyed = _keyed(frame, side, id_column)
        encoder = FeatureEncoder.fit(keyed, multi=multi, sep=sep)
        return cls(side, encoder, IdEncoder(side, _id_array(keyed.index)), encoder.transform(keyed))

    def encode(self, frame: pd.DataFrame, *, id_column: str | None = None, unknown: UnknownPolicy = "raise") -> Features:
        """Encode new rows the way these were encoded (same columns, levels, centres and scales)."""
        keyed = _keyed(frame, self.side, id_column)
        return Features(self.side, self.encoder, IdEncoder(self.side, _id_array(keyed.index)),
                        self.encoder.transform(keyed, unknown))

    @property
    def names(self) -> list[str]:
        """Names of the encoded columns."""
        return self.encoder.names

    @property
    def n_features(self) -> int:
        """Number of encoded columns."""
        return int(self.values.shape[1])

    def __repr__(self) -> str:
        return f"Features({self.side}, {len(self.ids)} rows, {self.n_features} columns)"

    def rows_for(self, ids: IdEncoder | Sequence[Any] | np.ndarray) -> np.ndarray:
        """Return the rows of ``ids`` (an encoder's ids, in index order), (len(ids), features).

        Raises ``ValueError`` naming examples when some ids have no features, or when none do.
        """
        raw = ids.classes if isinstance(ids, IdEncoder) else np.asarray(ids, dtype=object)
        index = self.ids.to_index(raw, unknown="flag")
        missing = np.flatnonzero(index < 0)
        if missing.size:
            shown = [_scalar(raw[i]) for i in missing[:5]]
            hint = ""
            if missing.size == len(raw):
                have = [_scalar(v) for v in self.ids.classes[:3].tolist()]
                hint = f"; none matches (the features' ids look like {have!r}: same type?)"
            raise ValueError(
                f"no {self.side} features for {missing.size} of {len(raw)} {self.side} id(s), e.g. {shown!r}"
                f"{hint}: give every {self.side} of the ratings a row"
            )
        return self.values[index]

    def append(self, other: Features) -> Features:
        """Return these rows and ``other``'s (encoded with the same encoder; ids must be new)."""
        if other.encoder != self.encoder:
            raise ValueError("the features to append were encoded differently (use Features.encode)")
        both = [*self.ids.classes.tolist(), *other.ids.classes.tolist()]
        return Features(self.side, self.encoder, IdEncoder(self.side, _id_array(both)),
                        np.concatenate([self.values, other.values]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (inverse: `from_dict`)."""
        return {"side": self.side, "encoder": self.encoder.to_dict(), "ids": json.loads(self.ids.to_json())["classes"],
                "values": self.values.tolist()}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Features:
        """Inverse of `to_dict`."""
        side = str(payload["side"])
        encoder = FeatureEncoder.from_dict(payload["encoder"])
        values = np.asarray(payload["values"], dtype=np.float64).reshape(len(payload["ids"]), len(encoder.names))
        return cls(side, encoder, IdEncoder(side, _id_array(payload["ids"])), values)


def _id_array(ids: Iterable[Any]) -> np.ndarray:
    return _as_id_array([_scalar(v) for v in ids])
