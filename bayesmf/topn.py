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

The test set is a `RatingsData` or a frame of raw ids (columns ``user``, ``item``,
``rating``, checked as `RatingsData.from_dataframe` checks a ratings table). The
threshold is checked against the TEST ratings' scale (`bayesmf.topn_protocol.test_scale`:
``scale=`` if given, else a `RatingsData` test's own scale, else the fit's), so a choice
model (``PMF(likelihood="implicit")``, trained on choices on (0, 1)) is evaluated on
held-out star ratings as a rating model is; its candidates are the items the user did not
choose in training. A user with
no relevant test item is skipped and counted (``attrs["n_users_skipped"]``), never
averaged in as zeros. Test rows whose user or item the fit does not know raise a
`bayesmf.data.UnknownIdError` naming them, or with ``unknown="drop"`` are dropped and
counted (``attrs["n_unknown_dropped"]``).

`evaluate_topn` gives `~bayesmf.recommend.recommend`'s lists, ranked by
`bayesmf.batched_ranking.rank_candidates` (all users at once for the mean, the lower
bound and :math:`P(r \ge t)` under the normal likelihood with the identity link; user by
user otherwise); `evaluate_scores` ranks by any scores (a callable, a per-item vector
such as `popularity_scores`, or a users x items matrix), with exact ties broken at random
(seeded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, seed_sequence
from bayesmf._validate import validate_bool, validate_choice
from bayesmf.batched_ranking import rank_candidates
from bayesmf.beyond_accuracy import list_means, self_information
from bayesmf.data import RatingsData
from bayesmf.options import AUTO, PredictOptions
from bayesmf.ranking import HIT_METRICS, metrics_from_hits, top_k_indices
from bayesmf.recommend import RANK_BY
from bayesmf.topn_protocol import (
    CANDIDATES,
    SAMPLED_WARNING,
    Plan,
    check_protocol,
    make_plan,
    test_scale,
)

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["CANDIDATES", "SAMPLED_WARNING", "TopN", "evaluate_scores", "evaluate_topn", "popularity_scores"]

#: summary row names of the per-user columns (the mean of AP is MAP, of RR is MRR...)
_SUMMARY_NAMES = {
    "precision": "precision", "recall": "recall", "ndcg": "ndcg", "ap": "map", "rr": "mrr",
    "hit": "hit_rate", "popularity": "popularity", "novelty": "novelty",
}

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


def _tables(train: RatingsData, plan: Plan, tops: list[np.ndarray], k: int, attrs: dict[str, Any]) -> TopN:
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
    test: RatingsData | pd.DataFrame,
    k: int = 10,
    rank_by: str = "mean",
    threshold: float = 4.0,
    candidates: str = "unrated",
    n_negatives: int | None = None,
    random_seed: SeedLike = None,
    *,
    unknown: str = "raise",
    scale: tuple[float, float] | None = None,
    prob: float = 0.9,
    kind: str = "auto",
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
    test : RatingsData or pandas.DataFrame
        Held-out ratings: a `RatingsData` (ideally sharing the fit's encoders, as every
        split and `bayesmf.as_implicit` do) or a frame of raw ids with columns ``user``,
        ``item`` and ``rating`` (as `RatingsData.to_dataframe` writes it; ratings on the
        test scale, each pair once).
    k : int
        List length, >= 1.
    rank_by : {"mean", "lower", "prob", "thompson"}
        Ranking rule of `bayesmf.recommend.recommend`; ``"prob"`` ranks by
        :math:`P(r \ge \text{threshold})` (on an implicit fit by
        :math:`P(\mathrm{P(chosen)} \ge 0.5)`, recommend's ``threshold="auto"``: the
        relevance threshold is a rating, not a choice probability).
    threshold : float
        A test rating at least this is relevant; must lie on the test ratings' scale.
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
    scale : tuple of float, optional
        ``(low, high)`` of the test ratings, against which ``threshold`` (and a frame's
        ratings) are checked. None: a `RatingsData` test's own scale; for a frame, the
        fit's training scale, or for an implicit-feedback fit the smallest interval holding
        [0, 1] and the frame's ratings (`bayesmf.topn_protocol.test_scale`).
    prob, kind, interval, clip, chunk_size
        Prediction options, as in `bayesmf.recommend.recommend` (``kind="auto"``:
        ``"predictive"`` for ratings, ``"expected"``, P(chosen), for implicit feedback).
    progressbar : bool
        Show a tqdm bar over the users, or over their batches.

    Notes
    -----
    ``"mean"`` (`bayesmf.mean_ranking`), ``"lower"`` and ``"prob"``
    (`bayesmf.batched_ranking`) rank every user at once for the normal likelihood with the
    identity link (``"lower"`` with ``interval="eti"``); ``"thompson"``, the ordinal
    likelihood, the logistic link and the HDI's lower end go user by user through
    `bayesmf.recommend.rank_items`. Either way the lists are `recommend`'s.

    Returns
    -------
    TopN
        ``(per_user, summary)``; ``attrs`` hold ``k``, ``threshold``, ``rank_by``,
        ``candidates``, ``n_negatives``, ``method``, ``scale``, ``n_test_users``,
        ``n_users_evaluated``, ``n_users_skipped`` (no relevant item), ``n_unknown_dropped``,
        ``n_test_in_train`` and ``n_users_short_of_negatives``.

    Raises
    ------
    TypeError, ValueError
        On ``k < 1`` or a non-integer ``k``, a threshold off the scale, a bad rule or
        option, a test frame lacking a column or holding a bad value, or no evaluable user
        (each message names the value).
    bayesmf.data.UnknownIdError
        On unknown test ids with ``unknown="raise"``.
    """
    train = result.train
    scale = test_scale(train, test, scale)
    k, threshold, n_negatives = check_protocol(scale, k, threshold, candidates, n_negatives, unknown)
    validate_choice("rank_by", rank_by, RANK_BY)
    progressbar = validate_bool("progressbar", progressbar)
    sample_rng, rank_rng = _streams(random_seed)
    plan = make_plan(train, test, threshold, candidates, n_negatives, sample_rng, unknown, scale)
    implicit = getattr(result.spec, "likelihood", None) == "implicit"
    opts = PredictOptions(
        prob=prob, kind=kind, interval=interval,
        threshold=(AUTO if implicit else threshold) if rank_by == "prob" else None,
        clip=clip, unknown="raise", chunk_size=chunk_size, random_seed=rank_rng,
    )
    tops = rank_candidates(result, plan.users, plan.candidates, k, rank_by, opts, progressbar)
    attrs = {"k": k, "threshold": threshold, "rank_by": rank_by, "candidates": candidates,
             "n_negatives": n_negatives, "method": result.method, "scale": scale}
    return _tables(train, plan, tops, k, attrs)


def evaluate_scores(
    scores: Callable[[int, np.ndarray], Any] | np.ndarray,
    train: RatingsData,
    test: RatingsData | pd.DataFrame,
    k: int = 10,
    threshold: float = 4.0,
    candidates: str = "unrated",
    n_negatives: int | None = None,
    random_seed: SeedLike = None,
    *,
    unknown: str = "raise",
    name: str = "scores",
    scale: tuple[float, float] | None = None,
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
        The training data the scores were built from (ratings, or choices: its pairs are
        left out of the candidates).
    test : RatingsData or pandas.DataFrame
        Held-out ratings, as in `evaluate_topn`.
    k, threshold, candidates, n_negatives, random_seed, unknown
        As in `evaluate_topn`.
    name : str
        Label stored in ``attrs["rank_by"]``.
    scale : tuple of float, optional
        As in `evaluate_topn` (implicit feedback: ``train``'s scale is
        `bayesmf.link.IMPLICIT_SCALE`).

    Returns
    -------
    TopN
        As in `evaluate_topn` (``attrs["method"]`` is None).

    Raises
    ------
    TypeError, ValueError
        As in `evaluate_topn`; also scores of the wrong shape or with NaN.
    """
    scale = test_scale(train, test, scale)
    k, threshold, n_negatives = check_protocol(scale, k, threshold, candidates, n_negatives, unknown)
    score_of = _score_function(scores, train)
    sample_rng, rank_rng = _streams(random_seed)
    plan = make_plan(train, test, threshold, candidates, n_negatives, sample_rng, unknown, scale)
    tops = []
    for u, cand in zip(plan.users, plan.candidates, strict=True):
        s = np.asarray(score_of(u, cand), dtype=np.float64)
        if s.shape != cand.shape or np.isnan(s).any():
            raise ValueError(f"scores for user index {u} must be {len(cand)} numbers without NaN, got shape {s.shape}")
        tops.append(cand[top_k_indices(s, k, rank_rng)])
    attrs = {"k": k, "threshold": threshold, "rank_by": name, "candidates": candidates,
             "n_negatives": n_negatives, "method": None, "scale": scale}
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
