#!/usr/bin/env python
"""Hierarchical Poisson factorization against bayesmf's choice model on the top-N protocol (issue 16).

Usage::

    .venv/bin/python benchmarks/bench_hpf.py [--folds u1,u2,u3,u4,u5] [--latest-folds k1]
        [--ranks 10,20] [--counts one|rating] [--tune 1000] [--draws 200] [--thin 5]
        [--chains 4] [--extensions 4] [--seed 0] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-write] [--json PATH] [--quick]

Protocol (`bayesmf.topn`, as ``benchmarks/bench_topn.py``, whose fold loader, bayesmf fit and
verdict this script imports): ML-100K's canonical folds (``--folds``) and, with
``--latest-folds``, those folds of ml-latest-small (``bayesmf.split.kfold(seed=0)``). Every
test user with a relevant item (test rating >= 4 on an item unrated in training) gets the
top 10 of ALL the items they did not rate in training. NDCG@10, P@10, R@10 as mean ± se over
users per fold; over folds, the mean of the fold means ± their sd / sqrt(folds).

Systems, one run, on the same folds and users:

- ``hpf-<rank>`` at each rank of ``--ranks``: HPF (``benchmarks/_hpf.py``; Gopalan, Hofman &
  Blei 2015, their hyperparameters a = a' = c = c' = 0.3, b' = d' = 1) by Gibbs on the
  training pairs as counts: 1 per rated pair (``--counts one``) or the rating rounded up to
  a whole star (``--counts rating``); ``--chains`` chains, each ``--tune`` sweeps dropped
  then ``--draws`` kept every ``--thin``-th sweep, and while the verdict below fails, up to
  ``--extensions`` times (default 4), ``--draws`` x ``--thin`` more sweeps per chain whose draws
  are kept too; ranked by the posterior-mean rate
  E[theta_u . beta_i] over the kept draws (`bayesmf.topn.evaluate_scores`). Its verdict is
  `_hpf.HPFFit.check`, the criterion of ``bayesmf.diagnose``: rank-normalized split R-hat
  <= 1.01 and bulk / tail ESS >= 400 for the data's Poisson log-likelihood and the rates of
  50 random pairs (max R-hat, min ESS and the sweeps each chain ran shown);
- ``choice``: ``PMF(n_factors=10, likelihood="implicit")`` by Gibbs at the package defaults
  on ``bayesmf.as_implicit(train, value="one")`` (``bench_topn.fit_bayesmf("gibbs-implicit")``),
  ranked by ``evaluate_topn(fit, test, k=10, rank_by="mean")``; verdict ``fit.diagnose()``;
- ``popularity``: training counts (`bayesmf.topn.popularity_scores`).

ΔNDCG: each system's per-user NDCG minus the choice model's on the same users (paired), ±
se over users (over folds in the mean rows). Fit seconds: wall time of the fit (HPF: all its
chains one after the other on one thread; bayesmf: its defaults). Numba kernels are
compiled on a tiny set first (not counted).

``--quick``: the tiny simulated set (``load_folds("tiny")``), ranks 2 and 4, short HPF
chains and bayesmf's quick Gibbs settings of bench_topn: a smoke run, never written.
Otherwise writes (or replaces) the section between ``<!-- bench_hpf.py:begin -->`` and
``<!-- bench_hpf.py:end -->`` of ``--results`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _myfm_bench as bench
from _hpf import Prior, fit_hpf
from _sections import log
from bench_topn import (
    RANK,
    fit_bayesmf,
    fold_numbers,
    load_folds,
    over_folds,
    pm,
    summary_of,
    verdict,
)

from bayesmf.data import RatingsData
from bayesmf.topn import TopN, evaluate_scores, evaluate_topn, popularity_scores

SCRIPT = "bench_hpf.py"
TITLE = "## Hierarchical Poisson factorization against the choice model, top-N (`benchmarks/bench_hpf.py`)"
K = 10
THRESHOLD = 4.0
CHOICE = "choice"
QUICK = {"ranks": "2,4", "draws": 20, "tune": 20, "thin": 1, "chains": 2, "extensions": 0}
METRICS = (("ndcg", "NDCG"), ("precision", "P"), ("recall", "R"))


def counts_of(train: RatingsData, how: str) -> np.ndarray:
    """HPF's counts of the training pairs: 1 each (``one``) or the rating rounded up (``rating``)."""
    if how == "one":
        return np.ones(train.n_ratings, dtype=np.int64)
    return np.ceil(np.asarray(train.rating, dtype=np.float64)).astype(np.int64)


