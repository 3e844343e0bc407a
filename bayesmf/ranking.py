r"""Top-N ranking metrics: arrays in, floats out.

Accuracy of ONE user's ranked list (``ranked``: item ids, best first; ``relevant``: the
ids of the user's relevant items, in any order): `precision_at_k`, `recall_at_k`,
`ndcg_at_k`, `average_precision_at_k` (its mean over users is MAP@k), `reciprocal_rank`
(its mean is MRR) and `hit_rate_at_k` (its mean is the hit rate). Write :math:`h_i = 1`
when the item at rank :math:`i` is relevant (0 otherwise, and 0 past the end of a list
shorter than :math:`k`), and :math:`R` for the number of relevant items. Metrics whose
normaliser involves :math:`R` (recall, NDCG, AP) are NaN when :math:`R = 0`; precision,
hit and reciprocal rank are then 0.

Properties of a SET of lists (item indices ``0..n_items - 1``, e.g. every user's top
``k``) live in `bayesmf.beyond_accuracy` and are re-exported here: `catalogue_coverage`,
`mean_popularity` and `novelty`.

`metrics_from_hits` computes the per-user metrics for many users at once from a
(users x k) hit matrix; the single-list functions call it, and so does
`bayesmf.topn`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bayesmf._validate import validate_positive_int
from bayesmf.beyond_accuracy import catalogue_coverage, id_vector, mean_popularity, novelty

__all__ = [
    "HIT_METRICS",
    "average_precision_at_k",
    "catalogue_coverage",
    "hit_rate_at_k",
    "mean_popularity",
    "metrics_from_hits",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "top_k_indices",
    "top_k_tiebroken",
]

#: the per-user metrics of `metrics_from_hits`, in column order
HIT_METRICS = ("precision", "recall", "ndcg", "ap", "rr", "hit")


def top_k_indices(score: np.ndarray, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Return the positions of the ``k`` largest scores, best first.

    Without ``rng`` the sort is stable (ties keep their input order); with one, the
    positions are shuffled first, so exact ties are broken uniformly at random.
    """
    if rng is None:
        return np.argsort(-score, kind="stable")[:k]
    shuffled = rng.permutation(len(score))
    return shuffled[np.argsort(-score[shuffled], kind="stable")][:k]


