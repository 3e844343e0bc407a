#!/usr/bin/env python
"""What a verdict costs: `bayesmf.diagnostics.summary_table` against ``az.summary`` on the same tree.

Usage::

    .venv/bin/python benchmarks/bench_diagnose.py [--data-dir ../shared/data] [--repeats 5] [--quick]

Two fits, both judged on the identified quantities `diagnose` monitors (sigma, the scales,
the level, 200 + 200 predictions, ...):

- ``u1``: the default ``PMF(n_factors=10)`` by Gibbs until converged on ML-100K u1
  (``--quick``: a simulated ML-100K-shaped set, 40 draws per chain);
- ``sbc``: a fit of the size the simulation-based calibration tests make by the hundred
  (15 users x 12 items, one chain of 99 draws), whose fixed-length run computes its verdict
  at the end.

For each, the median over ``--repeats`` of the seconds of ``az.summary(tree)`` and of
``summary_table(tree)`` (the same numbers, checked here to 1e-10), their ratio, and the
seconds of the whole fit. Prints Markdown; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Sequence

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np


def _median_seconds(call, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _row(name: str, fit, repeats: int, fit_s: float) -> str:  # type: ignore[no-untyped-def]
    import arviz as az

    from bayesmf.diagnostics import identified_quantities, summary_table

    tree = identified_quantities(fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = az.summary(tree, round_to="none")
        arviz_s = _median_seconds(lambda: az.summary(tree, round_to="none"), repeats)
    ours = summary_table(tree)
    for column in ours.columns[1:]:
        np.testing.assert_allclose(
            ours[column], np.asarray(ref[column], float), rtol=1e-10, atol=1e-14, equal_nan=True
        )
    ours_s = _median_seconds(lambda: summary_table(tree), repeats)
    shape = f"{fit.n_chains} x {fit.n_draws}"
    return f"| {name} | {shape} | {len(ours)} | {arviz_s:.3f} | {ours_s:.3f} | {arviz_s / ours_s:.1f} | {fit_s:.1f} |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    from bayesmf import PMF, RatingsData, load_movielens, simulate
    from bayesmf.data import IdEncoder

    print(f"load average before {os.getloadavg()[0]:.2f}\n")
    print("| fit | chains x draws | scalars | az.summary s | summary_table s | ratio | fit s |")
    print("|---|---|---|---|---|---|---|")
    if args.quick:
        train = simulate(n_users=943, n_items=1682, n_factors=10, density=0.05, seed=1).data
        length = {"draws": 40, "tune": 20}
    else:
        train, _ = load_movielens("ml-100k", split="u1", data_dir=args.data_dir)
        length = {}
    start = time.perf_counter()
    fit = PMF(n_factors=10).fit(train, method="gibbs", random_seed=1, progressbar=False, **length)
    print(
        _row(
            "u1" if not args.quick else "u1-shaped (simulated)",
            fit,
            args.repeats,
            time.perf_counter() - start,
        )
    )

    rng = np.random.default_rng(0)
    observed = rng.random((15, 12)) < 0.5
    user, item = np.nonzero(observed)
    small = RatingsData(
        user,
        item,
        rng.normal(3, 1, len(user)),
        (1.0, 5.0),
        IdEncoder("user", np.arange(15)),
        IdEncoder("item", np.arange(12)),
    )
    start = time.perf_counter()
    fit = PMF(n_factors=2).fit(
        small,
        method="gibbs",
        draws=99,
        tune=100,
        thin=5,
        chains=1,
        random_seed=0,
        progressbar=False,
    )
    print(_row("sbc", fit, args.repeats, time.perf_counter() - start))
    print(f"\nload average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
