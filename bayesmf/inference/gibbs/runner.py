"""Run the chains: sweeps on parallel threads, a progress bar, kept draws into sinks.

Each chain has its own `ChainState`, standard-variate buffers and ``numpy.random.Generator``,
so the same seed gives the same draws however the chains are scheduled on threads (the
numba kernels release the GIL). On Ctrl-C the other threads stop at their next sweep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf.inference.gibbs.sink import Sink
from bayesmf.inference.gibbs.state import ChainState
from bayesmf.inference.gibbs.sweep import Sweep

__all__ = ["Schedule", "run_chains"]

#: sweeps between updates of the progress bar
_TICK = 10


@dataclass(frozen=True)
class Schedule:
    """``tune`` burn-in sweeps, then ``draws`` kept draws, one every ``thin`` sweeps."""

    tune: int
    draws: int
    thin: int

    @property
    def sweeps(self) -> int:
        """Sweeps per chain."""
        return self.tune + self.draws * self.thin


def _run_chain(
    sweep: Sweep,
    state: ChainState,
    rng: np.random.Generator,
    chain: int,
    schedule: Schedule,
    sink: Sink,
    warmup: Sink | None,
    tick: Callable[[int], None],
    stop: threading.Event,
) -> float:
    """Run one chain; returns the CPU seconds of its thread."""
    variates = sweep.variates()
    tune, thin = schedule.tune, schedule.thin
    pending = 0
    cpu0 = time.thread_time()
    for n in range(schedule.sweeps):
        if stop.is_set():
            break
        sweep(state, variates, rng)
        if n < tune:
            if warmup is not None and (n + 1) % thin == 0:
                warmup.record(chain, (n + 1) // thin - 1, sweep.draws(state), sweep.stats(state))
        elif (n - tune + 1) % thin == 0:
            sink.record(chain, (n - tune + 1) // thin - 1, sweep.draws(state), sweep.stats(state))
        pending += 1
        if pending >= _TICK:
            tick(pending)
            pending = 0
    tick(pending)
    return time.thread_time() - cpu0


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="Gibbs", unit="sweep", leave=True)


def run_chains(
    sweep: Sweep,
    states: Sequence[ChainState],
    rngs: Sequence[np.random.Generator],
    schedule: Schedule,
    sink: Sink,
    warmup: Sink | None = None,
    *,
    cores: int = 1,
    progressbar: bool = True,
) -> list[float]:
    """Run every chain (``cores`` at a time) and return each chain's CPU seconds.

    ``warmup``: also record the burn-in sweeps (thinned alike) there.
    """
    chains = len(states)
    bar = _progress(chains * schedule.sweeps, progressbar)
    lock = threading.Lock()
    stop = threading.Event()

    def tick(n: int) -> None:
        with lock:
            bar.update(n)

    def run(c: int) -> float:
        return _run_chain(sweep, states[c], rngs[c], c, schedule, sink, warmup, tick, stop)

    try:
        with threadpool_limits(limits=1):
            if cores == 1:
                return [run(c) for c in range(chains)]
            with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="bayesmf-gibbs") as pool:
                futures = [pool.submit(run, c) for c in range(chains)]
                try:
                    wait_futures(futures)
                except BaseException:  # KeyboardInterrupt: let the threads stop cleanly
                    stop.set()
                    raise
                return [f.result() for f in futures]
    finally:
        bar.close()
