"""Validated ratings with dense user/item indices and the encoders that map raw ids back.

`RatingsData` is the only input type of the models. It is immutable: its arrays are
read-only and every transformation returns a new object. Raw ids (ints or strings, not
necessarily contiguous) are mapped to dense indices ``0..n-1`` by an `IdEncoder`
(`bayesmf.ids`, re-exported here with `UnknownIdError`); two `RatingsData` that share
encoders (a train/test split) use the same indices.

Besides the ratings a `RatingsData` may carry side information (``user_features``,
``item_features``) and extra implicit pairs (``implicit_pairs``: pairs known to exist without
their ratings, the *transductive* protocol of ``PMF(implicit_sets=...)``,
`bayesmf.implicit_sets`). Every transformation below keeps both (re-indexed by
`RatingsData.with_encoders`); only the constructor and `RatingsData.from_dataframe` start
without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from bayesmf.features import Features
from bayesmf.ids import IdEncoder, UnknownIdError, _readonly

__all__ = ["IdEncoder", "RatingsData", "UnknownIdError"]

DuplicatePolicy = Literal["raise", "mean", "last"]
_DUPLICATE_CHOICES = ("raise", "mean", "last")
# Rating grids tried, coarsest first, when inferring the discrete rating levels.
_LEVEL_STEPS = (1.0, 0.5, 0.25, 0.1)


@dataclass(frozen=True, eq=False)
class RatingsData:
    """Observed ratings, encoded.

    Use `RatingsData.from_dataframe` to build one from a table; the constructor checks only
    the structure (equal lengths, indices within the encoders, a valid scale), not the values.

    Attributes
    ----------
    user_idx, item_idx : numpy.ndarray
        Dense int64 indices of each rating's user and item (read-only).
    rating : numpy.ndarray
        float64 ratings (read-only).
    scale : tuple of float
        ``(low, high)`` bounds of the rating scale.
    users, items : IdEncoder
        Raw id <-> index maps; shared between the train and test parts of a split.
    user_features, item_features : Features, optional
        Side information (`bayesmf.features`): encoded features with a row for every id of
        the encoder (checked), attached by `RatingsData.with_features`; `feature_matrix`
        gives them in index order.
    implicit_pairs : tuple of numpy.ndarray, optional
        ``(user_idx, item_idx)``: extra (user, item) pairs known to exist without their
        ratings, added to the implicit sets of ``PMF(implicit_sets=...)`` (the
        *transductive* protocol; `bayesmf.implicit_sets.with_implicit_pairs` attaches them
        by raw id). Two int64 arrays of one length, indices within the encoders (checked),
        copied and read-only; pairs already rated, or repeated, count once in the sets.
        None (the default): the *strict* protocol. Kept by `with_features`,
        `without_features`, `subset` (the pairs that exist do not depend on which ratings are
        kept) and `with_encoders` (re-indexed); stored with a fit (`bayesmf.storage`).
    """

    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray
    scale: tuple[float, float]
    users: IdEncoder
    items: IdEncoder
    user_features: Features | None = None
    item_features: Features | None = None
    implicit_pairs: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        from bayesmf._validate import validate_scale

        for name in ("user_idx", "item_idx"):
            object.__setattr__(self, name, _readonly(getattr(self, name), dtype=np.int64))
        object.__setattr__(self, "rating", _readonly(self.rating, dtype=np.float64))
        object.__setattr__(self, "scale", validate_scale(self.scale))
        # cheap structural checks only; the values are checked by from_dataframe
        shapes = {a.shape for a in (self.user_idx, self.item_idx, self.rating)}
        if len(shapes) != 1 or self.rating.ndim != 1:
            raise ValueError(
                "user_idx, item_idx and rating must be 1-d arrays of one length, got shapes "
                f"{self.user_idx.shape}, {self.item_idx.shape}, {self.rating.shape}"
            )
        for name, idx, encoder in (
            ("user_idx", self.user_idx, self.users),
            ("item_idx", self.item_idx, self.items),
        ):
            if idx.size and (idx.min() < 0 or idx.max() >= len(encoder)):
                bad = int(idx[(idx < 0) | (idx >= len(encoder))][0])
                raise ValueError(
                    f"{name} holds {bad}, outside 0..{len(encoder) - 1} of its encoder"
                )
        for side in ("user", "item"):
            features = getattr(self, f"{side}_features")
            if features is not None:
                if not isinstance(features, Features) or features.side != side:
                    raise TypeError(f"{side}_features must be {side} Features, got {features!r}")
                features.rows_for(getattr(self, f"{side}s"))  # every id has a row, or an error naming some
        object.__setattr__(self, "implicit_pairs", _checked_pairs(self.implicit_pairs, self.users, self.items))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        user: str = "userId",
        item: str = "movieId",
        rating: str = "rating",
        scale: tuple[float, float] = (0.5, 5.0),
        duplicates: DuplicatePolicy = "raise",
        users: IdEncoder | None = None,
        items: IdEncoder | None = None,
    ) -> RatingsData:
        """Validate a ratings table and encode its ids.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per rating; never modified.
        user, item, rating : str
            Column names of the raw user id, raw item id and rating.
        scale : tuple of float
            ``(low, high)``: every rating must lie in this closed interval.
        duplicates : {"raise", "mean", "last"}
            What to do with repeated (user, item) pairs: raise (default), keep their mean,
            or keep the last one in row order.
        users, items : IdEncoder, optional
            Encoders to reuse (so indices agree with another dataset); ids they do not know
            are appended.

        Returns
        -------
        RatingsData

        Raises
        ------
        TypeError
            If ``df`` is not a DataFrame or the rating column is not numeric.
        ValueError
            On a missing column, an empty frame, a missing id, a NaN/inf rating, a rating
            outside ``scale``, a bad scale, or duplicate pairs with ``duplicates="raise"``;
            the message names the offending value and its row.
        """
        from bayesmf._validate import validate_ratings_frame

        frame = validate_ratings_frame(df, user, item, rating, scale, duplicates)
        users = (
            users.extend(frame[user]) if users is not None else IdEncoder.fit("user", frame[user])
        )
        items = (
            items.extend(frame[item]) if items is not None else IdEncoder.fit("item", frame[item])
        )
        return cls(
            user_idx=users.to_index(frame[user]),
            item_idx=items.to_index(frame[item]),
            rating=frame[rating].to_numpy(dtype=np.float64),
            scale=(float(scale[0]), float(scale[1])),
            users=users,
            items=items,
        )

    def with_features(
        self,
        user_features: pd.DataFrame | Features | None = None,
        item_features: pd.DataFrame | Features | None = None,
        *,
        user_id: str | None = None,
        item_id: str | None = None,
    ) -> RatingsData:
        """Return these ratings with side information attached (a new object).

        Parameters
        ----------
        user_features, item_features : pandas.DataFrame or Features, optional
            A frame keyed by raw id (its index, or the column ``user_id``/``item_id``),
            encoded by `bayesmf.features.Features.from_frame` (numeric columns
            standardized, categorical and list-valued columns as indicators; pass a
            `Features` built with ``multi=`` for ``"|"``-separated strings), or `Features`
            already encoded. Every id of the encoder needs a row; rows of other ids are
            kept (cold start). None keeps the current features of that side.

        Raises
        ------
        ValueError
            Ids of the ratings without features (the message names examples; none
            matching hints at the ids' type), NaN/inf values (naming column and id),
            repeated ids.
        """
        out = {}
        for side, given, id_column in (("user", user_features, user_id), ("item", item_features, item_id)):
            if given is None:
                out[side] = getattr(self, f"{side}_features")
            elif isinstance(given, Features):
                out[side] = given
            else:
                out[side] = Features.from_frame(given, side, id_column=id_column)
        return self._rebuild(self.user_idx, self.item_idx, self.rating, self.users, self.items, out)

    def without_features(self) -> RatingsData:
        """Return these ratings without side information (a new object; MAP, ALS and SGD need it).

        The implicit pairs, if any, are kept.
        """
        no_features: dict[str, Features | None] = {"user": None, "item": None}
        return self._rebuild(self.user_idx, self.item_idx, self.rating, self.users, self.items, no_features)

    def feature_matrix(self, side: str) -> np.ndarray | None:
        """Return the features of ``side`` ("user" or "item") in index order, (n, features); None without."""
        features = getattr(self, f"{side}_features")
        return None if features is None else features.rows_for(getattr(self, f"{side}s"))

    def _rebuild(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        rating: np.ndarray,
        users: IdEncoder,
        items: IdEncoder,
        features: dict[str, Features | None] | None = None,
    ) -> RatingsData:
        """Return new ratings with this scale, ``features`` (default: these) and the implicit pairs under ``users``/``items``."""
        features = features or {"user": self.user_features, "item": self.item_features}
        pairs = self.implicit_pairs
        if pairs is not None and not (users is self.users and items is self.items):
            pairs = (users.to_index(self.users.to_raw(pairs[0])), items.to_index(self.items.to_raw(pairs[1])))
        return RatingsData(
            user_idx, item_idx, rating, self.scale, users, items, features["user"], features["item"], pairs
        )

    # -- sizes --------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Number of users known to the encoder (may exceed those with ratings here)."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of items known to the encoder (may exceed those with ratings here)."""
        return len(self.items)

    @property
    def n_ratings(self) -> int:
        """Number of ratings."""
        return len(self.rating)

    def __len__(self) -> int:
        return self.n_ratings

    def __repr__(self) -> str:
        low, high = self.scale
        features = "".join(
            f", {f.n_features} {side} features"
            for side, f in (("user", self.user_features), ("item", self.item_features))
            if f is not None
        )
        if self.implicit_pairs is not None:
            features += f", {len(self.implicit_pairs[0])} implicit pairs"
        return (
            f"RatingsData({self.n_ratings} ratings, {self.n_users} users, "
            f"{self.n_items} items, scale {low:g}-{high:g}{features})"
        )

    # -- derived ------------------------------------------------------------------------
    @cached_property
    def levels(self) -> np.ndarray | None:
        """The discrete rating levels (e.g. 1..5 or 0.5..5 by 0.5), or None if continuous.

        Inferred as the coarsest grid from ``low`` to ``high`` (steps 1, 0.5, 0.25, 0.1) that
        holds every rating; None when no such grid does (continuous ratings).
        """
        low, high = self.scale
        for step in _LEVEL_STEPS:
            k = (self.rating - low) / step
            if np.all(np.abs(k - np.round(k)) <= 1e-9 * max(1.0, abs(high - low) / step)):
                n_levels = int(np.floor((high - low) / step + 1e-9)) + 1
                return _readonly(np.round(low + step * np.arange(n_levels), 10))
        return None

    def user_counts(self) -> np.ndarray:
        """Ratings per user index (length ``n_users``)."""
        return np.bincount(self.user_idx, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Ratings per item index (length ``n_items``)."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    def unseen(self, train: RatingsData) -> pd.DataFrame:
        """Flag each rating whose user or item has no rating in ``train``.

        Returns
        -------
        pandas.DataFrame
            Boolean columns ``new_user`` and ``new_item``, one row per rating.
        """
        self._check_same_encoders(train)
        return pd.DataFrame(
            {
                "new_user": train.user_counts()[self.user_idx] == 0,
                "new_item": train.item_counts()[self.item_idx] == 0,
            }
        )

    def subset(self, index: np.ndarray) -> RatingsData:
        """Return the ratings at ``index`` (positions or a boolean mask), with the same encoders, features and implicit pairs."""
        index = np.asarray(index)
        return self._rebuild(
            self.user_idx[index], self.item_idx[index], self.rating[index], self.users, self.items
        )

    def with_encoders(self, users: IdEncoder, items: IdEncoder) -> RatingsData:
        """Re-express the ratings under wider encoders (which must extend the current ones).

        Features, if any, come along: every id of the wider encoders needs a row. Implicit
        pairs, if any, are re-indexed.
        """
        return self._rebuild(
            users.to_index(self.users.to_raw(self.user_idx)),
            items.to_index(self.items.to_raw(self.item_idx)),
            self.rating,
            users,
            items,
        )

    def _check_same_encoders(self, other: RatingsData) -> None:
        if not (self.users.equals(other.users) and self.items.equals(other.items)):
            raise ValueError(
                "the two RatingsData use different id encoders; build them from one split "
                "(bayesmf.train_test_split / load_movielens(split=...)) or re-encode with "
                "with_encoders()"
            )

    # -- conversion ---------------------------------------------------------------------
    def to_dataframe(
        self, user: str = "user", item: str = "item", rating: str = "rating"
    ) -> pd.DataFrame:
        """Tidy table of raw ids and ratings."""
        return pd.DataFrame(
            {
                user: self.users.to_raw(self.user_idx),
                item: self.items.to_raw(self.item_idx),
                rating: np.asarray(self.rating),
            }
        )

    def summary(self) -> pd.Series:
        """Describe the data: sizes, density, rating mean and sd, ratings per user/item."""
        counts_u, counts_i = self.user_counts(), self.item_counts()
        return pd.Series(
            {
                "ratings": self.n_ratings,
                "users": self.n_users,
                "items": self.n_items,
                "density": self.n_ratings / max(self.n_users * self.n_items, 1),
                "scale": f"{self.scale[0]:g}-{self.scale[1]:g}",
                "rating mean": float(np.mean(self.rating)) if self.n_ratings else float("nan"),
                "rating sd": float(np.std(self.rating)) if self.n_ratings else float("nan"),
                "median ratings per user": float(np.median(counts_u)) if len(counts_u) else 0.0,
                "median ratings per item": float(np.median(counts_i)) if len(counts_i) else 0.0,
            },
            name="RatingsData",
        )


def _checked_pairs(pairs: object, users: IdEncoder, items: IdEncoder) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``implicit_pairs`` as two read-only int64 copies, or None; a clear error naming a bad value."""
    if pairs is None:
        return None
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
        raise TypeError(
            "implicit_pairs must be None or a pair (user_idx, item_idx) of integer index arrays "
            f"(bayesmf.implicit_sets.with_implicit_pairs attaches them by raw id), got {type(pairs).__name__}"
        )
    out = []
    for name, array, encoder in (("user", np.asarray(pairs[0]), users), ("item", np.asarray(pairs[1]), items)):
        if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"implicit_pairs' {name} indices must be a 1-d integer array, got {array.dtype} {array.shape}")
        outside = (array < 0) | (array >= len(encoder))
        if outside.any():
            raise ValueError(
                f"implicit_pairs holds {name} index(es) {pd.unique(array[outside])[:5].tolist()}, outside "
                f"0..{len(encoder) - 1} of the {encoder.name} encoder: the pairs must be of known {name}s"
            )
        out.append(np.array(array, dtype=np.int64, copy=True))
        out[-1].setflags(write=False)
    if out[0].size != out[1].size:
        raise ValueError(f"implicit_pairs' user and item indices differ in length: {out[0].size} and {out[1].size}")
    return out[0], out[1]
