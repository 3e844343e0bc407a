"""The chain every simulation-based-calibration test of the Gibbs blocks runs on one simulated data set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bayesmf.inference.gibbs.start import initial_state


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
    variates = sweep.variates()
    for _ in range(tune):
        sweep(state, variates, chain)
    kept = np.empty((draws, width))
    for d in range(draws):
        for _ in range(thin):
            sweep(state, variates, chain)
        kept[d] = record(sweep.draws(state))
    return kept
