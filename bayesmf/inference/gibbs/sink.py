"""Where the kept draws go: a sink receives each kept draw of each chain as it is made.

`MemorySink` keeps them in numpy arrays of shape (chain, draw, ...), from which
`bayesmf.posterior.make_posterior` builds the posterior. `bayesmf.inference.gibbs.zarr_sink`
streams them to a zarr store instead; the chain runner does not change.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["Growable", "MemorySink", "Sink", "TeeSink", "compact_draws"]

#: draws per chain moved at a time by `compact_draws`
_COMPACT_BLOCK = 64


def compact_draws(array: Any, chain: int, n: int, factor: int, block: int = _COMPACT_BLOCK) -> int:
    """Move draws ``0, factor, 2 factor, ...`` of the first ``n`` of ``chain`` down to ``0, 1, 2, ...``.

    ``array``: (chain, draw, ...), a numpy or zarr array. Blocks of ``block`` draws are read
    before they are written, and a block's target lies below every draw still to be read,
    so nothing is overwritten before it moves. Returns the draws left, ``ceil(n / factor)``.
    """
    m = math.ceil(n / factor)
    if factor > 1:
        for start in range(0, m, block):
            stop = min(m, start + block)
            array[chain, start:stop] = np.asarray(array[chain, start * factor : (stop - 1) * factor + 1 : factor])
    return m


class Sink(Protocol):
    """Receives the kept draws (called from the chains' threads, one chain per thread)."""

    def record(self, chain: int, draw: int, values: Mapping[str, Any], stats: Mapping[str, float]) -> None:
        """Store draw ``draw`` of ``chain``: posterior variables and sample statistics by name."""

    @property
    def stored(self) -> list[int]:
        """Draws of each chain stored for good (0, 1, ..., stored - 1)."""

    def flush(self) -> None:
        """Make every recorded draw durable (called once the chains have stopped)."""

    def keep(self, chains: Sequence[int], n: int) -> None:
        """Keep only ``chains`` (renumbered 0, 1, ...), each with its first ``n`` draws."""


class Growable(Sink, Protocol):
    """A sink whose room can grow, and whose draws can be thinned in place, between stages of a run."""

    def grow(self, n_keep: int) -> None:
        """Make room for ``n_keep`` draws per chain, keeping those stored."""

    def compact(self, factor: int) -> None:
        """Keep every ``factor``-th stored draw of each chain (`compact_draws`), moved down to 0, 1, ..."""


#: blocks at least this large are mapped with transparent huge pages where the system offers them
HUGE_PAGE_BLOCK = 1 << 22


def empty_block(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Return an uninitialized array for draws; a large one on memory advised for transparent huge pages.

    The draws are written once, page by page, so much of the cost of a large posterior is
    the first touch of its memory: one page fault per 4 KiB page, where a huge page takes
    one per 2 MiB (this matters most on virtual machines, where faults are slow). Elsewhere
    (no ``MADV_HUGEPAGE``, or a small block) a plain `numpy.empty`.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < HUGE_PAGE_BLOCK or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.empty(shape, dtype=dtype)
    buffer = mmap.mmap(-1, nbytes)
    try:
        buffer.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # not allowed here: ordinary pages
        pass
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


class MemorySink:
    """Draws in memory: ``arrays[name]`` of shape (chains, n_keep, *shape) per variable.

    ``shapes``: ``{name: (shape, dtype)}`` of the posterior variables (see
    `bayesmf.posterior.variable_shapes`); ``stats``: names of the float64 sample statistics.
    ``reserve``: draws per chain to set room aside for (a run until convergence: the most it
    may keep). The arrays are views of the first ``n_keep`` draws of blocks that large, so
    `grow` up to ``reserve`` copies nothing; the operating system gives the reserved memory
    pages only when draws are written to them.
    """

    def __init__(
        self,
        shapes: Mapping[str, tuple[tuple[int, ...], np.dtype]],
        stats: Sequence[str],
        chains: int,
        n_keep: int,
        reserve: int = 0,
    ) -> None:
        room = max(n_keep, reserve)
        self._blocks = {name: empty_block((chains, room, *shape), dtype) for name, (shape, dtype) in shapes.items()}
        self._stat_blocks = {name: np.empty((chains, room)) for name in stats}
        self._view(n_keep)
        self.stored = [0] * chains

    def _view(self, n_keep: int) -> None:
        """Point ``variables`` and ``stats`` at the first ``n_keep`` draws of the blocks."""
        self.variables = {name: block[:, :n_keep] for name, block in self._blocks.items()}
        self.stats = {name: block[:, :n_keep] for name, block in self._stat_blocks.items()}

    @property
    def nbytes(self) -> int:
        """Bytes held by the draws and statistics."""
        return sum(a.nbytes for a in (*self.variables.values(), *self.stats.values()))

    def record(self, chain: int, draw: int, values: Mapping[str, Any], stats: Mapping[str, float]) -> None:
        """Copy one draw into the arrays (the names they hold: a sink may keep some variables only)."""
        for name, array in self.variables.items():
            array[chain, draw] = values[name]
        for name, array in self.stats.items():
            array[chain, draw] = stats[name]
        self.stored[chain] = max(self.stored[chain], draw + 1)

    def grow(self, n_keep: int) -> None:
        """Make room for ``n_keep`` draws per chain, keeping those recorded (between stages only)."""
        size = next(iter(self.stats.values()), next(iter(self.variables.values()))).shape[1]
        if n_keep <= size:
            return
        room = next(iter(self._stat_blocks.values()), next(iter(self._blocks.values()))).shape[1]
        if n_keep > room:  # past the reserve: new blocks, the draws so far copied over
            for blocks in (self._blocks, self._stat_blocks):
                for name, old in blocks.items():
                    new = empty_block((old.shape[0], n_keep, *old.shape[2:]), old.dtype)
                    new[:, :size] = old[:, :size]
                    blocks[name] = new
        self._view(n_keep)

    def compact(self, factor: int) -> None:
        """Keep every ``factor``-th stored draw of each chain, moved down to 0, 1, ... (between stages only)."""
        for group in (self.variables, self.stats):
            for array in group.values():
                for chain, n in enumerate(self.stored):
                    compact_draws(array, chain, n, factor)
        self.stored = [math.ceil(n / factor) for n in self.stored]

    def flush(self) -> None:
        """Nothing to do: every draw is in the arrays as soon as it is recorded."""

    def keep(self, chains: Sequence[int], n: int) -> None:
        """Keep ``chains`` and the first ``n`` draws (a view when ``chains`` is 0, 1, ..., m-1)."""
        index: Any = slice(len(chains)) if list(chains) == list(range(len(chains))) else np.asarray(chains)
        self.variables = {k: v[index, :n] for k, v in self.variables.items()}
        self.stats = {k: v[index, :n] for k, v in self.stats.items()}
        self.stored = [min(self.stored[c], n) for c in chains]


class TeeSink:
    """Hands each draw to ``main`` and to every sink of ``also`` (e.g. the convergence monitor).

    ``stored`` is ``main``'s: what the result will hold.
    """

    def __init__(self, main: Sink, *also: Sink) -> None:
        self.main, self.sinks = main, (main, *also)

    @property
    def stored(self) -> list[int]:
        """Draws of each chain ``main`` has stored."""
        return self.main.stored

    def record(self, chain: int, draw: int, values: Mapping[str, Any], stats: Mapping[str, float]) -> None:
        """Record the draw in every sink."""
        for sink in self.sinks:
            sink.record(chain, draw, values, stats)

    def grow(self, n_keep: int) -> None:
        """Grow every sink (each must be `Growable`)."""
        for sink in self.sinks:
            sink.grow(n_keep)  # type: ignore[attr-defined]

    def compact(self, factor: int) -> None:
        """Compact every sink alike (each must be `Growable`)."""
        for sink in self.sinks:
            sink.compact(factor)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Flush every sink."""
        for sink in self.sinks:
            sink.flush()

    def keep(self, chains: Sequence[int], n: int) -> None:
        """Cut every sink alike."""
        for sink in self.sinks:
            sink.keep(chains, n)
