#!/usr/bin/env python
"""Top-N lists of bayesmf and its peers on held-out ratings: NDCG@10, P@10, R@10, fit time.

Usage::

    .venv/bin/python benchmarks/bench_topn.py [--datasets ml-100k,ml-latest-small]
        [--folds u1,u2,u3,u4,u5] [--latest-folds k1] [--k 10] [--systems all] [--seed 0] [--threads N]
        [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write]
        [--json PATH] [--quick]

Protocol (`bayesmf.topn`): on each fold, every test user with at least one relevant item (a
test rating >= 4 on an item the user did not rate in training; the others are skipped and
counted) gets a list of the top ``--k`` of ALL the items they did not rate in training.
Reported per fold: NDCG@k, P@k, R@k as mean ± standard error over users (sd / sqrt(n)),
catalogue coverage and novelty of the lists, the wall seconds of the fit and of scoring +
ranking + metrics. Folds: ML-100K's canonical u1-u5 (``--data-dir``); the bundled
ml-latest-small has none, so fold ``u<k>`` there is fold k of
``bayesmf.split.kfold(data, n_splits=5, seed=0)`` (the folds of ``benchmarks/run.py``),
shown as ``k<k>``. The mean over folds is the mean of the fold means, ± the sd of the fold
means / sqrt(number of folds).

Systems (``--systems``, a comma list, default all; rank 10 unless said):

- ``popularity``: number of training ratings (`bayesmf.topn.popularity_scores`);
- ``als``: MAP, ``PMF(n_factors=10, priors="fixed").fit(train, method="als")``, by mean;
- ``gibbs-fixed-{mean,lower,prob,thompson}``: the posterior under the SAME prior,
  ``PMF(n_factors=10, priors="fixed").fit(train, method="gibbs")`` (one fit, four rules of
  `bayesmf.recommend`: mean, the 5 % predictive quantile, P(r >= 4), Thompson), so that
  against ``als`` only the inference differs;
- ``gibbs-mean``: the default hierarchical ``PMF(n_factors=10)`` by Gibbs, by mean;
- ``surprise-svd``: ``surprise.SVD(n_factors=10, random_state=seed)``, ranked by its
  predicted rating before Surprise clips it to the scale (clipping ties every item
  predicted above 5 at 5);
- ``myfm``: ``myfm.MyFMRegressor(rank=10)``, 300 sweeps (the last 200 kept; user and item
  as two prior groups, as in ``benchmarks/peers.py``), ranked by the posterior-mean rating;
- ``implicit-als`` (64 factors, 30 iterations), ``implicit-als-10`` (10 factors,
  regularization 0.05, 30 iterations) and ``implicit-bpr`` (64 factors, 200 iterations):
  `implicit` on the training pairs as implicit feedback (every rated pair 1, whatever the
  rating), scored by user . item factors over all items;
- ``gibbs-implicit``, ``gibbs-implicit-lower``, ``gibbs-implicit-thompson``: the choice model, ``PMF(n_factors=10,
  likelihood="implicit")`` by Gibbs on ``bayesmf.as_implicit(train, value="one")`` (every
  training pair a choice of confidence 1 + 1, every other pair a weak 0), one fit ranked by
  the posterior-mean P(chosen), its 5 % quantile and Thompson (`bayesmf.topn.evaluate_topn`
  on the held-out ratings: relevance is still a test rating >= 4);
- ``joint``: choice x rating, `bayesmf.joint.joint_scores` of the ``gibbs-implicit`` fit and
  the ``gibbs-mean`` fit (the same fits, not refitted; fitted for it only when their systems
  are not asked for): the posterior mean of
  P(chosen) x P(r >= 4 | chosen) over paired draws, scored by `bayesmf.topn.evaluate_scores`;
  only each user's ``--joint-top-m`` unrated items by the choice fit's posterior-mean score
  are scored (``joint_scores(exclude_rated=True, top_m=...)``; default 100, 0 scores every
  pair), the rest rank last; its ``fit s`` is the sum of the two fits', its verdict pass
  only when both pass.

Calibration of P(chosen) (third table), per fold, for the ``gibbs-implicit`` fit:
`bayesmf.choice_reliability` on the test pairs (every test pair a held-out choice; every
other pair of a test user that is not a training pair a non-choice), ECE and Brier score
over 10 bins.

Gibbs fits run the package defaults of ``fit(method="gibbs")``; each one's
``diagnose()`` verdict is in the table (pass / FAIL): quote no figure of a failed fit.
A peer whose package is missing is skipped with a note. LensKit is not run: installing it
pulls in torch (checked with ``pip install --dry-run lenskit``).

Threads: the Gibbs chains run on ``min(chains, CPUs)`` threads and bayesmf's prediction
kernels on every CPU (the package defaults); `implicit` gets ``--threads`` (default: the
CPUs this process may use) with BLAS held to one thread during its fit, as `implicit`
asks; bayesmf's ALS, Surprise and myFM run on one thread.

What uncertainty buys (second table), for the fixed-prior pairs ``als`` vs
``gibbs-fixed-mean`` and ``als`` vs ``gibbs-fixed-lower``, per fold: the share of the
top-k items that differ, the paired per-user differences (posterior - MAP) of NDCG, P and R
with their standard errors, overall and by user activity (terciles of the evaluated users'
training ratings), and the swapped items: their mean number of training ratings and the
share of them that are relevant, for the items only in MAP's list and only in the
posterior's. The lists of these three rules are computed once, with the calls
`bayesmf.topn.evaluate_topn` makes, and scored by `bayesmf.topn.evaluate_scores`
(``tests/test_benchmarks.py`` checks that this gives evaluate_topn's numbers).

``--quick``: fold u1 only (unless ``--folds``), Gibbs ``draws=100, tune=50, chains=2`` and
myFM 100 sweeps (50 kept): a smoke run, not a measurement. Writes (or replaces) the section
between ``<!-- bench_topn.py:begin -->`` and ``<!-- bench_topn.py:end -->`` of ``--results``
unless ``--no-write``; ``--json`` also saves every number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM and implicit draw bars; a benchmark logs

import numpy as np
import pandas as pd

from bayesmf import PMF, as_implicit, choice_reliability
from bayesmf._seed import seed_sequence
from bayesmf.batched_ranking import rank_candidates
from bayesmf.data import RatingsData
from bayesmf.joint import joint_scores
from bayesmf.movielens import load_movielens
from bayesmf.options import PredictOptions
from bayesmf.split import kfold
from bayesmf.topn import TopN, evaluate_scores, evaluate_topn, popularity_scores

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- bench_topn.py:begin -->", "<!-- bench_topn.py:end -->"
RANK = 10
THRESHOLD = 4.0
GIBBS_QUICK = {"draws": 100, "tune": 50, "chains": 2}
MYFM_SWEEPS, MYFM_QUICK = (300, 200), (100, 50)

#: name -> (fit group, ranking rule of a bayesmf fit, description)
SYSTEMS: dict[str, tuple[str, str | None, str]] = {
    "popularity": ("popularity", None, "training counts"),
    "als": ("als", "mean", 'MAP by ALS, `priors="fixed"`, mean'),
    "gibbs-fixed-mean": ("gibbs-fixed", "mean", 'Gibbs, `priors="fixed"`, mean'),
    "gibbs-fixed-lower": ("gibbs-fixed", "lower", 'Gibbs, `priors="fixed"`, 5 % quantile'),
    "gibbs-fixed-prob": ("gibbs-fixed", "prob", 'Gibbs, `priors="fixed"`, P(r >= 4)'),
    "gibbs-fixed-thompson": ("gibbs-fixed", "thompson", 'Gibbs, `priors="fixed"`, Thompson'),
    "gibbs-mean": ("gibbs", "mean", "Gibbs, hierarchical (default `PMF()`), mean"),
    "surprise-svd": ("surprise-svd", None, "Surprise SVD, predicted rating"),
    "myfm": ("myfm", None, "myFM MyFMRegressor, posterior-mean rating"),
    "implicit-als": ("implicit-als", None, "implicit ALS, 64 factors, 30 it."),
    "implicit-als-10": ("implicit-als-10", None, "implicit ALS, 10 factors, reg. 0.05, 30 it."),
    "implicit-bpr": ("implicit-bpr", None, "implicit BPR, 64 factors, 200 it."),
    "gibbs-implicit": ("gibbs-implicit", "mean", 'choice model, Gibbs, `likelihood="implicit"`, mean P(chosen)'),
    "gibbs-implicit-lower": ("gibbs-implicit", "lower", "choice model, Gibbs, 5 % quantile of P(chosen)"),
    "gibbs-implicit-thompson": ("gibbs-implicit", "thompson", "choice model, Gibbs, Thompson"),
    "joint": ("joint", None, "choice x rating fits above: mean of P(chosen) x P(r >= 4)"),
}
#: the fits the joint system reuses: (choice group, rating group)
JOINT_FITS = ("gibbs-implicit", "gibbs")
#: a fit group's package (skipped with a note when it is not installed)
PACKAGES = {"surprise-svd": "surprise", "myfm": "myfm", "implicit-als": "implicit",
            "implicit-als-10": "implicit", "implicit-bpr": "implicit"}
#: (name, MAP system, posterior system) of the "what uncertainty buys" comparison
PAIRS = (("mean", "als", "gibbs-fixed-mean"), ("lower", "als", "gibbs-fixed-lower"))
#: the three summary metrics of the tables (per-user column of TopN.per_user, label)
METRICS = (("ndcg", "NDCG"), ("precision", "P"), ("recall", "R"))
#: packages whose versions the section records
VERSIONS = ("bayesmf", "numpy", "scipy", "numba", "pymc", "implicit", "scikit-surprise", "myfm", "lenskit")


# =======================================================================================
# data
# =======================================================================================
def fold_numbers(text: str) -> list[int]:
    """``"u1,u3"``, ``"1,3"`` or ``"k1"`` -> [1, 3]: the 1-based fold numbers, each in 1..5."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        digits = part.lstrip("uk")
        if not digits.isdigit() or not 1 <= int(digits) <= 5:
            raise SystemExit(f"--folds: {part!r} is not one of u1..u5")
        out.append(int(digits))
    return out


