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
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _myfm_bench as bench

from bayesmf import PMF
from bayesmf.data import RatingsData
from bayesmf.implicit_sets import implicit_design, protocol_of, with_implicit_pairs

SCRIPT = "bench_svdpp.py"
TITLE = "## Implicit sets (SVD++): per-side Gibbs against myFM's relation blocks (`benchmarks/bench_svdpp.py`)"
#: The progress line of a record.
LOG = "{protocol} {system}: RMSE {rmse:.4f}, {s_per_sweep:.4f} s/sweep"
Sets = Literal["none", "user", "item", "both"]
SIDES = {"user": ("user",), "item": ("item",), "both": ("user", "item")}


def sets_data(train: RatingsData, test: RatingsData, protocol: str) -> RatingsData:
    """The training ratings with the sets of ``protocol`` (transductive: the test pairs attached)."""
    if protocol == "strict":
        return train
    return with_implicit_pairs(train, test.to_dataframe()[["user", "item"]])


def rmse(test: RatingsData, mean: np.ndarray) -> float:
    """Root mean squared error of ``mean`` on the test ratings."""
    return float(np.sqrt(np.mean((np.asarray(test.rating) - mean) ** 2)))


def run_bayesmf(data: RatingsData, test: RatingsData, args: argparse.Namespace, sets: Sets) -> dict[str, Any]:
    """Fit the per-side Gibbs sampler with implicit ``sets`` ("none": without); RMSE of the posterior mean."""
    fit = bench.fit_gibbs(PMF(n_factors=args.rank, factor_prior="per_side", implicit_sets=sets), data, args)
    mean = fit.predict(test.to_dataframe())["mean"].to_numpy()
    protocol = fit.posterior.attrs.get("implicit_protocol", "none") if sets != "none" else "none"
    return {"system": f"bayesmf-gibbs sets={sets}", "protocol": protocol, "rmse": rmse(test, mean),
            **bench.gibbs_times(fit, args)}


def _side_rows(data: RatingsData, side: str, with_sets: bool) -> Any:
    """One row per user (item): its one-hot id, then its normalized set (if ``with_sets``)."""
    import scipy.sparse as sps

    n = data.n_users if side == "user" else data.n_items
    parts = [sps.identity(n, format="csr")]
    if with_sets:
        parts.append(implicit_design(data, side))
    return sps.hstack(parts, format="csr")


def run_myfm(data: RatingsData, test: RatingsData, args: argparse.Namespace, sets: str) -> dict[str, Any]:
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

    model = myfm.MyFMRegressor(rank=args.rank, random_seed=args.seed)
    times = bench.fit_myfm(model, None, np.asarray(data.rating), args, X_rel=blocks(data), grouping=grouping)
    mean = np.asarray(model.predict(None, blocks(test)), dtype=np.float64)
    return {"system": f"myfm-gibbs sets={sets}", "protocol": protocol_of(data), "rmse": rmse(test, mean), **times}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows per fold, protocol and system, with each row's time ratio to myFM's on the same sets and protocol."""
    return bench.table(records, bench.peer_columns("RMSE=rmse", lead=("fold", "protocol", "system")),
                       match=("fold", "protocol"))


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench.parser(__doc__, folds="u1", all_folds=True)
    parser.add_argument("--sets", choices=("user", "item", "both"), default="both")
    parser.add_argument("--protocols", default="strict,transductive")
    args = bench.parse(parser, argv)
    args.protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    bad = [p for p in args.protocols if p not in ("strict", "transductive")]
    if bad or not args.protocols:
        parser.error(f"--protocols: choose among strict, transductive, got {bad or args.protocols}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    peer = bench.peer_installed("myfm")
    runs = [run_bayesmf, run_myfm] if peer else [run_bayesmf]
    bench.warm_up(args, [partial(run, sets=args.sets) for run in runs])
    clock = bench.Clock.now()

    def each(fold: str, train: RatingsData, test: RatingsData) -> list[dict[str, Any]]:
        records = [run_bayesmf(train, test, args, "none")]
        for protocol in args.protocols:
            data = sets_data(train, test, protocol)
            records += [run(data, test, args, args.sets) for run in runs]
        return records

    records = bench.run_folds(args, each, LOG.format_map)
    means = {}
    for key in {(r["protocol"], r["system"]) for r in records}:
        means[key] = float(np.mean([r["rmse"] for r in records if (r["protocol"], r["system"]) == key]))
    protocol = [
        f"- protocol: rank {args.rank}; implicit sets {args.sets!r} normalized by |N|^(-1/2), strict (training "
        "pairs) or transductive (also the test pairs, without ratings), the same matrices for both systems; bayesmf "
        f"`PMF(factor_prior='per_side', implicit_sets={args.sets!r})` by Gibbs, one chain, tune {args.tune}, draws "
        f"{args.draws} (and `implicit_sets='none'`, protocol 'none'); myFM `MyFMRegressor` with user and item "
        f"RelationBlocks, {args.tune + args.draws} sweeps, last {args.draws} kept",
        "- ratio: bayesmf seconds per sweep / myFM seconds per sweep with the same sets and protocol (one thread each)",
    ]
    body = [*table(records), "",
            "Mean RMSE over the folds: " + "; ".join(f"{s} ({p}) {v:.4f}" for (p, s), v in sorted(means.items()))]
    payload = {"records": records, "args": {k: str(v) for k, v in vars(args).items()}}
    return bench.finish(SCRIPT, TITLE, argv, args, clock, protocol, body, payload)


if __name__ == "__main__":
    raise SystemExit(main())
