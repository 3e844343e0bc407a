#!/usr/bin/env python
"""Thumbs up / down on ML-100K: the probit Gibbs sampler against myFM's ``MyFMGibbsClassifier``.

Usage::

    .venv/bin/python benchmarks/bench_binary.py [--folds u1,u2,u3,u4,u5] [--rank 10]
        [--draws 200] [--tune 100] [--threshold 4] [--priors hierarchical]
        [--factor-prior shared] [--seed 0] [--data-dir ../shared/data]
        [--results benchmarks/RESULTS.md] [--no-write] [--json PATH] [--quick]

Protocol: ML-100K's canonical folds u1-u5 (``load_folds``), every rating binarized at
``--threshold`` (1: rating >= 4, "liked"; `bayesmf.binarize`) in training and test alike.
Both systems fit the training labels and predict P(y = 1) for every test pair:

- ``bayesmf``: ``PMF(n_factors=rank, likelihood="bernoulli")`` (probit link, Albert-Chib
  data augmentation, `bayesmf.inference.gibbs.probit`), ``fit(train, method="gibbs",
  chains=1, cores=1, tune=--tune, draws=--draws, thin=1)``; P(y = 1) = ``fit.predict(test)``
  ``mean`` (the posterior mean of Phi(eta)). Seconds per sweep: sampling seconds / sweeps.
- ``myfm``: ``myfm.MyFMGibbsClassifier(rank)`` on one-hot (user, item) with the users and
  the items as two prior groups (as myFM's MovieLens example), ``n_iter = tune + draws``,
  the last ``draws`` kept; P(y = 1) = ``predict_proba``. Seconds per sweep: fit seconds /
  ``n_iter`` (it samples the same probit model by the same data augmentation).

Scores (`bayesmf.binary_metrics`): AUC pooled over the test pairs and grouped (mean of the
users' own AUCs, myFM's "grouped"), log-loss, Brier score and ECE (10 equal-width bins).
Anchor: myFM reports AUC 0.781 (0.790 grouped) on u3; the goal of issue 18 is at least
myFM's AUC on every fold. The time ratio is bayesmf's seconds per sweep over myFM's (one
thread each: myFM's sampler is single-threaded, bayesmf runs one chain).

Both are warmed up first on the tiny set (numba compiles, not counted). ``--quick``: the
tiny simulated set (``load_folds("tiny")``), rank 2, short chains: a smoke run that the
script works, not a measurement; it never writes. Otherwise the section between
``<!-- bench_binary.py:begin -->`` and ``<!-- bench_binary.py:end -->`` of ``--results`` is
written (or replaced) unless ``--no-write``.
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
from bayesmf.binary import binarize  # noqa: E402
from bayesmf.binary_metrics import auc, brier_score, log_loss, reliability  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402

QUICK = {"rank": 2, "draws": 20, "tune": 10}
METRICS = ("auc", "auc_grouped", "log_loss", "brier", "ece")


def scores(test: RatingsData, p: np.ndarray) -> dict[str, float]:
    """AUC (pooled, grouped by user), log-loss, Brier score and ECE of P(y = 1) on the test labels."""
    y = np.asarray(test.rating)
    return {"auc": auc(y, p), "auc_grouped": auc(y, p, groups=test.user_idx), "log_loss": log_loss(y, p),
            "brier": brier_score(y, p), "ece": reliability(y, p).ece}


def run_bayesmf(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """Fit the probit model by Gibbs (one chain, one thread); P(y = 1) of the test pairs."""
    spec = PMF(n_factors=args.rank, likelihood="bernoulli", priors=args.priors,
               factor_prior=args.factor_prior if args.priors == "hierarchical" else "shared")
    fit = spec.fit(train, method="gibbs", chains=1, cores=1, draws=args.draws, tune=args.tune, thin=1,
                   random_seed=args.seed, progressbar=False)
    frame = test.to_dataframe()
    p = fit.predict(frame, progressbar=False)["mean"].to_numpy()
    sweeps = args.tune + args.draws
    return {"system": "bayesmf-gibbs", "fit_s": fit.info["fit_seconds"],
            "s_per_sweep": fit.info["sampling_seconds"] / sweeps, **scores(test, p)}


def _one_hot(data: RatingsData, n_users: int, n_items: int) -> Any:
    import scipy.sparse as sps

    n = data.n_ratings
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([data.user_idx, n_users + data.item_idx], axis=1).ravel()
    return sps.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + n_items))


def run_myfm(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """Fit myFM's probit classifier on one-hot (user, item); P(y = 1) of the test pairs."""
    import myfm

    nu, ni = train.n_users, train.n_items
    sweeps = args.tune + args.draws
    model = myfm.MyFMGibbsClassifier(rank=args.rank, random_seed=args.seed)
    start = time.perf_counter()
    model.fit(_one_hot(train, nu, ni), np.asarray(train.rating, dtype=int), n_iter=sweeps,
              n_kept_samples=args.draws, group_shapes=[nu, ni], callback=lambda *a: (False, None))
    seconds = time.perf_counter() - start
    p = np.asarray(model.predict_proba(_one_hot(test, nu, ni)), dtype=np.float64)
    return {"system": "myfm-gibbs", "fit_s": seconds, "s_per_sweep": seconds / sweeps, **scores(test, p)}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows per fold and system, with each bayesmf row's time ratio to myFM on that fold."""
    lines = ["| fold | system | AUC | AUC grouped | log-loss | Brier | ECE | s / sweep | ratio to myFM | fit s |",
             "|---" * 10 + "|"]
    for rec in records:
        peer = [r for r in records if r["fold"] == rec["fold"] and r["system"] == "myfm-gibbs"]
        ratio = rec["s_per_sweep"] / peer[0]["s_per_sweep"] if peer else float("nan")
        lines.append(f"| {rec['fold']} | {rec['system']} | {rec['auc']:.4f} | {rec['auc_grouped']:.4f} | "
                     f"{rec['log_loss']:.4f} | {rec['brier']:.4f} | {rec['ece']:.4f} | {rec['s_per_sweep']:.4f} | "
                     f"{ratio:.2f} | {rec['fit_s']:.1f} |")
    return lines


