"""Train/test splits and cross-validation folds that share one pair of id encoders.

`train_test_split` (a random share of the ratings or of each user's), `kfold`, and
`user_holdout_split` (a number or a share of each user's ratings, at random or the latest
by a timestamp: the protocol of top-N evaluation, `bayesmf.topn`).

Every part of these splits is a `bayesmf.RatingsData` with the encoders of the data it came
from, so an index means the same user (item) in train and test, and
``test.unseen(train)`` flags the test ratings whose user or item has no training rating.

`cold_split` (all the ratings of a share of the users or items, re-encoded so a fit never
sees them: cold start) is the exception: its test part is a frame of raw ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from bayesmf._seed import generator
from bayesmf._validate import validate_choice, validate_positive_int, validate_prob
from bayesmf.data import RatingsData
from bayesmf.features import Features
from bayesmf.implicit_sets import with_implicit_pairs

__all__ = ["ColdSplit", "Split", "cold_split", "kfold", "train_test_split", "user_holdout_split"]

_BY = ("rating", "user")
_ORDER = ("random", "latest")
_SIDES = ("user", "item")


class Split(NamedTuple):
    """A ``(train, test)`` pair of `RatingsData` sharing the same encoders."""

    train: RatingsData
    test: RatingsData


class ColdSplit(NamedTuple):
    """``(train, test, cold)`` of `cold_split`: warm ratings, cold ratings, the cold raw ids."""

    train: RatingsData
    test: pd.DataFrame
    cold: np.ndarray


def train_test_split(
    data: RatingsData,
    test_size: float = 0.2,
    seed: int | np.random.Generator | None = 0,
    by: Literal["rating", "user"] = "rating",
) -> Split:
    """Hold out a random part of the ratings.

    Parameters
    ----------
    data : RatingsData
        The ratings to split.
    test_size : float
        Fraction of ratings held out, in (0, 1).
    seed : int or numpy.random.Generator, optional
        Seed of `numpy.random.default_rng`; equal seeds give equal splits.
    by : {"rating", "user"}
        ``"rating"``: ``round(test_size * n)`` ratings drawn uniformly (at least one on
        each side). ``"user"``: ``round(test_size * n_u)`` of each user's ``n_u`` ratings,
        capped at ``n_u - 1`` so every user keeps at least one training rating (users with
        a single rating stay wholly in train).

    Returns
    -------
    Split
        ``(train, test)``, each keeping the original order of the ratings and the encoders
        of ``data``.

    Raises
    ------
    TypeError
        If ``data`` is not a `RatingsData`.
    ValueError
        On ``test_size`` outside (0, 1), an unknown ``by``, fewer than two ratings, or
        (``by="user"``) no user with enough ratings to hold any out.

    Examples
    --------
    >>> from bayesmf.datasets import simulate
    >>> train, test = train_test_split(simulate(seed=0).data, test_size=0.2, seed=1)
    >>> len(train), len(test)
    (2400, 600)
    """
    _check_data(data)
    test_size = validate_prob(test_size, "test_size")
    validate_choice("by", by, _BY)
    rng = np.random.default_rng(seed)
    n = data.n_ratings
    if n < 2:
        raise ValueError(f"cannot split {n} rating(s): need at least 2")

    in_test = np.zeros(n, dtype=bool)
    if by == "rating":
        n_test = min(max(round(test_size * n), 1), n - 1)
        in_test[rng.permutation(n)[:n_test]] = True
    else:
        rank, count = _rank_within_user(data, rng)
        n_test_user = np.minimum(np.round(test_size * count), count - 1)
        in_test = rank < n_test_user[data.user_idx]
        if not in_test.any():
            raise ValueError(
                f"test_size={test_size!r} holds out no rating with by='user': every user has "
                f"too few ratings (at most {int(count.max())}); raise test_size or use by='rating'"
            )
    return Split(data.subset(~in_test), data.subset(in_test))


def kfold(
    data: RatingsData,
    n_splits: int = 5,
    seed: int | np.random.Generator | None = 0,
    by: Literal["rating", "user"] = "rating",
) -> Iterator[Split]:
    """Yield ``n_splits`` train/test splits whose test parts partition the ratings.

    Parameters
    ----------
    data : RatingsData
        The ratings to split.
    n_splits : int
        Number of folds, at least 2 and at most the number of ratings.
    seed : int or numpy.random.Generator, optional
        Seed of `numpy.random.default_rng`; equal seeds give equal folds.
    by : {"rating", "user"}
        ``"rating"``: ratings shuffled and cut into ``n_splits`` folds of near-equal size;
        each rating is in exactly one test fold. ``"user"``: each user's ratings are
        shuffled and dealt round-robin to the folds (from a random starting fold), so each
        user's ratings are spread evenly over the folds and every user with two or more
        ratings keeps at least one in every training part. A user with a single rating
        is never in a test fold.

    Yields
    ------
    Split
        ``(train, test)`` for fold 0, 1, ..., sharing the encoders of ``data``.

    Raises
    ------
    TypeError
        If ``data`` is not a `RatingsData` or ``n_splits`` is not an integer.
    ValueError
        On ``n_splits < 2``, more folds than ratings, or an unknown ``by``.
    """
    _check_data(data)
    n_splits = validate_positive_int("n_splits", n_splits, minimum=2)
    validate_choice("by", by, _BY)
    n = data.n_ratings
    if n_splits > n:
        raise ValueError(f"n_splits={n_splits} exceeds the number of ratings ({n})")
    rng = np.random.default_rng(seed)

    if by == "rating":
        fold = np.empty(n, dtype=np.int64)
        for k, part in enumerate(np.array_split(rng.permutation(n), n_splits)):
            fold[part] = k
    else:
        rank, count = _rank_within_user(data, rng)
        start = rng.integers(0, n_splits, size=data.n_users)
        fold = (rank + start[data.user_idx]) % n_splits
        fold[count[data.user_idx] < 2] = -1  # a lone rating stays in train

    # the folds are fixed before the first yield, so a half-consumed iterator is harmless
    return _folds(data, fold, n_splits)


def _folds(data: RatingsData, fold: np.ndarray, n_splits: int) -> Iterator[Split]:
    for k in range(n_splits):
        in_test = fold == k
        yield Split(data.subset(~in_test), data.subset(in_test))


def _rank_within_user(
    data: RatingsData, rng: np.random.Generator, first: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank each user's ratings: ``rank[r]`` in ``0..n_u - 1``, and ``n_u``.

    In a random order, or by increasing ``first`` with random tie-breaks.
    """
    key = rng.random(data.n_ratings)
    keys = (key, data.user_idx) if first is None else (key, first, data.user_idx)
    order = np.lexsort(keys)  # by user, then first (if given), then random
    count = data.user_counts()
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    rank = np.empty(data.n_ratings, dtype=np.int64)
    rank[order] = np.arange(data.n_ratings) - start[data.user_idx[order]]
    return rank, count


