r"""Top-N evaluation on held-out ratings: a fit's lists (any ``rank_by``) or any scores.

Protocol, for every test user :math:`u`:

* relevant items: the user's test items rated at least ``threshold`` (test items the user
  also rated in training are left out and counted);
* candidates: every item the user did not rate in training (``candidates="unrated"``,
  the default), or ``n_negatives`` of them drawn at random (seeded) among those the user
  did not rate at all, plus ALL the user's test items (``"sampled"``; warns, as sampled
  metrics can reorder systems: Krichene and Rendle, KDD 2020);
* the top ``k`` candidates under the rule are scored by `bayesmf.ranking`: precision,
  recall, NDCG, AP (mean: MAP), reciprocal rank (mean: MRR), hit, and the lists'
  popularity and novelty; catalogue coverage is over all users' lists.

A user with no relevant test item is skipped and counted (``attrs["n_users_skipped"]``),
never averaged in as zeros. Test rows whose user or item the fit does not know raise a
`bayesmf.data.UnknownIdError` naming them, or with ``unknown="drop"`` are dropped and
counted (``attrs["n_unknown_dropped"]``).

`evaluate_topn` ranks with `bayesmf.recommend.rank_items` (the machinery of
`~bayesmf.recommend.recommend`); `evaluate_scores` ranks by any scores (a callable, a
per-item vector such as `popularity_scores`, or a users x items matrix), with exact ties
broken at random (seeded).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, seed_sequence
from bayesmf._validate import (
    validate_bool,
    validate_choice,
    validate_in_scale,
    validate_positive_int,
)
from bayesmf.beyond_accuracy import list_means, self_information
from bayesmf.data import RatingsData, UnknownIdError
from bayesmf.mean_ranking import batched, top_by_mean
from bayesmf.options import PredictOptions
from bayesmf.predictive.view import model_view
from bayesmf.ranking import HIT_METRICS, metrics_from_hits, top_k_indices
from bayesmf.recommend import RANK_BY, rank_items

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["CANDIDATES", "TopN", "evaluate_scores", "evaluate_topn", "popularity_scores"]

CANDIDATES = ("unrated", "sampled")
_UNKNOWN = ("raise", "drop")
#: summary row names of the per-user columns (the mean of AP is MAP, of RR is MRR...)
_SUMMARY_NAMES = {
    "precision": "precision", "recall": "recall", "ndcg": "ndcg", "ap": "map", "rr": "mrr",
    "hit": "hit_rate", "popularity": "popularity", "novelty": "novelty",
}
SAMPLED_WARNING = (
    "metrics over sampled negatives are not the full-ranking metrics and can order "
    "systems differently (Krichene and Rendle, 'On sampled metrics for item "
    "recommendation', KDD 2020); report candidates='unrated' where you can"
)


class TopN(NamedTuple):
    """Result of a top-N evaluation.

    Attributes
    ----------
    per_user : pandas.DataFrame
        One row per evaluated user: ``user`` (raw id), ``n_relevant``, ``n_candidates``,
        ``precision``, ``recall``, ``ndcg``, ``ap``, ``rr``, ``hit``, ``popularity``,
        ``novelty`` (all at ``k``).
    summary : pandas.DataFrame
        One row per metric (``precision@k``, ..., ``map@k``, ``mrr@k``, ``hit_rate@k``,
        ``popularity@k``, ``novelty@k``, ``coverage@k``): ``mean``, ``se`` (sd over users /
        sqrt(n_users); NaN for coverage, one number over all lists) and ``n_users``.

    Both frames carry the protocol and its counts in ``attrs``.
    """

    per_user: pd.DataFrame
    summary: pd.DataFrame


@dataclass
class _Plan:
    """Who is evaluated on what: per user its index, candidates and relevant items."""

    users: list[int]
    candidates: list[np.ndarray]
    relevant: list[np.ndarray]
    counts: dict[str, Any]


def popularity_scores(train: RatingsData) -> np.ndarray:
    """Score of every item for every user: its number of training ratings (a baseline).

    Parameters
    ----------
    train : RatingsData
        The training ratings.

    Returns
    -------
    numpy.ndarray
        float64, length ``train.n_items`` (pass to `evaluate_scores`).
    """
    return train.item_counts().astype(np.float64)


def _test_indices(train: RatingsData, test: Any, unknown: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Test ratings as the fit's (user, item) indices; unknown ids raise or are dropped (counted)."""
    if not isinstance(test, RatingsData):
        raise TypeError(f"test must be a RatingsData, got {type(test).__name__}")
    if test.users.equals(train.users) and test.items.equals(train.items):
        return np.asarray(test.user_idx), np.asarray(test.item_idx), np.asarray(test.rating), 0
    user_raw, item_raw = test.users.to_raw(test.user_idx), test.items.to_raw(test.item_idx)
    uidx = train.users.to_index(user_raw, unknown="flag")
    iidx = train.items.to_index(item_raw, unknown="flag")
    bad = (uidx < 0) | (iidx < 0)
    if bad.any() and unknown == "raise":
        users = list(dict.fromkeys(user_raw[uidx < 0].tolist()))
        items = list(dict.fromkeys(item_raw[iidx < 0].tolist()))
        raise UnknownIdError(
            f"{int(bad.sum())} test rating(s) have ids the fit does not know: users {users[:5]!r}, "
            f"items {items[:5]!r}; pass unknown='drop' to leave them out (they are counted)"
        )
    keep = ~bad
    return uidx[keep], iidx[keep], np.asarray(test.rating)[keep], int(bad.sum())


