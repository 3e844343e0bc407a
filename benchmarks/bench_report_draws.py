#!/usr/bin/env python
"""What the demo's ``report_draws`` costs in accuracy and saves in time.

Usage::

    .venv/bin/python benchmarks/bench_report_draws.py [--draws 250] [--seed 2026] [--quick]

Fits what ``bayesmf demo`` fits (ml-latest-small, 20 % of each user's ratings held out with
``--seed``; ALS under fixed priors; the default ``PMF(n_factors=10)`` by Gibbs until
converged), then computes the demo's calibration table (nine levels) and comparison twice per
``--draws`` value: from every posterior draw and from ``fit.thin(draws=D)``. Prints, as
Markdown, the seconds of each and the largest change in coverage, mean interval width and
RMSE against the whole posterior (the coverage's binomial se beside it). ``--quick``: a
fixed-length fit of 40 draws per chain on simulated ratings (150 users x 120 items), for a
smoke test. Nothing is written; paste what it
prints into ``RESULTS.md`` with the machine, date and load.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np

from bayesmf import PMF
from bayesmf.datasets import load_movielens, simulate
from bayesmf.metrics import calibration_table
from bayesmf.report import _PROBS, compare_fits
from bayesmf.split import train_test_split

PROBS = (0.1, 0.2, 0.3, 0.4, *_PROBS, 0.99)  # the demo's levels
GIBBS = "posterior (Gibbs)"


def _summaries(fits: dict, test) -> tuple[dict, float, float]:
    start = time.perf_counter()
    cal = calibration_table(fits, test, probs=PROBS)
    mid = time.perf_counter()
    cmp = compare_fits(fits, test, calibration=cal)
    end = time.perf_counter()
    rows = cal[cal["model"] == GIBBS].set_index("prob")
    out = {"coverage": rows["coverage"].to_numpy(), "se": rows["coverage_se"].to_numpy(),
           "width": rows["width"].to_numpy(), "rmse": float(cmp.loc[GIBBS, "RMSE"])}  # fmt: skip
    return out, mid - start, end - mid


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", default="250", help="comma-separated draws per chain to thin to")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--quick", action="store_true", help="a short fixed-length fit (smoke test)"
    )
    args = parser.parse_args(argv)
    counts = [int(d) for d in args.draws.split(",")]

    # --quick: simulated ratings of ml-latest-small's scale, a fraction of its size
    ratings = (
        simulate(n_users=150, n_items=120, n_factors=3, density=0.2, seed=args.seed).data
        if args.quick
        else load_movielens("ml-latest-small")
    )
    train, test = train_test_split(ratings, test_size=0.2, seed=args.seed, by="user")
    als = PMF(n_factors=10, priors="fixed").fit(
        train, method="als", random_seed=args.seed, progressbar=False
    )
    length = {"draws": 40, "tune": 40} if args.quick else {}
    start = time.perf_counter()
    gibbs = PMF(n_factors=10).fit(
        train, method="gibbs", random_seed=args.seed, progressbar=False, **length
    )
    fit_s = time.perf_counter() - start
    print(f"Gibbs fit {fit_s:.1f} s, {gibbs.n_draws} draws per chain, stopped by {gibbs.info.get('stopped_by')}; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    whole, cal_s, cmp_s = _summaries({"MAP (ALS)": als, GIBBS: gibbs}, test)
    print(
        "\n| draws per chain | calibration s | comparison s | max abs coverage change (se) | max abs width change | RMSE change |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| {gibbs.n_draws} (all) | {cal_s:.1f} | {cmp_s:.1f} | - | - | - |")
    for d in counts:
        thinned = gibbs.thin(draws=d)
        part, cal_s, cmp_s = _summaries({"MAP (ALS)": als, GIBBS: thinned}, test)
        dcov = np.abs(part["coverage"] - whole["coverage"])
        k = int(np.argmax(dcov))
        dwidth = float(np.max(np.abs(part["width"] - whole["width"])))
        print(f"| {thinned.n_draws} | {cal_s:.1f} | {cmp_s:.1f} | {dcov[k]:.4f} ({whole['se'][k]:.4f}) | "
              f"{dwidth:.4f} | {part['rmse'] - whole['rmse']:+.5f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