def top_k_tiebroken(
    score: np.ndarray,
    k: int,
    mean: Callable[[np.ndarray], np.ndarray],
    key: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Return the positions of the ``k`` largest scores, best first, exact ties broken by ``mean``.

    Parameters
    ----------
    score : numpy.ndarray
        One score per candidate (higher is better; NaN ranks last).
    k : int
        Positions kept (all of them when fewer).
    mean : callable
        ``mean(positions)``: the candidates' posterior means, larger first among equal
        scores. Asked once, for the tied candidates that can reach the top ``k`` only (the
        top ``k`` and any tied with the ``k``-th score), and not at all without ties.
    key : numpy.ndarray, optional
        Last key, smaller first, for ties in both score and mean (default: the position).
    rng : numpy.random.Generator, optional
        Break the ties left after ``mean`` uniformly at random instead of by ``key``.

    Returns
    -------
    numpy.ndarray
        Positions into ``score``, best first.
    """
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="stable")
    k = min(k, len(score))
    if k == 0:
        return order[:0]
    # the top k and every candidate tied with the k-th score (contiguous after it)
    region = order[: k + int(np.count_nonzero(score[order[k:]] == score[order[k - 1]]))]
    s = score[region]
    same = s[1:] == s[:-1]
    tied = np.concatenate([same, [False]]) | np.concatenate([[False], same])
    if not tied.any():
        return region[:k]
    m = np.zeros(len(region))
    m[tied] = mean(region[tied])
    last = rng.permutation(len(region)) if rng is not None else (region if key is None else np.asarray(key)[region])
    return region[np.lexsort((last, -m, -s))][:k]


def _k(k: Any) -> int:
    return validate_positive_int("k", k)


def _hits(ranked: Any, relevant: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (1, k) hit row of a list and its number of relevant items (validated)."""
    ranked_arr = id_vector("ranked", ranked)
    relevant_arr = np.unique(id_vector("relevant", relevant))
    ids, counts = np.unique(ranked_arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"ranked repeats item {ids[counts > 1].tolist()[0]!r}: a ranked list holds each item once")
    hits = np.zeros((1, k), dtype=bool)
    top = ranked_arr[:k]
    hits[0, : len(top)] = np.isin(top, relevant_arr) if len(relevant_arr) else False
    return hits, np.array([len(relevant_arr)])


def metrics_from_hits(hits: Any, n_relevant: Any) -> dict[str, np.ndarray]:
    r"""Per-user ranking metrics from a hit matrix.

    Parameters
    ----------
    hits : array_like of bool, shape (n_users, k)
        ``hits[u, i]``: the item at rank ``i + 1`` of user ``u``'s list is relevant (False
        past the end of a shorter list). ``k`` is the number of columns.
    n_relevant : array_like of int, shape (n_users,)
        :math:`R_u`, the user's number of relevant items (at least their hits).

    Returns
    -------
    dict of str to numpy.ndarray
        ``precision``, ``recall``, ``ndcg``, ``ap``, ``rr``, ``hit`` (float arrays of length
        ``n_users``; see the single-list functions for the formulas).

    Raises
    ------
    ValueError
        On a hit matrix that is not 2-d with at least one column, mismatched lengths, or
        a user with more hits than relevant items.
    """
    h = np.asarray(hits, dtype=bool)
    r = np.asarray(n_relevant)
    if h.ndim != 2 or h.shape[1] < 1:
        raise ValueError(f"hits must be a (users, k) matrix with k >= 1, got shape {h.shape}")
    if r.shape != (h.shape[0],) or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"n_relevant must be {h.shape[0]} integers, got {r.dtype} of shape {r.shape}")
    n_hits = h.sum(axis=1)
    if (n_hits > r).any():
        u = int(np.flatnonzero(n_hits > r)[0])
        raise ValueError(f"user {u} has {int(n_hits[u])} hits but n_relevant={int(r[u])}")
    k = h.shape[1]
    rank = np.arange(1, k + 1)
    discount = 1.0 / np.log2(rank + 1.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(r, k)]
    none = r == 0
    safe_r = np.where(none, 1, r)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg = (h @ discount) / np.where(none, 1.0, ideal)
        ap = (h * (np.cumsum(h, axis=1) / rank)).sum(axis=1) / np.minimum(safe_r, k)
    found = h.any(axis=1)
    return {
        "precision": n_hits / k,
        "recall": np.where(none, np.nan, n_hits / safe_r),
        "ndcg": np.where(none, np.nan, ndcg),
        "ap": np.where(none, np.nan, ap),
        "rr": np.where(found, 1.0 / (np.argmax(h, axis=1) + 1.0), 0.0),
        "hit": found.astype(np.float64),
    }


def _metric(name: str, ranked: Any, relevant: Any, k: Any) -> float:
    hits, n_relevant = _hits(ranked, relevant, _k(k))
    return float(metrics_from_hits(hits, n_relevant)[name][0])


def precision_at_k(ranked: Any, relevant: Any, k: int) -> float:
    r"""Share of the top ``k`` that is relevant: :math:`P@k = \frac1k \sum_{i=1}^{k} h_i`.

    A list shorter than ``k`` still divides by ``k`` (the missing ranks count as misses),
    as trec_eval's ``P_k`` does.

    Parameters
    ----------
    ranked : array_like
        Item ids, best first (each at most once).
    relevant : array_like
        Ids of the relevant items (duplicates ignored).
    k : int
        Cut-off, >= 1.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``k`` is not an integer (the message names it).
    ValueError
        If ``k < 1``, an input is not 1-d, or ``ranked`` repeats an item.

    References
    ----------
    .. [1] C. D. Manning, P. Raghavan and H. Schuetze, *Introduction to Information
       Retrieval*, Cambridge University Press, 2008, ch. 8.
    """
    return _metric("precision", ranked, relevant, k)


