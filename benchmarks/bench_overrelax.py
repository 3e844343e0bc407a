#!/usr/bin/env python
"""The rows' overrelaxation coefficient under today's default prior: where would the rule stop?

Usage::

    .venv/bin/python benchmarks/bench_overrelax.py [--split u1] [--alphas=-0.8,-0.7,-0.6,-0.5]
        [--seeds 0,1,2] [--draws 1709] [--results benchmarks/RESULTS.md] [--no-write] [--quick]

The coefficient (``overrelaxation`` of `fit_gibbs`, -0.8) was tuned on the shared prior,
whose monitored quantities are mostly means. The per-side default monitors the spread of
the rows' effects (``sd_user_effect``, ``sd_item_effect``): an even function of the rows,
and for a Gaussian conditional overrelaxed by :math:`\\alpha` the square of a row's
deviation has lag-one autocorrelation :math:`\\alpha^2` (0.64 at -0.8), while its mean
anticorrelates. So a weaker coefficient might let the spread pass sooner, at the cost of
the slowest predictions. For each coefficient and seed: the default ``PMF(n_factors=10)``,
4 chains x (200 + ``--draws``) sweeps, every draw kept (``factor_draws=None``); the first
checkpoint of the stopping rule (100 x 1.5^k draws per chain) at which the verdict on the
draws so far passes (``-`` when none does within ``--draws``), and over all draws the bulk
ESS of the effect spreads and of the level, and the smallest and 5th-percentile ESS
(smaller of bulk and tail) of the monitored predictions. ``--quick``: a small simulated set
and short runs (checks the script; writes nothing).
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
from bench_slowest import prefix_verdicts  # noqa: E402

from bayesmf import PMF, load_movielens, simulate  # noqa: E402
from bayesmf.diagnostics import summary_table  # noqa: E402
from bayesmf.identified import identified_quantities  # noqa: E402

SCALARS = ("sd_user_effect", "sd_item_effect", "mean_level")


def first_pass(tree, draws: int) -> int | None:
    """The first checkpoint of the rule at which every monitored quantity passes, or None."""
    return next((n for n, _, _, failing in prefix_verdicts(tree, draws) if not failing.any()), None)


def row(train, alpha: float, seed: int, draws: int) -> list[str]:
    """One fit's cells: coefficient, seed, stop, ESS of the scalars, prediction ESS (smallest, 5th pct), seconds."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = PMF(n_factors=10).fit(
            train, method="gibbs", draws=draws, thin=1, random_seed=seed, progressbar=False,
            factor_draws=None, overrelaxation=alpha,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    tree = identified_quantities(fit)
    table = summary_table(tree)
    ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
    preds = ess[[label.startswith("pred") for label in table.index]]
    stop = first_pass(tree, draws)
    scalars = [f"{table.loc[name, 'ess_bulk']:.0f}" if name in table.index else "-" for name in SCALARS]
    return [f"{alpha:g}", str(seed), str(stop) if stop else "-", *scalars, f"{preds.min():.0f}", f"{np.percentile(preds, 5):.0f}", f"{seconds:.0f}"]


def main(argv: list[str] | None = None) -> int:
    """Run the fits; print (and write) the section."""
    start, load_before = time.perf_counter(), os.getloadavg()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="u1")
    parser.add_argument("--alphas", default="-0.8,-0.7,-0.6,-0.5")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--draws", type=int, default=1709)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small simulated data, short runs: checks the script only")
    args = parser.parse_args(argv)
    alphas = [float(a) for a in args.alphas.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        train, args.draws, what = simulate(n_users=60, n_items=40, n_factors=2, density=0.3, seed=0).data, 160, "simulated"
        alphas, seeds = alphas[:2], seeds[:1]
    else:
        train = load_movielens("ml-100k", split=args.split, data_dir=args.data_dir, download=False)[0]
        what = f"ML-100K {args.split}"
    rows = [
        "| overrelaxation | seed | rule would stop at (draws per chain) | `sd_user_effect` ESS | `sd_item_effect` ESS "
        "| `mean_level` ESS | smallest prediction ESS | 5th pct prediction ESS | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed in seeds:  # the coefficients of one seed back to back: the machine's drift hits them alike
        for alpha in alphas:
            log(f"{what}: overrelaxation {alpha:g}, seed {seed}, 4 chains x (200 + {args.draws}) sweeps")
            rows.append("| " + " | ".join(row(train, alpha, seed, args.draws)) + " |")
    lines = ["## The rows' overrelaxation under the per-side default (`benchmarks/bench_overrelax.py`)", ""]
    lines += provenance("bench_overrelax.py", argv, load_before, start)
    lines += ["", f"{what}, `PMF(n_factors=10)` (the default), 4 chains, every draw kept; ESS over all {args.draws} draws per chain", "", *rows]
    publish(args.results, "bench_overrelax.py", lines, write=not (args.no_write or args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
