#!/usr/bin/env python
"""Side information on ML-100K: per-side Gibbs with and without user and item features, beside myFM with the same features.

Usage::

    .venv/bin/python benchmarks/bench_features.py [--folds u1] [--all-folds] [--rank 10]
        [--draws 412] [--tune 100] [--cold-fraction 0.1] [--cold-fold u1] [--no-cold]
        [--seed 0] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-write] [--json PATH] [--quick]

Protocol "strict": every model sees the training ratings of the fold and the features of
every user and item (ML-100K's age, gender and occupation; genres and release year), nothing
of the test set (no implicit sets, not even which test pairs exist). Features are encoded
once (`bayesmf.features.Features.from_frame`: numeric columns standardized, one indicator
per category and genre) and both systems get the same encoded columns.

Accuracy (ML-100K's canonical folds, ``--folds``, default u1; ``--all-folds``: u1-u5):

- ``bayesmf``: ``PMF(n_factors=rank, factor_prior="per_side")`` by Gibbs (one chain, one
  thread, ``tune`` + ``draws`` sweeps, thin 1), without features and with user + item
  features (`bayesmf.RatingsData.with_features`; the rows' prior mean becomes m + W^T x).
  RMSE of the predictive mean of every test pair.
- ``myfm``: ``myfm.MyFMRegressor(rank)`` on one-hot (user, item), and with the encoded
  features as extra dense columns of the design matrix (myFM's way of taking side
  information), groups: users, items, user features, item features;
  ``n_iter = tune + draws``, the last ``draws`` kept.

Cold-start items (``--cold-fold``, default u1): a random ``--cold-fraction`` of the items
with ratings is held out, ALL their ratings (train and test of the fold) become the test
set, and the models are fitted to the other training ratings. bayesmf predicts the held-out
items (unknown to the fit, their features attached with the training data) from the
feature prior m + W^T z (`bayesmf.predictive.cold`); without features, from the population
prior N(m, v). myFM keeps the held-out items' one-hot columns (no data: their weights are
drawn from the group prior) and, with features, their feature columns. Scores: RMSE of
the predictive mean, coverage and mean width of the 90% predictive interval (bayesmf:
``predict(prob=0.9)``; myFM: the normal mixture over its kept samples with their noise sd,
as `peers.MyFMGibbs`; both censored to the rating scale).

Seconds per sweep are recorded (bayesmf: sampling seconds / sweeps; myFM: fit seconds /
``n_iter``), one thread each. ``--quick``: the tiny simulated set with random features,
rank 2, short chains: a smoke run that the script works, not a measurement; it never
writes. Otherwise the section between ``<!-- bench_features.py:begin -->`` and
``<!-- bench_features.py:end -->`` of ``--results`` is written unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _myfm_bench as bench
from bench_topn import fold_numbers
from peers import mixture_normal_quantiles

from bayesmf import PMF, cold_split
from bayesmf.data import RatingsData
from bayesmf.features import Features

SCRIPT = "bench_features.py"
TITLE = "## Side information: per-side Gibbs with user and item features, beside myFM (`benchmarks/bench_features.py`)"
#: The progress line of a record.
LOG = "{eval} {system}: RMSE {rmse:.4f}, coverage {coverage:.3f}, {s_per_sweep:.4f} s/sweep"
PROB = 0.9


def load_features(dataset: str, data_dir: str, train: RatingsData, seed: int) -> tuple[Features, Features]:
    """Encoded user and item features: ML-100K's, or random ones for the tiny set (keyed by its raw ids)."""
    if dataset == "ml-100k":
        from bayesmf.movielens import movielens_features

        users, items = movielens_features("ml-100k", data_dir, download=False)
        if users is None:
            raise SystemExit("ML-100K's user features (u.user) are missing")
    else:
        rng = np.random.default_rng(seed)
        nu, ni = len(train.users), len(train.items)
        users = pd.DataFrame({"age": rng.integers(18, 70, nu), "group": rng.choice(["a", "b", "c"], nu)},
                             index=train.users.classes)
        items = pd.DataFrame({"genres": [tuple(g for g in "XYZ" if rng.random() < 0.4) for _ in range(ni)],
                              "year": rng.integers(1950, 2000, ni)}, index=train.items.classes)
    return Features.from_frame(users, "user"), Features.from_frame(items, "item")


