#!/usr/bin/env python
"""Gibbs at the size of ML-10M and ML-25M, on simulated ratings of their shape (issue 17, item 6).

Usage::

    .venv/bin/python benchmarks/bench_scale.py [--shapes ml-10m:10,ml-25m:32]
        [--max-seconds 300] [--tune 20] [--chains 4] [--results benchmarks/RESULTS.md]
        [--no-write] [--quick]

The larger MovieLens sets are not available here, so each shape is simulated: the users,
items and ratings of the real set, user activity and item popularity both Zipf-like
(weights ``(rank + 1) ** -0.8`` over a random order: a few users and items hold most
ratings), ratings from a planted rank-10 model with offsets and noise sd 0.9, rounded to half
stars in [0.5, 5] (cached in ``$BAYESMF_BENCH_CACHE``: the draws take minutes). Each shape runs in its own process (so peak RSS is that fit's): the data
are simulated, then ``PMF(n_factors=rank).fit(data, method="gibbs", store=<tmp>.zarr,
max_seconds=..., tune=...)`` runs until converged or until its time budget ends, writing
the draws to the zarr store as it goes. Reported: sweeps per second (all chains) and CPU ms
per chain sweep, the draws kept, what stopped the run and the last look's worst R-hat and
smallest ESS, peak RSS of the process (VmHWM), RSS after the data were built, and the size of
the store on disk. ``--tune`` is shortened from the default 200 so that draws are kept, and
looked at, within the budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sections import log, publish

#: (users, items, ratings) of the MovieLens sets
SHAPES = {
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-25m": (162_541, 59_047, 25_000_095),
    "tiny": (2_000, 500, 40_000),
}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024
    return float("nan")


def simulate_shape(n_users: int, n_items: int, n_ratings: int, seed: int = 0):
    """Distinct (user, item) pairs with Zipf-like activity and popularity; planted ratings."""
    from bayesmf.data import IdEncoder, RatingsData

    rng = np.random.default_rng(seed)

    def weights(n: int) -> np.ndarray:
        w = np.empty(n)
        w[rng.permutation(n)] = (np.arange(n) + 1.0) ** -0.8
        return w / w.sum()

    wu, wi = weights(n_users), weights(n_items)
    # every user and item once, then weighted draws; repeats dropped, topped up until enough
    codes = np.unique(
        np.resize(rng.permutation(n_users), max(n_users, n_items)).astype(np.int64) * n_items
        + np.resize(rng.permutation(n_items), max(n_users, n_items))
    )
    while len(codes) < n_ratings:
        batch = int(1.1 * (n_ratings - len(codes))) + 1000
        more = rng.choice(n_users, batch, p=wu).astype(np.int64) * n_items + rng.choice(n_items, batch, p=wi)
        codes = np.unique(np.concatenate([codes, more]))
    if len(codes) > n_ratings:
        codes = np.sort(rng.choice(codes, n_ratings, replace=False))
    user_idx, item_idx = codes // n_items, codes % n_items
    del codes
    k = 10
    U = rng.normal(0, (0.75 / np.sqrt(k)) ** 0.5, (n_users, k))
    V = rng.normal(0, (0.75 / np.sqrt(k)) ** 0.5, (n_items, k))
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    rating = np.empty(n_ratings)
    step = 2_000_000
    for s in range(0, n_ratings, step):
        u, i = user_idx[s : s + step], item_idx[s : s + step]
        eta = 3.5 + bu[u] + bi[i] + np.einsum("nk,nk->n", U[u], V[i]) + rng.normal(0, 0.9, len(u))
        rating[s : s + step] = np.clip(np.round(eta * 2) / 2, 0.5, 5.0)
    return RatingsData(
        user_idx, item_idx, rating, (0.5, 5.0),
        IdEncoder("user", np.arange(n_users, dtype=np.int64)),
        IdEncoder("item", np.arange(n_items, dtype=np.int64)),
    )  # fmt: skip


def cached_shape(shape: str):
    """`simulate_shape` of ``shape``, cached as .npz (the weighted draws take minutes at 25M)."""
    from bayesmf.data import IdEncoder, RatingsData

    cache = Path(os.environ.get("BAYESMF_BENCH_CACHE", Path(tempfile.gettempdir()) / "bayesmf-bench-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"scale-{shape}.npz"
    n_users, n_items, n_ratings = SHAPES[shape]
    if not path.exists():
        d = simulate_shape(n_users, n_items, n_ratings)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, user_idx=d.user_idx, item_idx=d.item_idx, rating=d.rating)
        tmp.replace(path)
    z = np.load(path)
    return RatingsData(
        z["user_idx"], z["item_idx"], z["rating"], (0.5, 5.0),
        IdEncoder("user", np.arange(n_users, dtype=np.int64)),
        IdEncoder("item", np.arange(n_items, dtype=np.int64)),
    )  # fmt: skip


def run_one(shape: str, rank: int, max_seconds: float, tune: int, chains: int, thin: int | None) -> dict:
    """One shape in this process: simulate (or read the cache), fit to the budget, measure."""
    from bayesmf import PMF
    from bayesmf.exceptions import ConvergenceWarning

    n_users, n_items, n_ratings = SHAPES[shape]
    t = time.perf_counter()
    data = cached_shape(shape)
    simulate_seconds = time.perf_counter() - t
    rss_data = _status_mb("VmRSS")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BAYESMF_BENCH_TMP")) as tmp:
        store = Path(tmp) / "post.zarr"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            t = time.perf_counter()
            try:
                fit = PMF(n_factors=rank).fit(
                    data, method="gibbs", store=store, max_seconds=max_seconds, tune=tune, chains=chains,
                    thin=thin, random_seed=0, progressbar=False,
                )  # fmt: skip
            except TimeoutError as exc:  # the budget ran out within the burn-in: no draw kept
                return {"shape": shape, "rank": rank, "users": n_users, "items": n_items, "ratings": n_ratings,
                        "failed": str(exc), "peak_rss_mb": _status_mb("VmHWM"), "rss_data_mb": rss_data}  # fmt: skip
            fit_seconds = time.perf_counter() - t
        disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        info = fit.info
        last = info["checks"][-1] if info["checks"] else {}
        return {
            "shape": shape,
            "rank": rank,
            "users": n_users,
            "items": n_items,
            "ratings": n_ratings,
            "chains": chains,
            "tune": tune,
            "thin": info["thin"],
            "simulate_seconds": simulate_seconds,
            "init_seconds": info["init_seconds"],
            "fit_seconds": fit_seconds,
            "sweeps_per_second": info["sweeps_per_second"],
            "cpu_ms_per_sweep": info["cpu_ms_per_sweep"],
            "draws": fit.n_draws,
            "sweeps": info.get("kept_draws", fit.n_draws) * info["thin"],
            "stopped_by": info["stopped_by"],
            "looks": len(info["checks"]),
            "last_r_hat": last.get("max_r_hat"),
            "last_ess": min(last.get("min_ess_bulk", np.nan), last.get("min_ess_tail", np.nan)) if last else None,
            "rss_data_mb": rss_data,
            "peak_rss_mb": _status_mb("VmHWM"),
            "disk_mb": disk / 2**20,
            "disk_mb_per_draw": disk / 2**20 / max(1, fit.n_draws * fit.n_chains),
            "warnings": [str(w.message)[:120] for w in caught],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="ml-10m:10,ml-25m:32", help="shape:rank, comma-separated")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--tune", type=int, default=20)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--thin", type=int, default=None, help="default: the sampler's (1 when running until converged)")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="the tiny shape only: checks the script")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one shape:rank, print JSON
    args = parser.parse_args(argv)
    if args.one:
        shape, rank = args.one.split(":")
        print(json.dumps(run_one(shape, int(rank), args.max_seconds, args.tune, args.chains, args.thin)))
        return 0
    shapes = ["tiny:4"] if args.quick else args.shapes.split(",")
    load0, started = os.getloadavg(), time.perf_counter()
    rows = []
    for item in shapes:
        log(f"{item}: simulate and fit (budget {args.max_seconds:g} s)")
        cmd = [sys.executable, __file__, "--one", item, "--max-seconds", str(args.max_seconds),
               "--tune", str(args.tune), "--chains", str(args.chains), *(["--thin", str(args.thin)] if args.thin else [])]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        log(f"{item}: {json.dumps(rows[-1])}")
    load1 = os.getloadavg()
    lines = [
        "## Gibbs at ML-10M and ML-25M shape (bench_scale.py)",
        "",
        f"{dt.date.today().isoformat()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load0[0]:.2f} before and {load1[0]:.2f} after; {(time.perf_counter() - started) / 60:.1f} min. "
        f"Command: `{shlex.join(['.venv/bin/python', 'benchmarks/bench_scale.py', *(argv if argv is not None else sys.argv[1:])])}`"
        + (" (QUICK: tiny shape only)" if args.quick else ""),
        "",
        f"Simulated ratings of each set's shape (Zipf-like activity and popularity, planted rank-10 model), "
        f"`PMF(n_factors=rank)` by Gibbs, {args.chains} chains, tune {args.tune}, thin {args.thin or '1 (the default)'}, until converged or "
        f"`max_seconds={args.max_seconds:g}`, draws streamed to a zarr store. One process per shape.",
        "",
        "| shape | rank | ratings | init s | sweeps/s (all chains) | CPU ms / chain sweep | sweeps / chain after burn-in (draws in the posterior) | stopped by | last look | peak RSS | RSS of the data | store on disk (per draw) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(
                f"| {r['shape']} ({r['users']:,} x {r['items']:,}) | {r['rank']} | {r['ratings']:,} | no draw kept: {r['failed']} "
                f"| | | | | | {r['peak_rss_mb'] / 1024:.2f} GiB | {r['rss_data_mb'] / 1024:.2f} GiB | |"
            )
            continue
        look = f"R-hat {r['last_r_hat']:.3f}, ESS {r['last_ess']:.0f}" if r["last_r_hat"] is not None else "none"
        lines.append(
            f"| {r['shape']} ({r['users']:,} x {r['items']:,}) | {r['rank']} | {r['ratings']:,} | {r['init_seconds']:.0f} "
            f"| {r['sweeps_per_second']:.2f} | {r['cpu_ms_per_sweep']:.0f} | {r.get('sweeps', r['draws'])} ({r['draws']}) | {r['stopped_by']} | {look} "
            f"| {r['peak_rss_mb'] / 1024:.2f} GiB | {r['rss_data_mb'] / 1024:.2f} GiB | {r['disk_mb']:.0f} MiB ({r['disk_mb_per_draw']:.1f} MiB) |"
        )
    publish(args.results, "bench_scale.py", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