def recall_at_k(ranked: Any, relevant: Any, k: int) -> float:
    r"""Share of the relevant items found in the top ``k``: :math:`\frac1R \sum_{i=1}^{k} h_i`.

    NaN when :math:`R = 0`; below 1 whenever :math:`R > k`. Arguments, return type and
    errors as in `precision_at_k`.

    References
    ----------
    .. [1] C. D. Manning, P. Raghavan and H. Schuetze, *Introduction to Information Retrieval*,
       Cambridge University Press, 2008, sec. 8.3 (recall of an unranked set).
    """
    return _metric("recall", ranked, relevant, k)


def ndcg_at_k(ranked: Any, relevant: Any, k: int) -> float:
    r"""Normalised discounted cumulative gain with binary gains and a log2 discount.

    .. math:: \mathrm{DCG@}k = \sum_{i=1}^{k} \frac{h_i}{\log_2(i + 1)}, \qquad
              \mathrm{NDCG@}k = \frac{\mathrm{DCG@}k}{\sum_{i=1}^{\min(k, R)} 1/\log_2(i + 1)},

    the denominator being the DCG of an ideal list (every relevant item first, capped at
    ``k``). In [0, 1]; NaN when :math:`R = 0`. Arguments, return type and errors as in
    `precision_at_k`.

    References
    ----------
    .. [1] K. Jaervelin and J. Kekaelaeinen, "Cumulated gain-based evaluation of IR
       techniques", *ACM Transactions on Information Systems* 20(4), 422-446, 2002.
    """
    return _metric("ndcg", ranked, relevant, k)


def average_precision_at_k(ranked: Any, relevant: Any, k: int) -> float:
    r"""Average precision truncated at ``k``; its mean over users is MAP@k.

    .. math:: \mathrm{AP@}k = \frac{1}{\min(k, R)} \sum_{i=1}^{k} h_i \, P@i,

    normalised by :math:`\min(k, R)` so a list with every slot relevant scores 1 even when
    :math:`R > k` (trec_eval's ``map_cut_k`` divides by :math:`R` instead: the two agree
    when :math:`R \le k`). NaN when :math:`R = 0`. Arguments, return type and errors as
    in `precision_at_k`.

    References
    ----------
    .. [1] C. D. Manning, P. Raghavan and H. Schuetze, *Introduction to Information
       Retrieval*, Cambridge University Press, 2008, sec. 8.4.
    """
    return _metric("ap", ranked, relevant, k)


def reciprocal_rank(ranked: Any, relevant: Any, k: int | None = None) -> float:
    r"""One over the rank of the first relevant item in the top ``k`` (0 if none).

    :math:`RR@k = 1 / \min\{i \le k : h_i = 1\}`; its mean over users is MRR. ``k=None``
    (the default) takes the whole list; otherwise arguments, return type and errors as in
    `precision_at_k`.

    References
    ----------
    .. [1] E. M. Voorhees, "The TREC-8 question answering track report", *Proceedings of
       TREC-8*, 77-82, 1999.
    """
    if k is None:
        k = max(len(id_vector("ranked", ranked)), 1)
    return _metric("rr", ranked, relevant, k)


def hit_rate_at_k(ranked: Any, relevant: Any, k: int) -> float:
    r"""1 if any of the top ``k`` is relevant, else 0: :math:`\max_{i \le k} h_i`.

    Its mean over users is the hit rate (trec_eval's ``success_k``). Arguments, return
    type and errors as in `precision_at_k`.

    References
    ----------
    .. [1] M. Deshpande and G. Karypis, "Item-based top-N recommendation algorithms",
       *ACM Transactions on Information Systems* 22(1), 143-177, 2004.
    """
    return _metric("hit", ranked, relevant, k)
