#!/usr/bin/env python
"""Thumbs up / down on ML-100K: the probit Gibbs sampler against myFM's ``MyFMGibbsClassifier``.

Usage::

    .venv/bin/python benchmarks/bench_binary.py [--folds u1,u2,u3,u4,u5] [--rank 10]
        [--draws 200] [--tune 100] [--threshold 4] [--priors hierarchical]
        [--variants default,myfm-prior] [--seed 0] [--data-dir ../shared/data]
        [--results benchmarks/RESULTS.md] [--no-write] [--json PATH] [--quick]

Protocol: ML-100K's canonical folds u1-u5 (``load_folds``), every rating binarized at
``--threshold`` (1: rating >= 4, "liked"; `bayesmf.binarize`) in training and test alike.
Both systems fit the training labels and predict P(y = 1) for every test pair:

- ``bayesmf``: ``PMF(n_factors=rank, likelihood="bernoulli", priors=--priors)`` (probit
  link, Albert-Chib data augmentation, `bayesmf.inference.gibbs.probit`), one row per
  ``--variants`` entry: ``default`` (system ``bayesmf-gibbs``) as it is, with the shared
  factor prior; ``myfm-prior`` (``bayesmf-gibbs-myfm-prior``) with ``factor_prior="per_side",
  per_factor_scales=True``, myFM's prior (per group a mean and a precision per factor,
  normal-gamma; needs ``--priors hierarchical``). Each ``fit(train, method="gibbs",
  chains=1, cores=1, tune=--tune, draws=--draws, thin=1)``; P(y = 1) = ``fit.predict(test)``
  ``mean`` (the posterior mean of Phi(eta)). Seconds per sweep: sampling seconds / sweeps.
- ``myfm``: ``myfm.MyFMGibbsClassifier(rank)`` on one-hot (user, item) with the users and
  the items as two prior groups (as myFM's MovieLens example), ``n_iter = tune + draws``,
  the last ``draws`` kept; P(y = 1) = ``predict_proba``. Seconds per sweep: fit seconds /
  ``n_iter`` (it samples the same probit model by the same data augmentation).

Scores (`bayesmf.binary_metrics`): AUC pooled over the test pairs and grouped (mean of the
users' own AUCs, myFM's "grouped"), log-loss, Brier score and ECE (10 equal-width bins).
Anchor: myFM reports AUC 0.781 (0.790 grouped) on u3; the goal of issue 18 is at least
myFM's AUC on every fold. The time ratio is each bayesmf row's seconds per sweep over
myFM's on that fold (one thread each: myFM's sampler is single-threaded, bayesmf runs one
chain).

Both are warmed up first on the tiny set (numba compiles, not counted). ``--quick``: the
tiny simulated set (``load_folds("tiny")``), rank 2, short chains: a smoke run that the
script works, not a measurement; it never writes. Otherwise the section between
``<!-- bench_binary.py:begin -->`` and ``<!-- bench_binary.py:end -->`` of ``--results`` is
written (or replaced) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _myfm_bench as bench

from bayesmf import PMF
from bayesmf.binary import binarize
from bayesmf.binary_metrics import auc, brier_score, log_loss, reliability
from bayesmf.data import RatingsData

SCRIPT = "bench_binary.py"
TITLE = "## Binary feedback: probit Gibbs against myFM (`benchmarks/bench_binary.py`)"
#: The progress line of a record.
LOG = "{system}: AUC {auc:.4f} (grouped {auc_grouped:.4f}), log-loss {log_loss:.4f}, {s_per_sweep:.4f} s/sweep"
COLUMNS = bench.peer_columns("AUC=auc", "AUC grouped=auc_grouped", "log-loss=log_loss", "Brier=brier", "ECE=ece")


def scores(test: RatingsData, p: np.ndarray) -> dict[str, float]:
    """AUC (pooled, grouped by user), log-loss, Brier score and ECE of P(y = 1) on the test labels."""
    y = np.asarray(test.rating)
    return {"auc": auc(y, p), "auc_grouped": auc(y, p, groups=test.user_idx), "log_loss": log_loss(y, p),
            "brier": brier_score(y, p), "ece": reliability(y, p).ece}


def run_bayesmf(train: RatingsData, test: RatingsData, args: argparse.Namespace, system: str,
                spec: dict[str, Any]) -> dict[str, Any]:
    """Fit one variant (``system``, `PMF` keywords ``spec``) by Gibbs, one chain, one thread; P(y = 1) of the test pairs."""
    fit = bench.fit_gibbs(PMF(n_factors=args.rank, **spec), train, args)
    p = fit.predict(test.to_dataframe(), progressbar=False)["mean"].to_numpy()
    return {"system": system, **bench.gibbs_times(fit, args), **scores(test, p)}


def run_myfm(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """Fit myFM's probit classifier on one-hot (user, item); P(y = 1) of the test pairs."""
    import myfm

    nu, ni = train.n_users, train.n_items
    model = myfm.MyFMGibbsClassifier(rank=args.rank, random_seed=args.seed)
    times = bench.fit_myfm(model, bench.one_hot(train.user_idx, train.item_idx, nu, ni),
                           np.asarray(train.rating, dtype=int), args, group_shapes=[nu, ni])
    p = np.asarray(model.predict_proba(bench.one_hot(test.user_idx, test.item_idx, nu, ni)), dtype=np.float64)
    return {"system": "myfm-gibbs", **times, **scores(test, p)}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows per fold and system, with each row's time ratio to myFM on that fold."""
    return bench.table(records, COLUMNS)


def binarized_folds(dataset: str, folds: list[int], args: argparse.Namespace) -> Iterator[bench.Fold]:
    """``(fold, train, test)`` with every rating cut at ``--threshold`` (shared encoders kept)."""
    for fold, train, test in bench.load(dataset, folds, args):
        yield fold, binarize(train, args.threshold), binarize(test, args.threshold)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench.parser(__doc__)
    parser.add_argument("--threshold", type=float, default=4.0, help="liked: rating >= threshold")
    bench.add_variants(parser)
    args = bench.parse(parser, argv)
    args.specs = bench.variant_specs(parser, args, likelihood="bernoulli")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    runs = bench.variant_runs(run_bayesmf, args.specs, run_myfm if bench.peer_installed("myfm") else None)
    bench.warm_up(args, runs, binarized_folds)
    clock = bench.Clock.now()

    def each(fold: str, train: RatingsData, test: RatingsData) -> list[dict[str, Any]]:
        liked = float(np.mean(train.rating))
        return [run(train, test, args) | {"share_liked": liked} for run in runs]

    records = bench.run_folds(args, each, LOG.format_map, source=binarized_folds)
    protocol = [
        f"- protocol: ratings binarized at >= {args.threshold:g} (train and test); rank {args.rank}; bayesmf by Gibbs, "
        f"one chain, tune {args.tune}, draws {args.draws}: {bench.variants_text(args.specs)}; myFM "
        f"`MyFMGibbsClassifier`, {args.tune + args.draws} sweeps, last {args.draws} kept; P(y = 1) of every test "
        "pair; ECE over 10 equal-width bins",
        "- ratio: each row's seconds per sweep / myFM seconds per sweep on the same fold (one thread each); "
        "myFM's anchor on u3: AUC 0.781 (0.790 grouped)",
    ]
    return bench.finish(SCRIPT, TITLE, argv, args, clock, protocol, table(records), records)


if __name__ == "__main__":
    sys.exit(main())
