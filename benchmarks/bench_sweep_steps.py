#!/usr/bin/env python
"""Where one Gibbs sweep's time goes: CPU milliseconds per sweep of each step of the sweep.

Usage::

    .venv/bin/python benchmarks/bench_sweep_steps.py [--datasets u1,small] [--sweeps 300]
        [--rounds 5] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Builds the sampler's sweep for the default ``PMF(n_factors=10)`` (`bayesmf.inference.gibbs.sweep`),
starts one chain as the sampler does (``init="map"``, seed 0), runs 50 sweeps, then
``--rounds`` rounds of ``--sweeps`` sweeps on one thread, timing each step (the row passes,
the global mean, ... the moves) and the likelihood's closing refresh with
`time.process_time` (CPU time of this process: on a shared virtual machine wall time varied
by a third between identical rounds, CPU time by much less); the rest of the sweep is the
standard variates drawn first (and ``augment``). The table gives, per step, the median over
rounds of its milliseconds per sweep, and its share of the sweep.

To compare two trees, run the script of this tree against the other one on ``PYTHONPATH``
(`git worktree add /tmp/old COMMIT`, then ``PYTHONPATH=/tmp/old .venv/bin/python
benchmarks/bench_sweep_steps.py --no-write``), alternating the two a few times: the script
uses only `build_problem`, `initial_state`, `build_sweep` and the `Sweep` it returns.

Datasets: ``u1`` (ML-100K canonical fold) and ``small`` (ml-latest-small, the demo's split: a
fifth of each user's ratings held out, seed 2026). ``--quick``: a small simulated set, a few
sweeps (checks the script; writes nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _sections import log, provenance, publish  # noqa: E402

import bayesmf  # noqa: E402
from bayesmf import PMF, simulate  # noqa: E402
from bayesmf.datasets import load_movielens  # noqa: E402
from bayesmf.inference.gibbs.problem import build_problem  # noqa: E402
from bayesmf.inference.gibbs.start import initial_state  # noqa: E402
from bayesmf.inference.gibbs.sweep import build_sweep  # noqa: E402
from bayesmf.split import train_test_split  # noqa: E402


def load(dataset: str, data_dir: str | None):
    """Training ratings of ``dataset``."""
    if dataset == "u1":
        return load_movielens("ml-100k", split="u1", data_dir=data_dir)[0]
    if dataset == "small":
        return train_test_split(load_movielens("ml-latest-small"), test_size=0.2, seed=2026, by="user")[0]
    if dataset == "sim":
        return simulate(n_users=60, n_items=80, n_factors=3, density=0.2, seed=1).data
    raise SystemExit(f"unknown dataset {dataset!r}; choose from u1, small")


def step_name(step) -> str:
    """A readable name for a step of the sweep (a block, or a bound method of one)."""
    owner = getattr(step, "__self__", None)
    if owner is not None:
        return f"{type(owner).__name__}.{step.__name__}"
    name = type(step).__name__
    side = getattr(step, "side", None)
    return f"{name} ({side})" if side else name


def _timed(function, spent: dict[str, float], name: str):
    """``function`` with its CPU time added to ``spent[name]`` at each call."""
    clock = time.process_time

    def timed(*args):
        t = clock()
        function(*args)
        spent[name] += clock() - t

    return timed


def profile(train, sweeps: int, rounds: int) -> dict[str, list[float]]:
    """Per step, the CPU ms per sweep of each round.

    The sweep itself runs (`Sweep.__call__`), with each step and the likelihood's refresh
    wrapped in a timer; what is left of the sweep's time is the variates and ``augment``.
    """
    from threadpoolctl import threadpool_limits

    spec = PMF(n_factors=10)
    problem = build_problem(spec, train)
    rng = np.random.default_rng(0)
    state = initial_state(problem, spec, train, rng, "map")
    sweep = build_sweep(problem)
    variates = sweep.variates()
    spent: dict[str, float] = defaultdict(float)
    names = [step_name(s) for s in sweep.steps]
    timed = dataclasses.replace(sweep, steps=tuple(_timed(s, spent, n) for s, n in zip(sweep.steps, names, strict=True)))
    timed.likelihood.refresh = _timed(timed.likelihood.refresh, spent, "refresh")  # the instance's, this process only
    per_round: dict[str, list[float]] = defaultdict(list)
    with threadpool_limits(limits=1):
        for _ in range(50):
            sweep(state, variates, rng)
        for _ in range(rounds):
            spent.clear()
            total0 = time.process_time()
            for _ in range(sweeps):
                timed(state, variates, rng)
            total = time.process_time() - total0
            per_round["variates (and augment)"].append((total - sum(spent.values())) / sweeps * 1e3)
            for name in [*names, "refresh"]:
                per_round[name].append(spent[name] / sweeps * 1e3)
            per_round["sweep"].append(total / sweeps * 1e3)
    return per_round


def table(per_round: dict[str, list[float]]) -> list[str]:
    """Markdown rows: step, median CPU ms per sweep, share of the sweep."""
    total = float(np.median(per_round["sweep"]))
    lines = ["| step | CPU ms per sweep (median over rounds) | share |", "|---|---|---|"]
    for name, values in per_round.items():
        if name == "sweep":
            continue
        ms = float(np.median(values))
        lines.append(f"| {name} | {ms:.3f} | {ms / total:.1%} |")
    lo, hi = np.percentile(per_round["sweep"], [0, 100])
    lines.append(f"| **sweep** | **{total:.3f}** (rounds {lo:.3f}-{hi:.3f}) | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the profile and print (and write) the section."""
    start, load_before = time.perf_counter(), os.getloadavg()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="u1,small")
    parser.add_argument("--sweeps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small simulated data, a few sweeps: checks the script only")
    args = parser.parse_args(argv)
    datasets = args.datasets.split(",")
    if args.quick:
        datasets, args.sweeps, args.rounds = ["sim"], 5, 2
    lines = ["## Where a Gibbs sweep's time goes (`benchmarks/bench_sweep_steps.py`)", ""]
    body: list[str] = []
    for dataset in datasets:
        log(f"{dataset}: {args.rounds} rounds of {args.sweeps} sweeps")
        train = load(dataset, args.data_dir)
        body += ["", f"{dataset}: {train!r}, `PMF(n_factors=10)`, bayesmf at `{Path(bayesmf.__file__).parent}`", ""]
        body += table(profile(train, args.sweeps, args.rounds))
    lines += provenance("bench_sweep_steps.py", argv, load_before, start)
    lines += [
        f"- one chain on one thread (BLAS held to 1), seed 0, 50 sweeps after the start, then {args.rounds} rounds of "
        f"{args.sweeps} sweeps; CPU time (`time.process_time`) of each step",
        *body,
    ]
    publish(args.results, "bench_sweep_steps.py", lines, write=not (args.no_write or args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
