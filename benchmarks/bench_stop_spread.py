#!/usr/bin/env python
"""How far one seed's time to a passing verdict can be trusted: many runs of the stopping rule.

Usage::

    .venv/bin/python benchmarks/bench_stop_spread.py [--split u1] [--seeds 5] [--tunes 100,200,400]
        [--variants default,shared] [--rank 10] [--myfm-iters 200]
        [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Issue 17's item 2 quotes the median over five seeds of the time to a passing verdict on
ML-100K u1. Whether the rule passes at a look is not monotone in the draws, so five seeds at
one burn-in length are a small sample of a wide distribution. This benchmark fits each
variant (as in ``bench_converge.py``) for every seed and every burn-in length in ``--tunes``
(each burn-in length ends the warm-up at another point of the chains, so it is as good as
another seed for the stopping point), and reports for each run the sweeps per chain the rule
asked for, the time as a ratio to myFM's ``--myfm-iters`` sweeps in the same process, and
the held-out verdict (``diagnose(test=test)``: 200 test pairs the rule never saw; 50 before 2026-12-03) with the
smallest held-out ESS. The summary per variant: the median sweeps and time ratio over all
runs, and how many runs stopped while a held-out pair had ESS below 400.

Writes the section between ``<!-- bench_stop_spread.py:begin -->`` and
``<!-- bench_stop_spread.py:end -->`` of ``--results``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sections import log, publish
from bench_converge import VARIANTS, fit_row, load, spec_for, warm_numba
from bench_gibbs import run_myfm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="u1")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tunes", default="100,200,400")
    parser.add_argument("--variants", default="default,shared")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--myfm-iters", type=int, default=200)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny simulated data: checks the script only")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    tunes = [int(t) for t in args.tunes.split(",")]
    load0 = os.getloadavg()
    started = time.perf_counter()
    warm_numba()

    train, test = load(args.split, args.data_dir, args.quick)
    log(f"{args.split}: myFM")
    fm = run_myfm(train, test, args.rank, args.myfm_iters, seed=0)
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for variant in variants:
        for tune in tunes:
            for seed in range(args.seeds):
                log(f"{args.split}: {variant}, tune {tune}, seed {seed}")
                row = fit_row(spec_for(variant, args.rank, train), train, test, seed=seed, tune=tune)
                runs[variant].append({"tune": tune, "seed": seed, **row})
    load1 = os.getloadavg()

    lines = [
        "## How far one seed's time to a passing verdict can be trusted (`bench_stop_spread.py`)",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load0[0]:.2f} before and {load1[0]:.2f} after; "
        f"{(time.perf_counter() - started) / 60:.1f} min in all. Command: "
        f"`{shlex.join(['.venv/bin/python', 'benchmarks/bench_stop_spread.py', *(argv if argv is not None else sys.argv[1:])])}`"
        + (" (QUICK: tiny simulated data, not ML-100K)" if args.quick else ""),
        "",
        f"Split {args.split}; each fit as in `bench_converge.py` (4 chains, run until converged), with the burn-in "
        f"of its row; myFM (`MyFMRegressor(rank={args.rank})`, {args.myfm_iters} sweeps) in the same process: "
        f"{fm['seconds']:.1f} s, RMSE {fm['rmse_clipped']:.4f}. `sweeps per chain`: after the burn-in, when the rule "
        "passed (the posterior keeps at most 1,000 factor draws per chain); `held-out`: `diagnose(test=test)` at that point, with the smallest bulk or tail ESS of its pairs.",
        "",
        "| model | burn-in | seed | sweeps per chain | time / myFM | held-out verdict | smallest held-out ESS | RMSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, rows in runs.items():
        for r in rows:
            lines.append(
                f"| {variant} | {r['tune']} | {r['seed']} | {r['sweeps']} | {r['seconds'] / fm['seconds']:.2f} "
                f"| {'passes' if r['ok_test'] else 'FAILS'} | {r['min_ess_test']:.0f} | {r['rmse']:.4f} |"
            )
    lines += ["", "| model | runs | median sweeps | median time / myFM | range | held-out passes | stops with a held-out ESS < 400 |",
              "|---|---|---|---|---|---|---|"]
    for variant, rows in runs.items():
        ratios = [r["seconds"] / fm["seconds"] for r in rows]
        lines.append(
            f"| {variant} | {len(rows)} | {statistics.median(r['sweeps'] for r in rows):.0f} "
            f"| {statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} "
            f"| {sum(r['ok_test'] for r in rows)} of {len(rows)} "
            f"| {sum(r['min_ess_test'] < 400 for r in rows)} of {len(rows)} |"
        )
    publish(args.results, "bench_stop_spread.py", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
