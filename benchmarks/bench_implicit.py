#!/usr/bin/env python
"""The implicit-feedback Gibbs sampler against `implicit`'s ALS: seconds per sweep and NDCG@10.

Usage::

    .venv/bin/python benchmarks/bench_implicit.py [--folds u1] [--ranks 10,64]
        [--scales 1,5,20] [--draws 100] [--tune 50] [--als-iterations 15] [--threads 1]
        [--seed 0] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-write] [--json PATH] [--quick]

Protocol (`bayesmf.topn`, as ``benchmarks/bench_topn.py``): ML-100K's canonical fold(s)
(``load_folds``); both systems train on the training pairs as implicit feedback; every test
user with a relevant item (test rating >= 4 on an item unrated in training) gets the top 10
of ALL the items they did not rate in training; NDCG@10 as mean ± standard error over users.

Systems, at each rank of ``--ranks``:

- ``bayesmf``: ``PMF(n_factors=rank, likelihood="implicit", confidence="linear",
  confidence_scale=a)`` for each ``a`` of ``--scales`` (c_ij = 1 + a r_ij from the training
  rating r_ij), ``fit(train, method="gibbs", chains=1, cores=1, draws=--draws,
  tune=--tune, thin=1)``, ranked by ``bayesmf.topn.evaluate_topn(fit, test, k=10,
  rank_by="mean")``. Seconds per sweep: the chain's sampling seconds / its sweeps (one
  thread).
- ``implicit-als``: ``implicit.cpu.als.AlternatingLeastSquares(factors=rank,
  iterations=--als-iterations)`` on the training pairs with value c_ij = 1 + a r_ij for
  the first ``a`` of ``--scales`` (implicit's ALS reads the values as confidences), with
  ``num_threads=--threads`` and BLAS held to one thread; scored by user . item factors,
  evaluated by ``bayesmf.topn.evaluate_scores``. Seconds per iteration: its fit seconds /
  iterations.

The table gives, per rank, the ratio (bayesmf seconds per sweep) / (implicit seconds per
iteration); the goal of issue 16 is a ratio within 3 at equal rank and equal threads
(``--threads 1``, the default). A Gibbs sweep is one draw of every row plus the
hyperparameters, an ALS iteration one solve of every row: equal work per row up to the
draw's extra triangular solve.

Both are warmed up first on a tiny set (numba compiles, not counted).
``--quick``: a tiny simulated set (``load_folds("tiny")``), ranks 2 and 4, short chains: a
smoke run that the script works, not a measurement. Writes (or replaces) the section
between ``<!-- bench_implicit.py:begin -->`` and ``<!-- bench_implicit.py:end -->`` of
``--results`` unless ``--no-write`` (``--quick`` never writes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # implicit draws bars; a benchmark logs

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sections import log, provenance, publish  # noqa: E402
from bench_topn import fold_numbers, load_folds  # noqa: E402

from bayesmf import PMF  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402
from bayesmf.topn import TopN, evaluate_scores, evaluate_topn  # noqa: E402

K = 10
THRESHOLD = 4.0
QUICK = {"ranks": "2,4", "draws": 20, "tune": 10, "als_iterations": 5}


def ndcg(result: TopN) -> tuple[float, float, int]:
    """(mean, se, users) of NDCG@k from a `TopN`."""
    row = result.summary.loc[f"ndcg@{K}"]
    return float(row["mean"]), float(row["se"]), int(row["n_users"])


def confidences(train: RatingsData, scale: float) -> np.ndarray:
    """c_ij = 1 + scale r_ij, bayesmf's ``confidence="linear"``."""
    return 1.0 + scale * np.asarray(train.rating, dtype=np.float64)


def run_implicit_als(train: RatingsData, test: RatingsData, rank: int, scale: float,
                     args: argparse.Namespace) -> dict[str, Any]:
    """Fit `implicit`'s ALS; its seconds per iteration and NDCG@k."""
    import scipy.sparse as sps
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_items = sps.csr_matrix(
        (confidences(train, scale).astype(np.float32), (train.user_idx, train.item_idx)),
        shape=(train.n_users, train.n_items),
    )
    with threadpool_limits(1, "blas"):  # implicit checks BLAS's threads when it builds the model
        model = AlternatingLeastSquares(factors=rank, iterations=args.als_iterations,
                                        num_threads=args.threads, random_state=args.seed)
        start = time.perf_counter()
        model.fit(user_items, show_progress=False)
        seconds = time.perf_counter() - start
    scores = np.asarray(model.user_factors, dtype=np.float64) @ np.asarray(model.item_factors, dtype=np.float64).T
    result = evaluate_scores(scores, train, test, k=K, threshold=THRESHOLD, random_seed=args.seed,
                             name="implicit-als")
    return {"system": "implicit-als", "rank": rank, "scale": scale, "fit_s": seconds,
            "s_per_step": seconds / args.als_iterations, "ndcg": ndcg(result)}


