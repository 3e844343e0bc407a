"""The identified quantities of every kept draw, recorded as the chains run (`Monitor`).

The stopping rule (`bayesmf.inference.gibbs.converge`) judges convergence on the quantities
`bayesmf.diagnostics.diagnose` judges: `bayesmf.identified.identified_draws` of each kept
draw, with the same monitored pairs (``n_pairs`` training pairs and as many unrated ones
weighted by activity, ``seed``; `bayesmf.monitored_pairs`), cast to the dtypes the posterior
stores. So the verdict of the last check is the verdict `diagnose` gives the returned fit
with the same options. The monitor holds a few hundred numbers per draw, never the factors, so checking costs nothing in memory and works the
same whether the draws go to memory or to a zarr store.

The quantities are computed a batch of draws at a time (`batch_size`: up to
`BATCH_DRAWS` draws of a chain, within `BATCH_BYTES`), not draw by draw: on small problems
computing them one draw at a time cost more than the sweep that made the draw. A chain's
draws wait in its own buffer until the batch is full, or until the draws are looked at
(`Monitor.tree`, `Monitor.table`), moved (`Monitor.compact`, `Monitor.keep`) or the run
ends (`Monitor.flush`), all of which happen while no chain records.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmf.convergence_stats import labelled_stack, stacked_table
from bayesmf.diagnostics import mcmc_problems
from bayesmf.identified import identified_draws, monitored_pairs, quantity_coords
from bayesmf.inference.gibbs.sink import compact_draws
from bayesmf.monitored_pairs import DEFAULT_N_PAIRS

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["BATCH_BYTES", "BATCH_DRAWS", "Check", "Monitor", "batch_size", "failing_labels"]

#: most draws of one chain whose quantities are computed together
BATCH_DRAWS = 64
#: most bytes of posterior variables one chain's waiting draws may hold
BATCH_BYTES = 8 * 2**20


def batch_size(shapes: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> int:
    """Draws of one chain computed together: `BATCH_DRAWS`, fewer where they would pass `BATCH_BYTES` (at least 1)."""
    per_draw = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in shapes.values())
    return max(1, min(BATCH_DRAWS, BATCH_BYTES // max(per_draw, 1)))


@dataclass(frozen=True)
class Check:
    """One look at the draws so far: per-chain draws, the worst R-hat, the smallest ESS, problems.

    ``failing``: the labels of the quantities that failed. ``judged`` of ``total`` quantities
    were judged: all of them (``complete``), or, where the quantities that failed the look
    before still fail, only those (`Monitor.check`), and then the extremes and ``problems``
    are theirs.
    """

    draws: int
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    problems: tuple[str, ...]
    failing: tuple[str, ...] = ()
    judged: int = 0
    total: int = 0

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return not self.problems

    @property
    def complete(self) -> bool:
        """Every monitored quantity was judged."""
        return self.judged == self.total

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for ``FitResult.info``."""
        return {
            "draws": self.draws,
            "max_r_hat": self.max_r_hat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "ok": self.ok,
            "judged": self.judged,
            "total": self.total,
        }


def failing_labels(table: pd.DataFrame, chains: int, rhat_max: float, ess_min: float) -> tuple[str, ...]:
    """Labels of the rows of ``table`` that fail `bayesmf.diagnostics.mcmc_problems`'s per-quantity checks."""
    bad = (table["ess_bulk"] < ess_min) | (table["ess_tail"] < ess_min)
    if chains >= 2:
        bad |= table["r_hat"] > rhat_max
    return tuple(str(label) for label in table.index[bad.to_numpy()])