def rounded(data: RatingsData) -> RatingsData:
    """Ratings rounded and clipped to 1..5 stars (the smoke test's simulated set)."""
    rating = np.clip(np.round(data.rating), 1, 5)
    return RatingsData(data.user_idx, data.item_idx, rating, (1.0, 5.0), data.users, data.items)


def load_folds(dataset: str, folds: Sequence[int], data_dir: str) -> Iterator[tuple[str, RatingsData, RatingsData]]:
    """Yield ``(fold name, train, test)`` (sharing encoders) for the fold numbers asked for."""
    if dataset == "ml-100k":
        for k in folds:
            train, test = load_movielens("ml-100k", split=f"u{k}", data_dir=data_dir, download=False)
            yield f"u{k}", train, test
        return
    if dataset == "ml-latest-small":
        data = load_movielens("ml-latest-small")
    elif dataset == "tiny":  # the smoke test's set: a few hundred ratings from the model
        from bayesmf.datasets import simulate

        data = rounded(simulate(n_users=60, n_items=40, n_factors=2, density=0.3, noise=0.5, seed=3).data)
    else:
        raise SystemExit(f"unknown dataset {dataset!r}: ml-100k, ml-latest-small")
    splits = list(kfold(data, n_splits=5, seed=0))
    for k in folds:
        yield f"k{k}", *splits[k - 1]


