"""Ctrl-C during `fit_gibbs`: the draws so far come back, a second Ctrl-C aborts.

The signal is a real SIGINT sent to this process from a helper thread once the chains
have made a given number of sweeps (not after a fixed time, so a slow machine does not
change what is tested). Each sweep is slowed down by a sleep after the real sweep, so an
uninterrupted run lasts far longer than the 2 s the interrupt is allowed: a sampler that
ignored the signal would fail the timing check. While a test runs, SIGINT goes to a test
handler that records stray signals, so a signal that arrives after the fit returned fails
the test instead of stopping pytest; `fit_gibbs` must hand that handler back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import bayesmf.inference.gibbs.fit as gibbs_fit
from bayesmf import PMF, load, simulate
from bayesmf.inference.gibbs import fit_gibbs

SPEC = PMF(n_factors=2)
#: the interrupt must take effect within this many seconds (issue 17)
DEADLINE = 2.0


@pytest.fixture(scope="module")
def data():
    return simulate(n_users=60, n_items=40, n_factors=2, density=0.3, noise=0.5, seed=5).data


class Signals:
    """A SIGINT to this process once the chains have made ``at`` sweeps together; optionally
    a second one ``again`` seconds later, while each sweep from the ``at``-th on lingers
    ``linger`` seconds (so the chains are still stopping when it comes)."""

    def __init__(self, at: int, again: float | None, linger: float) -> None:
        self.at, self.again, self.linger = at, again, linger
        self.sent: list[float] = []
        self.stray: list[float] = []
        self.sweeps = 0
        self.lock = threading.Lock()
        self.due = threading.Event()
        self.done = threading.Event()

    def count(self) -> float:
        """Count a sweep; return how long it sleeps."""
        with self.lock:
            self.sweeps += 1
            n = self.sweeps
        if n == self.at:
            self.due.set()
        return self.linger if n >= self.at else 1e-3

    def send(self) -> None:
        self.due.wait()
        if self.done.is_set():
            return
        self.sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
        if self.again is not None:
            time.sleep(self.again)
            self.sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)


class SlowSweep:
    """A sweep that also counts itself and sleeps: the draws are the real sweep's."""

    def __init__(self, sweep: Any, signals: Signals) -> None:
        self._sweep, self._signals = sweep, signals

    def __call__(self, *args: Any) -> None:
        self._sweep(*args)
        time.sleep(self._signals.count())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sweep, name)


@contextlib.contextmanager
def sigint_after(at: int, again: float | None = None, linger: float = 1e-3) -> Iterator[Signals]:
    """Within the block, slow the sweeps down and send SIGINT after ``at`` sweeps (`Signals`)."""
    signals = Signals(at, again, linger)
    build = gibbs_fit.build_sweep

    def stray(signum: int, frame: Any) -> None:
        signals.stray.append(time.perf_counter())

    with pytest.MonkeyPatch.context() as patch:  # undone at the end: later fits run at full speed
        patch.setattr(gibbs_fit, "build_sweep", lambda *a: SlowSweep(build(*a), signals))
        previous = signal.signal(signal.SIGINT, stray)
        sender = threading.Thread(target=signals.send, daemon=True)
        sender.start()
        try:
            yield signals
            assert signal.getsignal(signal.SIGINT) is stray, "fit_gibbs did not restore the SIGINT handler"
        finally:
            signals.done.set()  # a sender still waiting for sweeps that never came sends nothing
            signals.due.set()
            sender.join(timeout=10)
            signal.signal(signal.SIGINT, previous)


def _same_draws(fit: Any, reference: Any, chains: list[int]) -> None:
    for group in ("posterior", "sample_stats"):
        got, ref = fit.idata[group].to_dataset(), reference.idata[group].to_dataset()
        for name in ref.data_vars:
            expected = ref[name].values[chains, : fit.n_draws]
            np.testing.assert_array_equal(got[name].values, expected, err_msg=f"{group}/{name}")