def record(system: str, result: TopN, fit_s: float, diagnose: str, **extra: Any) -> dict[str, Any]:
    """One system on one fold: its metrics (mean, se), users, fit seconds, verdict; per-user NDCG under ``_users``."""
    summary = summary_of(result, K)
    per_user = result.per_user
    return {"system": system, **{m: summary[m] for m, _ in METRICS},
            "n_users": int(result.summary.attrs["n_users_evaluated"]), "fit_s": fit_s, "diagnose": diagnose,
            **extra, "_users": per_user["user"].to_numpy(), "_ndcg": per_user["ndcg"].to_numpy()}


def run_hpf(train: RatingsData, test: RatingsData, rank: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fit HPF at ``rank`` and rank every unrated item by its posterior-mean rate."""
    sweeps = args.tune + args.draws * args.thin
    fit = fit_hpf(train.user_idx, train.item_idx, counts_of(train, args.counts), train.n_users, train.n_items,
                  rank=rank, sweeps=sweeps, burn=args.tune, thin=args.thin, seed=args.seed, chains=args.chains,
                  prior=Prior(), extensions=args.extensions)
    check = fit.check()
    result = evaluate_scores(fit.scores, train, test, K, THRESHOLD, random_seed=args.seed, name=f"hpf-{rank}")
    return record(f"hpf-{rank}", result, fit.seconds, str(check["verdict"]), max_rhat=check["max_rhat"],
                  min_ess=check["min_ess"], sweeps_run=fit.settings["sweeps_run"])


def run_choice(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """bayesmf's choice model by Gibbs at the package defaults (bench_topn's quick settings with ``--quick``)."""
    fit, fit_s = fit_bayesmf("gibbs-implicit", train, args.seed, args.quick)
    result = evaluate_topn(fit, test, K, rank_by="mean", threshold=THRESHOLD, random_seed=args.seed, progressbar=False)
    return record(CHOICE, result, fit_s, verdict(fit))


def run_popularity(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    scores = popularity_scores(train)
    fit_s = time.perf_counter() - start
    return record("popularity", evaluate_scores(scores, train, test, K, THRESHOLD, random_seed=args.seed,
                                                name="popularity"), fit_s, "n/a")


def paired_deltas(records: list[dict[str, Any]]) -> None:
    """Add ``d_ndcg`` (mean, se): each record's per-user NDCG minus the choice model's, same users."""
    base = next(r for r in records if r["system"] == CHOICE)
    for rec in records:
        if not np.array_equal(rec["_users"], base["_users"]):
            raise RuntimeError(f"{rec['system']} and {CHOICE} were not evaluated on the same users")
        d = rec["_ndcg"] - base["_ndcg"]
        rec["d_ndcg"] = (float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan"))
    for rec in records:
        del rec["_users"], rec["_ndcg"]


def convergence(rec: dict[str, Any]) -> str:
    return f"{rec['max_rhat']:.3f} / {rec['min_ess']:.0f} / {rec['sweeps_run']}" if "max_rhat" in rec else "-"


def table(records: list[dict[str, Any]]) -> list[str]:
    """Per fold and (with several folds) mean over folds, per data set."""
    head = (f"| data set | fold | system | users | NDCG@{K} | P@{K} | R@{K} | ΔNDCG vs {CHOICE} | fit s | verdict "
            "| HPF max R-hat / min ESS / sweeps per chain |")
    lines = [head, "|---" * 11 + "|"]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        mine = [r for r in records if r["dataset"] == dataset]
        for rec in mine:
            lines.append(f"| {dataset} | {rec['fold']} | {rec['system']} | {rec['n_users']} | "
                         + " | ".join(pm(rec[m]) for m, _ in METRICS) + f" | {pm(rec['d_ndcg'])} | "
                         f"{rec['fit_s']:.1f} | {rec['diagnose']} | {convergence(rec)} |")
        folds = list(dict.fromkeys(r["fold"] for r in mine))
        if len(folds) < 2:
            continue
        for system in dict.fromkeys(r["system"] for r in mine):
            rs = [r for r in mine if r["system"] == system]
            verdicts = [r["diagnose"] for r in rs]
            passed = "n/a" if verdicts[0] == "n/a" else f"{sum(v == 'pass' for v in verdicts)}/{len(rs)} pass"
            cells = [pm(over_folds([r[m][0] for r in rs])) for m, _ in METRICS] + [pm(over_folds([r["d_ndcg"][0] for r in rs]))]
            hpf = (f"{max(r['max_rhat'] for r in rs):.3f} / {min(r['min_ess'] for r in rs):.0f} / "
                   f"{max(r['sweeps_run'] for r in rs)}"
                   if "max_rhat" in rs[0] else "-")
            lines.append(f"| {dataset} | **mean** | {system} | {np.mean([r['n_users'] for r in rs]):.0f} | "
                         + " | ".join(cells) + f" | {np.mean([r['fit_s'] for r in rs]):.1f} | {passed} | {hpf} |")
    return lines


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench.parser(__doc__, folds=bench.ALL_FOLDS, draws=200, tune=1000, rank=False,
                          draws_help="HPF draws kept per chain (after --tune sweeps, every --thin-th sweep)")
    parser.add_argument("--latest-folds", default="", help="folds of ml-latest-small too, e.g. k1 (default none)")
    parser.add_argument("--ranks", default="10,20", help="HPF ranks")
    parser.add_argument("--counts", choices=("one", "rating"), default="one", help="HPF counts per training pair")
    parser.add_argument("--thin", type=int, default=5)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--extensions", type=int, default=4,
                        help="HPF: while its check fails, up to this many times run --draws x --thin more sweeps per chain")
    args = bench.parse(parser, argv, QUICK)
    try:
        args.rank_list = [int(r) for r in args.ranks.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--ranks: whole numbers separated by commas, got {args.ranks!r}")
    args.latest_list = fold_numbers(args.latest_folds) if args.latest_folds and not args.quick else []
    if not args.rank_list or min(args.rank_list) < 1 or args.thin < 1 or args.chains < 2 or args.extensions < 0:
        parser.error("--ranks and --thin must be >= 1, --chains >= 2 (R-hat needs two chains), --extensions >= 0")
    return args


def warm_up(args: argparse.Namespace) -> None:
    """Compile (or load) the numba kernels of both fits and of the rankings on the tiny set."""
    start = time.perf_counter()
    _, train, test = next(load_folds("tiny", [1], args.data_dir))
    short = argparse.Namespace(**(vars(args) | {"draws": 3, "tune": 2, "thin": 1, "chains": 2, "extensions": 0,
                                                "quick": True}))
    run_hpf(train, test, 2, short)
    run_choice(train, test, short)
    log(f"warm-up (numba kernels) {time.perf_counter() - start:.1f} s, not counted")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    warm_up(args)
    clock = bench.Clock.now()

    def each_of(dataset: str) -> Callable[[str, RatingsData, RatingsData], list[dict[str, Any]]]:
        def each(fold: str, train: RatingsData, test: RatingsData) -> list[dict[str, Any]]:
            records = [run_popularity(train, test, args), run_choice(train, test, args)]
            records += [run_hpf(train, test, rank, args) for rank in args.rank_list]
            paired_deltas(records)
            return [rec | {"dataset": "tiny" if args.quick else dataset} for rec in records]
        return each

    def describe(rec: dict[str, Any]) -> str:
        return (f"{rec['system']}: NDCG@{K} {rec['ndcg'][0]:.4f}, fit {rec['fit_s']:.1f} s, {rec['diagnose']}"
                + (f" (R-hat {rec['max_rhat']:.3f}, ESS {rec['min_ess']:.0f})" if "max_rhat" in rec else ""))

    records = bench.run_folds(args, each_of("ml-100k"), describe)
    if args.latest_list:
        records += bench.run_folds(args, each_of("ml-latest-small"), describe, folds=args.latest_list,
                                   dataset="ml-latest-small")
    prior = Prior()
    protocol = [
        f"- protocol: `bayesmf.topn`, k = {K}, relevant = test rating >= {THRESHOLD:g}, candidates = every item the "
        f"user did not rate in training; seed {args.seed}",
        f"- HPF (`benchmarks/_hpf.py`, Gibbs): ranks {args.ranks}; counts `{args.counts}`; a = {prior.a:g}, a' = "
        f"{prior.a_prime:g}, b' = {prior.b_prime:g}, c = {prior.c:g}, c' = {prior.c_prime:g}, d' = {prior.d_prime:g}; "
        f"{args.chains} chains x ({args.tune} dropped + {args.draws} kept x thin {args.thin}) sweeps, one after the "
        f"other on one thread, extended by as many kept sweeps up to {args.extensions} times while the verdict fails "
        "(all kept draws used); ranked by the posterior-mean rate; verdict: R-hat <= 1.01 and bulk/tail ESS >= 400 "
        "on the log-likelihood and 50 random pairs' rates",
        f"- {CHOICE}: `PMF(n_factors={RANK}, likelihood=\"implicit\")` by Gibbs at the package defaults on "
        "`as_implicit(train, value=\"one\")`, ranked by mean P(chosen); verdict `fit.diagnose()`",
        f"- ± se over users per fold, over folds in the mean rows; ΔNDCG: paired per-user difference to {CHOICE}; "
        "quote no figure of a FAIL",
    ]
    return bench.finish(SCRIPT, TITLE, argv, args, clock, protocol, table(records), records)


if __name__ == "__main__":
    sys.exit(main())
