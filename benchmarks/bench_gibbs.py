#!/usr/bin/env python
"""Gibbs sampler on ML-100K: wall time, convergence of identified quantities, test RMSE, myFM.

Usage::

    .venv/bin/python benchmarks/bench_gibbs.py [--split u1] [--rank 10] [--seed 0]
        [--pairs 100] [--myfm-iters 200] [--data-dir /work/shared/data]
        [--per-factor-scales] [--per-side] [--long-thin N]
        [--seeds N] [--compare-options JSON]
        [--results benchmarks/RESULTS.md] [--no-write]

Fits ``PMF(n_factors=rank)`` (hierarchical priors, biases: the package defaults) by
``method="gibbs"`` with the route's default draws / tune / chains / thin, then reports:

- wall time of ``fit()`` (after one small warm-up fit, so the one-time numba compilation
  into the on-disk cache is not counted; it is shown separately);
- R-hat (rank-normalized, ``arviz.rhat``) and bulk ESS (``arviz.ess``) of sigma, the two
  bias sds, mu, the factor sd, and the latent mean :math:`\\mu + b_i + c_j + U_i \\cdot V_j`
  of ``--pairs`` random observed (training) pairs and as many random held-out pairs
  (fixed seed). Raw factors are not identified (rotation, sign), so they are not monitored;
- the test RMSE of the posterior-mean prediction (unclipped and clipped to 1-5);
- time per sweep: single-chain wall time per sweep (a 1-chain run of 200 sweeps) and the
  CPU time per sweep of the default run;
- myFM (``MyFMRegressor(rank=rank)``, C++ Gibbs) on the one-hot user/item features of the
  same split: sweeps/s and test RMSE;
- with ``--seeds N``: the default fit again for seeds ``seed .. seed + N - 1``, one row per
  seed (wall time, the predictions' cells), so a share is not judged on one seed; with
  ``--compare-options '{"overrelaxation": -0.5, "thin": 2}'`` the same seeds also run with
  those options in place of the defaults.

Writes (or replaces) the section between ``<!-- bench_gibbs.py:<data>:begin -->`` and
``<!-- bench_gibbs.py:<data>:end -->`` of ``--results`` (one section per ``--data``); the
rest of that file is kept. ``--data sim-100k`` runs on simulated ratings of ML-100K's shape,
for machines that do not hold ML-100K (its license forbids copying it around).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import inspect
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a bar on every fit

import numpy as np
from _sections import write_section

# arviz 1.3's az.rhat / az.ess are these (arviz-stats); importing them alone keeps the
# benchmark runnable where arviz-plots' matplotlib stack is absent
from arviz_stats import ess, rhat

import bayesmf
from bayesmf import PMF, load_movielens, simulate
from bayesmf.inference.gibbs import fit_gibbs

HERE = Path(__file__).resolve().parent


def markers(data: str) -> tuple[str, str]:
    """Begin/end markers of this benchmark's section for one data source."""
    return f"<!-- bench_gibbs.py:{data}:begin -->", f"<!-- bench_gibbs.py:{data}:end -->"


RHAT_TARGET, ESS_TARGET, WALL_TARGET = 1.01, 400.0, 30.0


