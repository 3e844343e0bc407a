r"""At most ``factor_draws`` draws per chain in the posterior, evenly spaced, however long the run.

The factors dominate a posterior's size (:math:`(n_\text{users} + n_\text{items}) k` numbers
a draw), and a run until convergence does not know its length in advance. `SpacedSink` hands
every ``spacing``-th kept draw to the sink behind it (draw :math:`d` goes to slot
:math:`d / \text{spacing}`); before each stage of the run, `SpacedSink.prepare` doubles the
spacing as often as needed for the stage's draws to fit ``factor_draws`` slots, and compacts
what is stored to the new spacing (`bayesmf.inference.gibbs.sink.compact_draws`). So the
posterior holds between ``factor_draws / 2`` and ``factor_draws`` draws per chain once the
run is longer, whatever its length, and its memory (or disk) stops growing.

Which draws are stored depends only on their index, never on their values: the stored draws
are a systematic subsample of each chain (a thinned chain), so they target the same
posterior. The convergence monitor sits behind the same spacing, so the stopping rule judges
exactly the draws the result holds. The scalars (noise sd, scales, level, cutpoints) are
small: every kept draw of them is recorded apart (`bayesmf.posterior.SCALAR_GROUP`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bayesmf.inference.gibbs.sink import Growable

__all__ = ["SpacedSink", "spacing_for"]


def spacing_for(draws: int, cap: int | None, at_least: int = 1) -> int:
    """Smallest ``at_least * 2**j`` whose spacing stores ``draws`` kept draws in at most ``cap`` slots."""
    spacing = at_least
    if cap is not None:
        while math.ceil(draws / spacing) > cap:
            spacing *= 2
    return spacing


class SpacedSink:
    """Hands every ``spacing``-th kept draw to ``inner``; at most ``cap`` slots per chain (None: all).

    ``draws``: kept draws per chain of the first stage (or of a run of fixed length), which
    sets the first spacing; ``inner`` must have room for `slots` of them.
    """

    def __init__(self, inner: Growable, cap: int | None, draws: int) -> None:
        self.inner, self.cap = inner, cap
        self.spacing = spacing_for(draws, cap)

    @property
    def stored(self) -> list[int]:
        """Slots of each chain stored by ``inner``."""
        return self.inner.stored

    def slots(self, draws: int) -> int:
        """Slots per chain that ``draws`` kept draws fill at the current spacing."""
        return math.ceil(draws / self.spacing)

    def record(self, chain: int, draw: int, values: Mapping[str, Any], stats: Mapping[str, float]) -> None:
        """Pass kept draw ``draw`` on to ``inner`` as slot ``draw // spacing`` when the spacing divides it."""
        if draw % self.spacing == 0:
            self.inner.record(chain, draw // self.spacing, values, stats)

    def prepare(self, draws: int) -> int:
        """Before a stage ending at ``draws`` kept draws per chain: widen the spacing to fit, grow ``inner``.

        Call between stages only (no chain recording). Returns the slots per chain.
        """
        spacing = spacing_for(draws, self.cap, self.spacing)
        if spacing != self.spacing:
            self.inner.compact(spacing // self.spacing)
            self.spacing = spacing
        n = self.slots(draws)
        self.inner.grow(n)
        return n

    def flush(self) -> None:
        """Flush ``inner``."""
        self.inner.flush()

    def keep(self, chains: Sequence[int], n: int) -> None:
        """Keep ``chains`` and their first ``n`` slots."""
        self.inner.keep(chains, n)
