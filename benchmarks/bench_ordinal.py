#!/usr/bin/env python
"""Star ratings as ordered levels on ML-100K: the ordered-probit Gibbs sampler against myFM's ``MyFMOrderedProbit``.

Usage::

    .venv/bin/python benchmarks/bench_ordinal.py [--folds u1,u2,u3,u4,u5] [--rank 10]
        [--draws 200] [--tune 100] [--threshold 4] [--priors hierarchical]
        [--factor-prior shared] [--seed 0] [--data-dir ../shared/data]
        [--results benchmarks/RESULTS.md] [--no-write] [--json PATH] [--quick]

Protocol: ML-100K's canonical folds u1-u5 (``load_folds``), the ratings 1..5 as ordered
levels. Both systems fit the training ratings and predict P(r = k) for every level and
every test pair:

- ``bayesmf``: ``PMF(n_factors=rank, likelihood="ordinal", link="probit")`` (latent
  z truncated to its level's interval, cutpoints by a collapsed slice step,
  `bayesmf.inference.gibbs.ordinal`), ``fit(train, method="gibbs", chains=1, cores=1,
  tune=--tune, draws=--draws, thin=1)``; P(r = k) = ``fit.predict_proba(test)`` (the
  posterior mean of the level probabilities). Seconds per sweep: sampling seconds / sweeps.
- ``myfm``: ``myfm.MyFMOrderedProbit(rank)`` on one-hot (user, item) with the users and the
  items as two prior groups (as `bench_binary.py`), labels the level indices 0..4,
  ``n_iter = tune + draws``, the last ``draws`` kept; P(r = k) = ``predict_proba``.
  Seconds per sweep: fit seconds / ``n_iter`` (it samples an ordered probit too).

Scores (`bayesmf.ordinal_metrics`): RMSE and MAE of the expected rating
:math:`\\sum_k \\ell_k P(r = \\ell_k)`, multiclass log-loss, ranked probability score,
and the ECE of P(r >= --threshold) (10 equal-width bins), which myFM does not report.
Anchor: myFM's ordered probit reaches RMSE 0.8906 on u3 (grouped, rank 10, with implicit
features that this one-hot protocol leaves out); the goal of issue 18 is at most myFM's
RMSE on every fold, under one protocol for both. The time ratio is bayesmf's seconds per
sweep over myFM's (one thread each).

Both are warmed up first on the tiny set (numba compiles, not counted). ``--quick``: the
tiny simulated set (``load_folds("tiny")``), rank 2, short chains: a smoke run that the
script works, not a measurement; it never writes. Otherwise the section between
``<!-- bench_ordinal.py:begin -->`` and ``<!-- bench_ordinal.py:end -->`` of ``--results``
is written (or replaced) unless ``--no-write``.
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
from bench_binary import _one_hot  # noqa: E402
from bench_topn import fold_numbers, load_folds  # noqa: E402

from bayesmf import PMF  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402
from bayesmf.link import level_codes, ordinal_levels  # noqa: E402
from bayesmf.ordinal_metrics import (  # noqa: E402
    exceedance_reliability,
    expected_rating_errors,
    multiclass_log_loss,
    ranked_probability_score,
)

QUICK = {"rank": 2, "draws": 20, "tune": 10}


def scores(test: RatingsData, probs: np.ndarray, levels: np.ndarray, threshold: float) -> dict[str, float]:
    """RMSE/MAE of the expected rating, log-loss, RPS and the ECE of P(r >= threshold) on the test ratings."""
    rating = np.asarray(test.rating)
    probs = probs / probs.sum(axis=1, keepdims=True)  # myFM's rows sum to 1 within float32 rounding
    return {**expected_rating_errors(rating, probs, levels), "log_loss": multiclass_log_loss(rating, probs, levels),
            "rps": ranked_probability_score(rating, probs, levels),
            "ece": exceedance_reliability(rating, probs, levels, threshold=threshold).ece}


def run_bayesmf(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """Fit the ordered probit by Gibbs (one chain, one thread); P(r = k) of the test pairs."""
    spec = PMF(n_factors=args.rank, likelihood="ordinal", link="probit", priors=args.priors,
               factor_prior=args.factor_prior if args.priors == "hierarchical" else "shared")
    fit = spec.fit(train, method="gibbs", chains=1, cores=1, draws=args.draws, tune=args.tune, thin=1,
                   random_seed=args.seed, progressbar=False)
    levels = ordinal_levels(train)
    proba = fit.predict_proba(test.to_dataframe())
    probs = proba[[f"p_{level:g}" for level in levels]].to_numpy()
    sweeps = args.tune + args.draws
    return {"system": "bayesmf-gibbs", "fit_s": fit.info["fit_seconds"],
            "s_per_sweep": fit.info["sampling_seconds"] / sweeps, **scores(test, probs, levels, args.threshold)}


def run_myfm(train: RatingsData, test: RatingsData, args: argparse.Namespace) -> dict[str, Any]:
    """Fit myFM's ordered probit on one-hot (user, item); P(r = k) of the test pairs."""
    import myfm

    nu, ni = train.n_users, train.n_items
    levels = ordinal_levels(train)
    sweeps = args.tune + args.draws
    model = myfm.MyFMOrderedProbit(rank=args.rank, random_seed=args.seed)
    start = time.perf_counter()
    model.fit(_one_hot(train, nu, ni), level_codes(np.asarray(train.rating), levels), n_iter=sweeps,
              n_kept_samples=args.draws, group_shapes=[nu, ni], callback=lambda *a: (False, None))
    seconds = time.perf_counter() - start
    probs = np.zeros((test.n_ratings, len(levels)))
    found = np.asarray(model.predict_proba(_one_hot(test, nu, ni)), dtype=np.float64)
    probs[:, : found.shape[1]] = found  # myFM's classes: 0 .. the largest training code
    return {"system": "myfm-gibbs", "fit_s": seconds, "s_per_sweep": seconds / sweeps,
            **scores(test, probs, levels, args.threshold)}