@dataclass
class Plan:
    """The users `bayesmf.topn` evaluates, in its order, with candidates and relevant items."""

    users: np.ndarray
    candidates: list[np.ndarray]
    relevant: list[np.ndarray]


def make_plan(train: RatingsData, test: RatingsData, threshold: float) -> Plan:
    """Users with a test rating >= threshold on an item they did not rate in training."""
    if not (test.users.equals(train.users) and test.items.equals(train.items)):
        raise ValueError("train and test must share their encoders (as every split here does)")
    rated = np.zeros((train.n_users, train.n_items), dtype=bool)
    rated[train.user_idx, train.item_idx] = True
    fresh = ~rated[test.user_idx, test.item_idx] & (np.asarray(test.rating) >= threshold)
    users, cands, relevant = [], [], []
    for u in np.unique(np.asarray(test.user_idx)[fresh]).tolist():
        users.append(u)
        cands.append(np.flatnonzero(~rated[u]))
        relevant.append(np.unique(np.asarray(test.item_idx)[fresh & (test.user_idx == u)]))
    return Plan(np.asarray(users, dtype=np.int64), cands, relevant)


# =======================================================================================
# bayesmf: ranking and the lists
# =======================================================================================
def rank_stream(seed: int) -> np.random.Generator:
    """The ranking generator `bayesmf.topn` derives from ``random_seed`` (its second child)."""
    return np.random.default_rng(seed_sequence(seed).spawn(2)[1])


def bayesmf_lists(fit: Any, plan: Plan, k: int, rank_by: str, threshold: float, seed: int) -> dict[int, np.ndarray]:
    """Top-k item indices of every planned user, by the calls `evaluate_topn` makes."""
    opts = PredictOptions(threshold=threshold if rank_by == "prob" else None, unknown="raise",
                          random_seed=rank_stream(seed))
    users = plan.users.tolist()
    tops = rank_candidates(fit, users, plan.candidates, k, rank_by, opts)
    return {u: np.asarray(top, dtype=np.int64) for u, top in zip(users, tops, strict=True)}


def evaluate_lists(lists: dict[int, np.ndarray], train: RatingsData, test: RatingsData, k: int,
                   threshold: float, seed: int, name: str) -> TopN:
    """`evaluate_scores` of fixed lists: the list's items score k, k-1, ..., the rest 0."""

    def score(u: int, cand: np.ndarray) -> np.ndarray:
        top = lists[u]  # a KeyError here means the plan differs from bayesmf.topn's
        pos = np.searchsorted(cand, top)
        if len(top) > k or np.any(pos >= len(cand)) or np.any(cand[np.minimum(pos, len(cand) - 1)] != top):
            raise RuntimeError(f"user index {u}: its list is not among its candidates")
        out = np.zeros(len(cand))
        out[pos] = np.arange(len(top), 0, -1)
        return out

    return evaluate_scores(score, train, test, k, threshold, random_seed=seed, name=name)


# =======================================================================================
# peers: each returns a users x items score matrix (float64)
# =======================================================================================
def surprise_scores(train: RatingsData, seed: int) -> tuple[np.ndarray, float]:
    import surprise

    frame = pd.DataFrame({"u": train.user_idx, "i": train.item_idx, "r": train.rating})
    start = time.perf_counter()
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=tuple(train.scale))).build_full_trainset()
    algo = surprise.SVD(n_factors=RANK, random_state=seed)
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    # SVD.estimate: global mean + b_u (known user) + b_i (known item) + q_i . p_u (both known)
    P, Q = np.zeros((train.n_users, RANK)), np.zeros((train.n_items, RANK))
    bu, bi = np.zeros(train.n_users), np.zeros(train.n_items)
    for inner in trainset.all_users():
        raw = int(trainset.to_raw_uid(inner))
        P[raw], bu[raw] = algo.pu[inner], algo.bu[inner]
    for inner in trainset.all_items():
        raw = int(trainset.to_raw_iid(inner))
        Q[raw], bi[raw] = algo.qi[inner], algo.bi[inner]
    scores = trainset.global_mean + bu[:, None] + bi[None, :] + P @ Q.T
    rng = np.random.default_rng(0)
    for u, i in zip(rng.integers(train.n_users, size=5), rng.integers(train.n_items, size=5), strict=True):
        if not np.isclose(scores[u, i], algo.predict(int(u), int(i), clip=False).est):
            raise RuntimeError("surprise scores do not reproduce SVD.predict")
    return scores, seconds


def onehot(train: RatingsData) -> Any:
    import scipy.sparse as sps

    n = train.n_ratings
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([train.user_idx, train.n_users + train.item_idx], axis=1).ravel()
    return sps.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, train.n_users + train.n_items))


def myfm_scores(train: RatingsData, seed: int, sweeps: int, kept: int) -> tuple[np.ndarray, float]:
    import myfm

    X = onehot(train)
    start = time.perf_counter()
    fm = myfm.MyFMRegressor(rank=RANK, random_seed=seed)
    fm.fit(X, np.asarray(train.rating, dtype=float), n_iter=sweeps, n_kept_samples=kept,
           group_shapes=[train.n_users, train.n_items], callback=lambda *args: (False, None))
    seconds = time.perf_counter() - start
    nu = train.n_users
    samples = fm.predictor_.samples
    scores = np.zeros((nu, train.n_items))
    for s in samples:  # the posterior-mean rating of every pair: mean over kept samples
        w, V = np.asarray(s.w), np.asarray(s.V)
        scores += s.w0 + w[:nu, None] + w[None, nu:] + V[:nu] @ V[nu:].T
    scores /= len(samples)
    check = np.arange(min(5, train.n_ratings))
    if not np.allclose(scores[train.user_idx[check], train.item_idx[check]], fm.predict(X[check])):
        raise RuntimeError("myFM scores do not reproduce MyFMRegressor.predict")
    return scores, seconds