def _plan(
    train: RatingsData, test: Any, threshold: float, candidates: str, n_negatives: int | None,
    rng: np.random.Generator, unknown: str,
) -> _Plan:
    """Relevant items and candidate sets of every test user (module docstring)."""
    uidx, iidx, rating, n_unknown = _test_indices(train, test, unknown)
    n_items = train.n_items
    by_user = np.argsort(train.user_idx, kind="stable")
    starts = np.concatenate([[0], np.cumsum(train.user_counts())])
    order = np.argsort(uidx, kind="stable")
    test_users, first = np.unique(uidx[order], return_index=True)
    bounds = np.append(first, len(order))
    plan = _Plan([], [], [], {"n_test_users": len(test_users), "n_users_skipped": 0, "n_unknown_dropped": n_unknown,
                              "n_test_in_train": 0, "n_users_short_of_negatives": 0})
    for pos, u in enumerate(test_users.tolist()):
        rows = order[bounds[pos] : bounds[pos + 1]]
        unrated = np.ones(n_items, dtype=bool)
        unrated[train.item_idx[by_user[starts[u] : starts[u + 1]]]] = False
        fresh = unrated[iidx[rows]]
        plan.counts["n_test_in_train"] += int((~fresh).sum())
        items, ratings = iidx[rows][fresh], rating[rows][fresh]
        relevant = np.unique(items[ratings >= threshold])
        if len(relevant) == 0:
            plan.counts["n_users_skipped"] += 1
            continue
        if candidates == "unrated" or n_negatives is None:
            cand = np.flatnonzero(unrated)
        else:
            unrated[items] = False
            pool = np.flatnonzero(unrated)
            plan.counts["n_users_short_of_negatives"] += int(len(pool) < n_negatives)
            negatives = rng.choice(pool, size=min(n_negatives, len(pool)), replace=False)
            cand = np.sort(np.concatenate([negatives, np.unique(items)]))
        plan.users.append(u)
        plan.candidates.append(cand)
        plan.relevant.append(relevant)
    if not plan.users:
        raise ValueError(
            f"no test user has a relevant item (a test rating >= threshold={threshold:g} on an item "
            "unrated in training): nothing to evaluate; lower the threshold"
        )
    return plan


def _check(
    train: RatingsData, k: Any, threshold: Any, candidates: Any, n_negatives: Any, unknown: Any
) -> tuple[int, float, int | None]:
    k = validate_positive_int("k", k)
    threshold = validate_in_scale("threshold", threshold, train.scale)
    validate_choice("candidates", candidates, CANDIDATES)
    validate_choice("unknown", unknown, _UNKNOWN)
    if candidates == "sampled":
        n_negatives = validate_positive_int("n_negatives", n_negatives)
        warnings.warn(SAMPLED_WARNING, UserWarning, stacklevel=3)
    elif n_negatives is not None:
        raise ValueError(f"n_negatives={n_negatives!r} needs candidates='sampled' (candidates='unrated' ranks every unrated item)")
    return k, threshold, n_negatives


