"""From the sinks to the result: sizes, the in-memory posterior tree, cutting stopped runs."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmf.inference.gibbs.runner import ChainPool, RunReport
from bayesmf.inference.gibbs.sink import MemorySink, Sink
from bayesmf.posterior import SCALAR_GROUP, make_posterior

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["STATS", "Drawn", "per_draw_bytes", "posterior_tree", "settle", "settle_trace", "warn_if_large", "warn_stopped"]

#: posteriors larger than this draw a warning before sampling starts
LARGE_POSTERIOR_BYTES = 4e9
#: sample statistics recorded with every kept draw
STATS = ("log_likelihood_sum",)

#: (variables, sample statistics) of a group of draws, each (chain, draw, ...)
Drawn = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


def per_draw_bytes(shapes: Mapping[str, Any]) -> int:
    """Bytes of one kept draw of one chain (variables and statistics)."""
    return 8 * len(STATS) + sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in shapes.values())


def warn_if_large(shapes: Mapping[str, Any], chains: int, stored: int, *, growing: bool = False) -> bool:
    """Warn (and return True) when ``stored`` draws of all chains exceed `LARGE_POSTERIOR_BYTES`.

    ``growing``: the run goes on until it converges, so the size is the size reached so far.
    """
    per_draw = per_draw_bytes(shapes)
    if stored * per_draw <= LARGE_POSTERIOR_BYTES:
        return False
    what = "has reached" if growing else "will take"
    warnings.warn(
        f"the posterior {what} about {stored * per_draw / 1e9:.1f} GB "
        f"({chains} chains x {stored // chains} draws); pass a larger thin or fewer draws "
        "to keep it smaller, or store='<path>.zarr' to write the draws to disk as they are made",
        UserWarning,
        stacklevel=4,
    )
    return True


def posterior_tree(
    spec: PMF,
    data: RatingsData,
    post: Drawn,
    warm: Drawn | None,
    attrs: dict[str, Any],
    scalars: xr.Dataset | None = None,
) -> xr.DataTree:
    """Build the posterior (with the ``scalar_posterior`` and warm-up groups) in the layout of `bayesmf.posterior`.

    The groups come in the order `bayesmf.storage.read` gives them.
    """
    idata = make_posterior(spec, data, post[0], sample_stats=post[1], attrs=attrs)
    if scalars is not None:
        idata[SCALAR_GROUP] = scalars
    if warm is not None:
        warm_tree = make_posterior(spec, data, warm[0], sample_stats=warm[1], attrs=attrs)
        idata["warmup_posterior"] = warm_tree["posterior"]
        idata["warmup_sample_stats"] = warm_tree["sample_stats"]
    return idata


def settle(
    report: RunReport, sink: Sink, warm: Sink | None, draws: int
) -> tuple[list[int], int, BaseException | None]:
    """Flush the sinks and cut them to the draws every kept chain completed.

    Kept chains: those with at least one draw stored; each keeps as many draws as the
    shortest of them (equal lengths keep ArviZ's diagnostics valid). ``draws``: what each
    chain was to keep. Returns the kept chains, their draws, and the first error (a
    chain's, or a failed write here).
    """
    error = report.error
    for s in (sink, warm):
        try:
            if s is not None:
                s.flush()
        except OSError as exc:
            error = error or exc
    chains = len(report.chains)
    kept = [c for c in range(chains) if sink.stored[c] > 0]
    n = min((sink.stored[c] for c in kept), default=0)
    if n == 0 or (len(kept) == chains and n == draws):
        return kept, n, error
    try:
        sink.keep(kept, n)
        if warm is not None:
            warm.keep(kept, min(warm.stored[c] for c in kept))
    except OSError as exc:
        error = error or exc
    return kept, n, error


def settle_trace(trace: MemorySink, kept: list[int]) -> int:
    """Cut the scalar trace (every kept draw) to ``kept`` chains and the draws all of them made; return those."""
    n = min((trace.stored[c] for c in kept), default=0)
    trace.keep(kept, n)
    return n


def warn_stopped(info: dict[str, Any], pool: ChainPool, reached: int, kept: list[int], n: int) -> None:
    """Warn when Ctrl-C (or a fixed-length run's time budget) stopped sampling, naming the sweep.

    ``n``: the draws per chain in the posterior; with a spacing above 1 (``factor_draws``)
    the message also gives the draws made, ``info["kept_draws"]``.
    """
    spacing = info.get("draw_spacing", 1)
    made = info.get("kept_draws", n)
    n_text = f"{made} draws (the posterior holds one in {spacing}: {n})" if spacing > 1 else f"{n} draws"
    if info["stopped_by"] == "max_seconds" and info.get("draws_requested") is not None:
        warnings.warn(
            f"Gibbs sampling stopped by max_seconds at sweep {reached} of {pool.schedule.sweeps}; "
            f"keeping the first {n_text} ({info['draws_requested']} requested) of chain(s) {kept}",
            UserWarning,
            stacklevel=3,
        )
    if not pool.interrupted:
        return
    planned = f" of {pool.schedule.sweeps}" if info["draws_requested"] is not None else ""
    warnings.warn(
        f"Gibbs sampling interrupted at sweep {reached}{planned} "
        f"(sweeps per chain: {info['chain_sweeps']}); keeping the first {n_text} "
        f"of chain(s) {kept}",
        UserWarning,
        stacklevel=3,
    )
