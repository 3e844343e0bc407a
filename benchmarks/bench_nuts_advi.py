#!/usr/bin/env python
"""NUTS (nutpie) and ADVI on ML-100K: wall time, convergence, test RMSE, interval width vs Gibbs.

Usage::

    .venv/bin/python benchmarks/bench_nuts_advi.py [--split u1] [--rank 10] [--seed 0]
        [--chains 2] [--tune 200] [--draws 200] [--advi-n 20000] [--pairs 100]
        [--skip-gibbs] [--data-dir /work/shared/data]
        [--results benchmarks/RESULTS.md] [--no-write]

Fits ``PMF(n_factors=rank)`` (hierarchical priors, biases: the package defaults) on the
training part of the split by

- ``method="nuts"`` with nutpie, ``chains`` x (``tune`` + ``draws``), started from the MAP
  (`bayesmf.inference.nuts.map_start`); the wall time includes the MAP start and nutpie's
  compilation of the model (shown separately);
- ``method="advi"`` (mean-field, route defaults: adam 0.01, up to ``--advi-n`` iterations,
  1000 draws);
- ``method="gibbs"`` (route defaults), as the reference for interval widths;

then reports, for each: wall time; test RMSE of the posterior-mean expected rating
(unclipped and clipped to the scale); width and coverage of the 90 % posterior-predictive
intervals of the test ratings (``result.predict(test, prob=0.9)``); and, through
`bayesmf.diagnostics.diagnose` (test pairs passed, ``--pairs`` of each kind), the worst
R-hat and the smallest bulk/tail ESS over the identified quantities, and for the
predictions alone. Targets: NUTS <= 3 min, test RMSE <= 0.90.

Writes (or replaces) the section between ``<!-- bench_nuts_advi.py:begin -->`` and
``<!-- bench_nuts_advi.py:end -->`` of ``--results``; the rest of that file is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import os
import platform
import shlex
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _sections import write_section

from bayesmf import PMF
from bayesmf.datasets import load_movielens
from bayesmf.diagnostics import diagnose

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench_nuts_advi.py:begin -->", "<!-- bench_nuts_advi.py:end -->"
WALL_TARGET, RMSE_TARGET = 180.0, 0.90


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def evaluate(name: str, fit, test, args, wall: float) -> dict:
    expected = fit.predict(test, kind="expected", clip=False, progressbar=False)
    predictive = fit.predict(test, prob=0.9, progressbar=False)
    y = np.asarray(test.rating)
    width = predictive["upper"].to_numpy() - predictive["lower"].to_numpy()
    inside = (y >= predictive["lower"].to_numpy()) & (y <= predictive["upper"].to_numpy())
    row = {
        "name": name,
        "wall": wall,
        "rmse": rmse(expected["mean"].to_numpy(), y),
        "rmse_clipped": rmse(np.clip(expected["mean"].to_numpy(), *test.scale), y),
        "width90": float(width.mean()),
        "cover90": float(inside.mean()),
        "sigma": float(fit.posterior["sigma"].mean()) if "sigma" in fit.posterior else float("nan"),
        "info": fit.info,
    }
    if fit.n_chains * fit.n_draws > 1:
        diagnosis = diagnose(fit, n_pairs=args.pairs, test=test, seed=args.seed, warn=False)
        table = diagnosis.table
        preds = table[table["quantity"].isin(["pred_train", "pred_test"])]
        row.update(
            rhat_max=float(table["r_hat"].max()),
            ess_bulk_min=float(table["ess_bulk"].min()),
            ess_tail_min=float(table["ess_tail"].min()),
            pred_rhat_max=float(preds["r_hat"].max()),
            pred_rhat_median=float(preds["r_hat"].median()),
            pred_ess_bulk_min=float(preds["ess_bulk"].min()),
            pred_ess_bulk_median=float(preds["ess_bulk"].median()),
            worst=str(table["r_hat"].idxmax()) if table["r_hat"].notna().any() else "-",
            summary=diagnosis.summary,
            sampler=diagnosis.sampler,
            elbo=diagnosis.elbo,
            ok=diagnosis.ok,
        )
    print(name, {k: v for k, v in row.items() if k not in ("info", "summary")}, flush=True)
    return row


class LoadMonitor:
    """Sample the 1-minute load average every ``period`` seconds in a background thread."""

    def __init__(self, period: float = 15.0) -> None:
        self.period, self.samples = period, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> tuple[float, float]:
        """Stop sampling; return (mean, max) of the samples."""
        self._stop.set()
        self._thread.join()
        return float(np.mean(self.samples)), float(np.max(self.samples))


def timed_fit(name: str, spec, train, test, args, **kwargs) -> dict:
    monitor = LoadMonitor()
    start = time.perf_counter()
    fit = spec.fit(train, random_seed=args.seed, progressbar=False, **kwargs)
    wall = time.perf_counter() - start
    load = monitor.stop()
    row = evaluate(name, fit, test, args, wall)
    row["load"] = load
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="u1")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--tune", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--advi-n", type=int, default=20000)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--skip-gibbs", action="store_true")
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", "/work/shared/data"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    train, test = load_movielens("ml-100k", split=args.split, data_dir=args.data_dir, download=False)
    spec = PMF(n_factors=args.rank)
    rows = []

    rows.append(timed_fit(
        "NUTS (nutpie)", spec, train, test, args, method="nuts", draws=args.draws, tune=args.tune,
        chains=args.chains, nuts_sampler="nutpie",
    ))
    rows.append(timed_fit("ADVI (mean-field)", spec, train, test, args, method="advi", n=args.advi_n))
    if not args.skip_gibbs:
        rows.append(timed_fit("Gibbs (reference)", spec, train, test, args, method="gibbs"))

    load_after = os.getloadavg()
    text = render(args, rows, load_before, load_after, train, test)
    print(text)
    if not args.no_write:
        write_section(Path(args.results), text, BEGIN, END)
    return 0


def _version(package: str) -> str:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return "-"


def _fmt(value, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, spec)


def render(args, rows, load_before, load_after, train, test) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "benchmarks/bench_nuts_advi.py " + shlex.join(sys.argv[1:] if argv_is_cli() else [])
    lines = [
        BEGIN,
        "## NUTS and ADVI on ML-100K (`benchmarks/bench_nuts_advi.py`)",
        "",
        f"- date: {now}; machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}; "
        f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}"
        + (
            " (other jobs shared the cores, so wall times are inflated)"
            if max(load_before[0], load_after[0]) > (os.cpu_count() or 1)
            else " (the load during each fit is in the table)"
        ),
        f"- command: `.venv/bin/python {command.strip()}`",
        f"- data: ML-100K split {args.split}: {train.n_ratings} train / {test.n_ratings} test ratings; "
        f"`PMF(n_factors={args.rank})` (hierarchical priors, biases)",
        f"- versions: bayesmf {_version('bayesmf')}, pymc {_version('pymc')}, nutpie {_version('nutpie')}, "
        f"pytensor {_version('pytensor')}, arviz {_version('arviz')}",
        f"- NUTS: {args.chains} chains x ({args.tune} tune + {args.draws} draws), MAP start; ADVI: up to "
        f"{args.advi_n} iterations; diagnostics on {args.pairs} train + {args.pairs} test predicted ratings "
        "and the identified scalars (`bayesmf.diagnostics`)",
        "",
        "| route | wall (s) | load avg during fit (mean / max) | test RMSE (clipped) | 90% PI width | "
        "90% PI coverage | sigma | R-hat max (pred median) | bulk ESS min (pred median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['wall']:.0f} | {row['load'][0]:.1f} / {row['load'][1]:.1f} | "
            f"{row['rmse']:.3f} ({row['rmse_clipped']:.3f}) | "
            f"{row['width90']:.2f} | {row['cover90']:.3f} | {row['sigma']:.3f} | "
            f"{_fmt(row.get('rhat_max'))} ({_fmt(row.get('pred_rhat_median'))}) | "
            f"{_fmt(row.get('ess_bulk_min'), '.0f')} ({_fmt(row.get('pred_ess_bulk_median'), '.0f')}) |"
        )
    nuts = rows[0]
    info = nuts["info"]
    lines += [
        "",
        f"NUTS details: MAP start {info.get('init_seconds', float('nan')):.1f} s, the rest compile + sampling; "
        f"sampler stats {nuts.get('sampler')}; worst R-hat at `{nuts.get('worst')}`. "
        f"Targets: wall <= {WALL_TARGET:.0f} s -> {'met' if nuts['wall'] <= WALL_TARGET else 'NOT met'}; "
        f"test RMSE <= {RMSE_TARGET} -> {'met' if nuts['rmse'] <= RMSE_TARGET else 'NOT met'}.",
    ]
    advi = rows[1]
    elbo = advi.get("elbo") or {}
    lines += [
        "",
        f"ADVI details: {advi['info'].get('iterations')} iterations, ELBO flat at the end: "
        f"{elbo.get('flat')} (relative change {_fmt(elbo.get('relative_change'), '.2g')}). "
        "R-hat/ESS of ADVI draws only measure Monte Carlo error of draws from the approximation.",
    ]
    if len(rows) > 2:
        gibbs = rows[2]
        lines.append(
            f"Interval width relative to Gibbs: NUTS {nuts['width90'] / gibbs['width90']:.3f}, "
            f"ADVI {advi['width90'] / gibbs['width90']:.3f}."
        )
    lines += ["", "Per-quantity summary of the NUTS run (`Diagnosis.summary`):", "", "```"]
    summary = nuts.get("summary")
    if summary is not None:
        lines.append(summary.to_string(float_format=lambda x: f"{x:.3g}"))
    lines += ["```", END]
    return "\n".join(lines)


def argv_is_cli() -> bool:
    return bool(sys.argv) and sys.argv[0].endswith("bench_nuts_advi.py")


if __name__ == "__main__":
    raise SystemExit(main())