def binarized_folds(dataset: str, folds: list[int], args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """``(fold, train, test)`` with every rating cut at ``--threshold`` (shared encoders kept)."""
    for fold, train, test in load_folds(dataset, folds, args.data_dir):
        yield fold, binarize(train, args.threshold), binarize(test, args.threshold)


def warm_up(args: argparse.Namespace, peer: bool) -> None:
    """Compile (or load) the numba kernels on the tiny set: not counted."""
    _, train, test = next(binarized_folds("tiny", [1], args))
    quick = argparse.Namespace(**(vars(args) | {"rank": 2, "draws": 5, "tune": 2}))
    run_bayesmf(train, test, quick)
    if peer:
        run_myfm(train, test, quick)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=4.0, help="liked: rating >= threshold")
    parser.add_argument("--priors", choices=("hierarchical", "fixed"), default="hierarchical")
    parser.add_argument("--factor-prior", choices=("shared", "per_side"), default="shared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also save every number here")
    parser.add_argument("--quick", action="store_true", help="tiny simulated set, short runs: a smoke run")
    args = parser.parse_args(argv)
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
    for fold, train, test in binarized_folds(dataset, folds, args):
        runs = [run_bayesmf, run_myfm] if peer else [run_bayesmf]
        for run in runs:
            rec = run(train, test, args) | {"fold": fold, "share_liked": float(np.mean(train.rating))}
            records.append(rec)
            log(f"{fold} {rec['system']}: AUC {rec['auc']:.4f} (grouped {rec['auc_grouped']:.4f}), "
                f"log-loss {rec['log_loss']:.4f}, {rec['s_per_sweep']:.4f} s/sweep")
    lines = [
        "## Binary feedback: probit Gibbs against myFM (`benchmarks/bench_binary.py`)",
        "",
        *provenance("bench_binary.py", argv, load_before, start),
        f"- protocol: ratings binarized at >= {args.threshold:g} (train and test); rank {args.rank}; bayesmf "
        f"`PMF(likelihood='bernoulli', priors={args.priors!r})` by Gibbs, one chain, tune {args.tune}, draws "
        f"{args.draws}; myFM `MyFMGibbsClassifier`, {args.tune + args.draws} sweeps, last {args.draws} kept; "
        "P(y = 1) of every test pair; ECE over 10 equal-width bins",
        "- ratio: bayesmf seconds per sweep / myFM seconds per sweep on the same fold (one thread each); "
        "myFM's anchor on u3: AUC 0.781 (0.790 grouped)",
        "",
        *table(records),
    ]
    if args.quick:
        lines.insert(1, "QUICK (tiny simulated set): a smoke run, not a measurement")
    publish(args.results, "bench_binary.py", lines, write=not args.no_write)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