def _holdout_sizes(holdout: Any, count: np.ndarray, min_train: int) -> np.ndarray:
    """Ratings held out per user: the number, or the rounded share, if ``min_train`` stay."""
    if isinstance(holdout, (bool, np.bool_)) or not isinstance(holdout, (int, float, np.integer, np.floating)):
        raise TypeError(f"holdout must be an int >= 1 or a fraction in (0, 1), got {holdout!r}")
    if isinstance(holdout, (int, np.integer)):
        n = validate_positive_int("holdout", holdout)
        return np.where(count - n >= min_train, n, 0)
    if not 0.0 < float(holdout) < 1.0:
        raise ValueError(f"holdout={holdout!r}: a float must be a fraction in (0, 1) (a number of ratings is an int)")
    return np.clip(np.round(float(holdout) * count), 0, np.maximum(count - min_train, 0)).astype(np.int64)


def _timestamps(timestamp: Any, n: int) -> np.ndarray:
    """``timestamp`` as int64 or float64 keys, one per rating (finite, datetime64 accepted)."""
    values = np.asarray(timestamp)
    if values.shape != (n,):
        raise ValueError(f"timestamp must hold one value per rating ({n}), got shape {values.shape}")
    if np.issubdtype(values.dtype, np.datetime64):
        if np.isnat(values).any():
            raise ValueError(f"timestamp holds NaT at position {int(np.flatnonzero(np.isnat(values))[0])}")
        return values.astype("datetime64[ns]").astype(np.int64)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.floating):
        raise TypeError(f"timestamp must be real numbers or datetime64, got dtype {values.dtype}")
    if not np.isfinite(values).all():
        pos = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"timestamp {float(values[pos])!r} at position {pos} is not finite")
    return values.astype(np.float64)


