#!/usr/bin/env python
"""Implicit sets (Bayesian SVD++, "flipped") on ML-100K: per-side Gibbs with ``implicit_sets`` against myFM's relation blocks.

Usage::

    .venv/bin/python benchmarks/bench_svdpp.py [--folds u1] [--all-folds] [--rank 10]
        [--draws 200] [--tune 100] [--sets both] [--protocols strict,transductive]
        [--seed 0] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-write] [--json PATH] [--quick]

Protocol: ML-100K's canonical folds (u1 by default; ``--all-folds``: u1-u5). Each user's
set N(i) is the items it rated, each item's the users who rated it, normalized by
:math:`|N|^{-1/2}` (`bayesmf.implicit_sets.implicit_design`, the same matrices for both
systems), from the training ratings (*strict*) or also from the test pairs without their
ratings (*transductive*, `bayesmf.implicit_sets.with_implicit_pairs`):

- ``bayesmf``: ``PMF(n_factors=rank, factor_prior="per_side", implicit_sets=--sets)``,
  ``fit(train, method="gibbs", chains=1, cores=1, tune=--tune, draws=--draws)``; the
  posterior-mean prediction of every test pair. Also the same spec without implicit sets
  (``implicit_sets="none"``), the baseline the sets improve on. Seconds per sweep:
  sampling seconds / sweeps.
- ``myfm``: ``myfm.MyFMRegressor(rank)`` with two ``RelationBlock`` s as in myFM's
  ``examples/ml-100k-regression.py`` (``svdpp``/``timesvdpp_flipped`` without the date):
  per user [one-hot user | its normalized set of items], per item [one-hot item | its
  normalized set of users], one prior group per part; ``n_iter = tune + draws``, the last
  ``draws`` kept. Seconds per sweep: fit seconds / ``n_iter``.

The time ratio is bayesmf's seconds per sweep over myFM's with the same sets (one thread
each). Anchors: myFM's ``examples/ml-100k-extended.ipynb`` (rank 10, 512 iterations, with
demographics, genres, year and date besides the sets) reaches RMSE 0.8833 on u1; this
script gives both systems the sets only. Every row names its protocol.

Both are warmed up first on the tiny set (numba compiles, not counted). ``--quick``: the
tiny simulated set, rank 2, short chains: a smoke run that the script works, not a
measurement; it never writes. Otherwise the section between ``<!-- bench_svdpp.py:begin -->``
and ``<!-- bench_svdpp.py:end -->`` of ``--results`` is written (or replaced) unless
``--no-write``.
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

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a bar per fit; a benchmark logs

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sections import log, provenance, publish  # noqa: E402
from bench_topn import fold_numbers, load_folds  # noqa: E402

from bayesmf import PMF  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402
from bayesmf.implicit_sets import implicit_design, protocol_of, with_implicit_pairs  # noqa: E402

QUICK = {"rank": 2, "draws": 20, "tune": 10}
SIDES = {"user": ("user",), "item": ("item",), "both": ("user", "item")}


def sets_data(train: RatingsData, test: RatingsData, protocol: str) -> RatingsData:
    """The training ratings with the sets of ``protocol`` (transductive: the test pairs attached)."""
    if protocol == "strict":
        return train
    return with_implicit_pairs(train, test.to_dataframe()[["user", "item"]])


def rmse(test: RatingsData, mean: np.ndarray) -> float:
    """Root mean squared error of ``mean`` on the test ratings."""
    return float(np.sqrt(np.mean((np.asarray(test.rating) - mean) ** 2)))


def run_bayesmf(data: RatingsData, test: RatingsData, sets: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fit the per-side Gibbs sampler with implicit ``sets`` ("none": without); RMSE of the posterior mean."""
    spec = PMF(n_factors=args.rank, factor_prior="per_side", implicit_sets=sets)
    fit = spec.fit(data, method="gibbs", chains=1, cores=1, draws=args.draws, tune=args.tune, thin=1,
                   random_seed=args.seed, progressbar=False)
    mean = fit.predict(test.to_dataframe())["mean"].to_numpy()
    protocol = fit.posterior.attrs.get("implicit_protocol", "none") if sets != "none" else "none"
    return {"system": f"bayesmf-gibbs sets={sets}", "protocol": protocol, "rmse": rmse(test, mean),
            "fit_s": fit.info["fit_seconds"], "s_per_sweep": fit.info["sampling_seconds"] / (args.tune + args.draws)}


def _side_rows(data: RatingsData, side: str, with_sets: bool) -> Any:
    """One row per user (item): its one-hot id, then its normalized set (if ``with_sets``)."""
    import scipy.sparse as sps

    n = data.n_users if side == "user" else data.n_items
    parts = [sps.identity(n, format="csr")]
    if with_sets:
        parts.append(implicit_design(data, side))
    return sps.hstack(parts, format="csr")