def latent_draws(post, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """(chain, draw, pair) draws of mu + b_i + c_j + U_i . V_j."""
    U = post["U"].values[:, :, user_idx].astype(np.float64)
    V = post["V"].values[:, :, item_idx].astype(np.float64)
    return (
        np.einsum("cdnk,cdnk->cdn", U, V)
        + post["mu"].values[..., None]
        + post["user_bias"].values[:, :, user_idx]
        + post["item_bias"].values[:, :, item_idx]
    )


def posterior_mean_prediction(post, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """Posterior mean of the latent mean rating, accumulated draw by draw (low memory)."""
    U, V = post["U"].values, post["V"].values
    chains, draws = U.shape[:2]
    total = np.zeros(len(user_idx))
    for c in range(chains):
        for d in range(draws):
            total += np.einsum("nk,nk->n", U[c, d, user_idx], V[c, d, item_idx], dtype=np.float64)
    total /= chains * draws
    mean_b = post["user_bias"].values.mean(axis=(0, 1))
    mean_c = post["item_bias"].values.mean(axis=(0, 1))
    return total + float(post["mu"].values.mean()) + mean_b[user_idx] + mean_c[item_idx]


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def diagnostics(x: np.ndarray) -> tuple[float, float, float]:
    """Max R-hat, min bulk ESS, fraction meeting both targets, over the last axis."""
    x = x.reshape(*x.shape[:2], -1)
    r = np.asarray(rhat(x))
    e = np.asarray(ess(x, method="bulk"))
    ok = (r <= RHAT_TARGET) & (e >= ESS_TARGET)
    return float(r.max()), float(e.min()), float(ok.mean())


def load_data(args):
    if args.data == "ml-100k":
        return load_movielens("ml-100k", split=args.split, data_dir=args.data_dir, download=False)
    # ML-100K's shape: 943 users, 1682 items, 100k ratings (popularity-skewed), 80/20 split
    sim = simulate(
        n_users=943,
        n_items=1682,
        n_factors=10,
        density=100_000 / (943 * 1682),
        noise=0.9,
        seed=args.seed,
        popularity_skew=1.0,
    )
    data = sim.data
    held = np.random.default_rng(args.seed).random(data.n_ratings) < 0.2
    return data.subset(np.flatnonzero(~held)), data.subset(np.flatnonzero(held))


def run_myfm(train, test, rank: int, n_iter: int, seed: int) -> dict:
    import myfm
    import scipy.sparse as sps

    n_users, n_items = train.n_users, train.n_items

    def onehot(data):
        n = data.n_ratings
        rows = np.r_[np.arange(n), np.arange(n)]
        cols = np.r_[data.user_idx, n_users + data.item_idx]
        return sps.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + n_items))

    fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    kwargs = {"n_iter": n_iter, "n_kept_samples": n_iter // 2}
    if "use_progress_bar" in inspect.signature(fm.fit).parameters:
        kwargs["use_progress_bar"] = False
    start = time.perf_counter()
    fm.fit(onehot(train), np.asarray(train.rating), **kwargs)
    seconds = time.perf_counter() - start
    pred = fm.predict(onehot(test))
    return {
        "seconds": seconds,
        "sweeps_per_second": n_iter / seconds,
        "ms_per_sweep": 1e3 * seconds / n_iter,
        "rmse": rmse(pred, test.rating),
        "rmse_clipped": rmse(np.clip(pred, *train.scale), test.rating),
        "n_iter": n_iter,
        "version": _version("myfm"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="u1")
    parser.add_argument(
        "--data",
        default="ml-100k",
        choices=("ml-100k", "sim-100k"),
        help="sim-100k: simulated ratings of ML-100K's shape (for machines without ML-100K)",
    )
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--myfm-iters", type=int, default=200)
    parser.add_argument(
        "--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", "/work/shared/data")
    )
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--per-factor-scales", action="store_true", help="also fit per_factor_scales=True"
    )
    parser.add_argument(
        "--per-side",
        action="store_true",
        help='also fit per_factor_scales=True, factor_prior="per_side" (BPMF-like)',
    )
    parser.add_argument(
        "--long-thin", type=int, default=0, help="also run the defaults with this thin (longer)"
    )
    parser.add_argument(
        "--seeds", type=int, default=0, help="also run the defaults on this many seeds"
    )
    parser.add_argument(
        "--compare-options",
        type=json.loads,
        default=None,
        help="JSON dict of fit_gibbs options also run on the --seeds seeds",
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    train, test = load_data(args)
    defaults = {
        k: v.default
        for k, v in inspect.signature(fit_gibbs).parameters.items()
        if k in ("draws", "tune", "chains", "thin", "overrelaxation")
    }

    # warm-up: numba compiles into its on-disk cache once per install
    start = time.perf_counter()
    tiny = simulate(n_users=30, n_items=20, n_factors=2, density=0.3, seed=0).data
    fit_gibbs(PMF(n_factors=2), tiny, draws=5, tune=5, chains=2, progressbar=False, random_seed=0)
    warmup_seconds = time.perf_counter() - start

    # single chain: wall time per sweep
    start = time.perf_counter()
    single = fit_gibbs(
        PMF(n_factors=args.rank),
        train,
        draws=200,
        tune=0,
        thin=1,
        chains=1,
        progressbar=False,
        random_seed=args.seed,
    )
    single_ms = 1e3 * single.info["sampling_seconds"] / 200
    del single

    rng = np.random.default_rng(12345)
    obs = rng.choice(train.n_ratings, args.pairs, replace=False)
    held = rng.choice(test.n_ratings, args.pairs, replace=False)

    base = f"PMF(n_factors={args.rank})"
    runs = [(f"`{base}`, defaults", PMF(n_factors=args.rank), {})]
    if args.per_factor_scales:
        label = f"`PMF(n_factors={args.rank}, per_factor_scales=True)`, defaults"
        runs.append((label, PMF(n_factors=args.rank, per_factor_scales=True), {}))
    if args.per_side:
        label = f'`PMF(n_factors={args.rank}, per_factor_scales=True, factor_prior="per_side")`, defaults'
        runs.append((label, PMF(n_factors=args.rank, per_factor_scales=True, factor_prior="per_side"), {}))
    if args.long_thin:
        label = f"`{base}`, thin={args.long_thin}"
        runs.append((label, PMF(n_factors=args.rank), {"thin": args.long_thin}))
    rows = []
    for label, spec, options in runs:
        start = time.perf_counter()
        fit = spec.fit(train, method="gibbs", random_seed=args.seed, progressbar=False, **options)
        wall = time.perf_counter() - start
        post = fit.posterior
        row = {"label": label, "wall": wall, "info": fit.info}
        for name in ("sigma", "sigma_user_bias", "sigma_item_bias", "mu", "sigma_factor"):
            if name not in post:  # factor_prior="per_side" has no shared factor sd
                row[name] = None
                continue
            values = post[name].values
            if name == "sigma_factor" and values.ndim == 3:
                # per-factor sds: the factor order is not identified, their sorted values are
                values = np.sort(values, axis=-1)
            row[name] = diagnostics(values)
        row["pred_obs"] = diagnostics(latent_draws(post, train.user_idx[obs], train.item_idx[obs]))
        row["pred_held"] = diagnostics(latent_draws(post, test.user_idx[held], test.item_idx[held]))
        pred = posterior_mean_prediction(post, test.user_idx, test.item_idx)
        row["rmse"] = rmse(pred, test.rating)
        row["rmse_clipped"] = rmse(np.clip(pred, *train.scale), test.rating)
        row["sigma_mean"] = float(post["sigma"].mean())
        rows.append(row)
        print(label, {k: v for k, v in row.items() if k not in ("label", "info")}, flush=True)
        del fit, post

    seed_rows = []
    variants = [("defaults", {})]
    if args.compare_options:
        variants.append((json.dumps(args.compare_options), dict(args.compare_options)))
    for name, options in variants if args.seeds else []:
        for seed in range(args.seed, args.seed + args.seeds):
            start = time.perf_counter()
            fit = PMF(n_factors=args.rank).fit(
                train, method="gibbs", random_seed=seed, progressbar=False, **options
            )
            wall = time.perf_counter() - start
            post = fit.posterior
            row = {
                "options": name,
                "seed": seed,
                "wall": wall,
                "pred_obs": diagnostics(latent_draws(post, train.user_idx[obs], train.item_idx[obs])),
                "pred_held": diagnostics(latent_draws(post, test.user_idx[held], test.item_idx[held])),
            }
            seed_rows.append(row)
            print("seed", row, flush=True)
            del fit, post

    fm = run_myfm(train, test, args.rank, args.myfm_iters, args.seed)
    print("myFM", fm, flush=True)
    load_after = os.getloadavg()

    text = render(
        args, rows, fm, defaults, warmup_seconds, single_ms, load_before, load_after, train, test,
        seed_rows,
    )
    print(text)
    if not args.no_write:
        write_section(Path(args.results), text, *markers(args.data))
    return 0


def _version(package: str) -> str:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return "?"


def data_label(args) -> str:
    if args.data == "ml-100k":
        return f"ML-100K {args.split}"
    return "simulated, ML-100K's shape (`simulate(943, 1682, 10, noise=0.9, popularity_skew=1)`, random 80/20)"


def fmt_diag(diag: tuple[float, float, float] | None) -> str:
    if diag is None:  # not in this model's posterior
        return "- | - | -"
    rhat, ess, frac = diag
    return f"{rhat:.3f} | {ess:.0f} | {100 * frac:.0f} %"


def render(
    args, rows, fm, defaults, warmup_seconds, single_ms, load_before, load_after, train, test,
    seed_rows=(),
) -> str:
    versions = ", ".join(
        [f"bayesmf {bayesmf.__version__}"]
        + [f"{p} {_version(p)}" for p in ("numpy", "numba", "arviz-stats", "myfm")]
    )
    cmd = "python benchmarks/bench_gibbs.py " + shlex.join(sys.argv[1:])
    begin, end = markers(args.data)
    lines = [
        begin,
        f"## Gibbs sampler (`bench_gibbs.py`), {data_label(args).split(' (')[0]}",
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='minutes')}; machine: {platform.platform()}, "
        f"{len(os.sched_getaffinity(0))} cores ({platform.processor() or platform.machine()}), Python {platform.python_version()}",
        f"- versions: {versions}",
        f"- command: `{cmd}`",
        f"- data: {data_label(args)} ({train.n_ratings} train / {test.n_ratings} test ratings), rank {args.rank}",
        f"- Gibbs defaults: {defaults}; seed {args.seed}; numba warm-up (one-time compile/cache load) {warmup_seconds:.1f} s, not counted",
        f"- load average (1/5/15 min) before {tuple(round(x, 2) for x in load_before)}, after "
        f"{tuple(round(x, 2) for x in load_after)}: "
        + (
            "other processes were running, so wall times are upper bounds (CPU ms/sweep is not affected)"
            if load_before[0] > 0.5
            else "no other load before the run"
        ),
        "",
        f"Monitored: R-hat max | bulk ESS min | share of quantities with R-hat <= {RHAT_TARGET} and ESS >= {ESS_TARGET:.0f}. "
        f"`pred obs` / `pred held`: latent mean mu + b_i + c_j + U_i.V_j of {args.pairs} random training / held-out pairs.",
        "",
        "| model, options | sweeps per chain | wall (s) | CPU s (all chains) | CPU ms/sweep | sigma | sd user bias | sd item bias | mu | sd factor | pred obs | pred held | test RMSE (clipped) | posterior MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        info = r["info"]
        sweeps = info["tune"] + info["draws"] * info["thin"]
        lines.append(
            f"| {r['label']} | {sweeps} | {r['wall']:.1f} | "
            f"{info['cpu_ms_per_sweep'] * sweeps * info['chains'] / 1e3:.1f} | "
            f"{info['cpu_ms_per_sweep']:.1f} | "
            + " | ".join(
                fmt_diag(r[k]).replace(" | ", " / ")
                for k in (
                    "sigma",
                    "sigma_user_bias",
                    "sigma_item_bias",
                    "mu",
                    "sigma_factor",
                    "pred_obs",
                    "pred_held",
                )
            )
            + f" | {r['rmse']:.4f} ({r['rmse_clipped']:.4f}) | {info['posterior_nbytes'] / 1e6:.0f} |"
        )
    lines += [
        "",
        "Cells are `R-hat max / ESS min / share meeting both` (per-factor sds: of the sorted "
        "sds, as the factor order is not identified). CPU s: thread CPU time summed "
        "over chains; on an otherwise idle 2-core machine the wall time is about half of it.",
        "",
        "| sampler | ms per sweep (1 chain, wall) | sweeps/s | test RMSE (clipped) |",
        "|---|---|---|---|",
        f"| bayesmf Gibbs, rank {args.rank} | {single_ms:.1f} | {1e3 / single_ms:.0f} | {rows[0]['rmse']:.4f} ({rows[0]['rmse_clipped']:.4f}) |",
        f"| myFM {fm['version']} `MyFMRegressor(rank={args.rank})`, {fm['n_iter']} sweeps (last half kept) | "
        f"{fm['ms_per_sweep']:.1f} | {fm['sweeps_per_second']:.0f} | {fm['rmse']:.4f} ({fm['rmse_clipped']:.4f}) |",
        "",
    ]
    lines += render_seeds(args, seed_rows)
    lines.append(end)
    return "\n".join(lines)