def user_holdout_split(
    data: RatingsData,
    holdout: int | float = 1,
    order: Literal["random", "latest"] = "random",
    timestamp: Any = None,
    min_train: int = 1,
    seed: int | np.random.Generator | None = 0,
) -> Split:
    """Hold out a number or a share of EACH user's ratings: at random, or the latest.

    Parameters
    ----------
    data : RatingsData
        The ratings to split.
    holdout : int or float
        An int ``n >= 1``: ``n`` ratings of every user who keeps at least ``min_train``
        (a user with fewer than ``n + min_train`` ratings stays wholly in train). A float
        ``f`` in (0, 1): ``round(f * n_u)`` of a user's ``n_u`` ratings, capped so that
        ``min_train`` stay (a user whose share rounds to 0 stays wholly in train).
    order : {"random", "latest"}
        Which ratings: drawn at random (seeded), or the user's latest by ``timestamp``
        (equal times broken at random).
    timestamp : array_like, optional
        One time per rating of ``data``, in its order (numbers or datetime64); needed by
        ``order="latest"`` (`RatingsData` carries no times).
    min_train : int
        Training ratings every user with held-out ratings keeps, >= 1.
    seed : int or numpy.random.Generator, optional
        Seed of the draw (and of the tie-breaks); equal seeds give equal splits.

    Returns
    -------
    Split
        ``(train, test)`` in the ratings' original order, sharing the encoders of ``data``.

    Raises
    ------
    TypeError
        If ``data`` is not a `RatingsData`, ``holdout`` is not a number, ``min_train`` is
        not an int or ``timestamp`` is not numbers or datetimes.
    ValueError
        On ``holdout`` < 1 (int) or outside (0, 1) (float), an unknown ``order``,
        ``order="latest"`` without a timestamp (or one of the wrong length, or not
        finite), or no user with enough ratings to hold any out.

    Examples
    --------
    >>> from bayesmf.datasets import simulate
    >>> train, test = user_holdout_split(simulate(seed=0).data, holdout=2, seed=1)
    >>> int(test.user_counts().max())
    2
    """
    _check_data(data)
    validate_choice("order", order, _ORDER)
    min_train = validate_positive_int("min_train", min_train)
    first = None
    if order == "latest":
        if timestamp is None:
            raise ValueError("order='latest' needs timestamp=, one time per rating of data")
        first = -_timestamps(timestamp, data.n_ratings)  # latest first
    elif timestamp is not None:
        raise ValueError("timestamp= is only used with order='latest'")
    count = data.user_counts()
    sizes = _holdout_sizes(holdout, count, min_train)
    if not sizes.any():
        raise ValueError(
            f"holdout={holdout!r} with min_train={min_train} holds out no rating: every user has too few "
            f"ratings (at most {int(count.max())})"
        )
    rank, _ = _rank_within_user(data, np.random.default_rng(seed), first)
    in_test = rank < sizes[data.user_idx]
    return Split(data.subset(~in_test), data.subset(in_test))