def run_myfm(data: RatingsData, test: RatingsData, sets: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fit myFM's Gibbs regressor on relation blocks with the same sets as bayesmf."""
    import myfm
    from myfm import RelationBlock

    sides = SIDES[sets]
    rows = {side: _side_rows(data, side, side in sides) for side in ("user", "item")}
    sizes = [data.n_users, *([data.n_items] if "user" in sides else []),
             data.n_items, *([data.n_users] if "item" in sides else [])]
    grouping = [g for g, size in enumerate(sizes) for _ in range(size)]

    def blocks(part: RatingsData) -> list[Any]:
        return [RelationBlock(np.asarray(part.user_idx, dtype=np.int32), rows["user"]),
                RelationBlock(np.asarray(part.item_idx, dtype=np.int32), rows["item"])]

    sweeps = args.tune + args.draws
    model = myfm.MyFMRegressor(rank=args.rank, random_seed=args.seed)
    start = time.perf_counter()
    model.fit(None, np.asarray(data.rating), X_rel=blocks(data), grouping=grouping, n_iter=sweeps,
              n_kept_samples=args.draws)
    seconds = time.perf_counter() - start
    mean = np.asarray(model.predict(None, blocks(test)), dtype=np.float64)
    return {"system": f"myfm-gibbs sets={sets}", "protocol": protocol_of(data), "rmse": rmse(test, mean),
            "fit_s": seconds, "s_per_sweep": seconds / sweeps}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows per fold, protocol and system, with each bayesmf row's time ratio to myFM's on the same sets."""
    lines = ["| fold | protocol | system | RMSE | s / sweep | ratio to myFM | fit s |", "|---" * 7 + "|"]
    for rec in records:
        peer = [r for r in records if r["fold"] == rec["fold"] and r["protocol"] == rec["protocol"]
                and r["system"].startswith("myfm")]
        ratio = rec["s_per_sweep"] / peer[0]["s_per_sweep"] if peer and rec["system"].startswith("bayesmf") else float("nan")
        lines.append(f"| {rec['fold']} | {rec['protocol']} | {rec['system']} | {rec['rmse']:.4f} | "
                     f"{rec['s_per_sweep']:.4f} | {ratio:.2f} | {rec['fit_s']:.1f} |")
    return lines


def warm_up(args: argparse.Namespace, peer: bool) -> None:
    """Compile (or load) the numba kernels on the tiny set: not counted."""
    _, train, test = next(load_folds("tiny", [1], args.data_dir))
    quick = argparse.Namespace(**(vars(args) | {"rank": 2, "draws": 5, "tune": 2}))
    run_bayesmf(train, test, args.sets, quick)
    if peer:
        run_myfm(train, test, args.sets, quick)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--folds", default="u1")
    parser.add_argument("--all-folds", action="store_true", help="u1-u5 (overrides --folds)")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=100)
    parser.add_argument("--sets", choices=("user", "item", "both"), default="both")
    parser.add_argument("--protocols", default="strict,transductive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also save every number here")
    parser.add_argument("--quick", action="store_true", help="tiny simulated set, short runs: a smoke run")
    args = parser.parse_args(argv)
    args.protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    bad = [p for p in args.protocols if p not in ("strict", "transductive")]
    if bad or not args.protocols:
        parser.error(f"--protocols: choose among strict, transductive, got {bad or args.protocols}")
    if args.all_folds:
        args.folds = "u1,u2,u3,u4,u5"
    if args.quick:
        args.rank, args.draws, args.tune = (QUICK[k] for k in ("rank", "draws", "tune"))
        args.no_write = True
    if min(args.rank, args.draws) < 1 or args.tune < 0:
        parser.error("--rank and --draws must be >= 1, --tune >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        import myfm  # noqa: F401

        peer = True
    except ImportError:
        peer = False
        log("myfm is not installed (pip install -e '.[bench]'): bayesmf rows only")
    warm_up(args, peer)
    load_before = os.getloadavg()
    start = time.perf_counter()
    dataset, folds = ("tiny", [1]) if args.quick else ("ml-100k", fold_numbers(args.folds))
    records: list[dict[str, Any]] = []
    for fold, train, test in load_folds(dataset, folds, args.data_dir):
        records.append(run_bayesmf(train, test, "none", args) | {"fold": fold})
        for protocol in args.protocols:
            data = sets_data(train, test, protocol)
            for run in [run_bayesmf, run_myfm] if peer else [run_bayesmf]:
                records.append(run(data, test, args.sets, args) | {"fold": fold})
        for rec in records[-(1 + len(args.protocols) * (2 if peer else 1)) :]:
            log(f"{fold} {rec['protocol']} {rec['system']}: RMSE {rec['rmse']:.4f}, {rec['s_per_sweep']:.4f} s/sweep")
    means = {}
    for key in {(r["protocol"], r["system"]) for r in records}:
        means[key] = float(np.mean([r["rmse"] for r in records if (r["protocol"], r["system"]) == key]))
    lines = [
        "## Implicit sets (SVD++): per-side Gibbs against myFM's relation blocks (`benchmarks/bench_svdpp.py`)",
        "",
        *provenance("bench_svdpp.py", argv, load_before, start),
        f"- protocol: rank {args.rank}; implicit sets {args.sets!r} normalized by |N|^(-1/2), strict (training "
        "pairs) or transductive (also the test pairs, without ratings), the same matrices for both systems; bayesmf "
        f"`PMF(factor_prior='per_side', implicit_sets={args.sets!r})` by Gibbs, one chain, tune {args.tune}, draws "
        f"{args.draws} (and `implicit_sets='none'`, protocol 'none'); myFM `MyFMRegressor` with user and item "
        f"RelationBlocks, {args.tune + args.draws} sweeps, last {args.draws} kept",
        "- ratio: bayesmf seconds per sweep / myFM seconds per sweep with the same sets and protocol (one thread each)",
        "",
        *table(records),
        "",
        "Mean RMSE over the folds: " + "; ".join(f"{s} ({p}) {v:.4f}" for (p, s), v in sorted(means.items())),
    ]
    if args.json is not None:
        args.json.write_text(json.dumps({"records": records, "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    if not args.no_write:
        publish(args.results, "bench_svdpp.py", lines)
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