def _tables(train: RatingsData, plan: _Plan, tops: list[np.ndarray], k: int, attrs: dict[str, Any]) -> TopN:
    """Per-user metrics and their summary from every user's top-k item indices."""
    n = len(plan.users)
    top = np.full((n, k), -1, dtype=np.int64)
    for row, items in enumerate(tops):
        top[row, : len(items)] = items
    hits = np.zeros((n, k), dtype=bool)
    for row, relevant in enumerate(plan.relevant):
        hits[row] = np.isin(top[row], relevant) & (top[row] >= 0)
    n_relevant = np.array([len(r) for r in plan.relevant], dtype=np.int64)
    columns = metrics_from_hits(hits, n_relevant)
    counts = train.item_counts()
    columns["popularity"] = list_means(top, counts.astype(np.float64))
    columns["novelty"] = list_means(top, self_information(counts, max(int((train.user_counts() > 0).sum()), 1)))
    per_user = pd.DataFrame({
        "user": train.users.to_raw(np.asarray(plan.users, dtype=np.int64)),
        "n_relevant": n_relevant,
        "n_candidates": np.array([len(c) for c in plan.candidates], dtype=np.int64),
        **{name: columns[name] for name in (*HIT_METRICS, "popularity", "novelty")},
    })
    rows = {}
    for name, label in _SUMMARY_NAMES.items():
        values = per_user[name].to_numpy()
        rows[f"{label}@{k}"] = (float(values.mean()), float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan, n)
    rows[f"coverage@{k}"] = (len(np.unique(top[top >= 0])) / train.n_items, np.nan, n)
    summary = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "se", "n_users"])
    summary.index.name = "metric"
    attrs = {**attrs, **plan.counts, "k": k, "n_users_evaluated": n}
    per_user.attrs.update(attrs)
    summary.attrs.update(attrs)
    return TopN(per_user, summary)


