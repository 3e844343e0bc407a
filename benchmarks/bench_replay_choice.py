#!/usr/bin/env python
"""Replay bandit on held-out choices: greedy MAP, the choice posterior's rules and random (issue 16, item 3).

Usage::

    .venv/bin/python benchmarks/bench_replay_choice.py [--folds u1,u2,u3,u4,u5] [--rounds 20]
        [--reward liked] [--negatives 100] [--negative-confidence 1] [--thin-draws N] [--kept 3]
        [--seed 0] [--data-dir ../shared/data]
        [--results benchmarks/RESULTS.md] [--no-write] [--json PATH] [--quick]

Protocol (`bayesmf.replay_choice`): on each ML-100K fold, the choice model is fitted on
``as_implicit(train, value="one")`` (every rated pair a choice). Each test user's pool is
their held-out items plus ``--negatives`` items they neither rated in training nor hold out
(drawn uniformly, seeded). Each round a policy shows ONE pool item not yet shown; a hit is a
held-out item (``--reward chosen``) or a held-out item rated >= 4 (``--reward liked``, the
default; users without one are skipped and counted). The user's response is folded into
their conditional posterior under the implicit model (a held-out item becomes a choice of
confidence 1 + alpha; an item not chosen stays an unobserved pair: ``negative_confidence=1``,
or, with ``--negative-confidence w``, a refusal of weight ``w``). ``--thin-draws N`` replays
the Gibbs policies from ``fit.thin(draws=N)`` (the verdict is the whole fit's).

Fits (rank 10, both ``PMF(likelihood="implicit", priors="fixed")`` so that only the inference
differs): MAP (``method="map"``, the dense PyMC model) for ``greedy-map``; Gibbs (package
default run lengths; its ``diagnose()`` verdict is reported: quote no figure of a FAIL) for
``greedy-mean``, ``lower`` (5 % quantile of the choice score over the draws) and
``thompson``; ``random`` and ``oracle`` need no fit. Variants ``warm`` (all training
choices) and ``cold`` (each test user's first ``--kept`` by the timestamps of ``u?.base``).
Tables as ``bench_replay.py``'s; the section is ``<!-- bench_replay_choice.py:begin -->``.

``--quick``: fold u1, 5 rounds, 20 negatives, Gibbs ``draws=100, tune=50, chains=2``: a
smoke run, not a measurement; ``--dataset tiny`` uses a few hundred simulated ratings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_replay as rb  # noqa: E402
from _sections import log, publish  # noqa: E402
from bench_topn import load_folds, verdict  # noqa: E402

from bayesmf import PMF, as_implicit  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402
from bayesmf.replay import Replay  # noqa: E402
from bayesmf.replay_choice import replay_choice  # noqa: E402

#: (fit, policies run on it); random and oracle once, with the MAP fit
RUNS = (("map", ("greedy-map", "random", "oracle")), ("gibbs", ("greedy-mean", "lower", "thompson")))
FIT_OF = {p: m for m, ps in RUNS for p in ps}


def fit_choice(method: str, train: RatingsData, seed: int, quick: bool) -> tuple[Any, float]:
    start = time.perf_counter()
    spec = PMF(n_factors=rb.RANK, likelihood="implicit", priors="fixed")
    extra = rb.GIBBS_QUICK if (quick and method == "gibbs") else {}
    fit = spec.fit(as_implicit(train, value="one"), method=method, random_seed=seed, progressbar=False, **extra)
    return fit, time.perf_counter() - start


def run_fold(fold: str, train: RatingsData, test: RatingsData, args: argparse.Namespace,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Both fits, both variants: the replays' summaries, the paired differences and the verdict."""
    timestamp = rb.base_timestamps(train, args.data_dir, fold)
    out: dict[str, Any] = {"fold": fold, "timestamps": timestamp is not None, "fit_s": {}, "replay_s": {},
                           "variants": {}}
    fits = {}
    for method, _ in RUNS:
        fits[method], out["fit_s"][method] = fit_choice(method, train, args.seed, args.quick)
        log(f"{fold} {method}: fit {out['fit_s'][method]:.1f} s")
    out["diagnose"] = verdict(fits["gibbs"])
    out["gibbs_draws"] = fits["gibbs"].n_draws
    if args.thin_draws is not None:
        fits["gibbs"] = fits["gibbs"].thin(draws=args.thin_draws)
    out["replay_draws"] = fits["gibbs"].n_draws
    for variant, kept in (("warm", None), ("cold", args.kept)):
        runs: list[Replay] = []
        for method, policies in RUNS:
            start = time.perf_counter()
            runs.append(replay_choice(fits[method], test, rounds=args.rounds, reward=args.reward,
                                      threshold=rb.THRESHOLD, n_negatives=args.negatives, policies=list(policies),
                                      random_seed=args.seed, train_choices_kept=kept,
                                      timestamp=timestamp if kept is not None else None, progressbar=False,
                                      negative_confidence=args.negative_confidence))
            out["replay_s"][f"{variant} {method}"] = time.perf_counter() - start
            log(f"{fold} {variant} {method}: replay {out['replay_s'][f'{variant} {method}']:.1f} s")
        out["variants"][variant] = rb.summarize(runs, args.rounds)
    return out


