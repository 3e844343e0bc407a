"""The chain every simulation-based-calibration test of the Gibbs blocks runs on one simulated data set, and the uniformity test of its ranks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from bayesmf.inference.gibbs.start import initial_state


def chain_draws(
    sweep: Any, state: Any, chain: np.random.Generator, tune: int, draws: int, thin: int,
    record: Callable[[Any], np.ndarray],
) -> np.ndarray:
    """From ``state``, ``tune`` sweeps, then ``draws`` rows of ``record(state)`` every ``thin`` sweeps."""
    variates = sweep.variates()
    for _ in range(tune):
        sweep(state, variates, chain)
    kept = []
    for _ in range(draws):
        for _ in range(thin):
            sweep(state, variates, chain)
        kept.append(np.asarray(record(state)))
    return np.array(kept)


def sbc_draws(
    sweep: Any,
    problem: Any,
    spec: Any,
    data: Any,
    chain: np.random.Generator,
    tune: int,
    draws: int,
    thin: int,
    width: int,
    record: Callable[[dict[str, Any]], np.ndarray],
) -> np.ndarray:
    """From the ``"map"`` start, ``tune`` sweeps, then ``draws`` rows of ``record(sweep.draws(state))`` every ``thin`` sweeps (``width`` values each)."""
    state = initial_state(problem, spec, data, chain, "map")
    kept = chain_draws(sweep, state, chain, tune, draws, thin, lambda st: record(sweep.draws(st)))
    if kept.shape != (draws, width):
        raise ValueError(f"record gave rows of shape {kept.shape[1:]}, not ({width},)")
    return kept


def uniformity_pvalues(ranks: np.ndarray, n_ranks: int, n_bins: int = 10) -> np.ndarray:
    """Chi-square p-value of the uniformity of each column of ranks (0..n_ranks-1)."""
    bins = ranks * n_bins // n_ranks
    counts = np.stack([np.bincount(col, minlength=n_bins) for col in bins.T])
    return stats.chisquare(counts, axis=1).pvalue