class Monitor:
    """A sink that keeps the identified quantities of each kept draw, in growable arrays.

    ``shapes``: ``{name: (shape, dtype)}`` of the posterior variables
    (`bayesmf.posterior.variable_shapes`); ``capacity``: draws per chain to allocate
    (`grow` adds more, between stages of the run, never while chains record).
    """

    def __init__(
        self,
        spec: PMF,
        train: RatingsData,
        shapes: Mapping[str, tuple[tuple[int, ...], np.dtype]],
        chains: int,
        capacity: int,
        *,
        n_pairs: int = DEFAULT_N_PAIRS,
        seed: int = 0,
    ) -> None:
        self.spec, self.train = spec, train
        self.dtypes = {name: dtype for name, (_, dtype) in shapes.items()}
        self.pairs = monitored_pairs(train, n_pairs=n_pairs, seed=seed)
        probe = identified_draws(
            spec, train, {k: np.zeros((1, *shape), dtype) for k, (shape, dtype) in shapes.items()}, self.pairs
        )
        self.dims = {name: dims for name, (dims, _) in probe.items()}
        self.values = {name: np.full((chains, capacity, *v.shape[1:]), np.nan) for name, (_, v) in probe.items()}
        self.stored = [0] * chains
        batch = batch_size(shapes)
        # per chain: the waiting draws' variables, and the draw index of each (no buffers where a
        # draw is too large to batch: each is computed as it comes, holding nothing beyond it)
        self._buffers = [
            {name: np.empty((batch, *shape), dtype) for name, (shape, dtype) in shapes.items()} if batch > 1 else {}
            for _ in range(chains)
        ]
        self._waiting: list[list[int]] = [[] for _ in range(chains)]

    @property
    def capacity(self) -> int:
        """Draws per chain the arrays can hold."""
        return next(iter(self.values.values())).shape[1]

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` draws per chain (keeps what was recorded)."""
        self.flush()
        if capacity <= self.capacity:
            return
        for name, old in self.values.items():
            new = np.full((old.shape[0], capacity, *old.shape[2:]), np.nan)
            new[:, : old.shape[1]] = old
            self.values[name] = new

    def record(self, chain: int, draw: int, values: Mapping[str, Any], stats: Mapping[str, float]) -> None:
        """Keep one draw of ``chain`` (a copy) for its batch; compute the batch once full (``stats`` are not used)."""
        waiting, buffer = self._waiting[chain], self._buffers[chain]
        if not buffer:  # one draw at a time
            self._store(chain, np.array([draw]), {k: np.asarray(v, dtype=self.dtypes[k])[None] for k, v in values.items()})
            self.stored[chain] = max(self.stored[chain], draw + 1)
            return
        slot = len(waiting)
        for name, array in buffer.items():
            array[slot] = values[name]
        waiting.append(draw)
        self.stored[chain] = max(self.stored[chain], draw + 1)
        if len(waiting) == next(iter(buffer.values())).shape[0]:
            self._compute(chain)

    def _compute(self, chain: int) -> None:
        """Compute the identified quantities of ``chain``'s waiting draws and write them in place."""
        waiting = self._waiting[chain]
        if not waiting:
            return
        n = len(waiting)
        self._store(chain, np.asarray(waiting), {name: array[:n] for name, array in self._buffers[chain].items()})
        waiting.clear()

    def _store(self, chain: int, index: np.ndarray, draws: Mapping[str, np.ndarray]) -> None:
        """Write the identified quantities of ``draws`` (one leading axis, a draw per ``index``) at ``chain``, ``index``."""
        for name, (_, value) in identified_draws(self.spec, self.train, draws, self.pairs).items():
            self.values[name][chain, index] = value

    def compact(self, factor: int) -> None:
        """Keep the quantities of every ``factor``-th recorded draw, as the posterior's sink does."""
        self.flush()
        for array in self.values.values():
            for chain, n in enumerate(self.stored):
                compact_draws(array, chain, n, factor)
        self.stored = [math.ceil(n / factor) for n in self.stored]

    def flush(self) -> None:
        """Compute the quantities of every chain's waiting draws (no chain may be recording)."""
        for chain in range(len(self._waiting)):
            self._compute(chain)

    def keep(self, chains: Sequence[int], n: int) -> None:
        """Keep ``chains`` (renumbered 0, 1, ...) and their first ``n`` draws."""
        self.flush()
        self._buffers = [self._buffers[c] for c in chains]
        self._waiting = [self._waiting[c] for c in chains]
        index = np.asarray(chains, dtype=np.int64)
        self.values = {k: v[index, :n] for k, v in self.values.items()}
        self.stored = [min(self.stored[c], n) for c in chains]

    def tree(self, n: int) -> xr.DataTree:
        """Return the first ``n`` draws of every chain as a posterior-like tree (as `identified_quantities`)."""
        self.flush()
        chains = len(self.stored)
        out = {name: (self.dims[name], values[0]) for name, values in self.values.items()}  # (draw, ...)
        data_vars = {name: (("chain", "draw", *self.dims[name]), values[:, :n]) for name, values in self.values.items()}
        coords = quantity_coords(out, self.pairs, chains, n)
        return xr.DataTree.from_dict({"posterior": xr.Dataset(data_vars, coords=coords)})

    def table(self, n: int, focus: Collection[str] = ()) -> pd.DataFrame:
        """R-hat and bulk and tail ESS of the first ``n`` draws of every chain, one row per scalar.

        The R-hat and ESS columns of `bayesmf.diagnostics.summary_table` (ArviZ's
        rank-normalized split R-hat and ESS), by the same function
        (`bayesmf.convergence_stats.stacked_table`) without the means, sds and MCSEs the
        rule does not judge. ``focus``: only the scalars with these labels (each scalar's
        statistics are its own, so they are those of the whole table's rows).
        """
        return _table(*labelled_stack(self.tree(n)["posterior"].to_dataset()), focus)

    def check(self, n: int, rhat_max: float, ess_min: float, focus: Collection[str] = ()) -> Check:
        """Judge the first ``n`` draws of every chain by `bayesmf.diagnostics.mcmc_problems`.

        ``focus``: the quantities that failed the look before (`Check.failing`). They are
        judged first; while one of them still fails, the look fails and the others are not
        judged (on a verdict's few hundred quantities, most looks of a run are decided by a
        handful of slow ones, and ranking every quantity at every look took about 45 % of
        a small fit's time, profiled on the stopping rule's calibration test).
        Only when they all pass is everything judged, so the looks pass and fail exactly as
        they do without ``focus``.
        """
        chains = len(self.stored)
        labels, stacked = labelled_stack(self.tree(n)["posterior"].to_dataset())  # once for both tables
        if focus:
            table = _table(labels, stacked, frozenset(focus))
            failing = failing_labels(table, chains, rhat_max, ess_min)
            if failing:
                return _judged(n, table, chains, rhat_max, ess_min, failing, len(labels))
        table = _table(labels, stacked)
        return _judged(n, table, chains, rhat_max, ess_min, failing_labels(table, chains, rhat_max, ess_min), len(labels))


def _table(labels: list[str], stacked: np.ndarray, focus: Collection[str] = ()) -> pd.DataFrame:
    """`Monitor.table` of the stacked scalars (Q, C, N) labelled ``labels``: those in ``focus``, or all."""
    if focus:
        rows = [i for i, label in enumerate(labels) if label in focus]
        labels, stacked = [labels[i] for i in rows], stacked[rows]
    return stacked_table(labels, stacked, full=False)


def _judged(
    n: int, table: pd.DataFrame, chains: int, rhat_max: float, ess_min: float, failing: tuple[str, ...], total: int
) -> Check:
    """Make the `Check` of ``table`` (all ``total`` quantities or some of them)."""

    def extreme(column: str, pick: Any) -> float:
        values = table[column].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        return float(pick(values)) if len(values) else float("nan")

    return Check(
        draws=n,
        max_r_hat=extreme("r_hat", np.max),
        min_ess_bulk=extreme("ess_bulk", np.min),
        min_ess_tail=extreme("ess_tail", np.min),
        problems=tuple(mcmc_problems(table, chains, rhat_max, ess_min)),
        failing=failing,
        judged=len(table),
        total=total,
    )
