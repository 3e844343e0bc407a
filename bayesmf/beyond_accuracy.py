r"""Beyond accuracy: coverage, popularity and novelty of a set of top-N lists.

Each function takes lists of item INDICES (``0..n_items - 1``, e.g. every user's top
``k``; a 2-d array or ragged lists) and returns one float: `catalogue_coverage` (share of
the catalogue recommended to anyone), `mean_popularity` (mean training count of the
recommended items) and `novelty` (their mean self-information). Popularity and novelty
average within each list, then over lists, so every user weighs the same. Re-exported by
`bayesmf.ranking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bayesmf._validate import validate_positive_int

__all__ = [
    "catalogue_coverage",
    "id_vector",
    "list_means",
    "mean_popularity",
    "novelty",
    "padded_lists",
    "self_information",
]


def id_vector(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a 1-d array of item ids; a ``ValueError`` naming ``name`` otherwise."""
    arr = np.asarray(values.tolist() if hasattr(values, "tolist") else list(values))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d sequence of item ids, got shape {arr.shape}")
    return arr


def padded_lists(lists: Any, n_items: int) -> np.ndarray:
    """Return lists of item indices as a (lists x longest) int matrix padded with -1 (validated).

    Raises
    ------
    ValueError
        On no list, a list that is not 1-d, or an index outside ``0..n_items - 1``.
    """
    if isinstance(lists, np.ndarray) and lists.ndim == 2:
        rows: Sequence[Any] = list(lists)
    elif isinstance(lists, (str, bytes)) or not isinstance(lists, (Sequence, np.ndarray)):
        raise TypeError(f"lists must be a sequence of item-index lists, got {type(lists).__name__}")
    else:
        rows = list(lists)
    if not rows:
        raise ValueError("lists is empty: pass at least one list of item indices")
    arrays = [id_vector("each list", row) for row in rows]
    width = max(len(a) for a in arrays)
    out = np.full((len(arrays), max(width, 1)), -1, dtype=np.int64)
    for i, a in enumerate(arrays):
        if len(a) and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= n_items):
            bad = next(v for v in a.tolist() if not (isinstance(v, int) and 0 <= v < n_items))
            raise ValueError(f"list {i} holds {bad!r}, not an item index in 0..{n_items - 1}")
        out[i, : len(a)] = a
    return out


def _counts(item_counts: Any) -> np.ndarray:
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("item_counts must be a non-empty 1-d array of finite counts >= 0")
    return counts


def catalogue_coverage(lists: Any, n_items: int) -> float:
    r"""Share of the catalogue that appears in at least one list.

    :math:`\mathrm{coverage} = |\bigcup_u L_u| / n_\text{items}`, for lists :math:`L_u` of
    item indices.

    Parameters
    ----------
    lists : sequence of array_like of int
        Item indices ``0..n_items - 1`` (a 2-d array or ragged lists).
    n_items : int
        Size of the catalogue.

    Returns
    -------
    float
        The share, in [0, 1].

    Raises
    ------
    TypeError, ValueError
        On a non-integer or non-positive ``n_items``, no list, or an index off the
        catalogue (named).

    References
    ----------
    .. [1] M. Ge, C. Delgado-Battenfeld and D. Jannach, "Beyond accuracy: evaluating
       recommender systems by coverage and serendipity", *RecSys 2010*, 257-260.
    """
    n_items = validate_positive_int("n_items", n_items)
    top = padded_lists(lists, n_items)
    return float(len(np.unique(top[top >= 0])) / n_items)


def list_means(top: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    """Mean of ``per_item`` over each row of a -1-padded index matrix (NaN for an empty row)."""
    valid = top >= 0
    values = np.where(valid, per_item[np.maximum(top, 0)], 0.0)
    with np.errstate(invalid="ignore"):
        return values.sum(axis=1) / valid.sum(axis=1)


def self_information(item_counts: Any, n_users: int) -> np.ndarray:
    r"""Per-item :math:`-\log_2(\max(c_j, 1) / n_\text{users})` (see `novelty`)."""
    counts = _counts(item_counts)
    n_users = validate_positive_int("n_users", n_users)
    if counts.max() > n_users:
        raise ValueError(f"an item count ({counts.max():g}) exceeds n_users={n_users}")
    return -np.log2(np.maximum(counts, 1.0) / n_users)


def _mean_over_lists(per_list: np.ndarray) -> float:
    if np.isnan(per_list).all():
        raise ValueError("every list is empty")
    return float(np.nanmean(per_list))


def mean_popularity(lists: Any, item_counts: Any) -> float:
    r"""Mean training popularity of the recommended items (average recommendation popularity).

    :math:`\mathrm{ARP} = \frac{1}{|U|} \sum_u \frac{1}{|L_u|} \sum_{j \in L_u} c_j`, with
    :math:`c_j` the item's number of training ratings; empty lists are left out. Higher
    means the lists lean to popular items.

    Parameters
    ----------
    lists : sequence of array_like of int
        Item indices into ``item_counts``.
    item_counts : array_like
        Training ratings per item (e.g. ``RatingsData.item_counts()``).

    Returns
    -------
    float
        A count, in the units of ``item_counts``.

    Raises
    ------
    ValueError
        On bad counts, no list, only empty lists or an index off the catalogue.

    References
    ----------
    .. [1] H. Abdollahpouri, R. Burke and B. Mobasher, "Managing popularity bias in
       recommender systems with personalized re-ranking", *FLAIRS 2019*.
    """
    counts = _counts(item_counts)
    return _mean_over_lists(list_means(padded_lists(lists, len(counts)), counts))


def novelty(lists: Any, item_counts: Any, n_users: int) -> float:
    r"""Mean self-information of the recommended items, in bits.

    .. math:: \mathrm{novelty} = \frac{1}{|U|} \sum_u \frac{1}{|L_u|} \sum_{j \in L_u}
              -\log_2 \frac{\max(c_j, 1)}{n_\text{users}},

    where :math:`c_j / n_\text{users}` is the item's popularity share, the fraction of the
    training users who rated it. An item no training user rated counts as rated by one
    (share :math:`1/n_\text{users}`, the largest finite value), so novelty stays finite.
    Higher means less popular items; empty lists are left out.

    Parameters
    ----------
    lists : sequence of array_like of int
        Item indices into ``item_counts``.
    item_counts : array_like
        Training ratings per item (one per user who rated it).
    n_users : int
        Number of training users (at least every count).

    Returns
    -------
    float
        Bits per recommended item: 0 for an item every user rated, at most
        :math:`\log_2 n_\text{users}`.

    Raises
    ------
    TypeError, ValueError
        On bad counts, a bad ``n_users`` (named), no list, only empty lists or an index off
        the catalogue.

    References
    ----------
    .. [1] T. Zhou, Z. Kuscsik, J.-G. Liu, M. Medo, J. R. Wakeling and Y.-C. Zhang,
       "Solving the apparent diversity-accuracy dilemma of recommender systems", *PNAS*
       107(10), 4511-4515, 2010.
    """
    info = self_information(item_counts, n_users)
    return _mean_over_lists(list_means(padded_lists(lists, len(info)), info))
