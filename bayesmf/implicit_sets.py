r"""The implicit-feedback sets N(i) of ``PMF(implicit_sets=...)`` (SVD++), and the two protocols.

User i's set :math:`N(i)` is the items it rated (the fact, not the value); item j's, its
raters. The design of a side is the sparse matrix :math:`X` with
:math:`X_{ij} = |N(i)|^{-1/2}` for :math:`j \in N(i)` and 0 elsewhere (`implicit_design`),
so the implicit term of row i is :math:`X_i Y`.

Two protocols (`protocol_of`):

- ``"strict"``: :math:`N(i)` comes from the training ratings only;
- ``"transductive"``: it also holds pairs known to exist without their ratings (the test
  pairs, as in the Netflix Prize and Rendle, Zhang & Koren 2019), attached to the training
  data by `with_implicit_pairs`.

The extra pairs are the field ``implicit_pairs`` of `bayesmf.data.RatingsData` (index
arrays, validated there): `with_implicit_pairs` attaches them by raw id, the other
transformations of `RatingsData` keep them, and a saved fit stores them
(`bayesmf.posterior_features`, read back by `bayesmf.storage`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bayesmf.data import RatingsData

__all__ = ["PROTOCOLS", "implicit_design", "protocol_of", "with_implicit_pairs"]

#: the protocols, by whether extra pairs are attached
PROTOCOLS = ("strict", "transductive")
_SIDES = ("user", "item")


def with_implicit_pairs(
    data: RatingsData, pairs: pd.DataFrame, user: str = "user", item: str = "item"
) -> RatingsData:
    """Return ``data`` with extra pairs in its implicit sets (the *transductive* protocol).

    Parameters
    ----------
    data : RatingsData
        The training ratings (not modified).
    pairs : pandas.DataFrame
        Pairs known to exist, by raw id in columns ``user`` and ``item`` (e.g. the test
        pairs; any rating column is ignored). Pairs already rated, or repeated, count once.
    user, item : str
        The id columns of ``pairs``.

    Returns
    -------
    RatingsData
        A plain `RatingsData` (features kept) whose field ``implicit_pairs`` holds the
        pairs' indices: those ``data`` already carried, then these.

    Raises
    ------
    TypeError
        ``pairs`` is not a DataFrame.
    ValueError
        ``pairs`` lacks a column, or holds an id unknown to ``data`` (named; a transductive
        set adds pairs, never users or items).
    """
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"pairs must be a pandas DataFrame of (user, item) ids, got {type(pairs).__name__}")
    missing = [c for c in (user, item) if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs lacks the column(s) {missing}; its columns are {list(pairs.columns)}")
    idx = []
    for column, encoder in ((user, data.users), (item, data.items)):
        index = encoder.to_index(pairs[column], unknown="flag")
        if (index < 0).any():
            bad = pd.unique(pairs[column].to_numpy()[index < 0])[:5].tolist()
            raise ValueError(
                f"pairs holds {column} id(s) {bad!r} unknown to the training data: the implicit sets "
                "add pairs of known users and items only"
            )
        idx.append(np.asarray(index, dtype=np.int64))
    if data.implicit_pairs is not None:
        idx = [np.concatenate([old, new]) for old, new in zip(data.implicit_pairs, idx, strict=True)]
    return dataclasses.replace(data, implicit_pairs=(idx[0], idx[1]))


def protocol_of(data: RatingsData) -> Literal["strict", "transductive"]:
    """Return ``"transductive"`` if ``data`` carries extra implicit pairs, else ``"strict"``."""
    return "strict" if data.implicit_pairs is None else "transductive"


def implicit_design(data: RatingsData, side: str) -> sp.csr_matrix:
    r"""Return the normalized indicator matrix of ``side``'s sets, (n_side, n_other), CSR.

    Row i holds :math:`|N(i)|^{-1/2}` at each member of :math:`N(i)` (sorted columns, no
    duplicates); a row with an empty set is zero.
    """
    if side not in _SIDES:
        raise ValueError(f"side must be 'user' or 'item', got {side!r}")
    rows, cols = data.user_idx, data.item_idx
    extra = data.implicit_pairs
    if extra is not None:
        rows, cols = np.concatenate([rows, extra[0]]), np.concatenate([cols, extra[1]])
    shape = (data.n_users, data.n_items)
    if side == "item":
        rows, cols, shape = cols, rows, shape[::-1]
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=shape)
    X.sum_duplicates()
    X.data[:] = 1.0
    counts = np.diff(X.indptr)
    X.data = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
    X.sort_indices()
    return X