def render_seeds(args, seed_rows) -> list[str]:
    """The per-seed table of ``--seeds`` and one summary line per option set."""
    if not seed_rows:
        return []
    lines = [
        f"`PMF(n_factors={args.rank})` over seeds, same monitored pairs (`--seeds {args.seeds}`):",
        "",
        "| options | seed | wall (s) | pred obs | pred held | every prediction passes |",
        "|---|---|---|---|---|---|",
    ]

    def passes(r) -> bool:
        return r["pred_obs"][2] == 1.0 and r["pred_held"][2] == 1.0

    for r in seed_rows:
        cells = [fmt_diag(r[k]).replace(" | ", " / ") for k in ("pred_obs", "pred_held")]
        lines.append(
            f"| {r['options']} | {r['seed']} | {r['wall']:.1f} | {cells[0]} | {cells[1]} | "
            f"{'yes' if passes(r) else 'no'} |"
        )
    lines.append("")
    for name in dict.fromkeys(r["options"] for r in seed_rows):
        mine = [r for r in seed_rows if r["options"] == name]
        worst = max(max(r["pred_obs"][0], r["pred_held"][0]) for r in mine)
        least = min(min(r["pred_obs"][1], r["pred_held"][1]) for r in mine)
        walls = [r["wall"] for r in mine]
        lines.append(
            f"- {name}: every monitored prediction passes for {sum(map(passes, mine))} of "
            f"{len(mine)} seeds; worst R-hat {worst:.3f}, smallest bulk ESS {least:.0f}; "
            f"wall {min(walls):.1f}-{max(walls):.1f} s"
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