def section_lines(folds: list[dict[str, Any]], args: argparse.Namespace, meta: dict[str, Any]) -> list[str]:
    gibbs = ("package defaults of `fit(method=\"gibbs\")`" if not args.quick
             else f"QUICK (smoke, not a measurement): {rb.GIBBS_QUICK}")
    stamped = all(f["timestamps"] for f in folds)
    hit = "a held-out item" if args.reward == "chosen" else f"a held-out item rated >= {rb.THRESHOLD:g}"
    lines = [
        "## Replay bandit on the choice model: what exploration buys (`benchmarks/bench_replay_choice.py`)",
        "",
        f"- date: {meta['date']}; machine: `{meta['machine']}`, {meta['cpu']}, {meta['nproc']} CPUs",
        f"- command: `{meta['command']}`",
        f"- commit: {meta['commit']}; versions: {meta['versions']}",
        f"- load average (1/5/15 min) before {meta['load_before']}, after {meta['load_after']}; total "
        f"{meta['total_s'] / 60:.1f} min",
        f"- protocol: `bayesmf.replay_choice`, dataset {args.dataset}, {args.rounds} rounds; pool = the user's "
        f"held-out items + {args.negatives} sampled items they did not rate; hit = {hit}; each response folded "
        "into the user's conditional under the implicit model (a held-out item becomes a choice, an item not "
        + ("chosen stays an unobserved pair" if args.negative_confidence == 1.0
           else f"chosen becomes a refusal of weight {args.negative_confidence:g}: `negative_confidence`")
        + f"); seed {args.seed}; rank {rb.RANK}",
        "- fits on `as_implicit(train)`, both `PMF(likelihood=\"implicit\", priors=\"fixed\")`: MAP for "
        f"`greedy-map`; Gibbs ({gibbs}) for `greedy-mean`, `lower` (5 % quantile of the choice score over the "
        "draws) and `thompson`"
        + ("" if args.thin_draws is None else
           f", replayed from `fit.thin(draws={args.thin_draws})` (draws per chain, fit / replayed: "
           + ", ".join(f"{f['fold']} {f['gibbs_draws']} / {f['replay_draws']}" for f in folds) + ")"),
        f"- variants: `warm` (all training choices), `cold` (each test user's first {args.kept}, "
        + ("by the timestamps of `u?.base`" if stamped else "a seeded random subset: no timestamps found") + ")",
        "- columns as in the rating replay's section (Δhits: paired per-user difference against `greedy-map`)",
        "",
    ]
    for variant in ("warm", "cold"):
        lines += [f"### {variant.capitalize()} start (choice model)", ""]
        if len(folds) > 1:
            lines += rb.mean_table(folds, variant, args.rounds, FIT_OF)
        for fold in folds:
            lines += rb.fold_table(fold, variant, args.rounds, FIT_OF)
    times = "; ".join(f"{f['fold']}: fit MAP {f['fit_s']['map']:.1f} s, Gibbs {f['fit_s']['gibbs']:.1f} s, replays "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in f["replay_s"].items()) for f in folds)
    return [*lines, f"Wall times: {times}."]


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reward", default="liked", choices=["liked", "chosen"])
    parser.add_argument("--negatives", type=int, default=None, help="sampled items per pool (default 100; 20 quick)")
    parser.add_argument("--negative-confidence", type=float, default=1.0,
                        help="weight of a shown item the user did not choose (1: an unobserved pair, as before)")
    parser.add_argument("--thin-draws", type=int, default=None,
                        help="replay the Gibbs policies from fit.thin(draws=N) (default: every draw)")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = rb.parse(argv, _options, (__doc__ or "").splitlines()[0])
    args.negatives = args.negatives if args.negatives is not None else (20 if args.quick else 100)
    if args.negatives < 0:
        raise SystemExit(f"--negatives must be >= 0, got {args.negatives}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    load_before = os.getloadavg()
    start = time.perf_counter()
    folds = [run_fold(fold, train, test, args, log)
             for fold, train, test in load_folds(args.dataset, args.fold_numbers, args.data_dir)]
    meta = rb.run_meta(argv, Path(__file__).name, load_before, start)
    publish(args.results, Path(__file__).name, section_lines(folds, args, meta), write=not args.no_write)
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "folds": folds}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