def table(records: list[dict[str, Any]]) -> list[str]:
    """Rows per fold and system, with each bayesmf row's time ratio to myFM on that fold."""
    lines = ["| fold | system | RMSE E[r] | MAE E[r] | log-loss | RPS | ECE P(r>=t) | s / sweep | ratio to myFM | fit s |",
             "|---" * 10 + "|"]
    for rec in records:
        peer = [r for r in records if r["fold"] == rec["fold"] and r["system"] == "myfm-gibbs"]
        ratio = rec["s_per_sweep"] / peer[0]["s_per_sweep"] if peer else float("nan")
        lines.append(f"| {rec['fold']} | {rec['system']} | {rec['rmse']:.4f} | {rec['mae']:.4f} | "
                     f"{rec['log_loss']:.4f} | {rec['rps']:.4f} | {rec['ece']:.4f} | {rec['s_per_sweep']:.4f} | "
                     f"{ratio:.2f} | {rec['fit_s']:.1f} |")
    return lines


def warm_up(args: argparse.Namespace, peer: bool) -> None:
    """Compile (or load) the numba kernels on the tiny set: not counted."""
    _, train, test = next(load_folds("tiny", [1], args.data_dir))
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
    parser.add_argument("--threshold", type=float, default=4.0, help="the calibrated event: rating >= threshold")
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
    for fold, train, test in load_folds(dataset, folds, args.data_dir):
        for run in [run_bayesmf, run_myfm] if peer else [run_bayesmf]:
            rec = run(train, test, args) | {"fold": fold}
            records.append(rec)
            log(f"{fold} {rec['system']}: RMSE {rec['rmse']:.4f}, log-loss {rec['log_loss']:.4f}, "
                f"RPS {rec['rps']:.4f}, {rec['s_per_sweep']:.4f} s/sweep")
    lines = [
        "## Ordinal ratings: ordered-probit Gibbs against myFM (`benchmarks/bench_ordinal.py`)",
        "",
        *provenance("bench_ordinal.py", argv, load_before, start),
        f"- protocol: ratings as ordered levels; rank {args.rank}; bayesmf `PMF(likelihood='ordinal', link='probit', "
        f"priors={args.priors!r})` by Gibbs, one chain, tune {args.tune}, draws {args.draws}; myFM "
        f"`MyFMOrderedProbit` on one-hot (user, item), {args.tune + args.draws} sweeps, last {args.draws} kept; "
        f"P(r = k) of every test pair; ECE of P(r >= {args.threshold:g}) over 10 equal-width bins",
        "- ratio: bayesmf seconds per sweep / myFM seconds per sweep on the same fold (one thread each); "
        "myFM's anchor on u3: RMSE 0.8906 (grouped, with implicit features)",
        "",
        *table(records),
    ]
    if args.quick:
        lines.insert(1, "QUICK (tiny simulated set): a smoke run, not a measurement")
    publish(args.results, "bench_ordinal.py", lines, write=not args.no_write)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
