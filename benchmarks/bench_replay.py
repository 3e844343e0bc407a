#!/usr/bin/env python
"""Replay bandit on held-out ratings: cumulative hits and regret of greedy MAP, the posterior's rules, random.

Usage::

    .venv/bin/python benchmarks/bench_replay.py [--folds u1,u2,u3,u4,u5] [--rounds 20]
        [--kept 3] [--seed 0] [--data-dir ../shared/data] [--results benchmarks/RESULTS.md]
        [--no-write] [--json PATH] [--quick]

Protocol (`bayesmf.replay`): on each ML-100K fold u1-u5, every test user with a relevant
held-out item (rating >= 4 on an item unrated in training; the others are skipped and
counted) is recommended ONE item per round from their held-out items not yet shown, for
``--rounds`` rounds; the held-out rating is observed, a rating >= 4 is a hit, and the
observation is folded into the user's conditional posterior (item side fixed at the fit's
draws). A user whose pool runs out stops (the oracle runs out too). Regret: the oracle's
cumulative hits minus the policy's.

Fits (rank 10, both with ``priors="fixed"`` so that only the inference differs):

- MAP: ``PMF(n_factors=10, priors="fixed").fit(train, method="als")``, policy ``greedy-map``;
- posterior: ``PMF(n_factors=10, priors="fixed").fit(train, method="gibbs")`` (package
  default run lengths; its ``diagnose()`` verdict is reported: quote no figure of a FAIL),
  policies ``greedy-mean``, ``lower`` (empirical 5 % quantile over the draws of the mean
  rating) and ``thompson``;
- ``random`` and ``oracle`` (fit-free; run once, with the MAP fit's replay).

Variants: ``warm`` (each test user starts from all their training ratings) and ``cold``
(from only their first ``--kept`` training ratings by the timestamps of ``u?.base``; a
seeded random subset where the file is not found). The fits are always on the full
training fold: the item side is learned from everyone.

Reported per fold and variant: cumulative hits at round 5 (round 1 with 5 rounds or fewer) and at the last round, the hit rate
at the last round and the cumulative regret (means ± se over users), and the paired
per-user difference in cumulative hits against ``greedy-map`` (± se over users). The mean
over folds is the mean of the fold means ± the sd of the fold means / sqrt(folds).

``--quick``: fold u1 (unless ``--folds``), 5 rounds (unless ``--rounds``), Gibbs
``draws=100, tune=50, chains=2``: a smoke run, not a measurement. ``--dataset tiny`` uses
a few hundred simulated ratings (the smoke test's set of ``bench_topn.py``). Writes (or
replaces) the section between ``<!-- bench_replay.py:begin -->`` and
``<!-- bench_replay.py:end -->`` of ``--results`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sections import log, publish  # noqa: E402
from bench_topn import (  # noqa: E402
    cpu_model,
    fold_numbers,
    git_commit,
    load_folds,
    over_folds,
    pm,
    verdict,
    versions,
)

from bayesmf import PMF  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402
from bayesmf.replay import Replay, paired_difference, replay  # noqa: E402

ROOT = HERE.parent
RANK = 10
THRESHOLD = 4.0
GIBBS_QUICK = {"draws": 100, "tune": 50, "chains": 2}
#: (fit, policies run on it); random and oracle once, with the MAP fit
RUNS = (("als", ("greedy-map", "random", "oracle")), ("gibbs", ("greedy-mean", "lower", "thompson")))
POLICIES = ("greedy-map", "greedy-mean", "lower", "thompson", "random", "oracle")
BASELINE = "greedy-map"
EARLY_ROUND = 5  # the early column; round 1 when there are no more rounds than this


def base_timestamps(train: RatingsData, data_dir: str, fold: str) -> np.ndarray | None:
    """Timestamps of ``train``'s ratings from ``ml-100k/<fold>.base`` (matched by user and item), or None."""
    for root in (Path(data_dir) / "ml-100k", Path(data_dir)):
        path = root / f"{fold}.base"
        if path.is_file():
            raw = pd.read_csv(path, sep="\t", header=None, names=["user", "item", "rating", "timestamp"])
            times = raw.set_index(["user", "item"])["timestamp"]
            frame = train.to_dataframe()
            keys = pd.MultiIndex.from_arrays([frame["user"], frame["item"]])
            found = times.reindex(keys)
            if found.isna().any():
                raise RuntimeError(f"{path}: {int(found.isna().sum())} training ratings have no timestamp")
            return found.to_numpy(dtype=np.int64)
    return None


def fit_model(method: str, train: RatingsData, seed: int, quick: bool) -> tuple[Any, float]:
    start = time.perf_counter()
    spec = PMF(n_factors=RANK, priors="fixed")
    extra = GIBBS_QUICK if (quick and method == "gibbs") else {}
    fit = spec.fit(train, method=method, random_seed=seed, progressbar=False, **extra)
    return fit, time.perf_counter() - start