# -- bayesmf ----------------------------------------------------------------------------------
def run_bayesmf(train: RatingsData, test: pd.DataFrame, args: argparse.Namespace, features: bool) -> dict[str, Any]:
    """Fit the per-side Gibbs sampler and predict ``test`` (raw ids, ``rating``): mean and 90% interval per pair."""
    fit = bench.fit_gibbs(PMF(n_factors=args.rank, factor_prior="per_side"), train, args)
    out = fit.predict(test, prob=PROB, random_seed=args.seed)
    return {"system": "bayesmf-gibbs" + ("+features" if features else ""), **bench.gibbs_times(fit, args),
            **scores(test["rating"].to_numpy(), out["mean"].to_numpy(), out["lower"].to_numpy(), out["upper"].to_numpy())}


# -- myFM ---------------------------------------------------------------------------------------
def design(user_idx: np.ndarray, item_idx: np.ndarray, nu: int, ni: int,
           xu: np.ndarray | None, xi: np.ndarray | None) -> Any:
    """One-hot (user, item), then (with features) the encoded features as dense columns."""
    import scipy.sparse as sps

    blocks = [bench.one_hot(user_idx, item_idx, nu, ni)]
    if xu is not None and xi is not None:
        blocks += [sps.csr_matrix(xu[user_idx]), sps.csr_matrix(xi[item_idx])]
    return sps.hstack(blocks).tocsr()


