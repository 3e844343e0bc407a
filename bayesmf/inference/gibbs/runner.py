"""Run the chains: sweeps on worker threads, a progress bar, kept draws into sinks.

Each chain has its own `ChainState`, standard-variate buffers and ``numpy.random.Generator``,
so the same seed gives the same draws however the chains are scheduled on threads (the
numba kernels release the GIL). The chains always run on worker threads, even one at a
time: the calling thread only waits, so Ctrl-C (SIGINT, Jupyter's "interrupt kernel") is
handled within a fraction of a second. While the chains run, a SIGINT handler asks them to
stop at the end of their current sweep and the run returns what it has (`ChainRun`); a
second SIGINT raises ``KeyboardInterrupt`` at once. The previous handler is restored after.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf.inference.gibbs.sink import Sink
from bayesmf.inference.gibbs.state import ChainState
from bayesmf.inference.gibbs.sweep import Sweep

__all__ = ["ChainRun", "RunReport", "Schedule", "run_chains"]

#: sweeps between updates of the progress bar
_TICK = 10
#: seconds between the calling thread's checks on the chains
_POLL = 0.1


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


@dataclass
class ChainRun:
    """How far one chain got: sweeps done, draws handed to the sink, CPU seconds of its thread."""

    sweeps: int = 0
    kept: int = 0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class RunReport:
    """What `run_chains` did: per chain progress, whether Ctrl-C stopped it, a chain's error."""

    chains: list[ChainRun]
    interrupted: bool
    error: BaseException | None

    @property
    def sweeps(self) -> int:
        """Sweeps done by all chains together."""
        return sum(c.sweeps for c in self.chains)


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
    run: ChainRun,
) -> None:
    """Run one chain until its schedule ends or ``stop`` is set; progress goes into ``run``."""
    variates = sweep.variates()
    tune, thin = schedule.tune, schedule.thin
    pending = 0
    cpu0 = time.thread_time()
    try:
        for n in range(schedule.sweeps):
            if stop.is_set():
                break
            sweep(state, variates, rng)
            run.sweeps = n + 1
            if n < tune:
                if warmup is not None and (n + 1) % thin == 0:
                    warmup.record(chain, (n + 1) // thin - 1, sweep.draws(state), sweep.stats(state))
            elif (n - tune + 1) % thin == 0:
                sink.record(chain, run.kept, sweep.draws(state), sweep.stats(state))
                run.kept += 1
            pending += 1
            if pending >= _TICK:
                tick(pending)
                pending = 0
        tick(pending)
    finally:
        run.cpu_seconds = time.thread_time() - cpu0


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="Gibbs", unit="sweep", leave=True)


@contextlib.contextmanager
def _sigint_stops(stop: threading.Event, interrupted: threading.Event) -> Iterator[None]:
    """While active, a first SIGINT sets ``interrupted`` and ``stop``; a second one raises.

    Only the main thread can install signal handlers; elsewhere (and where SIGINT is
    ignored) nothing changes and a ``KeyboardInterrupt`` in `_wait` does the same job.
    """

    def handler(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt("second interrupt: Gibbs sampling aborted, nothing kept")
        interrupted.set()
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait(futures: list[Future[None]], stop: threading.Event, interrupted: threading.Event) -> None:
    """Wait for every chain; stop them all as soon as one fails or Ctrl-C comes."""
    pending = set(futures)
    while pending:
        try:
            done, pending = wait_futures(pending, timeout=_POLL, return_when=FIRST_EXCEPTION)
        except KeyboardInterrupt:
            if interrupted.is_set():  # the second Ctrl-C (from the handler): abort
                raise
            # no handler could be installed: this is the first Ctrl-C
            interrupted.set()
            stop.set()
            continue
        if any(f.exception() is not None for f in done):
            stop.set()


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
) -> RunReport:
    """Run every chain (``cores`` at a time) until done, a chain fails, or Ctrl-C.

    ``warmup``: also record the burn-in sweeps (thinned alike) there. Kept draws go to
    ``sink`` numbered 0, 1, ... per chain; `RunReport` says how many each chain kept.
    An exception raised in a chain (a sink that cannot write) stops the others at their
    next sweep and is returned as ``RunReport.error``, not raised.

    Raises
    ------
    KeyboardInterrupt
        On a second Ctrl-C while the chains stop after the first.
    """
    chains = len(states)
    runs = [ChainRun() for _ in range(chains)]
    bar = _progress(chains * schedule.sweeps, progressbar)
    lock = threading.Lock()
    stop, interrupted = threading.Event(), threading.Event()

    def tick(n: int) -> None:
        with lock:
            bar.update(n)

    def run(c: int) -> None:
        _run_chain(sweep, states[c], rngs[c], c, schedule, sink, warmup, tick, stop, runs[c])

    pool = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="bayesmf-gibbs")
    try:
        with threadpool_limits(limits=1), _sigint_stops(stop, interrupted):
            futures = [pool.submit(run, c) for c in range(chains)]
            _wait(futures, stop, interrupted)
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)  # each chain ends after its sweep
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    complete = all(r.sweeps == schedule.sweeps for r in runs)
    return RunReport(chains=runs, interrupted=interrupted.is_set() and not complete, error=errors[0] if errors else None)