IMPLICIT_OPTIONS = {
    "implicit-als": ("als", {"factors": 64, "iterations": 30}),
    "implicit-als-10": ("als", {"factors": 10, "regularization": 0.05, "iterations": 30}),
    "implicit-bpr": ("bpr", {"factors": 64, "iterations": 200}),
}


def implicit_scores(group: str, train: RatingsData, seed: int, threads: int) -> tuple[np.ndarray, float]:
    import scipy.sparse as sps
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    kind, options = IMPLICIT_OPTIONS[group]
    user_items = sps.csr_matrix((np.ones(train.n_ratings, dtype=np.float32), (train.user_idx, train.item_idx)),
                                shape=(train.n_users, train.n_items))
    user_items.data[:] = 1.0  # a pair rated twice is still one interaction
    cls = AlternatingLeastSquares if kind == "als" else BayesianPersonalizedRanking
    with threadpool_limits(1, "blas"):  # implicit checks BLAS's threads when it builds the model
        model = cls(**options, num_threads=threads, random_state=seed)
        start = time.perf_counter()
        model.fit(user_items, show_progress=False)
        seconds = time.perf_counter() - start
    scores = np.asarray(model.user_factors, dtype=np.float64) @ np.asarray(model.item_factors, dtype=np.float64).T
    ids, _ = model.recommend(0, user_items[0], N=5, filter_already_liked_items=True)
    mine = np.argsort(-np.where(user_items[0].toarray().ravel() > 0, -np.inf, scores[0]), kind="stable")[:5]
    if set(np.asarray(ids).tolist()) != set(mine.tolist()):
        raise RuntimeError(f"{group}: user . item factors do not reproduce implicit's recommend")
    return scores, seconds


# =======================================================================================
# one fold
# =======================================================================================
@dataclass
class Row:
    """One system on one fold."""

    dataset: str
    fold: str
    system: str
    status: str = "ok"
    fit_s: float = float("nan")
    rank_s: float = float("nan")
    diagnose: str = "n/a"
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_users: int = 0
    n_skipped: int = 0
    per_user: pd.DataFrame | None = None
    calibration: dict[str, float] = field(default_factory=dict)  # P(chosen)'s ECE and Brier (choice fits)


def summary_of(topn: TopN, k: int) -> dict[str, tuple[float, float]]:
    s = topn.summary
    out = {name: (float(s.loc[f"{label}@{k}", "mean"]), float(s.loc[f"{label}@{k}", "se"]))
           for name, label in (("ndcg", "ndcg"), ("precision", "precision"), ("recall", "recall"), ("novelty", "novelty"))}
    out["coverage"] = (float(s.loc[f"coverage@{k}", "mean"]), float("nan"))
    return out


def fit_bayesmf(group: str, train: RatingsData, seed: int, quick: bool) -> tuple[Any, float]:
    start = time.perf_counter()
    if group == "als":
        fit = PMF(n_factors=RANK, priors="fixed").fit(train, method="als", random_seed=seed, progressbar=False)
    elif group == "gibbs-implicit":
        fit = PMF(n_factors=RANK, likelihood="implicit").fit(
            as_implicit(train, value="one"), method="gibbs", random_seed=seed, progressbar=False,
            **(GIBBS_QUICK if quick else {}))
    else:
        spec = PMF(n_factors=RANK, priors="fixed") if group == "gibbs-fixed" else PMF(n_factors=RANK)
        fit = spec.fit(train, method="gibbs", random_seed=seed, progressbar=False, **(GIBBS_QUICK if quick else {}))
    return fit, time.perf_counter() - start


def verdict(fit: Any) -> str:
    if fit.is_map:
        return "n/a"
    diagnosis = fit.diagnose(warn=False)
    return {True: "pass", False: "FAIL", None: "n/a"}[diagnosis.ok]


def both(verdicts: Sequence[str]) -> str:
    """Verdict of a system built on several fits: FAIL if one fails, pass if all pass."""
    return "FAIL" if "FAIL" in verdicts else "pass" if all(v == "pass" for v in verdicts) else "n/a"


def calibration(fit: Any, test: RatingsData) -> dict[str, float]:
    """ECE, Brier score and counts of the choice fit's P(chosen) on the fold's held-out pairs."""
    rel = choice_reliability(fit, test, n_bins=10)
    return {"ece": rel.ece, "brier": rel.brier, "n_pairs": rel.table.attrs["n_pairs"],
            "n_positive": rel.table.attrs["n_positive"]}


