#!/usr/bin/env python
"""Gibbs until converged on ML-100K, beside myFM in the same run (issue 17, items 1-3).

Usage::

    .venv/bin/python benchmarks/bench_converge.py [--splits u1,ua,ub] [--seeds 5]
        [--rank 10] [--myfm-iters 200] [--variants default,shared] [--seed-variants default]
        [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write] [--quick]

For each split, and each variant of the model (``default`` = ``PMF(n_factors=rank)``, since
2026-12-03 the same model as ``per-side`` = ``PMF(n_factors=rank, per_factor_scales=True,
factor_prior="per_side")``; ``shared`` = ``PMF(n_factors=rank, factor_prior="shared")``, the
default before; ``fixed-noise`` = ``PMF(n_factors=rank, factor_prior="shared", sigma=0.89)``,
the shared prior's scales learned and the noise sd
fixed at the 1-5 scale's default (high - low) / 4.5; ``per-side-fixed-noise`` = both),
fits by ``method="gibbs"`` with the sampler's defaults: run until the identified quantities
pass (R-hat <= 1.01, bulk and tail ESS >= 400), within the default budget. Reports the wall
time of the fit (time to a passing verdict), the draws per chain the rule asked for, what
stopped the run, the verdict of ``diagnose()`` (the sampler's own quantities) and of
``diagnose(test=test)`` (held-out pairs, which the rule did not look at), and the test RMSE
of the posterior mean (clipped to 1-5). On the first split, ``--seeds`` seeds of the default
model (and of each variant in ``--seed-variants``) give the median time to a passing verdict. myFM (``MyFMRegressor``, rank ``rank``,
``--myfm-iters`` sweeps, C++ Gibbs) runs on the same split in the same process: its wall
time and RMSE. Timings are reported as ratios to myFM's, measured in the same run.

Writes the section between ``<!-- bench_converge.py:begin -->`` and
``<!-- bench_converge.py:end -->`` of ``--results``.
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
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sections import log, publish
from bench_gibbs import run_myfm

from bayesmf import PMF, simulate
from bayesmf.datasets import load_movielens
from bayesmf.exceptions import ConvergenceWarning

VARIANTS = {
    # since 2026-12-03 the per-side prior with one scale per factor (``factor_prior="auto"``);
    # the RESULTS sections measured before that date call the shared prior "default"
    "default": {},
    "shared": {"factor_prior": "shared"},
    "per-side": {"per_factor_scales": True, "factor_prior": "per_side"},
    # the shared prior's scales learned, the noise sd fixed at the rating scale's default (0.89 on 1-5 stars)
    "fixed-noise": {"factor_prior": "shared", "sigma": "scale default"},
    # both: the per-side prior (the best RMSE) with the noise sd fixed as above (the best mixing)
    "per-side-fixed-noise": {"per_factor_scales": True, "factor_prior": "per_side", "sigma": "scale default"},
}


def spec_for(variant: str, rank: int, train) -> PMF:
    """The `PMF` of a variant on ``train`` (``"scale default"``: `PMF.noise_sd` of its rating scale)."""
    options = dict(VARIANTS[variant])
    if options.get("sigma") == "scale default":
        options["sigma"] = PMF(priors="fixed").noise_sd(train.scale)
    return PMF(n_factors=rank, **options)


def load(split: str, data_dir: str | None, quick: bool):
    """ML-100K ``split``, or (``--quick``) a tiny simulated split for checking the script."""
    if quick:
        sim = simulate(n_users=60, n_items=40, n_factors=2, density=0.3, seed=int(split[-1]) if split[-1].isdigit() else 0)
        held = np.random.default_rng(0).random(sim.data.n_ratings) < 0.2
        return sim.data.subset(np.flatnonzero(~held)), sim.data.subset(np.flatnonzero(held))
    return load_movielens("ml-100k", split=split, data_dir=data_dir, download=False)


def warm_numba() -> None:
    """Compile the Gibbs kernels on tiny data, so that compilation is not what the fits measure."""
    tiny = simulate(n_users=20, n_items=15, n_factors=2, density=0.4, seed=0).data
    PMF(n_factors=2).fit(tiny, method="gibbs", draws=5, tune=5, chains=2, progressbar=False, random_seed=0)


def fit_row(spec: PMF, train, test, seed: int, thin: int | None = None, tune: int | None = None) -> dict:
    """Fit until converged (``thin``, ``tune``: None for the sampler's defaults); time, length, verdicts and RMSE."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        options = {} if tune is None else {"tune": tune}
        fit = spec.fit(train, method="gibbs", random_seed=seed, progressbar=False, thin=thin, **options)
        seconds = time.perf_counter() - t
        own = fit.diagnose(warn=False)
        held = fit.diagnose(test=test, warn=False)
    pred = fit.predict(test, kind="expected")["mean"].to_numpy()
    rmse = float(np.sqrt(np.mean((np.clip(pred, *train.scale) - np.asarray(test.rating)) ** 2)))
    return {
        "seconds": seconds,
        "draws": fit.n_draws,
        "thin": fit.info["thin"],
        "sweeps": fit.info.get("kept_draws", fit.n_draws) * fit.info["thin"],
        "stopped_by": fit.info["stopped_by"],
        "looks": len(fit.info["checks"]),
        "ok": bool(own.ok),
        "ok_test": bool(held.ok),
        "min_ess_test": float(held.table[["ess_bulk", "ess_tail"]].min().min()),
        "worst_test": f"R-hat {held.table['r_hat'].max():.3f}, ESS {held.table[['ess_bulk', 'ess_tail']].min().min():.0f}",
        "rmse": rmse,
        "cpu_ms_per_sweep": fit.info["cpu_ms_per_sweep"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", default="u1,ua,ub")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--myfm-iters", type=int, default=200)
    parser.add_argument("--variants", default="default,shared")
    parser.add_argument("--seed-variants", default="default",
                        help="variants whose time to a passing verdict on the first split is taken over --seeds seeds")
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--compare-thin", type=int, default=None,
                        help="also run the seeds of the first split at this thin (e.g. 5, the default before 2026-12-02)")
    parser.add_argument("--quick", action="store_true", help="tiny simulated data: checks the script only")
    args = parser.parse_args(argv)
    splits = args.splits.split(",")
    variants = args.variants.split(",")
    seed_variants = args.seed_variants.split(",")
    unknown = sorted(set(variants + seed_variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    load0 = os.getloadavg()
    started = time.perf_counter()
    warm_numba()

    rows = []
    seed_rows: dict[str, list[dict]] = {v: [] for v in seed_variants}
    thin_rows: list[dict] = []
    for split in splits:
        train, test = load(split, args.data_dir, args.quick)
        log(f"{split}: myFM")
        fm = run_myfm(train, test, args.rank, args.myfm_iters, seed=0)
        for variant in variants:
            log(f"{split}: {variant}")
            row = fit_row(spec_for(variant, args.rank, train), train, test, seed=0)
            rows.append({"split": split, "variant": variant, "myfm_seconds": fm["seconds"], "myfm_rmse": fm["rmse_clipped"], **row})
        if split == splits[0]:
            by_variant = dict(zip(variants, rows[-len(variants):], strict=True))
            for variant in seed_variants:
                first = [{"seed": 0, **by_variant[variant]}] if variant in by_variant else []
                for seed in range(len(first), args.seeds):
                    log(f"{split}: {variant}, seed {seed}")
                    first.append({"seed": seed, **fit_row(spec_for(variant, args.rank, train), train, test, seed=seed)})
                seed_rows[variant] = first
            first_fm = fm
            for seed in range(args.seeds if args.compare_thin else 0):
                log(f"{split}: default, seed {seed}, thin {args.compare_thin}")
                thin_rows.append({"seed": seed, **fit_row(PMF(n_factors=args.rank), train, test, seed, args.compare_thin)})
    load1 = os.getloadavg()

    lines = [
        "## Gibbs until converged, beside myFM (bench_converge.py)",
        "",
        f"{dt.date.today().isoformat()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load0[0]:.2f} before and {load1[0]:.2f} after; "
        f"{(time.perf_counter() - started) / 60:.1f} min in all. Command: "
        f"`{shlex.join(['.venv/bin/python', 'benchmarks/bench_converge.py', *(argv if argv is not None else sys.argv[1:])])}`"
        + (" (QUICK: tiny simulated data, not ML-100K)" if args.quick else ""),
        "",
        f"Each fit: `PMF(n_factors={args.rank}, ...)` by Gibbs with the sampler's defaults (4 chains, 200 burn-in "
        "sweeps, every sweep kept (thin 1), run until R-hat <= 1.01 and bulk/tail ESS >= 400 on the identified "
        "quantities, looks at 100, 150, 225, ... draws per chain, at most 1,000 factor draws per chain in the "
        "posterior (a longer run keeps every 2nd, 4th, ...: `sweeps` counts them all)). `verdict` is `diagnose()` (what the rule "
        "looked at); `held-out verdict` is `diagnose(test=test)`, whose 200 held-out pairs the rule never "
        f"saw. myFM: `MyFMRegressor(rank={args.rank})`, {args.myfm_iters} sweeps, same split, same process. "
        "RMSE of the posterior mean clipped to 1-5.",
        "",
        "| split | model | time / myFM time | sweeps per chain after burn-in (posterior draws) | stopped by | verdict | held-out verdict | RMSE | myFM RMSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['split']} | {r['variant']} | {r['seconds'] / r['myfm_seconds']:.2f} ({r['seconds']:.0f} s / {r['myfm_seconds']:.1f} s) "
            f"| {r['sweeps']} ({r['draws']}) | {r['stopped_by']} | {'passes' if r['ok'] else 'FAILS'} "
            f"| {'passes' if r['ok_test'] else 'FAILS'} ({r['worst_test']}) | {r['rmse']:.4f} | {r['myfm_rmse']:.4f} |"
        )
    groups = [(f"{v} model", g) for v, g in seed_rows.items()]
    groups.append((f"default model at thin {args.compare_thin} (the default before 2026-12-02)", thin_rows))
    for label, group in groups:
        if not group:
            continue
        times = [r["seconds"] for r in group]
        ratio = statistics.median(times) / first_fm["seconds"]
        lines += [
            "",
            f"Time to a passing verdict on {splits[0]}, {label}, {len(group)} seeds: "
            f"median {statistics.median(times):.0f} s = {ratio:.2f} x myFM's {args.myfm_iters} sweeps "
            f"({first_fm['seconds']:.1f} s); per seed: "
            + ", ".join(
                f"{r['seed']}: {r['seconds']:.0f} s, {r['sweeps']} sweeps, {r['stopped_by']}, verdict {'passes' if r['ok'] else 'FAILS'}"
                f" / held-out {'passes' if r['ok_test'] else 'FAILS'} ({r['worst_test']})"
                for r in group
            )
            + ".",
        ]
    publish(args.results, "bench_converge.py", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
