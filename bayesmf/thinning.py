"""`thin`: a fit with fewer, evenly spaced draws, for prediction-heavy work.

A Gibbs fit run until convergence keeps every sweep, up to ``factor_draws`` per chain: often
4 x 500-1,000 draws. Whatever is computed per draw (P(chosen) of every unrated item, the
replay bandit's per-draw posteriors, top-N lists by a probability) costs in proportion. An
evenly spaced subsample of each chain is still a sample of the posterior (a thinned chain),
so ``fit.thin(draws=250).recommend(...)`` trades Monte Carlo error for time. The Monte Carlo
error of a posterior mean goes as one over the square root of the effective draws: thinning
cuts those in proportion where successive draws are nearly independent, and by less where
they are autocorrelated.

Only the draws change: the spec, the training ratings and the run's facts stay, and
``info["thinned"]`` records the step. `diagnose` on a thinned fit judges the draws it holds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from bayesmf._validate import validate_positive_int
from bayesmf.posterior import SCALAR_GROUP

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["thin"]

#: groups with one draw per posterior draw (ArviZ's names), thinned with it
_ALIGNED = ("sample_stats", "log_likelihood", "posterior_predictive")


def _step(n_draws: int, draws: int | None, every: int | None) -> int:
    if (draws is None) == (every is None):
        raise ValueError(f"give exactly one of draws= and every= (got draws={draws!r}, every={every!r})")
    if every is not None:
        return validate_positive_int("every", every)
    wanted = validate_positive_int("draws", draws)
    return max(1, math.ceil(n_draws / wanted))


def _thinned(group: xr.Dataset, step: int) -> xr.Dataset:
    """Every ``step``-th draw of ``group``, renumbered 0, 1, ... (attributes kept)."""
    out = group.isel(draw=slice(None, None, step))
    return out.assign_coords(draw=np.arange(out.sizes["draw"]))


def thin(result: FitResult, draws: int | None = None, every: int | None = None) -> FitResult:
    """Return the fit with every ``every``-th draw of each chain, or at most ``draws`` per chain.

    Parameters
    ----------
    result : FitResult
        A fitted model (a MAP fit, one draw, comes back unchanged).
    draws : int, optional
        At most this many draws per chain, evenly spaced from the first: the step is
        ``ceil(n_draws / draws)``.
    every : int, optional
        Keep draws 0, ``every``, 2 ``every``, ... of each chain. Give ``draws`` or ``every``.

    Returns
    -------
    FitResult
        A new result; ``result`` is not changed. The posterior, the per-draw sample
        statistics (where they have a draw for each posterior draw) and their draw
        coordinates (renumbered from 0) are thinned; the Gibbs sampler's
        ``scalar_posterior`` group (every sweep's scalars) is kept whole, its
        ``draw_spacing`` multiplied by the step so that posterior draw ``d`` still names
        its sweep; the warm-up groups are kept. ``info["thinned"]`` holds the overall step
        (steps multiply when a thinned fit is thinned again) and ``info["draws"]`` the draws
        per chain now held; the rest of ``info`` describes the run as it was.

    Raises
    ------
    ValueError
        If neither or both of ``draws`` and ``every`` are given, or the one given is below 1.
    TypeError
        If the one given is not an integer (the message names it).

    Examples
    --------
    >>> light = fit.thin(draws=250)  # doctest: +SKIP
    >>> light.recommend(user=1, rank_by="prob")  # doctest: +SKIP
    """
    n = result.n_draws
    step = _step(n, draws, every)
    if step == 1 or n == 1:
        return result
    tree = result.idata.copy()
    tree["posterior"] = xr.DataTree(_thinned(result.idata["posterior"].to_dataset(), step))
    for name in _ALIGNED:
        if name in result.idata.children:
            group = result.idata[name].to_dataset()
            if group.sizes.get("draw") == n:
                tree[name] = xr.DataTree(_thinned(group, step))
    info = dict(result.info)
    if SCALAR_GROUP in result.idata.children:
        scalars = result.idata[SCALAR_GROUP].to_dataset()
        spacing = int(scalars.attrs.get("draw_spacing", 1)) * step
        tree[SCALAR_GROUP] = xr.DataTree(scalars.assign_attrs(draw_spacing=spacing))
        info["draw_spacing"] = spacing
    info["thinned"] = int(info.get("thinned", 1)) * step
    if "draws" in info:  # draws per chain in the posterior
        info["draws"] = int(tree["posterior"].sizes["draw"])
    return type(result)(spec=result.spec, idata=tree, method=result.method, train=result.train, info=info)