def run_myfm(train: RatingsData, test_idx: tuple[np.ndarray, np.ndarray], rating: np.ndarray,
             args: argparse.Namespace, feats: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """Fit ``MyFMRegressor`` (features: matrices in the encoders' index order); score the test pairs."""
    import myfm

    nu, ni = train.n_users, train.n_items
    xu, xi = feats if feats is not None else (None, None)
    groups = [nu, ni] + ([xu.shape[1], xi.shape[1]] if xu is not None and xi is not None else [])
    model = myfm.MyFMRegressor(rank=args.rank, random_seed=args.seed)
    times = bench.fit_myfm(model, design(train.user_idx, train.item_idx, nu, ni, xu, xi),
                           np.asarray(train.rating, dtype=float), args, group_shapes=groups)
    X = design(test_idx[0], test_idx[1], nu, ni, xu, xi)
    samples = model.predictor_.samples
    means = np.stack([fm.predict_score(X, []) for fm in samples])  # (S, N)
    sds = 1.0 / np.sqrt(np.array([h.alpha for h in model.history_.hypers[-len(samples):]]))
    lower, upper = mixture_normal_quantiles(means, sds, ((1 - PROB) / 2, (1 + PROB) / 2))
    low, high = train.scale
    mean = np.clip(means.mean(axis=0), low, high)  # as bayesmf's censored predictive: within the scale
    return {"system": "myfm" + ("+features" if feats is not None else ""), **times,
            **scores(rating, mean, np.clip(lower, low, high), np.clip(upper, low, high))}


def scores(rating: np.ndarray, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict[str, float]:
    """RMSE of the mean, coverage and mean width of the interval."""
    return {"rmse": float(np.sqrt(np.mean((mean - rating) ** 2))),
            "coverage": float(np.mean((rating >= lower) & (rating <= upper))), "width": float(np.mean(upper - lower)),
            "n": len(rating)}


# -- the two evaluations ----------------------------------------------------------------------
def accuracy(fold: str, train: RatingsData, test: RatingsData, feats: tuple[Features, Features],
             args: argparse.Namespace, peer: bool) -> list[dict[str, Any]]:
    """Every test pair of the fold, four systems (two without myFM)."""
    pairs = test.to_dataframe()
    with_features = train.with_features(*feats)
    records = [run_bayesmf(train, pairs, args, False), run_bayesmf(with_features, pairs, args, True)]
    if peer:
        matrices = (with_features.feature_matrix("user"), with_features.feature_matrix("item"))
        idx = (np.asarray(test.user_idx), np.asarray(test.item_idx))
        records += [run_myfm(train, idx, np.asarray(test.rating), args, None),
                    run_myfm(train, idx, np.asarray(test.rating), args, matrices)]  # type: ignore[arg-type]
    return [rec | {"fold": fold, "eval": "all test pairs"} for rec in records]


def cold_items(fold: str, train: RatingsData, test: RatingsData, feats: tuple[Features, Features],
               args: argparse.Namespace, peer: bool) -> list[dict[str, Any]]:
    """Held-out items (all their ratings in test), predicted from features or the population prior."""
    # bayesmf: the held-out items are unknown to the fit (features attached: kept for cold start)
    plain, cold, held = cold_split((train, test), side="item", fraction=args.cold_fraction, seed=args.seed)
    records = [run_bayesmf(plain, cold, args, False), run_bayesmf(plain.with_features(*feats), cold, args, True)]
    if peer:  # myFM: the fold's encoders, the held-out items' columns without data
        in_warm = train.subset(~np.isin(train.items.to_raw(train.item_idx), list(held)))
        idx = (train.users.to_index(cold["user"]), train.items.to_index(cold["item"]))
        matrices = (feats[0].rows_for(train.users), feats[1].rows_for(train.items))
        rating = cold["rating"].to_numpy()
        records += [run_myfm(in_warm, idx, rating, args, None), run_myfm(in_warm, idx, rating, args, matrices)]
    return [rec | {"fold": fold, "eval": f"cold items ({len(held)})"} for rec in records]


def table(records: list[dict[str, Any]]) -> list[str]:
    """One row per evaluation, fold and system."""
    return bench.table(records, [*bench.columns("evaluation=eval", "fold", "system"), ("RMSE", "rmse", ".4f"),
                                 ("90% coverage", "coverage", ".3f"), ("90% width", "width", ".2f"),
                                 ("pairs", "n", ""), ("s / sweep", "s_per_sweep", ".4f"), ("fit s", "fit_s", ".1f")])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench.parser(__doc__, folds="u1", all_folds=True, draws=412,
                          draws_help="kept sweeps (with --tune: 512 sweeps, as myFM's example)")
    parser.add_argument("--cold-fraction", type=float, default=0.1, help="share of the rated items held out")
    parser.add_argument("--cold-fold", default="u1")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start evaluation")
    parser.add_argument("--no-myfm", action="store_true", help="bayesmf rows only")
    args = bench.parse(parser, argv)
    if args.quick:
        args.cold_fraction = max(args.cold_fraction, 0.2)
    if not 0 < args.cold_fraction < 1:
        parser.error("--cold-fraction must lie in (0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    peer = bench.peer_installed("myfm", wanted=not args.no_myfm)
    bench.warm_up(args, [lambda train, test, quick: accuracy(
        "warm-up", train, test, load_features("tiny", args.data_dir, train, 0), quick, peer)])
    clock = bench.Clock.now()
    dataset = "tiny" if args.quick else "ml-100k"
    folds = [1] if args.quick else fold_numbers(args.folds)
    cold_fold = 1 if args.quick else fold_numbers(args.cold_fold)[0]

    def each(fold: str, train: RatingsData, test: RatingsData) -> list[dict[str, Any]]:
        feats = load_features(dataset, args.data_dir, train, args.seed)
        number = fold_numbers(fold)[0]
        runs = ([accuracy] if number in folds else []) + ([cold_items] if number == cold_fold and not args.no_cold else [])
        return [rec for evaluation in runs for rec in evaluation(fold, train, test, feats, args, peer)]

    wanted = sorted(set(folds) | (set() if args.no_cold else {cold_fold}))
    records = bench.run_folds(args, each, LOG.format_map, folds=wanted)
    protocol = [
        f"- protocol: **strict** (training ratings and features only; no implicit sets, test pairs unused); rank "
        f"{args.rank}; bayesmf `PMF(factor_prior='per_side')` by Gibbs, one chain, tune {args.tune}, draws "
        f"{args.draws}; myFM `MyFMRegressor` on one-hot (user, item) [+ the same encoded features as dense columns], "
        f"{args.tune + args.draws} sweeps, last {args.draws} kept",
        f"- features: users age, gender, occupation; items genres, release year (standardized numbers, one indicator "
        f"per level); cold items: {args.cold_fraction:g} of the rated items of {args.cold_fold}, all their ratings "
        f"held out (seed {args.seed}); 90% predictive intervals censored to the scale",
    ]
    return bench.finish(SCRIPT, TITLE, argv, args, clock, protocol, table(records), records,
                        quick_note="QUICK (tiny simulated set, random features): a smoke run, not a measurement")


if __name__ == "__main__":
    sys.exit(main())