def run_gibbs(train: RatingsData, test: RatingsData, rank: int, scale: float,
              args: argparse.Namespace) -> dict[str, Any]:
    """Fit the implicit model by Gibbs (one chain, one thread); its seconds per sweep and NDCG@k."""
    spec = PMF(n_factors=rank, likelihood="implicit", confidence="linear", confidence_scale=scale)
    fit = spec.fit(train, method="gibbs", chains=1, cores=1, draws=args.draws, tune=args.tune, thin=1,
                   random_seed=args.seed, progressbar=False)
    sweeps = args.tune + args.draws
    start = time.perf_counter()
    result = evaluate_topn(fit, test, k=K, rank_by="mean", random_seed=args.seed, progressbar=False)
    rank_s = time.perf_counter() - start
    sigma = float(np.mean(fit.posterior["sigma"].values))
    return {"system": "bayesmf-gibbs", "rank": rank, "scale": scale, "fit_s": fit.info["fit_seconds"],
            "s_per_step": fit.info["sampling_seconds"] / sweeps, "ndcg": ndcg(result), "rank_s": rank_s,
            "sigma": sigma}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows of the results table, with each rank's time ratio against implicit's ALS."""
    lines = ["| fold | rank | system | confidence_scale | NDCG@10 | users | s / sweep or iteration | "
             "ratio to ALS | fit s | posterior mean sigma |", "|---" * 10 + "|"]
    for rec in records:
        als = [r for r in records if r["fold"] == rec["fold"] and r["rank"] == rec["rank"]
               and r["system"] == "implicit-als"]
        ratio = rec["s_per_step"] / als[0]["s_per_step"] if als else float("nan")
        mean, se, users = rec["ndcg"]
        sigma = f"{rec['sigma']:.3f}" if "sigma" in rec else ""
        lines.append(f"| {rec['fold']} | {rec['rank']} | {rec['system']} | {rec['scale']:g} | {mean:.3f} ± {se:.3f} "
                     f"| {users} | {rec['s_per_step']:.4f} | {ratio:.2f} | {rec['fit_s']:.1f} | {sigma} |")
    return lines


def warm_up(args: argparse.Namespace) -> None:
    """Compile (or load) the numba kernels and implicit's on the tiny set: not counted."""
    _, train, test = next(load_folds("tiny", [1], ""))
    quick = argparse.Namespace(**(vars(args) | {"draws": 5, "tune": 2, "als_iterations": 2}))
    run_implicit_als(train, test, 2, 1.0, quick)
    run_gibbs(train, test, 2, 1.0, quick)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--folds", default="u1")
    parser.add_argument("--ranks", default="10,64")
    parser.add_argument("--scales", default="1,5,20", help="confidence_scale values (linear confidence)")
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--tune", type=int, default=50)
    parser.add_argument("--als-iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="implicit's num_threads (bayesmf: one chain, one thread)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also save every number here")
    parser.add_argument("--quick", action="store_true", help="tiny simulated set, short runs: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.ranks, args.draws, args.tune, args.als_iterations = (QUICK[k] for k in ("ranks", "draws", "tune", "als_iterations"))
        args.no_write = True
    args.rank_list = [int(r) for r in args.ranks.split(",")]
    args.scale_list = [float(a) for a in args.scales.split(",")]
    if min(args.rank_list) < 1 or min(args.scale_list) <= 0 or min(args.draws, args.als_iterations) < 1 or args.tune < 0:
        parser.error("ranks, draws and --als-iterations must be >= 1, scales > 0, tune >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)

    warm_up(args)
    load_before = os.getloadavg()
    start = time.perf_counter()
    dataset, folds = ("tiny", [1]) if args.quick else ("ml-100k", fold_numbers(args.folds))
    records: list[dict[str, Any]] = []
    for fold, train, test in load_folds(dataset, folds, args.data_dir):
        for rank in args.rank_list:
            rec = run_implicit_als(train, test, rank, args.scale_list[0], args)
            records.append(rec | {"fold": fold})
            log(f"{fold} rank {rank} implicit ALS: NDCG {rec['ndcg'][0]:.3f}, {rec['s_per_step']:.4f} s/iteration")
            for scale in args.scale_list:
                rec = run_gibbs(train, test, rank, scale, args)
                records.append(rec | {"fold": fold})
                log(f"{fold} rank {rank} Gibbs a={scale:g}: NDCG {rec['ndcg'][0]:.3f}, {rec['s_per_step']:.4f} s/sweep")
    lines = [
        "## Implicit feedback: Gibbs against implicit's ALS (`benchmarks/bench_implicit.py`)",
        "",
        *provenance("bench_implicit.py", argv, load_before, start),
        f"- protocol: `bayesmf.topn`, k = {K}, relevant = test rating >= {THRESHOLD:g}, candidates = every item the "
        f"user did not rate in training; Gibbs: one chain on one thread, tune {args.tune}, draws {args.draws}, thin 1; "
        f"implicit ALS: {args.als_iterations} iterations, num_threads={args.threads}, confidence 1 + "
        f"{args.scale_list[0]:g} r",
        "- ratio: bayesmf seconds per sweep / implicit seconds per iteration at the same rank (issue 16: within 3)",
        "",
        *table(records),
    ]
    if args.quick:
        lines.insert(1, "QUICK (tiny simulated set): a smoke run, not a measurement")
    publish(args.results, "bench_implicit.py", lines, write=not args.no_write)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
