#!/usr/bin/env python
"""What `FitResult.thin` buys: top-N lists from fewer draws, their time and their accuracy.

Usage::

    .venv/bin/python benchmarks/bench_thin.py [--folds u1] [--draws 500,250,100]
        [--dataset ml-100k] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-write] [--quick]

On each ML-100K fold, fits the choice model (``PMF(n_factors=10, likelihood="implicit")`` by
Gibbs on ``as_implicit(train, value="one")``) and the rating model (``PMF(n_factors=10)`` by
Gibbs), both at the package defaults, as ``bench_topn.py`` does. Then, for the whole
posterior and for ``fit.thin(draws=D)`` of both fits at each ``--draws``, ranks every test
user's unrated items by the choice model's mean P(chosen) (`bayesmf.topn.evaluate_topn`) and
by the joint P(chosen) x P(r >= 4) (`bayesmf.joint.joint_scores`, top 100), and reports
NDCG@10, the seconds the ranking took (fits excluded), and the paired per-user NDCG
difference against the whole posterior (mean ± standard error over users). Timings are
ratios to the whole posterior's, measured in the same run.

Writes the section between ``<!-- bench_thin.py:begin -->`` and ``<!-- bench_thin.py:end -->``
of ``--results``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sections import log, provenance, publish
from bench_topn import RANK, THRESHOLD, fit_bayesmf, load_folds, verdict

from bayesmf.joint import joint_scores
from bayesmf.topn import evaluate_scores, evaluate_topn

K = 10
TOP_M = 100


def rank_both(choice, rating, train, test, seed: int) -> dict[str, tuple[object, float]]:  # type: ignore[no-untyped-def]
    """NDCG@K lists of the choice model's mean P(chosen) and of the joint score, with their seconds."""
    out = {}
    start = time.perf_counter()
    out["choice: mean P(chosen)"] = (
        evaluate_topn(choice, test, K, rank_by="mean", threshold=THRESHOLD, random_seed=seed, progressbar=False),
        time.perf_counter() - start,
    )
    start = time.perf_counter()
    scores = joint_scores(choice, rating, threshold=THRESHOLD, rank_by="mean", random_seed=seed,
                          exclude_rated=True, top_m=TOP_M)
    topn = evaluate_scores(scores, train, test, K, THRESHOLD, random_seed=seed, name="joint")
    out["joint: P(chosen) x P(r >= 4)"] = (topn, time.perf_counter() - start)
    return out


def paired(a, b) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Mean and standard error of the per-user NDCG difference a - b (same users, same order)."""
    if not np.array_equal(a.per_user["user"].to_numpy(), b.per_user["user"].to_numpy()):
        raise RuntimeError("the two evaluations did not rank the same users")
    d = a.per_user["ndcg"].to_numpy() - b.per_user["ndcg"].to_numpy()
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k", help="ml-100k (folds u1-u5) or tiny (the smoke test's)")
    parser.add_argument("--folds", default="u1")
    parser.add_argument("--draws", default="500,250,100", help="draws per chain to thin to, comma list")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="short Gibbs runs: checks the script only")
    args = parser.parse_args(argv)
    load0, started = os.getloadavg(), time.perf_counter()
    sizes = [int(d) for d in args.draws.split(",")]
    folds = [int(f.lstrip("u")) for f in args.folds.split(",")]
    lines = [
        f"- dataset {args.dataset}; fits: the choice model and the rating model by Gibbs at the package defaults (rank {RANK})"
        + (" (QUICK: short runs, not a measurement)" if args.quick else "")
        + f"; ranked: every test user's unrated items, relevant = test rating >= {THRESHOLD:g}, k = {K}; "
        f"joint over the choice fit's top {TOP_M}",
        "- `rank s`: seconds of the ranking and the metrics (fits excluded); `x whole`: that time over the whole "
        "posterior's, same run; `Δ NDCG`: paired per-user difference against the whole posterior (± se)",
        "",
        "| fold | ranking | draws per chain (choice / rating) | NDCG@10 | Δ NDCG vs whole | rank s | x whole |",
        "|---|---|---|---|---|---|---|",
    ]
    for fold, train, test in load_folds(args.dataset, folds, args.data_dir):
        log(f"{fold}: fits")
        choice, _ = fit_bayesmf("gibbs-implicit", train, args.seed, args.quick)
        rating, _ = fit_bayesmf("gibbs", train, args.seed, args.quick)
        verdicts = f"choice fit {verdict(choice)}, rating fit {verdict(rating)}"
        whole = rank_both(choice, rating, train, test, args.seed)
        for size in [None, *sizes]:
            if size is None:
                results, c, r = whole, choice, rating
            else:
                c, r = choice.thin(draws=size), rating.thin(draws=size)
                results = rank_both(c, r, train, test, args.seed)
            for name, (topn, seconds) in results.items():
                base, base_s = whole[name]
                ndcg = topn.summary.loc[f"ndcg@{K}"]
                diff = "-" if size is None else "{:+.4f} ± {:.4f}".format(*paired(topn, base))
                lines.append(
                    f"| {fold} | {name} | {c.n_draws} / {r.n_draws} | {ndcg['mean']:.4f} ± {ndcg['se']:.4f} | {diff} "
                    f"| {seconds:.1f} | {seconds / base_s if base_s > 0 else float('nan'):.2f} |"
                )
                log(f"{fold} {name} draws {c.n_draws}: NDCG {ndcg['mean']:.4f}, {seconds:.1f} s")
        lines.append(f"| {fold} | ({verdicts}; {choice.n_chains} chains each) | | | | | |")
    head = ["## Top-N from a thinned posterior (`benchmarks/bench_thin.py`)", "",
            *provenance("bench_thin.py", argv, load0, started)]
    publish(args.results, "bench_thin.py", head + lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
