"""Run the chains: sweeps on worker threads, a progress bar, kept draws into sinks.

Each chain has its own `ChainState`, standard-variate buffers and ``numpy.random.Generator``,
so the same seed gives the same draws however the chains are scheduled on threads (the
numba kernels release the GIL). The chains always run on worker threads, even one at a
time: the calling thread only waits, so Ctrl-C (SIGINT, Jupyter's "interrupt kernel") is
handled within a fraction of a second. While the chains run, a SIGINT handler asks them to
stop at the end of their current sweep and the run returns what it has (`ChainRun`); a
second SIGINT raises ``KeyboardInterrupt`` at once. The previous handler is restored after.

A `ChainPool` runs its chains in stages: `ChainPool.advance` runs every chain until it has
kept a given number of draws, then returns, so the stopping rule
(`bayesmf.inference.gibbs.converge`) can look at the draws so far and grow the sinks
between stages. Each chain continues from its own state and generator, so a run in stages
makes the same draws as one run to the same length.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf.inference.gibbs.sink import Sink
from bayesmf.inference.gibbs.state import ChainState
from bayesmf.inference.gibbs.sweep import Sweep

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem

__all__ = ["SMALL_SWEEP_WORK", "ChainPool", "ChainRun", "RunReport", "Schedule", "default_cores", "sweep_work"]

#: sweeps between updates of the progress bar
_TICK = 10

#: a sweep below this much work (`sweep_work`) runs its chains on one thread by default: the
#: threads' handoffs of the interpreter cost more than the second core gives
#: (``benchmarks/RESULTS.md``, "Gibbs on small problems": one thread was faster up to
#: 20,000, two threads from 81,000)
SMALL_SWEEP_WORK = 40_000


def sweep_work(problem: Problem) -> int:
    """Rough cost of one sweep: ratings x row length plus rows x row length squared.

    A cost model fitted to where two threads beat one (`SMALL_SWEEP_WORK`), not a flop
    count: on small problems the kernels' per-row and per-rating loops, not their
    :math:`k^2` and :math:`k^3` arithmetic, set the sweep's time.
    """
    kp = problem.kp
    return problem.n_obs * kp + (problem.n_users + problem.n_items) * kp * kp


def default_cores(problem: Problem, chains: int) -> int:
    """Threads for ``chains`` when the user names none: every CPU, or one for a small sweep (`SMALL_SWEEP_WORK`)."""
    if sweep_work(problem) < SMALL_SWEEP_WORK:
        return 1
    return min(chains, _available_cpus())


def _available_cpus() -> int:
    """CPUs this process may run on (respects taskset / container limits where visible)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


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
        return self.sweeps_for(self.draws)

    def sweeps_for(self, kept: int) -> int:
        """Sweeps a chain has run when it has kept ``kept`` draws."""
        return self.tune + kept * self.thin


@dataclass
class ChainRun:
    """How far one chain got: sweeps done, draws handed to the sink, CPU seconds of its thread."""

    sweeps: int = 0
    kept: int = 0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class RunReport:
    """What a run did: per chain progress, whether Ctrl-C or the time budget stopped it, an error."""

    chains: list[ChainRun]
    interrupted: bool
    error: BaseException | None
    timed_out: bool = False

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
    until: int,
    sink: Sink,
    warmup: Sink | None,
    tick: Callable[[int], None],
    stop: threading.Event,
    run: ChainRun,
) -> None:
    """Continue one chain from sweep ``run.sweeps`` to ``until`` or until ``stop`` is set.

    Progress (sweeps, kept draws, CPU seconds) accumulates in ``run``.
    """
    variates = sweep.variates()
    tune, thin = schedule.tune, schedule.thin
    pending = 0
    cpu0 = time.thread_time()
    try:
        for n in range(run.sweeps, until):
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
        run.cpu_seconds += time.thread_time() - cpu0


def _progress(total: int, enabled: bool) -> Any:
    """Make the tqdm bar over the sweeps of all chains (disabled when not ``enabled``)."""
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