KW = {"tune": 20, "thin": 2, "random_seed": 11, "progressbar": False, "factor_draws": None}


def test_sigint_returns_the_draws_so_far(data):
    with sigint_after(400) as signals:
        with pytest.warns(UserWarning, match=r"interrupted at sweep \d+") as warned:
            fit = fit_gibbs(SPEC, data, draws=4000, chains=2, cores=2, **KW)
        returned = time.perf_counter()
    assert not signals.stray, "a SIGINT arrived after fit_gibbs returned"
    assert len(signals.sent) == 1
    assert returned - signals.sent[0] < DEADLINE
    info = fit.info
    assert info["interrupted"] is True
    assert f"interrupted at sweep {info['interrupted_at_sweep']} of {20 + 4000 * 2}" in str(warned[0].message)
    assert info["chains_kept"] == [0, 1] and fit.n_chains == 2
    # every chain keeps the draws both completed: at least one, far fewer than asked for
    kept = [(s - 20) // 2 for s in info["chain_sweeps"]]
    assert fit.n_draws == min(kept) >= 1 and info["draws"] == fit.n_draws < 4000
    assert info["interrupted_at_sweep"] == max(info["chain_sweeps"])
    # each chain is the start of the chain an uninterrupted run with the same seed makes
    reference = fit_gibbs(SPEC, data, draws=fit.n_draws, chains=2, **KW)
    assert reference.info["interrupted"] is False
    _same_draws(fit, reference, [0, 1])


def test_sigint_keeps_the_chains_that_kept_draws(data, tmp_path):
    """One core, three chains in turn: Ctrl-C in chain 1 keeps chains 0 and 1 (to a store too)."""
    store = tmp_path / "interrupted.zarr"
    sweeps = 20 + 150 * 2
    with sigint_after(sweeps + 100, linger=0.5) as signals:  # chain 1 stops at its sweep 100
        with pytest.warns(UserWarning, match="interrupted"):
            fit = fit_gibbs(SPEC, data, draws=150, chains=3, cores=1, store=store, **KW)
    assert not signals.stray
    assert fit.info["chains_kept"] == [0, 1] and fit.info["chain_sweeps"][2] == 0
    assert fit.n_draws == (100 - 20) // 2
    reference = fit_gibbs(SPEC, data, draws=150, chains=3, **KW)
    _same_draws(fit, reference, [0, 1])
    stored = load(store)  # the store on disk is cut to the same draws
    assert (stored.n_chains, stored.n_draws) == (2, fit.n_draws)
    assert stored.info["interrupted"] is True
    _same_draws(stored, reference, [0, 1])


def test_second_sigint_aborts(data):
    # the sweep that triggers the first signal lasts 2 s: the second comes 0.3 s later
    with sigint_after(200, again=0.3, linger=2.0) as signals:
        with pytest.raises(KeyboardInterrupt, match="second interrupt"):
            fit_gibbs(SPEC, data, draws=4000, chains=2, cores=2, **KW)
        aborted = time.perf_counter()
    assert not signals.stray
    assert len(signals.sent) == 2 and aborted - signals.sent[1] < DEADLINE
    assert aborted - signals.sent[0] < 2.0  # it did not wait for the lingering sweep
    # the chains' threads still end on their own
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and any(t.name.startswith("bayesmf-gibbs") for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("bayesmf-gibbs")]


def test_sigint_before_any_draw(data, tmp_path):
    store = tmp_path / "empty.zarr"
    with sigint_after(30) as signals:
        with pytest.raises(KeyboardInterrupt, match="before any draw was kept"):
            fit_gibbs(SPEC, data, draws=10, chains=2, tune=4000, progressbar=False, store=store)
    assert not signals.stray
    assert not store.exists()  # the store this call made held nothing


def test_no_sigint_no_flag(data):
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup
    fit = fit_gibbs(SPEC, data, draws=5, chains=2, **KW)
    assert fit.info["interrupted"] is False and "interrupted_at_sweep" not in fit.info
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back
