#!/usr/bin/env python
"""The implicit-feedback Gibbs sampler against `implicit`'s ALS: seconds per sweep and NDCG@10.

Usage::

    .venv/bin/python benchmarks/bench_implicit.py [--folds u1] [--ranks 10,64]
        [--scales 1,5,20] [--draws 100] [--tune 50] [--als-iterations 15] [--threads 1]
        [--seed 0] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-exact] [--no-write] [--json PATH] [--quick]

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
  iterations. Its default solver: three conjugate-gradient steps per row, an approximate
  solve that forms neither the row's Gram matrix nor its Cholesky factor.
- ``implicit-als-exact``: the same with ``use_cg=False``, implicit's exact solver (each
  row's normal equations solved through a Cholesky factorization, as a Gibbs draw needs),
  for the same work per row as a sweep; its ratio column is to the conjugate-gradient ALS
  too. Left out with ``--no-exact``.

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
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _myfm_bench as bench

from bayesmf import PMF
from bayesmf.data import RatingsData
from bayesmf.topn import TopN, evaluate_scores, evaluate_topn

SCRIPT = "bench_implicit.py"
TITLE = "## Implicit feedback: Gibbs against implicit's ALS (`benchmarks/bench_implicit.py`)"
K = 10
THRESHOLD = 4.0
QUICK = {"ranks": "2,4", "draws": 20, "tune": 10, "als_iterations": 5}


def ndcg(result: TopN) -> tuple[float, float, int]:
    """(mean, se, users) of NDCG@k from a `TopN`."""
    row = result.summary.loc[f"ndcg@{K}"].to_dict()
    return float(row["mean"]), float(row["se"]), int(row["n_users"])


def confidences(train: RatingsData, scale: float) -> np.ndarray:
    """c_ij = 1 + scale r_ij, bayesmf's ``confidence="linear"``."""
    return 1.0 + scale * np.asarray(train.rating, dtype=np.float64)


def run_implicit_als(train: RatingsData, test: RatingsData, rank: int, scale: float,
                     args: argparse.Namespace, exact: bool = False) -> dict[str, Any]:
    """Fit `implicit`'s ALS (``exact``: its Cholesky solver, ``use_cg=False``); seconds per iteration, NDCG@k."""
    import scipy.sparse as sps
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_items = sps.csr_matrix(
        (confidences(train, scale).astype(np.float32), (train.user_idx, train.item_idx)),
        shape=(train.n_users, train.n_items),
    )
    with threadpool_limits(1, "blas"):  # implicit checks BLAS's threads when it builds the model
        model = AlternatingLeastSquares(factors=rank, iterations=args.als_iterations, use_cg=not exact,
                                        num_threads=args.threads, random_state=args.seed)
        start = time.perf_counter()
        model.fit(user_items, show_progress=False)
        seconds = time.perf_counter() - start
    scores = np.asarray(model.user_factors, dtype=np.float64) @ np.asarray(model.item_factors, dtype=np.float64).T
    system = "implicit-als-exact" if exact else "implicit-als"
    result = evaluate_scores(scores, train, test, k=K, threshold=THRESHOLD, random_seed=args.seed, name=system)
    return {"system": system, "rank": rank, "scale": scale, "fit_s": seconds,
            "s_per_step": seconds / args.als_iterations, "ndcg": ndcg(result)}


def run_gibbs(train: RatingsData, test: RatingsData, rank: int, scale: float,
              args: argparse.Namespace) -> dict[str, Any]:
    """Fit the implicit model by Gibbs (one chain, one thread); its seconds per sweep and NDCG@k."""
    fit = bench.fit_gibbs(PMF(n_factors=rank, likelihood="implicit", confidence="linear", confidence_scale=scale),
                          train, args)
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
    def ndcg_cell(rec: dict[str, Any]) -> str:
        mean, se, _ = rec["ndcg"]
        return f"{mean:.3f} ± {se:.3f}"

    return bench.table(records, [
        *bench.columns("fold", "rank", "system"), ("confidence_scale", "scale", "g"), ("NDCG@10", ndcg_cell, ""),
        ("users", lambda rec: str(rec["ndcg"][2]), ""), ("s / sweep or iteration", "s_per_step", ".4f"), bench.RATIO,
        ("fit s", "fit_s", ".1f"),
        ("posterior mean sigma", lambda rec: f"{rec['sigma']:.3f}" if "sigma" in rec else "", "")],
        is_peer=lambda rec: rec["system"] == "implicit-als", peer="ALS", match=("fold", "rank"), time_key="s_per_step")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench.parser(__doc__, folds="u1", draws=100, tune=50, rank=False)
    parser.add_argument("--ranks", default="10,64")
    parser.add_argument("--scales", default="1,5,20", help="confidence_scale values (linear confidence)")
    parser.add_argument("--als-iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="implicit's num_threads (bayesmf: one chain, one thread)")
    parser.add_argument("--no-exact", action="store_true", help="leave out implicit's exact (Cholesky) ALS")
    args = bench.parse(parser, argv, QUICK)
    args.rank_list = [int(r) for r in args.ranks.split(",")]
    args.scale_list = [float(a) for a in args.scales.split(",")]
    if min(args.rank_list) < 1 or min(args.scale_list) <= 0 or args.als_iterations < 1:
        parser.error("ranks and --als-iterations must be >= 1, scales > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    bench.warm_up(args, [lambda train, test, quick: run_implicit_als(train, test, 2, 1.0, quick),
                         lambda train, test, quick: run_gibbs(train, test, 2, 1.0, quick)], als_iterations=2)
    clock = bench.Clock.now()

    def each(fold: str, train: RatingsData, test: RatingsData) -> list[dict[str, Any]]:
        records = []
        for rank in args.rank_list:
            records.append(run_implicit_als(train, test, rank, args.scale_list[0], args))
            if not args.no_exact:
                records.append(run_implicit_als(train, test, rank, args.scale_list[0], args, exact=True))
            records += [run_gibbs(train, test, rank, scale, args) for scale in args.scale_list]
        return records

    def describe(rec: dict[str, Any]) -> str:
        if rec["system"].startswith("implicit-als"):
            return f"rank {rec['rank']} {rec['system']}: NDCG {rec['ndcg'][0]:.3f}, {rec['s_per_step']:.4f} s/iteration"
        return f"rank {rec['rank']} Gibbs a={rec['scale']:g}: NDCG {rec['ndcg'][0]:.3f}, {rec['s_per_step']:.4f} s/sweep"

    records = bench.run_folds(args, each, describe)
    protocol = [
        f"- protocol: `bayesmf.topn`, k = {K}, relevant = test rating >= {THRESHOLD:g}, candidates = every item the "
        f"user did not rate in training; Gibbs: one chain on one thread, tune {args.tune}, draws {args.draws}, thin 1; "
        f"implicit ALS: {args.als_iterations} iterations, num_threads={args.threads}, confidence 1 + "
        f"{args.scale_list[0]:g} r",
        "- ratio: seconds per sweep or iteration / implicit's conjugate-gradient ALS (`implicit-als`) seconds per "
        "iteration at the same rank (issue 16: within 3); `implicit-als-exact`: implicit's Cholesky solver "
        "(`use_cg=False`), the same work per row as a Gibbs draw",
    ]
    return bench.finish(SCRIPT, TITLE, argv, args, clock, protocol, table(records), records)


if __name__ == "__main__":
    sys.exit(main())