def run_fold(dataset: str, fold: str, train: RatingsData, test: RatingsData, systems: Sequence[str],
             args: argparse.Namespace, log: Callable[[str], None]) -> tuple[list[Row], dict[str, dict[int, np.ndarray]], Plan]:
    """Every system asked for on one fold; the lists of the rules compared in table 2."""
    k, seed = args.k, args.seed
    need_lists = {s for _, a, b in PAIRS if a in systems and b in systems for s in (a, b)}
    plan = make_plan(train, test, THRESHOLD) if need_lists else Plan(np.empty(0, np.int64), [], [])
    rows: list[Row] = []
    lists: dict[str, dict[int, np.ndarray]] = {}
    groups = [g for g in dict.fromkeys(v[0] for v in SYSTEMS.values()) if any(SYSTEMS[s][0] == g for s in systems)]
    kept: dict[str, tuple[Any, float, str]] = {}  # the fits "joint" reuses: (fit, fit s, verdict)
    for group in groups:
        members = [s for s in systems if SYSTEMS[s][0] == group]
        package = PACKAGES.get(group)
        if package and importlib.util.find_spec(package) is None:
            rows += [Row(dataset, fold, s, status=f"skipped: {package} not installed") for s in members]
            log(f"{dataset} {fold} {group}: skipped, {package} not installed")
            continue
        try:
            fit, scores, diag, joint_s, cal = None, None, "n/a", 0.0, {}
            if group == "popularity":
                start = time.perf_counter()
                scores = popularity_scores(train)
                fit_s = time.perf_counter() - start
            elif group in ("als", "gibbs-fixed", "gibbs", "gibbs-implicit"):
                fit, fit_s = fit_bayesmf(group, train, seed, args.quick)
                diag = verdict(fit)
                if group in JOINT_FITS and "joint" in systems:
                    kept[group] = (fit, fit_s, diag)
                if group == "gibbs-implicit":
                    cal = calibration(fit, test)
            elif group == "joint":
                for part in JOINT_FITS:  # reused when their systems ran on this fold, else fitted here
                    if part not in kept:
                        part_fit, part_s = fit_bayesmf(part, train, seed, args.quick)
                        kept[part] = (part_fit, part_s, verdict(part_fit))
                (choice, choice_s, choice_diag), (rating, rating_s, rating_diag) = (kept[p] for p in JOINT_FITS)
                fit_s, diag = choice_s + rating_s, both([choice_diag, rating_diag])
                start = time.perf_counter()
                scores = joint_scores(choice, rating, threshold=THRESHOLD, rank_by="mean", random_seed=seed,
                                      exclude_rated=True, top_m=args.joint_top_m)
                joint_s = time.perf_counter() - start
                kept.clear()
            elif group == "surprise-svd":
                scores, fit_s = surprise_scores(train, seed)
            elif group == "myfm":
                scores, fit_s = myfm_scores(train, seed, *(MYFM_QUICK if args.quick else MYFM_SWEEPS))
            else:
                scores, fit_s = implicit_scores(group, train, seed, args.threads)
            log(f"{dataset} {fold} {group}: fit {fit_s:.1f} s, diagnose {diag}")
        except Exception as exc:
            traceback.print_exc()
            rows += [Row(dataset, fold, s, status=f"failed: {type(exc).__name__}: {exc}"[:200]) for s in members]
            continue
        for system in members:
            row = Row(dataset, fold, system, fit_s=fit_s, diagnose=diag, calibration=cal)
            rule = SYSTEMS[system][1]
            start = time.perf_counter()
            try:
                if fit is None:
                    topn = evaluate_scores(scores, train, test, k, THRESHOLD, random_seed=seed, name=system)
                elif system in need_lists:
                    assert rule is not None
                    lists[system] = bayesmf_lists(fit, plan, k, rule, THRESHOLD, seed)
                    topn = evaluate_lists(lists[system], train, test, k, THRESHOLD, seed, rule)
                else:
                    topn = evaluate_topn(fit, test, k, rank_by=rule, threshold=THRESHOLD, random_seed=seed, progressbar=False)
            except Exception as exc:
                traceback.print_exc()
                row.status = f"failed: {type(exc).__name__}: {exc}"[:200]
                rows.append(row)
                continue
            row.rank_s = time.perf_counter() - start + (joint_s if group == "joint" else 0.0)
            row.metrics = summary_of(topn, k)
            row.n_users = int(topn.summary.attrs["n_users_evaluated"])
            row.n_skipped = int(topn.summary.attrs["n_users_skipped"])
            row.per_user = topn.per_user
            rows.append(row)
            log(f"{dataset} {fold} {system}: rank {row.rank_s:.1f} s, NDCG@{k} {row.metrics['ndcg'][0]:.4f}")
        del fit, scores
        gc.collect()
    return rows, lists, plan


# =======================================================================================
# what uncertainty buys
# =======================================================================================
def differences(rows: list[Row], lists: dict[str, dict[int, np.ndarray]], plan: Plan, train: RatingsData,
                k: int) -> list[dict[str, Any]]:
    """Per pair (MAP, posterior) and user group: how the lists differ and what it moves."""
    by = {r.system: r for r in rows if r.status == "ok"}
    counts = train.item_counts()
    activity = train.user_counts()[plan.users]
    cuts = np.quantile(activity, [1 / 3, 2 / 3]) if len(activity) else np.zeros(2)
    tercile = np.where(activity <= cuts[0], 0, np.where(activity <= cuts[1], 1, 2))
    bounds = [(activity[tercile == t].min(), activity[tercile == t].max()) if (tercile == t).any() else (0, 0)
              for t in range(3)]
    out = []
    for pair, a, b in PAIRS:
        if a not in lists or b not in lists or a not in by or b not in by:
            continue
        pa, pb = by[a].per_user, by[b].per_user
        assert pa is not None and pb is not None
        if not np.array_equal(pa["user"].to_numpy(), pb["user"].to_numpy()) or len(pa) != len(plan.users):
            raise RuntimeError("the two systems were not evaluated on the same users")
        differ = np.empty(len(plan.users))
        only = {"a": [[], [], []], "b": [[], [], []]}  # per tercile: (item, relevant) pairs
        for row, u in enumerate(plan.users.tolist()):
            la, lb = lists[a][u], lists[b][u]
            only_a, only_b = np.setdiff1d(la, lb), np.setdiff1d(lb, la)
            differ[row] = len(only_b) / k
            t = int(tercile[row])
            only["a"][t] += [(i, i in plan.relevant[row]) for i in only_a.tolist()]
            only["b"][t] += [(i, i in plan.relevant[row]) for i in only_b.tolist()]
        groups = [("all", np.ones(len(plan.users), dtype=bool), [0, 1, 2])]
        groups += [(f"{name} ({lo}-{hi})", tercile == t, [t])
                   for t, (name, (lo, hi)) in enumerate(zip(("low", "mid", "high"), bounds, strict=True))]
        for label, mask, terciles in groups:
            n = int(mask.sum())
            rec: dict[str, Any] = {"pair": pair, "map": a, "posterior": b, "users": label.split(" ")[0],
                                   "label": label, "n_users": n, "differ": float(differ[mask].mean()) if n else np.nan}
            for col, name in METRICS:
                d = pb[col].to_numpy()[mask] - pa[col].to_numpy()[mask]
                rec[f"d_{name}"] = (float(d.mean()), float(d.std(ddof=1) / np.sqrt(n))) if n > 1 else (np.nan, np.nan)
            for side in ("a", "b"):
                pooled = [x for t in terciles for x in only[side][t]]
                rec[f"pop_{side}"] = float(np.mean([counts[i] for i, _ in pooled])) if pooled else np.nan
                rec[f"rel_{side}"] = float(np.mean([r for _, r in pooled])) if pooled else np.nan
            if label == "all":
                rec["coverage"] = (by[a].metrics["coverage"][0], by[b].metrics["coverage"][0])
                rec["novelty"] = (by[a].metrics["novelty"][0], by[b].metrics["novelty"][0])
            out.append(rec)
    return out