def _wait(
    futures: list[Future[None]], stop: threading.Event, interrupted: threading.Event, deadline: float | None
) -> bool:
    """Wait for every chain; stop them all as soon as one fails, Ctrl-C comes or ``deadline`` passes.

    Returns whether the deadline (a `time.perf_counter` value) stopped the chains.
    """
    pending = set(futures)
    timed_out = False
    while pending:
        if deadline is not None and not timed_out and time.perf_counter() > deadline:
            timed_out = True
            stop.set()
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
    return timed_out


class ChainPool:
    """Chains that run in stages on ``cores`` worker threads, with one progress bar.

    ``states`` and ``rngs``: one per chain. Kept draws go to ``sink`` (warm-up draws, thinned
    alike, to ``warmup`` when given) numbered 0, 1, ... per chain. ``bar_total``: the
    progress bar's length in sweeps of all chains (grown by `extend_bar` when a stage goes
    further). Call `close` when done.
    """

    def __init__(
        self,
        sweep: Sweep,
        states: Sequence[ChainState],
        rngs: Sequence[np.random.Generator],
        schedule: Schedule,
        sink: Sink,
        warmup: Sink | None = None,
        *,
        cores: int = 1,
        progressbar: bool = True,
        bar_total: int | None = None,
    ) -> None:
        self.sweep, self.states, self.rngs = sweep, list(states), list(rngs)
        self.schedule, self.sink, self.warmup, self.cores = schedule, sink, warmup, cores
        self.runs = [ChainRun() for _ in self.states]
        total = len(self.states) * schedule.sweeps if bar_total is None else bar_total
        self.bar = _progress(total, progressbar)
        self._lock = threading.Lock()
        self.interrupted = False

    def extend_bar(self, total: int) -> None:
        """Make the progress bar ``total`` sweeps long (all chains)."""
        with self._lock:
            if total != self.bar.total:
                self.bar.total = total
                self.bar.refresh()

    def advance(self, kept: int, deadline: float | None = None) -> RunReport:
        """Run every chain until it has kept ``kept`` draws, a chain fails, Ctrl-C, or ``deadline``.

        ``deadline``: a `time.perf_counter` value after which every chain stops at the end of
        its sweep; with a deadline all chains run at once (threads share the cores), so that
        each has sweeps when it passes. An exception raised in a chain (a sink that cannot write) stops the others
        at their next sweep and is returned as ``RunReport.error``, not raised. After an
        interrupt, an error or the deadline, do not advance again.

        Raises
        ------
        KeyboardInterrupt
            On a second Ctrl-C while the chains stop after the first.
        """
        until = self.schedule.sweeps_for(kept)
        stop, interrupted = threading.Event(), threading.Event()

        def tick(n: int) -> None:
            with self._lock:
                self.bar.update(n)

        def run(c: int) -> None:
            _run_chain(
                self.sweep, self.states[c], self.rngs[c], c, self.schedule, until,
                self.sink, self.warmup, tick, stop, self.runs[c],
            )  # fmt: skip

        # under a time budget every chain runs at once: run ``cores`` at a time, the chains
        # queued behind them would get no sweep before the budget ends
        workers = len(self.states) if deadline is not None else self.cores
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bayesmf-gibbs")
        try:
            with threadpool_limits(limits=1), _sigint_stops(stop, interrupted):
                futures = [pool.submit(run, c) for c in range(len(self.states))]
                timed_out = _wait(futures, stop, interrupted, deadline)
        except BaseException:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)  # each chain ends after its sweep
            raise
        pool.shutdown(wait=True)
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
        complete = all(r.sweeps == until for r in self.runs)
        self.interrupted = interrupted.is_set() and not complete
        return RunReport(
            chains=self.runs,
            interrupted=self.interrupted,
            error=errors[0] if errors else None,
            timed_out=timed_out and not complete,
        )

    def close(self) -> None:
        """Close the progress bar."""
        self.bar.close()

