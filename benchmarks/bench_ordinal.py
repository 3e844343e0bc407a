#!/usr/bin/env python
"""Star ratings as ordered levels on ML-100K: the ordered-probit Gibbs sampler against myFM's ``MyFMOrderedProbit``.

Usage::

    .venv/bin/python benchmarks/bench_ordinal.py [--folds u1,u2,u3,u4,u5] [--rank 10]
        [--draws 200] [--tune 100] [--threshold 4] [--priors hierarchical]
        [--variants default,myfm-prior] [--seed 0] [--data-dir ../shared/data]
        [--results benchmarks/RESULTS.md] [--no-write] [--json PATH] [--quick]

Protocol: ML-100K's canonical folds u1-u5 (``load_folds``), the ratings 1..5 as ordered
levels. Both systems fit the training ratings and predict P(r = k) for every level and
every test pair:

- ``bayesmf``: ``PMF(n_factors=rank, likelihood="ordinal", link="probit", priors=--priors)``
  (latent z truncated to its level's interval, cutpoints by a collapsed slice step,
  `bayesmf.inference.gibbs.ordinal`), one row per ``--variants`` entry (as
  `bench_binary.py`): ``default`` (``bayesmf-gibbs``), the shared factor prior;
  ``myfm-prior`` (``bayesmf-gibbs-myfm-prior``), with ``factor_prior="per_side",
  per_factor_scales=True``, myFM's prior (per group a mean and a precision per factor,
  normal-gamma; needs ``--priors hierarchical``). Each ``fit(train, method="gibbs",
  chains=1, cores=1, tune=--tune, draws=--draws, thin=1)``; P(r = k) =
  ``fit.predict_proba(test)`` (the posterior mean of the level probabilities). Seconds per
  sweep: sampling seconds / sweeps.
- ``myfm``: ``myfm.MyFMOrderedProbit(rank)`` on one-hot (user, item) with the users and the
  items as two prior groups (as `bench_binary.py`), labels the level indices 0..4,
  ``n_iter = tune + draws``, the last ``draws`` kept; P(r = k) = ``predict_proba``.
  Seconds per sweep: fit seconds / ``n_iter`` (it samples an ordered probit too).

Scores (`bayesmf.ordinal_metrics`): RMSE and MAE of the expected rating
:math:`\\sum_k \\ell_k P(r = \\ell_k)`, multiclass log-loss, ranked probability score,
and the ECE of P(r >= --threshold) (10 equal-width bins), which myFM does not report.
Anchor: myFM's ordered probit reaches RMSE 0.8906 on u3 (grouped, rank 10, with implicit
features that this one-hot protocol leaves out); the goal of issue 18 is at most myFM's
RMSE on every fold, under one protocol for both. The time ratio is each bayesmf row's
seconds per sweep over myFM's on that fold (one thread each).

Both are warmed up first on the tiny set (numba compiles, not counted). ``--quick``: the
tiny simulated set (``load_folds("tiny")``), rank 2, short chains: a smoke run that the
script works, not a measurement; it never writes. Otherwise the section between
``<!-- bench_ordinal.py:begin -->`` and ``<!-- bench_ordinal.py:end -->`` of ``--results``
is written (or replaced) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _myfm_bench as bench

from bayesmf import PMF
from bayesmf.data import RatingsData
from bayesmf.link import level_codes, ordinal_levels
from bayesmf.ordinal_metrics import (
    exceedance_reliability,
    expected_rating_errors,
    multiclass_log_loss,
    ranked_probability_score,
)

SCRIPT = "bench_ordinal.py"
TITLE = "## Ordinal ratings: ordered-probit Gibbs against myFM (`benchmarks/bench_ordinal.py`)"
#: The progress line of a record.
LOG = "{system}: RMSE {rmse:.4f}, log-loss {log_loss:.4f}, RPS {rps:.4f}, {s_per_sweep:.4f} s/sweep"
COLUMNS = bench.peer_columns("RMSE E[r]=rmse", "MAE E[r]=mae", "log-loss=log_loss", "RPS=rps", "ECE P(r>=t)=ece")


def scores(test: RatingsData, probs: np.ndarray, levels: np.ndarray, threshold: float) -> dict[str, float]:
    """RMSE/MAE of the expected rating, log-loss, RPS and the ECE of P(r >= threshold) on the test ratings."""
    rating = np.asarray(test.rating)
    probs = probs / probs.sum(axis=1, keepdims=True)  # myFM's rows sum to 1 within float32 rounding
    return {**expected_rating_errors(rating, probs, levels), "log_loss": multiclass_log_loss(rating, probs, levels),
            "rps": ranked_probability_score(rating, probs, levels),
            "ece": exceedance_reliability(rating, probs, levels, threshold=threshold).ece}


def run_bayesmf(train: RatingsData, test: RatingsData, args: argparse.Namespace, system: str,
                spec: dict[str, Any]) -> dict[str, Any]:
    """Fit one variant (``system``, `PMF` keywords ``spec``) by Gibbs, one chain, one thread; P(r = k) of the test pairs."""
    fit = bench.fit_gibbs(PMF(n_factors=args.rank, **spec), train, args)
    levels = ordinal_levels(train)
    proba = fit.predict_proba(test.to_dataframe())
    probs = proba[[f"p_{level:g}" for level in levels]].to_numpy()
    return {"system": system, **bench.gibbs_times(fit, args), **scores(test, probs, levels, args.threshold)}


def run_myfm(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """Fit myFM's ordered probit on one-hot (user, item); P(r = k) of the test pairs."""
    import myfm

    nu, ni = train.n_users, train.n_items
    levels = ordinal_levels(train)
    model = myfm.MyFMOrderedProbit(rank=args.rank, random_seed=args.seed)
    times = bench.fit_myfm(model, bench.one_hot(train.user_idx, train.item_idx, nu, ni),
                           level_codes(np.asarray(train.rating), levels), args, group_shapes=[nu, ni])
    probs = np.zeros((test.n_ratings, len(levels)))
    found = np.asarray(model.predict_proba(bench.one_hot(test.user_idx, test.item_idx, nu, ni)), dtype=np.float64)
    probs[:, : found.shape[1]] = found  # myFM's classes: 0 .. the largest training code
    return {"system": "myfm-gibbs", **times, **scores(test, probs, levels, args.threshold)}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows per fold and system, with each row's time ratio to myFM on that fold."""
    return bench.table(records, COLUMNS)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench.parser(__doc__)
    parser.add_argument("--threshold", type=float, default=4.0, help="the calibrated event: rating >= threshold")
    bench.add_variants(parser)
    args = bench.parse(parser, argv)
    args.specs = bench.variant_specs(parser, args, likelihood="ordinal", link="probit")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    runs = bench.variant_runs(run_bayesmf, args.specs, run_myfm if bench.peer_installed("myfm") else None)
    bench.warm_up(args, runs)
    clock = bench.Clock.now()
    records = bench.run_folds(args, lambda fold, train, test: [run(train, test, args) for run in runs], LOG.format_map)
    protocol = [
        f"- protocol: ratings as ordered levels; rank {args.rank}; bayesmf by Gibbs, one chain, tune {args.tune}, "
        f"draws {args.draws}: {bench.variants_text(args.specs)}; myFM `MyFMOrderedProbit` on one-hot (user, item), "
        f"{args.tune + args.draws} sweeps, last {args.draws} kept; P(r = k) of every test pair; ECE of "
        f"P(r >= {args.threshold:g}) over 10 equal-width bins",
        "- ratio: each row's seconds per sweep / myFM seconds per sweep on the same fold (one thread each); "
        "myFM's anchor on u3: RMSE 0.8906 (grouped, with implicit features)",
    ]
    return bench.finish(SCRIPT, TITLE, argv, args, clock, protocol, table(records), records)


if __name__ == "__main__":
    sys.exit(main())