def run_fold(fold: str, train: RatingsData, test: RatingsData, args: argparse.Namespace,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Both fits, both variants: the replays' summaries, the paired differences and the verdict."""
    timestamp = base_timestamps(train, args.data_dir, fold)
    out: dict[str, Any] = {"fold": fold, "timestamps": timestamp is not None, "fit_s": {}, "replay_s": {},
                           "variants": {}}
    fits = {}
    for method, _ in RUNS:
        fits[method], out["fit_s"][method] = fit_model(method, train, args.seed, args.quick)
        log(f"{fold} {method}: fit {out['fit_s'][method]:.1f} s")
    out["diagnose"] = verdict(fits["gibbs"])
    for variant, kept in (("warm", None), ("cold", args.kept)):
        runs: list[Replay] = []
        for method, policies in RUNS:
            start = time.perf_counter()
            runs.append(replay(fits[method], test, rounds=args.rounds, threshold=THRESHOLD, policies=list(policies),
                               random_seed=args.seed, train_ratings_kept=kept,
                               timestamp=timestamp if kept is not None else None, progressbar=False))
            out["replay_s"][f"{variant} {method}"] = time.perf_counter() - start
            log(f"{fold} {variant} {method}: replay {out['replay_s'][f'{variant} {method}']:.1f} s")
        out["variants"][variant] = summarize(runs, args.rounds)
    return out


def cell(frame: pd.DataFrame, round_: int, column: str) -> tuple[float, float]:
    """``(value, se)`` of ``column`` (and ``column + "_se"``) in the row of round ``round_``."""
    row = frame[frame["round"] == round_]
    if len(row) != 1:
        raise RuntimeError(f"expected one row for round {round_}, found {len(row)}")
    return float(row[column].to_numpy()[0]), float(row[f"{column}_se"].to_numpy()[0])


def summarize(runs: Sequence[Replay], rounds: int) -> dict[str, Any]:
    """Per policy: hits at EARLY_ROUND and the last round, hit rate, regret, paired Δ hits vs greedy-map."""
    summary = pd.concat([r.summary for r in runs])
    per_user = pd.concat([r.per_user for r in runs])
    attrs = runs[0].summary.attrs
    if any(r.summary.attrs["n_users"] != attrs["n_users"] for r in runs):
        raise RuntimeError("the replays of the two fits did not keep the same users")
    early = early_round(rounds)
    pools = per_user[(per_user["policy"] == "oracle") & (per_user["round"] == 1)]
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for policy in POLICIES:
        mine = summary[summary["policy"] == policy]
        rec = {
            "hits_early": cell(mine, early, "cum_hits"),
            "hits": cell(mine, rounds, "cum_hits"),
            "hit_rate": cell(mine, rounds, "hit_rate"),
            "regret": cell(mine, rounds, "cum_regret"),
        }
        if policy != BASELINE:
            d = paired_difference(per_user, policy, BASELINE).rename(columns={"mean": "d", "se": "d_se"})
            rec["d_hits_early"], rec["d_hits"] = cell(d, early, "d"), cell(d, rounds, "d")
        rows[policy] = rec
    return {
        "policies": rows,
        "n_users": int(attrs["n_users"]),
        "n_skipped": int(attrs["n_users_skipped"]),
        "pool_median": float(pools["n_pool"].median()),
        "short_pools": float((pools["n_pool"] < rounds).mean()),
        "train_median": float(pools["n_train"].median()),
    }


# =======================================================================================
# the section
# =======================================================================================
COLUMNS = ("hits_early", "hits", "hit_rate", "regret", "d_hits_early", "d_hits")


def early_round(rounds: int) -> int:
    return EARLY_ROUND if rounds > EARLY_ROUND else 1


def header(rounds: int) -> list[str]:
    early = early_round(rounds)
    return [f"| policy | fit | hits@{early} | hits@{rounds} | hit rate@{rounds} | regret@{rounds} "
            f"| Δhits@{early} vs {BASELINE} | Δhits@{rounds} vs {BASELINE} |", "|---" * 8 + "|"]


FIT_OF = {p: m for m, ps in RUNS for p in ps}


def fold_table(fold: dict[str, Any], variant: str, rounds: int, fit_of: dict[str, str] = FIT_OF) -> list[str]:
    v = fold["variants"][variant]
    lines = [f"{fold['fold']}, {variant}: {v['n_users']} users ({v['n_skipped']} skipped), median pool "
             f"{v['pool_median']:.0f} items ({v['short_pools']:.0%} under {rounds}), median training ratings "
             f"used {v['train_median']:.0f}; Gibbs diagnose: {fold['diagnose']}", "", *header(rounds)]
    for policy in POLICIES:
        rec = v["policies"][policy]
        cells = [pm(rec[c], 3) if c in rec else "-" for c in COLUMNS]
        lines.append(f"| {policy} | {fit_of[policy]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def mean_table(folds: list[dict[str, Any]], variant: str, rounds: int, fit_of: dict[str, str] = FIT_OF) -> list[str]:
    verdicts = [f["diagnose"] for f in folds]
    lines = [f"**Mean over folds {', '.join(f['fold'] for f in folds)}, {variant}** (± se over folds; Gibbs "
             f"diagnose: {sum(v == 'pass' for v in verdicts)}/{len(verdicts)} pass)", "", *header(rounds)]
    for policy in POLICIES:
        recs = [f["variants"][variant]["policies"][policy] for f in folds]
        cells = [pm(over_folds([r[c][0] for r in recs]), 3) if c in recs[0] else "-" for c in COLUMNS]
        lines.append(f"| {policy} | {fit_of[policy]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def section_lines(folds: list[dict[str, Any]], args: argparse.Namespace, meta: dict[str, Any]) -> list[str]:
    gibbs = ("package defaults of `fit(method=\"gibbs\")`" if not args.quick
             else f"QUICK (smoke, not a measurement): {GIBBS_QUICK}")
    stamped = all(f["timestamps"] for f in folds)
    lines = [
        "## Replay bandit: what exploration buys on held-out ratings (`benchmarks/bench_replay.py`)",
        "",
        f"- date: {meta['date']}; machine: `{meta['machine']}`, {meta['cpu']}, {meta['nproc']} CPUs, "
        f"Python {platform.python_version()}",
        f"- command: `{meta['command']}`",
        f"- commit: {meta['commit']}; versions: {meta['versions']}",
        f"- load average (1/5/15 min) before {meta['load_before']}, after {meta['load_after']}; total "
        f"{meta['total_s'] / 60:.1f} min",
        f"- protocol: `bayesmf.replay`, dataset {args.dataset}, {args.rounds} rounds, one item per user per round from "
        f"the user's held-out items not yet shown, hit = held-out rating >= {THRESHOLD:g}; each observation folded "
        "into the user's conditional posterior (item side fixed at the fit's draws); users without a relevant "
        f"held-out item skipped (counted); a user whose pool runs out stops; seed {args.seed}; rank {RANK}",
        f"- fits on the full training fold, both `priors=\"fixed\"`: ALS (MAP) for `greedy-map`; Gibbs ({gibbs}) for "
        "`greedy-mean`, `lower` (empirical 5 % quantile over the draws) and `thompson`; `random` and `oracle` "
        "need no fit",
        f"- variants: `warm` (all training ratings), `cold` (each test user's first {args.kept} training ratings, "
        + ("by the timestamps of `u?.base`" if stamped else "a seeded random subset: no timestamps found") + ")",
        "- columns: cumulative hits at a round (mean ± se over users), hit rate over the rounds each user had, "
        "cumulative regret against the oracle, Δhits: paired per-user difference in cumulative hits against "
        f"`{BASELINE}` (± se over users; over folds in the mean tables)",
        "",
    ]
    for variant in ("warm", "cold"):
        lines += [f"### {variant.capitalize()} start", ""]
        if len(folds) > 1:
            lines += mean_table(folds, variant, args.rounds)
        for fold in folds:
            lines += fold_table(fold, variant, args.rounds)
    times = "; ".join(f"{f['fold']}: fit ALS {f['fit_s']['als']:.1f} s, Gibbs {f['fit_s']['gibbs']:.1f} s, replays "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in f["replay_s"].items()) for f in folds)
    return [*lines, f"Wall times: {times}."]


# =======================================================================================
# main
# =======================================================================================
def parse(argv: Sequence[str] | None, add: Callable[[argparse.ArgumentParser], None] | None = None,
          description: str | None = None) -> argparse.Namespace:
    """The command line; ``add`` puts another script's own options on the same parser."""
    parser = argparse.ArgumentParser(description=description or (__doc__ or "").splitlines()[0])
    if add is not None:
        add(parser)
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "tiny"])
    parser.add_argument("--folds", default=None, help="u1,...,u5 (default all five; u1 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per user (default 20; 5 with --quick)")
    parser.add_argument("--kept", type=int, default=3, help="training ratings kept in the cold variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also save every number here")
    parser.add_argument("--quick", action="store_true", help="u1, 5 rounds, short Gibbs chains: a smoke run")
    args = parser.parse_args(argv)
    args.fold_numbers = fold_numbers(args.folds or ("u1" if args.quick else "u1,u2,u3,u4,u5"))
    args.rounds = args.rounds if args.rounds is not None else (5 if args.quick else 20)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.kept < 0:
        parser.error(f"--kept must be >= 0, got {args.kept}")
    return args


def run_meta(argv: Sequence[str] | None, script: str, load_before: tuple[float, float, float],
             start: float) -> dict[str, Any]:
    """Date, machine, command, commit, versions, load averages and total time of a run that began at ``start``."""
    load_after = os.getloadavg()
    return {
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "machine": " ".join(platform.uname()),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "command": ".venv/bin/python benchmarks/" + " ".join(
            shlex.quote(a) for a in [script, *(sys.argv[1:] if argv is None else argv)]),
        "commit": git_commit(),
        "versions": versions(),
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in load_after),
        "total_s": time.perf_counter() - start,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)

    load_before = os.getloadavg()
    start = time.perf_counter()
    folds = [run_fold(fold, train, test, args, log)
             for fold, train, test in load_folds(args.dataset, args.fold_numbers, args.data_dir)]
    meta = run_meta(argv, Path(__file__).name, load_before, start)
    publish(args.results, Path(__file__).name, section_lines(folds, args, meta), write=not args.no_write)
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "folds": folds}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
