#!/usr/bin/env python
"""What a Gibbs fit costs on small problems, beyond its sweeps: the sweep, and a fit run until converged.

Usage::

    .venv/bin/python benchmarks/bench_small_fits.py [--rounds 5] [--sweeps 2000] [--fits 3]
        [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Small problems are where the sampler's fixed costs show: the calibration tests (SBC) fit
hundreds of them, and a user's first try is often one. For each prior (``shared``:
``PMF(n_factors=2, factor_prior="shared")``; ``per-side``: ``PMF(n_factors=2)``, the default
per-side prior) on simulated ratings of 15 users x 12 items (rank 2, half the pairs rated,
seed 0), it measures

- the **sweep**: CPU microseconds per sweep of one chain on one thread (BLAS held to 1),
  the median of ``--rounds`` rounds of ``--sweeps`` sweeps (`time.process_time`);
- a **fit**: ``fit_gibbs`` run until converged (4 chains, the defaults, no progress bar),
  ``--fits`` seeds; wall and CPU seconds, the sweeps it made (4 x (burn-in + draws)) and
  its CPU microseconds per sweep made: the sweep's cost plus recording, the stopping
  rule's looks and the threads.

A second table, **threads**: fits of fixed length (4 chains x (100 + 400) sweeps, thin 1) of
``PMF(n_factors=rank)`` on simulated ratings of growing size, with ``cores=1`` and
``cores=2`` (the best of ``--reps`` runs each), and what `default_cores` picks for them: on
small problems two threads handing the interpreter to each other are slower than one
(`bayesmf.inference.gibbs.runner.SMALL_SWEEP_WORK`). Skipped with ``--no-threads``.

To compare two trees, run the script of this tree against the other one on ``PYTHONPATH``
(`git worktree add /tmp/old COMMIT`, then ``PYTHONPATH=/tmp/old .venv/bin/python
benchmarks/bench_small_fits.py --no-write``), alternating: the script uses only
`build_problem`, `initial_state`, `build_sweep` and `fit_gibbs`. ``--quick``: a few sweeps
and one fit (checks the script; writes nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _sections import log, provenance, publish  # noqa: E402

import bayesmf  # noqa: E402
from bayesmf import PMF, simulate  # noqa: E402
from bayesmf.inference.gibbs import fit_gibbs  # noqa: E402
from bayesmf.inference.gibbs.problem import build_problem  # noqa: E402
from bayesmf.inference.gibbs.start import initial_state  # noqa: E402
from bayesmf.inference.gibbs.sweep import build_sweep  # noqa: E402

PRIORS = {"shared": PMF(n_factors=2, factor_prior="shared"), "per-side": PMF(n_factors=2)}


def sweep_us(spec: PMF, data, sweeps: int, rounds: int) -> list[float]:
    """CPU microseconds per sweep of one chain, one per round."""
    from threadpoolctl import threadpool_limits

    problem = build_problem(spec, data)
    rng = np.random.default_rng(0)
    state = initial_state(problem, spec, data, rng, "map")
    sweep = build_sweep(problem, -0.8)
    variates = sweep.variates()
    out = []
    with threadpool_limits(limits=1):
        for _ in range(200):
            sweep(state, variates, rng)
        for _ in range(rounds):
            t = time.process_time()
            for _ in range(sweeps):
                sweep(state, variates, rng)
            out.append((time.process_time() - t) / sweeps * 1e6)
    return out


def fit_cost(spec: PMF, data, seed: int) -> dict[str, float]:
    """Wall and CPU seconds of a fit run until converged, and the sweeps it made."""
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_gibbs(spec, data, random_seed=seed, progressbar=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    info = fit.info
    sweeps = info["chains"] * (info["tune"] + info.get("kept_draws", info["draws"]) * info["thin"])
    return {"wall": wall, "cpu": cpu, "sweeps": sweeps, "stopped_by": fit.info["stopped_by"]}


SIZES = ((15, 12, 0.5), (60, 40, 0.3), (200, 150, 0.2), (600, 400, 0.1), (1500, 1000, 0.05))


def threads_table(ranks: list[int], reps: int, quick: bool) -> list[str]:
    """Markdown rows: size, rank, sweep work, wall s on 1 and 2 threads, their ratio, the default's pick."""
    from bayesmf.inference.gibbs.problem import build_problem as problem_of
    from bayesmf.inference.gibbs.runner import default_cores, sweep_work

    rows = [
        "| users x items | ratings | rank | sweep work | wall s, 1 thread | wall s, 2 threads | 2 / 1 | default cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    draws, tune = (10, 5) if quick else (400, 100)
    for n_users, n_items, density in SIZES[:2] if quick else SIZES:
        data = simulate(n_users=n_users, n_items=n_items, n_factors=2, density=density, seed=0).data
        for rank in ranks:
            spec = PMF(n_factors=rank)
            fit_gibbs(spec, data, draws=2, tune=2, progressbar=False, random_seed=0)
            wall: dict[int, float] = {}
            for cores in (1, 2):
                times = []
                for _ in range(reps):
                    t = time.perf_counter()
                    fit_gibbs(spec, data, draws=draws, tune=tune, thin=1, progressbar=False, random_seed=0, cores=cores)
                    times.append(time.perf_counter() - t)
                wall[cores] = min(times)
            problem = problem_of(spec, data)
            rows.append(
                f"| {n_users} x {n_items} | {data.n_ratings} | {rank} | {sweep_work(problem):,} | {wall[1]:.2f} | "
                f"{wall[2]:.2f} | {wall[2] / wall[1]:.2f} | {default_cores(problem, 4)} |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print (and write) the section."""
    start, load_before = time.perf_counter(), os.getloadavg()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sweeps", type=int, default=2000)
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--ranks", default="2,10", help="ranks of the threads table")
    parser.add_argument("--reps", type=int, default=2, help="runs per cell of the threads table (the best is kept)")
    parser.add_argument("--no-threads", action="store_true", help="skip the threads table")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a few sweeps, one fit: checks the script only")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.sweeps, args.fits = 2, 20, 1
    data = simulate(n_users=15, n_items=12, n_factors=2, density=0.5, seed=0).data
    fit_gibbs(PMF(n_factors=2), data, draws=5, tune=5, progressbar=False, random_seed=0)  # compile / load the kernels
    rows = [
        "| prior | sweep: CPU us (median; rounds) | fits | fit wall s (median) | fit CPU s (median) | sweeps per fit (median) "
        "| fit CPU us per sweep made | fit / bare sweep |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, spec in PRIORS.items():
        log(f"{name}: sweeps")
        bare = sweep_us(spec, data, args.sweeps, args.rounds)
        log(f"{name}: {args.fits} fits")
        fits = [fit_cost(spec, data, seed) for seed in range(args.fits)]
        med = {k: float(np.median([f[k] for f in fits])) for k in ("wall", "cpu", "sweeps")}
        per_sweep = float(np.median([f["cpu"] / f["sweeps"] * 1e6 for f in fits]))
        b = float(np.median(bare))
        rows.append(
            f"| {name} | {b:.0f} ({min(bare):.0f}-{max(bare):.0f}) | {len(fits)} "
            f"({', '.join(str(f['stopped_by']) for f in fits)}) | {med['wall']:.2f} | {med['cpu']:.2f} | {med['sweeps']:.0f} "
            f"| {per_sweep:.0f} | {per_sweep / b:.1f} |"
        )
    threads: list[str] = []
    if not args.no_threads:
        log("threads")
        ranks = [int(r) for r in args.ranks.split(",")]
        reps = 1 if args.quick else args.reps
        threads = [
            "",
            f"Threads: fixed-length fits ({'4 x (5 + 10)' if args.quick else '4 x (100 + 400)'} sweeps, thin 1, "
            f"seed 0) of `PMF(n_factors=rank)`, best of {reps} runs; `default cores`: what `fit_gibbs` "
            "uses when `cores` is not given (on this machine's CPUs)",
            "",
            *threads_table(ranks, reps, args.quick),
        ]
    lines = ["## Gibbs on small problems: the sweep and the fit around it (`benchmarks/bench_small_fits.py`)", ""]
    lines += provenance("bench_small_fits.py", argv, load_before, start)  # after every measurement: total time, load after
    lines += [
        f"- bayesmf at `{Path(bayesmf.__file__).parent}`; 15 users x 12 items, rank 2, half the pairs rated (seed 0); "
        f"sweep: {args.rounds} rounds of {args.sweeps} sweeps; fits: seeds 0-{args.fits - 1}, run until converged",
        "",
        *rows,
        *threads,
    ]
    publish(args.results, "bench_small_fits.py", lines, write=not (args.no_write or args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
