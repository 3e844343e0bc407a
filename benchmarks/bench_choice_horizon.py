#!/usr/bin/env python
"""P(chosen) with a horizon: reliability of the choice model's probabilities on held-out choices.

Usage::

    .venv/bin/python benchmarks/bench_choice_horizon.py [--splits u1,u2,u3,u4,u5] [--seed 0]
        [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Per ML-100K split (or ml-latest-small fold ``k1``-``k5``, those of ``bench_topn.py``): the choice model ``PMF(n_factors=10, likelihood="implicit")`` by Gibbs
(package defaults) on ``as_implicit(train)``; `learn_choice_calibration` on the same
training choices (20 % held out, a second fit); then the reliability (`choice_reliability`'s,
all four from one scoring pass) on the test pairs (every test pair a held-out choice, every other pair of a test user not chosen in
training a non-choice) of four probabilities: P(chosen) as fitted, the calibrator's own
level, P(among the next n) with n = the user's number of held-out choices (the horizon)
from P(chosen), and the same from the calibrated shape. ``--quick``: simulated choices,
short fits (checks the script; writes nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _sections import log, provenance, publish  # noqa: E402

from bayesmf import PMF, as_implicit, load_movielens, simulate, train_test_split  # noqa: E402
from bayesmf.choice_calibration import held_out_choices, horizon_probabilities, reliability_table  # noqa: E402
from bayesmf.choice_horizon import learn_choice_calibration  # noqa: E402
from bayesmf.split import kfold  # noqa: E402

VARIANTS = (
    ("P(chosen) as fitted", False, None),
    ("calibrated (held-out share's level)", True, None),
    ("P(among next n), n = user's held-out choices", False, "held-out"),
    ("calibrated shape, P(among next n)", True, "held-out"),
)


def rows(name: str, train, test, seed: int, fit_kwargs: dict) -> list[str]:  # type: ignore[no-untyped-def]
    """The fits and one table row per variant."""
    model = PMF(n_factors=10, likelihood="implicit")
    start = time.perf_counter()
    fit = model.fit(as_implicit(train), random_seed=seed, progressbar=False, **fit_kwargs)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    cal = learn_choice_calibration(model, as_implicit(train), 0.2, random_seed=seed + 1, progressbar=False, **fit_kwargs)
    cal_s = time.perf_counter() - start
    verdicts = "pass" if all("All checks passed" in str(v) for v in (fit.info.get("verdict"), cal.info["verdict"])) else "FAIL"
    rules = [horizon_probabilities(cal if calibrated else None, horizon) for _, calibrated, horizon in VARIANTS]
    variants: list[list[np.ndarray]] = [[] for _ in VARIANTS]

    def every_variant(p: np.ndarray, w: np.ndarray, n_held_out: int) -> np.ndarray:
        """One scoring pass: each variant's probabilities of this user, by `choice_reliability`'s rules."""
        for rule, parts in zip(rules, variants, strict=True):
            parts.append(p if rule is None else rule(p, w, n_held_out))
        return p

    _, y, w, _ = held_out_choices(fit, test, per_user=every_variant)
    out = []
    for (label, _, _), parts in zip(VARIANTS, variants, strict=True):
        r = reliability_table(np.concatenate(parts), y, w)
        t = r.table
        worst = ((t["observed"] - t["mean_predicted"]).abs() * t["weight"]).idxmax()  # the most ECE
        out.append(
            f"| {name} | {label} | {r.ece:.4f} | {r.brier:.5f} | {t.loc[worst, 'mean_predicted']:.3f} vs "
            f"{t.loc[worst, 'observed']:.3f} (n {int(t.loc[worst, 'n'])}) | {fit_s:.0f} + {cal_s:.0f} | {verdicts} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the fits; print (and write) the section."""
    start, load_before = time.perf_counter(), os.getloadavg()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="u1,u2,u3,u4,u5",
                        help="ML-100K's u1-u5, or k1-k5: ml-latest-small's folds of bench_topn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="simulated choices, short fits: checks the script only")
    args = parser.parse_args(argv)
    table = [
        "| split | probability judged | ECE | Brier | bin adding most to ECE: predicted vs observed | fit s (model + calibration) | diagnose |",
        "|---|---|---|---|---|---|---|",
    ]
    if args.quick:
        data = simulate(n_users=60, n_items=50, n_factors=2, density=0.3, seed=0).data
        split = train_test_split(data, 0.2, seed=0)
        table += rows("simulated", split.train, split.test, args.seed, {"draws": 100, "tune": 50, "chains": 2})
    else:
        for name in args.splits.split(","):
            log(f"{name}: the choice fit and the calibration fit")
            if name.startswith("k"):  # ml-latest-small: bench_topn's folds, kfold(data, 5, seed=0)
                data = load_movielens("ml-latest-small")
                train, test = list(kfold(data, n_splits=5, seed=0))[int(name[1:]) - 1]
                name = f"ml-latest-small {name}"
            else:
                train, test = load_movielens("ml-100k", split=name, data_dir=args.data_dir, download=False)
            table += rows(name, train, test, args.seed, {})
    lines = ["## P(chosen) with a horizon (`benchmarks/bench_choice_horizon.py`)", ""]
    lines += provenance("bench_choice_horizon.py", argv, load_before, start)
    lines += [
        "", "ML-100K (ml-latest-small: `kfold(data, 5, seed=0)`), `PMF(n_factors=10, likelihood=\"implicit\")` by Gibbs (defaults: run until converged); "
        "calibration: `learn_choice_calibration(model, as_implicit(train), 0.2)` (a second fit on 80 % of the "
        "training choices, isotonic map on the other 20 %); reliability: `choice_reliability` on the test pairs, "
        "10 equal-width bins, every non-chosen pair of a test user a non-choice. \"n = user's held-out choices\" "
        "states the horizon the test holds; it is not learned.", "", *table,
    ]
    publish(args.results, "bench_choice_horizon.py", lines, write=not (args.no_write or args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
