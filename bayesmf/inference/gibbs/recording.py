"""Where a Gibbs run's draws go, wired once: the posterior's sink, its spacing, the monitor, the scalar trace.

`Recording` builds, for `bayesmf.inference.gibbs.fit.fit_gibbs`:

- the posterior's sink: in memory (`MemorySink`) or a zarr store (`ZarrSink`), with the
  warm-up sink when the burn-in is kept;
- the convergence `Monitor` (runs until convergence), which sees the same draws;
- the `SpacedSink` in front of both, keeping at most ``factor_draws`` draws per chain
  (`bayesmf.inference.gibbs.spacing`);
- the scalar trace: every kept draw of the variables without a user or item dim
  (`bayesmf.posterior.scalar_names`), in memory (a few numbers per draw).

`Recording.recorder` is what the chains record into; `Recording.grow` runs between the
stages of a run until convergence; `Recording.settle` cuts everything to the draws all kept
chains completed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayesmf.inference.gibbs.assemble import (
    LARGE_POSTERIOR_BYTES,
    STATS,
    per_draw_bytes,
    posterior_tree,
    settle,
    settle_trace,
    warn_if_large,
)
from bayesmf.inference.gibbs.monitor import Monitor
from bayesmf.inference.gibbs.runner import RunReport
from bayesmf.inference.gibbs.sink import MemorySink, TeeSink
from bayesmf.inference.gibbs.spacing import SpacedSink, spacing_for
from bayesmf.inference.gibbs.zarr_sink import ZarrSink, placeholders, store_sinks
from bayesmf.posterior import scalar_names
from bayesmf.storage import StoredResult

if TYPE_CHECKING:
    import zarr

    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["Recording", "check_factor_draws"]


def check_factor_draws(factor_draws: Any, chains: int, ess_min: float | None) -> int | None:
    """Validate ``factor_draws``; with a convergence rule (``ess_min``), refuse a cap it could never pass.

    Raises
    ------
    TypeError, ValueError
        Not None or a positive int; or ``chains * factor_draws < ess_min`` (the posterior
        could never hold ``ess_min`` effective draws).
    """
    from bayesmf._validate import validate_positive_int

    if factor_draws is None:
        return None
    factor_draws = validate_positive_int("factor_draws", factor_draws)
    if ess_min is not None and chains * factor_draws < ess_min:
        raise ValueError(
            f"factor_draws={factor_draws} keeps at most {chains * factor_draws} draws in all ({chains} "
            f"chains), fewer than ess_min={ess_min:g}: a run until convergence could never pass; "
            f"raise factor_draws to at least {math.ceil(ess_min / chains)} (or None)"
        )
    return factor_draws


def reserve_for(shapes: dict[str, Any], chains: int, most: int, factor_draws: int | None) -> int:
    """Draws per chain an in-memory posterior sets room aside for: all it may hold, if that is not large.

    The spacing (`bayesmf.inference.gibbs.spacing`) keeps at most ``factor_draws`` per
    chain; room for more than `LARGE_POSTERIOR_BYTES` in all is not reserved (the sink then
    grows stage by stage, copying).
    """
    most = most if factor_draws is None else min(most, factor_draws)
    return most if chains * most * per_draw_bytes(shapes) <= LARGE_POSTERIOR_BYTES else 0


class Recording:
    """The sinks of one run (see the module docstring).

    ``first``: kept draws per chain of the first stage (or of a fixed-length run);
    ``most``: the most draws per chain the run may keep (its budget);
    ``with_monitor``: run until convergence; ``path``: a zarr store to write (``template``
    parts: ``attrs`` of the posterior group, ``info``), or None to keep the draws in memory.
    """

    def __init__(
        self,
        spec: PMF,
        data: RatingsData,
        shapes: dict[str, Any],
        chains: int,
        first: int,
        *,
        n_warm: int,
        most: int,
        factor_draws: int | None,
        with_monitor: bool,
        path: Path | None,
        overwrite: bool,
        attrs: dict[str, Any],
        info: dict[str, Any],
    ) -> None:
        self.shapes, self.chains = shapes, chains
        slots = math.ceil(first / spacing_for(first, factor_draws))
        self.sink: MemorySink | ZarrSink
        self.warm: MemorySink | ZarrSink | None
        self.root: zarr.Group | None = None
        self.template: StoredResult | None = None
        if path is None:
            if not with_monitor:
                warn_if_large(shapes, chains, chains * (slots + n_warm))
            self.sink = MemorySink(shapes, STATS, chains, slots, reserve_for(shapes, chains, most, factor_draws))
            self.warm = MemorySink(shapes, STATS, chains, n_warm) if n_warm else None
        else:
            zeros = placeholders(shapes, STATS, chains)
            tree = posterior_tree(spec, data, zeros, zeros if n_warm else None, attrs)
            self.template = StoredResult(spec, tree, "gibbs", data, info)
            self.root, self.sink, self.warm = store_sinks(path, self.template, chains, slots, n_warm, overwrite)
        self.monitor = Monitor(spec, data, shapes, chains, slots) if with_monitor else None
        self.spaced = SpacedSink(self.sink if self.monitor is None else TeeSink(self.sink, self.monitor), factor_draws, first)
        self.trace = MemorySink({k: shapes[k] for k in scalar_names(spec)}, STATS, chains, first)
        self.recorder = TeeSink(self.spaced, self.trace)
        self.capacity = slots  # slots per chain the posterior's sinks hold (the rest unwritten or stale)
        self._warned = False

    def grow(self, n: int) -> None:
        """Before a stage ending at ``n`` kept draws per chain: respace, make room (between stages only)."""
        self.capacity = max(self.capacity, self.spaced.prepare(n))
        self.trace.grow(n)
        if isinstance(self.sink, MemorySink) and not self._warned:
            self._warned = warn_if_large(self.shapes, self.chains, self.chains * self.capacity, growing=True)

    def settle(self, report: RunReport) -> tuple[list[int], int, int, BaseException | None]:
        """Flush and cut the sinks (`bayesmf.inference.gibbs.assemble.settle`).

        Returns the kept chains, their posterior draws, their kept draws (the scalar
        trace's) and the first error.
        """
        kept, n, error = settle(report, self.spaced, self.warm, self.capacity)
        return kept, n, settle_trace(self.trace, kept), error
