"""Predictions from a posterior left on disk: a group of pairs at a time, draws read block by block.

A fit backed by a zarr store (``fit_gibbs(store=...)``, `bayesmf.storage.read` with
``lazy=True``) holds its factors and offsets as dask arrays chunked along the draws
(`bayesmf.posterior.posterior_arrays` with ``lazy=True``). A pair's predictive needs every
draw of ITS user's and item's factors, not those of every user and item. `by_groups` cuts
the pairs into groups whose users' and items' draws hold at most `GATHER_BUDGET`
elements, copies those rows out of the store one stored block of draws at a time
(`gather`) and runs the in-memory computation on the copy, the pairs' indices pointing
into it (`bayesmf.predictive.pairs.Pairs.localized`; their seeds stay keyed by the
model's indices). Every number is the one the posterior read into memory gives.

`localize` gathers once for a caller that asks several questions of the same pairs
(`bayesmf.recommend`); `draw_blocks` hands out the posterior a stored block of draws at a
time, for sums over the draws (`bayesmf.batched_ranking`).

Memory: one stored block of draws of the factors and offsets plus one group's gathered
rows, at most `GATHER_BUDGET` elements, whatever the number of draws. Each group reads
the whole store once (its chunks hold every user or item of a block of draws): pairs are
grouped by user, then item, so that groups share rows and stay few.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, is_dataclass, replace
from typing import Any, cast

import numpy as np

from bayesmf.posterior import PosteriorArrays
from bayesmf.predictive.pairs import Pairs
from bayesmf.predictive.view import ModelView

__all__ = ["GATHER_BUDGET", "by_groups", "draw_blocks", "gather", "groups", "is_lazy", "localize"]

#: elements (factors and offsets, all draws) of the user and item rows gathered for a group
GATHER_BUDGET = 2**24


def is_lazy(view: ModelView) -> bool:
    """Whether ``view``'s factors are on disk (dask arrays), not in memory."""
    return not isinstance(view.arrays.U, np.ndarray)


def groups(view: ModelView, pairs: Pairs) -> list[np.ndarray]:
    """Positions of the pairs, cut into groups whose distinct users and items fit `GATHER_BUDGET`.

    The pairs are ordered by user, then item, and each group takes pairs in that order
    until one more would need a row beyond the budget (a single pair always forms a group).
    """
    cap = _cap(view)
    order = np.lexsort((pairs.iidx, pairs.uidx))
    if _n_rows(pairs, order) <= cap:
        return [order]
    out: list[np.ndarray] = []
    start, users, items = 0, set[int](), set[int]()
    for pos, (u, i) in enumerate(zip(pairs.uidx[order].tolist(), pairs.iidx[order].tolist(), strict=True)):
        new_u, new_i = u >= 0 and u not in users, i >= 0 and i not in items
        if len(users) + len(items) + new_u + new_i > cap and pos > start:
            out.append(order[start:pos])
            start, users, items = pos, set[int](), set[int]()
        if u >= 0:
            users.add(u)
        if i >= 0:
            items.add(i)
    out.append(order[start:])
    return out


