#!/usr/bin/env python
"""Which identified quantity sets the stopping rule's stopping point: the verdict on prefixes of one long run.

Usage::

    .venv/bin/python benchmarks/bench_slowest.py [--split u1] [--draws 3845] [--seed 0]
        [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Fits the default ``PMF(n_factors=10)`` by Gibbs for a fixed ``--draws`` per chain (4 chains,
burn-in 200, thin 1, every factor draw kept: ``factor_draws=None``), then judges the first
n draws of every chain, for n at the stopping rule's checkpoints (100 x 1.5^k), on the
quantities ``diagnose()`` monitors (`identified_quantities`, R-hat <= 1.01, bulk and tail ESS
>= 400). The first table lists, per checkpoint, how many quantities fail and the worst of
them; the stopping rule on this seed would stop at the first checkpoint with none failing.
The second table takes the users' effect spread (``sd_user_effect``: the sd over users of
:math:`b_i + U_i \\cdot \\bar V`) apart over the whole run: the spread of the biases, of the
factors' part :math:`U_i \\cdot \\bar V`, the norm of :math:`\\bar V` and the sd of the users'
mean effects alone; with each its R-hat, bulk ESS and the correlation of its 50-draw block
means with the spread's (which slow components move together). ``--quick``: a small
simulated set and a short run (checks the script; writes nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _sections import log, provenance, publish  # noqa: E402

from bayesmf import PMF, load_movielens, simulate  # noqa: E402
from bayesmf.convergence_stats import rhat_ess  # noqa: E402
from bayesmf.diagnostics import summary_table  # noqa: E402
from bayesmf.identified import identified_quantities  # noqa: E402
from bayesmf.inference.gibbs.converge import StoppingRule  # noqa: E402

BLOCK = 50


def block_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the within-chain-centred means of ``BLOCK``-draw blocks of two (chain, draw) traces."""
    n = a.shape[1] // BLOCK * BLOCK

    def blocks(x: np.ndarray) -> np.ndarray:
        m = x[:, :n].reshape(x.shape[0], -1, BLOCK).mean(axis=2)
        return m - m.mean(axis=1, keepdims=True)

    x, y = blocks(a), blocks(b)
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def prefix_verdicts(tree, draws: int):
    """Per checkpoint of the rule: draws per chain, the verdict's table of the first n draws, each row's smaller ESS, the failing rows."""
    for n in StoppingRule(max_draws=draws).checkpoints():
        table = summary_table(tree.isel(draw=slice(0, n)))
        ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
        yield n, table, ess, (table["r_hat"] > 1.01) | (ess < 400)


def prefix_rows(tree, draws: int) -> list[str]:
    """Markdown rows: per checkpoint, the failing quantities and the worst three of them."""
    rows = ["| draws per chain | failing of monitored | worst R-hat | smallest ESS | failing (R-hat, smallest ESS) |", "|---|---|---|---|---|"]
    for n, table, ess, failing in prefix_verdicts(tree, draws):
        bad = table[failing].copy()
        bad["ess"] = ess[bad.index]
        worst = bad.sort_values("r_hat", ascending=False).head(3)
        names = ", ".join(f"`{label}` ({r:.3f}, {e:.0f})" for label, r, e in zip(worst.index, worst["r_hat"], worst["ess"], strict=True))
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        rows.append(f"| {n} | {len(bad)} of {len(table)} | {table['r_hat'].max():.4f} | {ess.min():.0f} | {names or '-'}{more} |")
    return rows


def spread_rows(posterior) -> list[str]:
    """Markdown rows: the parts of the users' effect spread, with R-hat, bulk ESS and block correlation."""
    U, V = posterior["U"].values, posterior["V"].values
    b = posterior["user_bias"].values
    vbar = V.mean(axis=2)
    part = np.einsum("cdik,cdk->cdi", U, vbar)
    effect = b + part
    traces = {
        "`sd_user_effect`: sd over users of b_i + U_i . Vbar": effect.std(axis=2),
        "sd over users of b_i": b.std(axis=2),
        "sd over users of U_i . Vbar": part.std(axis=2),
        "norm of Vbar": np.linalg.norm(vbar, axis=2),
        "sigma": posterior["sigma"].values,
    }
    spread = traces["`sd_user_effect`: sd over users of b_i + U_i . Vbar"]
    rows = ["| quantity | mean | R-hat | bulk ESS | block-mean correlation with the spread |", "|---|---|---|---|---|"]
    for name, trace in traces.items():
        r, bulk, _ = rhat_ess(trace[None], 0.9)
        rows.append(f"| {name} | {trace.mean():.4f} | {r[0]:.3f} | {bulk[0]:.0f} | {block_corr(spread, trace):+.2f} |")
    each_r, each_bulk, each_tail = rhat_ess(np.moveaxis(effect - effect.mean(axis=2, keepdims=True), 2, 0), 0.9)
    each = np.minimum(each_bulk, each_tail)
    rows.append(
        f"| each user's own effect (centred), {effect.shape[2]} users | - | largest {np.nanmax(each_r):.3f} | "
        f"smallest {np.nanmin(each):.0f}, median {np.nanmedian(each):.0f} | - |"
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the fit and the prefix verdicts; print (and write) the section."""
    start, load_before = time.perf_counter(), os.getloadavg()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="u1")
    parser.add_argument("--draws", type=int, default=3845)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR"))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small simulated data, a short run: checks the script only")
    args = parser.parse_args(argv)
    if args.quick:
        train, args.draws, what = simulate(n_users=60, n_items=40, n_factors=2, density=0.3, seed=0).data, 160, "simulated"
    else:
        train = load_movielens("ml-100k", split=args.split, data_dir=args.data_dir, download=False)[0]
        what = f"ML-100K {args.split}"
    log(f"{what}: 4 chains x (200 + {args.draws}) sweeps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = PMF(n_factors=10).fit(
            train, method="gibbs", draws=args.draws, thin=1, random_seed=args.seed, progressbar=False, factor_draws=None
        )
    log("verdicts on prefixes")
    tree = identified_quantities(fit)
    body = [
        "",
        f"{what}, `PMF(n_factors=10)` (the default), seed {args.seed}: the verdict of the first n draws of every chain",
        "",
        *prefix_rows(tree, args.draws),
        "",
        f"The users' effect spread taken apart, over all {args.draws} draws of every chain (correlations of the "
        f"within-chain-centred means of {BLOCK}-draw blocks)",
        "",
        *spread_rows(fit.idata["posterior"]),
    ]
    lines = ["## Which quantity sets the stopping point (`benchmarks/bench_slowest.py`)", ""]
    lines += provenance("bench_slowest.py", argv, load_before, start)
    lines += body
    publish(args.results, "bench_slowest.py", lines, write=not (args.no_write or args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