def cold_split(
    data: RatingsData | Sequence[RatingsData],
    side: Literal["user", "item"] = "item",
    fraction: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> ColdSplit:
    """Hold out ALL the ratings of a random share of the users or items (cold start).

    Parameters
    ----------
    data : RatingsData or sequence of RatingsData
        The ratings, or parts pooled by raw id in order (e.g. a fold's ``(train, test)``)
        that share the scale and the features of each side (or none) and no pair.
    side : {"user", "item"}
        Whose ratings are held out.
    fraction : float
        In (0, 1): ``max(1, round(fraction * n))`` of the ``n`` rated ``side`` ids are
        drawn (``rng.choice(np.unique(ids), size, replace=False)``); one must stay warm.
    seed : int or numpy.random.Generator, optional
        Seed of `numpy.random.default_rng`; equal seeds give equal splits.

    Returns
    -------
    ColdSplit
        ``train``: the other ratings re-encoded (`RatingsData.from_dataframe`): the cold ids
        (and other-side ids left without a rating) are unknown to a fit; scale, features
        (with the cold ids' rows, to predict them from) and implicit pairs of warm ids kept.
        ``test``: the held-out ratings, raw ids (``user``, ``item``, ``rating``) in pooled
        order, for ``fit.predict(test)`` (flagged ``new_item``/``new_user``). ``cold``: the
        held-out raw ids, sorted. (`RatingsData` carries no timestamps.)

    Raises
    ------
    TypeError
        ``data`` (or a part) is not a `RatingsData`; ``fraction`` is not a number.
    ValueError
        ``fraction`` outside (0, 1) or leaving no id warm, an unknown ``side``, no part,
        parts with different scales or features or a common pair.

    Examples
    --------
    >>> from bayesmf.datasets import simulate
    >>> train, test, cold = cold_split(simulate(seed=0).data, side="item", fraction=0.1)
    >>> len(cold), bool(test["item"].isin(cold).all()), any(i in train.items for i in cold)
    (15, True, False)
    """
    parts = _parts(data)
    validate_choice("side", side, _SIDES)
    fraction = validate_prob(fraction, "fraction")
    rng = generator(seed, "seed")
    both = pd.concat([part.to_dataframe() for part in parts], ignore_index=True)
    repeated = np.flatnonzero(both.duplicated(["user", "item"]).to_numpy())
    if repeated.size:
        pair = tuple(both[["user", "item"]].to_numpy()[repeated[0]].tolist())
        raise ValueError(f"the parts of data share the (user, item) pair {pair!r}: pool disjoint parts")
    rated = np.unique(both[side].to_numpy())
    size = max(1, round(fraction * len(rated)))
    if size >= len(rated):
        raise ValueError(f"fraction={fraction!r} holds out {size} of the {len(rated)} rated {side}(s), leaving none warm")
    cold = rng.choice(rated, size=size, replace=False)
    is_cold = both[side].isin(cold).to_numpy()
    train = RatingsData.from_dataframe(both[~is_cold], "user", "item", "rating", scale=parts[0].scale)
    train = _warm_pairs(train.with_features(*(_features(parts, s) for s in _SIDES)), parts)
    return ColdSplit(train, both[is_cold].reset_index(drop=True), np.sort(cold))


def _parts(data: Any) -> list[RatingsData]:
    """Return ``data`` as a non-empty list of `RatingsData` on one scale."""
    parts = list(data) if isinstance(data, (list, tuple)) else [data]
    if not parts:
        raise ValueError("data holds no RatingsData: pass one, or a sequence such as (train, test)")
    for k, part in enumerate(parts):
        _check_data(part, "data" if part is data else f"data[{k}]")
        if part.scale != parts[0].scale:
            raise ValueError(f"data[{k}] has the scale {part.scale}, data[0] {parts[0].scale}: pool one scale")
    return parts


def _features(parts: list[RatingsData], side: str) -> Features | None:
    """Return the ``side`` features every part carries (or None), else raise a ValueError."""
    first, *others = (getattr(part, f"{side}_features") for part in parts)
    for k, other in enumerate(others, start=1):
        if other is not first and not (other is not None and first is not None and other.names == first.names
                                       and other.ids.equals(first.ids) and np.array_equal(other.values, first.values)):
            raise ValueError(f"data[{k}] and data[0] carry different {side} features: attach the same to both")
    return first


def _warm_pairs(train: RatingsData, parts: list[RatingsData]) -> RatingsData:
    """``train`` with the parts' implicit pairs whose user and item are both warm."""
    for part in parts:
        if part.implicit_pairs is not None:
            user, item = part.users.to_raw(part.implicit_pairs[0]), part.items.to_raw(part.implicit_pairs[1])
            warm = (train.users.to_index(user, unknown="flag") >= 0) & (train.items.to_index(item, unknown="flag") >= 0)
            train = with_implicit_pairs(train, pd.DataFrame({"user": user[warm], "item": item[warm]}))
    return train


def _check_data(data: Any, name: str = "data") -> None:
    if not isinstance(data, RatingsData):
        raise TypeError(f"{name} must be a bayesmf.RatingsData, got {type(data).__name__}")