# =======================================================================================
# the section
# =======================================================================================
def pm(value: tuple[float, float], digits: int = 4) -> str:
    mean, se = value
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f}" if not np.isfinite(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def over_folds(values: Sequence[float]) -> tuple[float, float]:
    """Mean of the fold values ± sd / sqrt(n) (NaN se for one fold)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return (np.nan, np.nan)
    return (float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan)


def system_tables(dataset: str, rows: list[Row], k: int) -> list[str]:
    mine = [r for r in rows if r.dataset == dataset]
    folds = list(dict.fromkeys(r.fold for r in mine))
    systems = list(dict.fromkeys(r.system for r in mine))
    head = f"| system | ranked by | NDCG@{k} | P@{k} | R@{k} | coverage | novelty | fit s | rank s | diagnose |"
    lines = [f"#### {dataset}: " + (f"mean over folds {', '.join(folds)} (± se over folds)" if len(folds) > 1
                                    else f"fold {folds[0]} (± se over users)"), "", head, "|---" * 10 + "|"]
    for system in systems:
        rs = [r for r in mine if r.system == system]
        ok = [r for r in rs if r.status == "ok"]
        if not ok:
            lines.append(f"| {system} | {SYSTEMS[system][2]} | {rs[0].status} |" + " |" * 7)
            continue
        if len(folds) == 1:
            vals = [pm(ok[0].metrics[m]) for m in ("ndcg", "precision", "recall")]
        else:
            vals = [pm(over_folds([r.metrics[m][0] for r in ok])) for m in ("ndcg", "precision", "recall")]
        cov = np.mean([r.metrics["coverage"][0] for r in ok])
        nov = np.mean([r.metrics["novelty"][0] for r in ok])
        diag = ", ".join(sorted({r.diagnose for r in ok})) if len(ok) == 1 else (
            f"{sum(r.diagnose == 'pass' for r in ok)}/{len(ok)} pass" if ok[0].diagnose != "n/a" else "n/a")
        note = "" if len(ok) == len(rs) else f" ({len(rs) - len(ok)} fold(s) {rs[0].status if rs[0].status != 'ok' else 'failed'})"
        lines.append(f"| {system} | {SYSTEMS[system][2]} | {' | '.join(vals)} | {cov:.3f} | {nov:.2f} | "
                     f"{np.mean([r.fit_s for r in ok]):.1f} | {np.mean([r.rank_s for r in ok]):.1f} | {diag}{note} |")
    if len(folds) > 1:
        lines += ["", f"Per fold ({dataset}; ± se over users):", "",
                  f"| system | fold | users (skipped) | NDCG@{k} | P@{k} | R@{k} | fit s | rank s | diagnose |",
                  "|---" * 9 + "|"]
        for system in systems:
            for r in (r for r in mine if r.system == system):
                if r.status != "ok":
                    lines.append(f"| {system} | {r.fold} | {r.status} |" + " |" * 6)
                    continue
                lines.append(f"| {system} | {r.fold} | {r.n_users} ({r.n_skipped}) | "
                             + " | ".join(pm(r.metrics[m]) for m in ("ndcg", "precision", "recall"))
                             + f" | {r.fit_s:.1f} | {r.rank_s:.1f} | {r.diagnose} |")
    return lines


def difference_tables(dataset: str, diffs: list[dict[str, Any]]) -> list[str]:
    mine = [d for d in diffs if d["dataset"] == dataset]
    if not mine:
        return []
    folds = list(dict.fromkeys(d["fold"] for d in mine))
    lines = [f"#### {dataset}: MAP (ALS) against the posterior under the same prior", "",
             "| pair | fold | users | items differing | ΔNDCG | ΔP | ΔR | pop. MAP-only | pop. post.-only "
             "| relevant MAP-only | relevant post.-only | coverage MAP → post. | novelty MAP → post. |",
             "|---" * 13 + "|"]

    def cells(recs: list[dict[str, Any]], mean_row: bool) -> str:
        def avg(key: str) -> float:
            return float(np.nanmean([r[key] for r in recs])) if recs else np.nan

        deltas = [pm(over_folds([r[f"d_{n}"][0] for r in recs])) if mean_row else pm(recs[0][f"d_{n}"])
                  for _, n in METRICS]
        return (f"{avg('differ'):.1%} | " + " | ".join(deltas)
                + f" | {avg('pop_a'):.0f} | {avg('pop_b'):.0f} | {avg('rel_a'):.1%} | {avg('rel_b'):.1%}")

    for pair in dict.fromkeys(d["pair"] for d in mine):
        alls = [d for d in mine if d["pair"] == pair and d["users"] == "all"]
        for d in alls:
            lines.append(f"| {pair} | {d['fold']} | {d['n_users']} | {cells([d], False)} | "
                         f"{d['coverage'][0]:.3f} → {d['coverage'][1]:.3f} | {d['novelty'][0]:.2f} → {d['novelty'][1]:.2f} |")
        if len(folds) > 1:
            cov = [np.mean([d["coverage"][i] for d in alls]) for i in (0, 1)]
            nov = [np.mean([d["novelty"][i] for d in alls]) for i in (0, 1)]
            lines.append(f"| {pair} | **mean** | {np.mean([d['n_users'] for d in alls]):.0f} | {cells(alls, True)} | "
                         f"{cov[0]:.3f} → {cov[1]:.3f} | {nov[0]:.2f} → {nov[1]:.2f} |")
    lines += ["", f"By user activity ({dataset}; terciles of the evaluated users' training ratings, range in brackets):", "",
              "| pair | users | fold | n | items differing | ΔNDCG | ΔP | ΔR | pop. MAP-only | pop. post.-only "
              "| relevant MAP-only | relevant post.-only |", "|---" * 12 + "|"]
    for pair in dict.fromkeys(d["pair"] for d in mine):
        for group in ("low", "mid", "high"):
            recs = [d for d in mine if d["pair"] == pair and d["users"] == group]
            for d in recs:
                lines.append(f"| {pair} | {d['label']} | {d['fold']} | {d['n_users']} | {cells([d], False)} |")
            if len(folds) > 1:
                lines.append(f"| {pair} | {group} | **mean** | {np.mean([d['n_users'] for d in recs]):.0f} | {cells(recs, True)} |")
    return lines


def calibration_tables(rows: list[Row]) -> list[str]:
    """ECE and Brier score of P(chosen) per dataset and fold (one row per choice fit)."""
    fits = {(r.dataset, r.fold): r for r in rows if r.calibration}
    if not fits:
        return []
    lines = ["### Calibration of P(chosen): the choice fit (`gibbs-implicit`) on held-out pairs", "",
             "`bayesmf.choice_reliability`: every test pair a held-out choice, every other pair of a test user that "
             "is not a training pair a non-choice; 10 equal-width bins of the posterior-mean P(chosen). ECE: "
             "pair-weighted mean |observed - predicted| over bins; Brier: mean squared error of P(chosen). Quote no "
             "figure of a FAIL.", "",
             "| dataset | fold | pairs | held-out choices | ECE | Brier | diagnose |", "|---" * 7 + "|"]
    for (dataset, fold), r in fits.items():
        c = r.calibration
        lines.append(f"| {dataset} | {fold} | {c['n_pairs']:.0f} | {c['n_positive']:.0f} | {c['ece']:.4f} | "
                     f"{c['brier']:.4f} | {r.diagnose} |")
    return lines


def versions() -> str:
    out = []
    for name in VERSIONS:
        try:
            out.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bayesmf"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (bayesmf/ modified)" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def section(rows: list[Row], diffs: list[dict[str, Any]], args: argparse.Namespace, meta: dict[str, Any]) -> str:
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    myfm_run = MYFM_QUICK if args.quick else MYFM_SWEEPS
    gibbs = "package defaults of `fit(method=\"gibbs\")`" if not args.quick else f"QUICK (smoke, not a measurement): {GIBBS_QUICK}"
    lines = [
        BEGIN,
        "## Top-N lists: bayesmf and its peers (`benchmarks/bench_topn.py`)",
        "",
        f"- date: {meta['date']}; machine: `{meta['machine']}`, {meta['cpu']}, {meta['nproc']} CPUs, Python {platform.python_version()}",
        f"- command: `{meta['command']}`",
        f"- commit: {meta['commit']}; versions: {meta['versions']}",
        f"- load average (1/5/15 min) before {meta['load_before']}, after {meta['load_after']}; total {meta['total_s'] / 60:.1f} min",
        f"- protocol: `bayesmf.topn`, k = {args.k}, relevant = test rating >= {THRESHOLD:g}, candidates = every item "
        "the user did not rate in training; users without a relevant test item skipped (counted); "
        f"seed {args.seed}; rank {RANK} throughout",
        f"- Gibbs: {gibbs}; each Gibbs fit's `diagnose()` verdict is in the last column: quote no figure of a FAIL",
        f"- threads: Gibbs chains on min(chains, CPUs) threads and bayesmf's prediction kernels on every CPU (package "
        f"defaults); `implicit` num_threads={args.threads} with BLAS held to 1 thread during its fits; bayesmf ALS, "
        "Surprise and myFM on one thread",
        "- `fit s`: wall seconds of the fit (the Gibbs fixed-prior fit is one fit shared by its four rules); `rank s`: "
        "scoring, ranking every candidate and the metrics",
        "- Surprise SVD is ranked by its rating before clipping; myFM by its posterior-mean rating "
        f"({myfm_run[0]} sweeps, last {myfm_run[1]} kept); `implicit` trains on the "
        "training pairs as implicit feedback (each pair 1)",
        "- choice model (`gibbs-implicit*`): `PMF(n_factors=10, likelihood=\"implicit\")` by Gibbs on "
        "`as_implicit(train, value=\"one\")`, evaluated on the held-out ratings like the rest; `joint`: "
        "`bayesmf.joint.joint_scores` of that fit and the `gibbs-mean` fit (mean over paired draws of P(chosen) x "
        f"P(r >= {THRESHOLD:g})) over "
        + (f"each user's top {args.joint_top_m} unrated items by the choice fit's posterior-mean score (the rest rank last)"
           if args.joint_top_m else "every pair")
        + ", its `fit s` the two fits' sum, its verdict pass only when both pass",
        "- LensKit: not run; `pip install --dry-run lenskit` pulls in torch (and the CUDA wheels), which stays out of "
        "the benchmark's install",
        "",
    ]
    for dataset in datasets:
        lines += [*system_tables(dataset, rows, args.k), ""]
    if diffs:
        lines += [
            "### What uncertainty buys: MAP and posterior lists under the same prior",
            "",
            "`mean`: `als` vs `gibbs-fixed-mean`; `lower`: `als` vs `gibbs-fixed-lower`. `items differing`: share of "
            "the top-k items not in the other list; Δ: posterior - MAP per user (paired), ± se over users (over folds "
            "in the mean rows); `pop.`: mean training ratings of the items only in that list; `relevant`: share of "
            "those items relevant on the test fold.",
            "",
        ]
        for dataset in datasets:
            lines += [*difference_tables(dataset, diffs), ""]
    calibrated = calibration_tables(rows)
    if calibrated:
        lines += [*calibrated, ""]
    lines.append(END)
    return "\n".join(lines)


# =======================================================================================
# main
# =======================================================================================
def warm_up(log: Callable[[str], None]) -> None:
    """Load (or compile) the numba kernels of the fits and of the rankings on a tiny set."""
    start = time.perf_counter()
    _, train, test = next(load_folds("tiny", [1], ""))
    for group in ("als", "gibbs-fixed"):
        fit = PMF(n_factors=2, priors="fixed").fit(
            train, method="als" if group == "als" else "gibbs", random_seed=0, progressbar=False,
            **({} if group == "als" else {"draws": 10, "tune": 5, "chains": 2}))
        for rule in ("mean", "lower", "prob", "thompson"):
            evaluate_topn(fit, test, 3, rank_by=rule, random_seed=0)
    choice = PMF(n_factors=2, likelihood="implicit").fit(as_implicit(train), method="gibbs", random_seed=0,
                                                          progressbar=False, draws=10, tune=5, chains=2)
    for rule in ("mean", "lower", "thompson"):
        evaluate_topn(choice, test, 3, rank_by=rule, random_seed=0)
    evaluate_scores(joint_scores(choice, fit, random_seed=0), train, test, 3, random_seed=0)
    choice_reliability(choice, test)
    log(f"warm-up (numba kernels) {time.perf_counter() - start:.1f} s, not counted")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--folds", default=None, help="u1,...,u5 (default all five; u1 with --quick)")
    parser.add_argument("--latest-folds", default=None,
                        help="folds of ml-latest-small, k1,...,k5 (default: those of --folds)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--systems", default="all", help="comma list of: " + ", ".join(SYSTEMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint-top-m", type=int, default=100,
                        help="joint: score only each user's top m unrated items by the choice fit (0: every pair)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="implicit's num_threads")
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also save every number here")
    parser.add_argument("--quick", action="store_true", help="u1, short Gibbs and myFM chains: a smoke run")
    args = parser.parse_args(argv)
    args.fold_numbers = fold_numbers(args.folds or ("u1" if args.quick else "u1,u2,u3,u4,u5"))
    args.latest_fold_numbers = fold_numbers(args.latest_folds) if args.latest_folds else args.fold_numbers
    args.system_list = list(SYSTEMS) if args.systems == "all" else [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.system_list if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; known: {', '.join(SYSTEMS)}")
    if args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")
    if args.joint_top_m < 0:
        parser.error(f"--joint-top-m must be >= 0 (0: every pair), got {args.joint_top_m}")
    args.joint_top_m = args.joint_top_m or None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from _sections import log

    args = parse(argv)

    load_before = os.getloadavg()
    start = time.perf_counter()
    warm_up(log)
    rows: list[Row] = []
    diffs: list[dict[str, Any]] = []
    for dataset in (d.strip() for d in args.datasets.split(",") if d.strip()):
        numbers = args.latest_fold_numbers if dataset == "ml-latest-small" else args.fold_numbers
        for fold, train, test in load_folds(dataset, numbers, args.data_dir):
            fold_rows, lists, plan = run_fold(dataset, fold, train, test, args.system_list, args, log)
            rows += fold_rows
            diffs += [{"dataset": dataset, "fold": fold, **d} for d in differences(fold_rows, lists, plan, train, args.k)]
    load_after = os.getloadavg()
    meta = {
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "machine": " ".join(platform.uname()),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "command": ".venv/bin/python benchmarks/" + " ".join(shlex.quote(a) for a in [Path(__file__).name, *(sys.argv[1:] if argv is None else argv)]),
        "commit": git_commit(),
        "versions": versions(),
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in load_after),
        "total_s": time.perf_counter() - start,
    }
    text = section(rows, diffs, args, meta)
    print(text)
    if args.json is not None:
        records = [{k: v for k, v in vars(r).items() if k != "per_user"} for r in rows]
        args.json.write_text(json.dumps({"meta": meta, "rows": records, "differences": diffs}, indent=1, default=float))
    if not args.no_write:
        from _sections import write_section

        write_section(args.results, text, BEGIN, END)
    return 0 if all(r.status == "ok" or r.status.startswith("skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