def _cap(view: ModelView) -> int:
    """User and item rows a group may gather: `GATHER_BUDGET` over the elements of one row."""
    return max(1, GATHER_BUDGET // max(view.n_samples * (view.n_factors + 1), 1))


def _n_rows(pairs: Pairs, rows: np.ndarray) -> int:
    """Distinct known users plus distinct known items of the pairs at ``rows``."""
    users, items = pairs.uidx[rows], pairs.iidx[rows]
    return len(np.unique(users[users >= 0])) + len(np.unique(items[items >= 0]))


#: the variables with a user or item dim, and which of the two
_ROWS = {"U": "user", "V": "item", "user_bias": "user", "item_bias": "item"}


def _read_blocks(arrays: PosteriorArrays) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Yield each stored block of draws (``U``'s blocks) of the factors and offsets, read in one computation."""
    import dask

    lazy = {name: getattr(arrays, name) for name in _ROWS if getattr(arrays, name) is not None}
    chunks = getattr(arrays.U, "chunks")  # noqa: B009 - a dask array's (typed as numpy)
    for start, stop in itertools.pairwise(np.cumsum([0, *chunks[0]]).tolist()):
        values = dask.compute(*[a[start:stop] for a in lazy.values()])
        yield start, stop, dict(zip(lazy, values, strict=True))


def gather(arrays: PosteriorArrays, users: np.ndarray, items: np.ndarray) -> PosteriorArrays:
    """``arrays`` with the factors and offsets of ``users`` and ``items`` only, in memory.

    The lazy arrays are read one stored block of draws at a time.
    """
    rows = {"user": users, "item": items}
    out = {
        name: np.empty((a.shape[0], len(rows[_ROWS[name]]), *a.shape[2:]), dtype=a.dtype)
        for name in _ROWS
        if (a := getattr(arrays, name)) is not None
    }
    for start, stop, block in _read_blocks(arrays):
        for name, values in block.items():
            out[name][start:stop] = values[:, rows[_ROWS[name]]]
        del block, values  # before the next block is read
    return replace(arrays, **out)


def draw_blocks(view: ModelView) -> Iterator[ModelView]:
    """Yield a lazy ``view`` one stored block of draws at a time, each block a view in memory.

    For sums over the draws (`bayesmf.batched_ranking`): every per-draw part of the view
    is cut to the block's draws.
    """
    for start, stop, block in _read_blocks(view.arrays):
        cut = slice(start, stop)
        a = view.arrays
        arrays = replace(a, **block, mu=_cut(a.mu, cut), sigma=_cut(a.sigma, cut), cutpoints=_cut(a.cutpoints, cut))
        yield replace(
            view, arrays=arrays, n_samples=stop - start, noise=_cut(view.noise, cut),
            cutpoints=_cut(view.cutpoints, cut), prior_u=view.prior_u[cut], prior_v=view.prior_v[cut],
            prior_mean_u=view.prior_mean_u[cut], prior_mean_v=view.prior_mean_v[cut],
            prior_ub=view.prior_ub[cut], prior_ib=view.prior_ib[cut], mu=view.mu[cut],
            weights_u=_cut(view.weights_u, cut), weights_v=_cut(view.weights_v, cut),
        )
        del block, arrays  # the consumer's view of this block is the last reference


def _cut(values: np.ndarray | None, cut: slice) -> np.ndarray | None:
    return None if values is None else values[cut]


def _local(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct known indices of ``idx`` and each entry's position among them (-1 stays)."""
    known = idx >= 0
    distinct, inverse = np.unique(idx[known], return_inverse=True)
    local = np.full(len(idx), -1, dtype=np.int64)
    local[known] = inverse
    return distinct, local


def by_groups[T](
    view: ModelView, pairs: Pairs, compute: Callable[[ModelView, Pairs], T], axis: int = 0, progressbar: bool = False
) -> T:
    """``compute(view, pairs)`` for a lazy ``view``, one group of pairs (`groups`) at a time.

    Parameters
    ----------
    view : ModelView
        A view whose factors are on disk (`is_lazy`).
    pairs : Pairs
        The pairs asked about.
    compute : callable
        The in-memory computation: ``(view, pairs) -> result`` whose arrays run over the
        pairs along ``axis`` (a dataclass of such arrays, or None, is merged field by field).
    axis : int
        The pairs' axis of the result's arrays.
    progressbar : bool
        A tqdm bar over the groups (when there are several).

    Returns
    -------
    object
        What ``compute`` returns for all the pairs, in their order.
    """
    todo = groups(view, pairs)
    shown: Iterable[np.ndarray] = todo
    if progressbar and len(todo) > 1:
        from tqdm.auto import tqdm

        shown = tqdm(todo, desc="groups of pairs", unit="group")
    parts = [(rows, compute(*_gathered(view, pairs.subset(rows)))) for rows in shown]
    return cast(T, _merge(parts, len(pairs), axis))


def localize(view: ModelView, pairs: Pairs) -> tuple[ModelView, Pairs]:
    """Gather a lazy ``view`` for ``pairs`` when their rows fit `GATHER_BUDGET`; point the pairs into it.

    For a caller that asks several questions of the same pairs (`bayesmf.recommend`): the
    store is read once. Otherwise (an in-memory view, too many rows) both come back as
    they are, and each question is answered a group at a time.
    """
    if not is_lazy(view) or _n_rows(pairs, np.arange(len(pairs))) > _cap(view):
        return view, pairs
    return _gathered(view, pairs)


def _gathered(view: ModelView, pairs: Pairs) -> tuple[ModelView, Pairs]:
    """Return the view holding the draws of the pairs' users and items only, and the pairs pointing into it."""
    users, user_local = _local(pairs.uidx)
    items, item_local = _local(pairs.iidx)
    return replace(view, arrays=gather(view.arrays, users, items)), pairs.localized(user_local, item_local)


def _merge(parts: list[tuple[np.ndarray, Any]], n: int, axis: int) -> Any:
    """Put each group's result at its rows along ``axis`` (dataclasses field by field)."""
    first = parts[0][1]
    if first is None:
        return None
    if is_dataclass(first) and not isinstance(first, type):
        merged = {f.name: _merge([(rows, getattr(v, f.name)) for rows, v in parts], n, axis) for f in fields(first)}
        return replace(first, **merged)
    if len(parts) == 1 and np.array_equal(parts[0][0], np.arange(n)):
        return first
    shape = list(np.shape(first))
    shape[axis] = n
    out = np.empty(shape, dtype=first.dtype)
    for rows, value in parts:
        index: list[Any] = [slice(None)] * len(shape)
        index[axis] = rows
        out[tuple(index)] = value
    return out