def _streams(random_seed: SeedLike) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the negatives and for the ranking (ties, Thompson)."""
    sample, rank = seed_sequence(random_seed).spawn(2)
    return np.random.default_rng(sample), np.random.default_rng(rank)


def evaluate_topn(
    result: FitResult,
    test: RatingsData,
    k: int = 10,
    rank_by: str = "mean",
    threshold: float = 4.0,
    candidates: str = "unrated",
    n_negatives: int | None = None,
    random_seed: SeedLike = None,
    *,
    unknown: str = "raise",
    prob: float = 0.9,
    kind: str = "predictive",
    interval: str = "eti",
    clip: bool = True,
    chunk_size: int | None = None,
    progressbar: bool = True,
) -> TopN:
    r"""Evaluate a fit's top-``k`` lists on held-out ratings (protocol: module docstring).

    Parameters
    ----------
    result : FitResult
        The fitted model; its ``train`` defines what each user rated in training.
    test : RatingsData
        Held-out ratings (ideally sharing the fit's encoders, as every split does).
    k : int
        List length, >= 1.
    rank_by : {"mean", "lower", "prob", "thompson"}
        Ranking rule of `bayesmf.recommend.recommend`; ``"prob"`` ranks by
        :math:`P(r \ge \text{threshold})`.
    threshold : float
        A test rating at least this is relevant; must lie on the rating scale.
    candidates : {"unrated", "sampled"}
        Every item the user did not rate in training, or ``n_negatives`` sampled ones plus
        the user's test items (warns).
    n_negatives : int, optional
        Sampled negatives per user (only with ``candidates="sampled"``).
    random_seed : int or numpy.random.Generator, optional
        Seeds the negatives and the ranking (Thompson draws, prior draws).
    unknown : {"raise", "drop"}
        Test ratings with a user or item the fit does not know: an error naming them, or
        dropped and counted.
    prob, kind, interval, clip, chunk_size
        Prediction options, as in `bayesmf.recommend.recommend`.
    progressbar : bool
        Show a tqdm bar over the users when they are ranked one by one (every rule but the
        batched ``"mean"``; ``"lower"`` and ``"prob"`` take minutes on ML-100K).

    Returns
    -------
    TopN
        ``(per_user, summary)``; ``attrs`` hold ``k``, ``threshold``, ``rank_by``,
        ``candidates``, ``n_negatives``, ``method``, ``n_test_users``,
        ``n_users_evaluated``, ``n_users_skipped`` (no relevant item), ``n_unknown_dropped``,
        ``n_test_in_train`` and ``n_users_short_of_negatives``.

    Raises
    ------
    TypeError, ValueError
        On ``k < 1`` or a non-integer ``k``, a threshold off the scale, a bad rule or
        option, or no evaluable user (each message names the value).
    bayesmf.data.UnknownIdError
        On unknown test ids with ``unknown="raise"``.
    """
    train = result.train
    k, threshold, n_negatives = _check(train, k, threshold, candidates, n_negatives, unknown)
    validate_choice("rank_by", rank_by, RANK_BY)
    progressbar = validate_bool("progressbar", progressbar)
    sample_rng, rank_rng = _streams(random_seed)
    plan = _plan(train, test, threshold, candidates, n_negatives, sample_rng, unknown)
    opts = PredictOptions(
        prob=prob, kind=kind, interval=interval, threshold=threshold if rank_by == "prob" else None,
        clip=clip, unknown="raise", chunk_size=chunk_size, random_seed=rank_rng,
    )
    if rank_by == "mean" and batched(model_view(result), opts):
        tops = top_by_mean(result, plan.users, plan.candidates, k, opts)
    else:
        users, items = train.users.classes, train.items.classes
        pairs = ((users[u], items[c]) for u, c in zip(plan.users, plan.candidates, strict=True))
        if progressbar:
            from tqdm.auto import tqdm

            pairs = tqdm(pairs, total=len(plan.users), desc=f"top-{k} by {rank_by}", unit="user")
        tops = [train.items.to_index(top) for _, top, _ in rank_items(result, pairs, k, rank_by, opts)]
    attrs = {"k": k, "threshold": threshold, "rank_by": rank_by, "candidates": candidates,
             "n_negatives": n_negatives, "method": result.method}
    return _tables(train, plan, tops, k, attrs)


def evaluate_scores(
    scores: Callable[[int, np.ndarray], Any] | np.ndarray,
    train: RatingsData,
    test: RatingsData,
    k: int = 10,
    threshold: float = 4.0,
    candidates: str = "unrated",
    n_negatives: int | None = None,
    random_seed: SeedLike = None,
    *,
    unknown: str = "raise",
    name: str = "scores",
) -> TopN:
    """Evaluate the top-``k`` lists of any scores, with the protocol of `evaluate_topn`.

    Parameters
    ----------
    scores : callable, or numpy.ndarray of shape (n_items,) or (n_users, n_items)
        ``scores(user_index, item_indices)`` returning one score per item (indices of
        ``train``'s encoders); or the same scores for every user (e.g.
        `popularity_scores`); or a matrix indexed [user, item]. Higher is better; exact
        ties are broken at random (seeded); NaN is refused.
    train : RatingsData
        The training ratings the scores were built from.
    test : RatingsData
        Held-out ratings.
    k, threshold, candidates, n_negatives, random_seed, unknown
        As in `evaluate_topn`.
    name : str
        Label stored in ``attrs["rank_by"]``.

    Returns
    -------
    TopN
        As in `evaluate_topn` (``attrs["method"]`` is None).

    Raises
    ------
    TypeError, ValueError
        As in `evaluate_topn`; also scores of the wrong shape or with NaN.
    """
    k, threshold, n_negatives = _check(train, k, threshold, candidates, n_negatives, unknown)
    score_of = _score_function(scores, train)
    sample_rng, rank_rng = _streams(random_seed)
    plan = _plan(train, test, threshold, candidates, n_negatives, sample_rng, unknown)
    tops = []
    for u, cand in zip(plan.users, plan.candidates, strict=True):
        s = np.asarray(score_of(u, cand), dtype=np.float64)
        if s.shape != cand.shape or np.isnan(s).any():
            raise ValueError(f"scores for user index {u} must be {len(cand)} numbers without NaN, got shape {s.shape}")
        tops.append(cand[top_k_indices(s, k, rank_rng)])
    attrs = {"k": k, "threshold": threshold, "rank_by": name, "candidates": candidates,
             "n_negatives": n_negatives, "method": None}
    return _tables(train, plan, tops, k, attrs)


def _score_function(scores: Any, train: RatingsData) -> Callable[[int, np.ndarray], Any]:
    if callable(scores):
        return scores  # type: ignore[no-any-return]
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape == (train.n_items,):
        return lambda u, cand: arr[cand]
    if arr.shape == (train.n_users, train.n_items):
        return lambda u, cand: arr[u, cand]
    raise ValueError(
        f"scores must be a callable, or an array of shape ({train.n_items},) or "
        f"({train.n_users}, {train.n_items}), got shape {arr.shape}"
    )
