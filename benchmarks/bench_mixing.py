#!/usr/bin/env python
"""Where the Gibbs sampler mixes slowly: ESS per draw of held-out predictions, by prior.

Usage::

    .venv/bin/python benchmarks/bench_mixing.py [--datasets u1,small] [--seeds 2]
        [--draws 1000] [--pairs 400] [--variants default,fixed,...]
        [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Issue 17's time to a passing verdict is set by a few slow quantities, not by the typical one:
on ML-100K u1 most held-out predictions mix almost independently from sweep to sweep, and a
few mix twenty times slower. This script measures that tail, so that a change of sampler or
prior can be judged on it. Each fit is a run of fixed length (4 chains, 200 burn-in sweeps,
``--draws`` sweeps kept, thin 1, every factor draw kept) with the sampler's defaults otherwise,
and is summarized by:

- the bulk-and-tail ESS (the smaller of the two) of the predicted mean of ``--pairs`` held-out
  pairs drawn at random (seed 123) from the test set, divided by the number of draws: its 1st
  and 5th percentiles, its median, and how many pairs would fail ESS >= 400 at this length;
- the largest R-hat over those pairs;
- the ESS per draw of the noise sd and of the factor scale (where the model learns them);
- the test RMSE of the posterior mean (clipped to the rating scale), so that a prior that mixes
  well is not read as a better model.

Variants (``--variants``): ``default`` (`PMF()`: rank 10, since 2026-12-03 the per-side prior
with one scale per factor; the RESULTS section of 2026-12-02 was measured when it was the
hierarchical shared scale),
``fixed`` (``priors="fixed"``: the PMF paper's fixed sds, stronger shrinkage),
``rank5`` (``n_factors=5``), ``per-factor`` (``per_factor_scales=True``), ``pin-noise`` and
``pin-scale`` (the default with the noise sd fixed at its posterior mean on u1, 0.778, by
``PMF(sigma=...)``, or the factor variance held there by a very tight inverse-gamma hyperprior),
``fixed-noise`` (the scales learned, the noise sd fixed at the data scale's default
(high - low) / 4.5: 0.89 on 1-5 stars, 1.0 on 0.5-5), and ``no-overrelax`` (``overrelaxation=0``). No wall time is reported: ESS per draw does not depend
on the machine's load.

Datasets: ``u1`` (ML-100K canonical fold; needs ``BAYESMF_DATA_DIR`` or a download) and
``small`` (the bundled ml-latest-small, 80/20 random split, seed 0).

Writes (or replaces) the section between ``<!-- bench_mixing.py:begin -->`` and
``<!-- bench_mixing.py:end -->`` of ``--results``; ``--quick`` (tiny simulated data, 2 variants)
checks the script and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _sections import log, provenance, publish
from arviz_stats.base import array_stats

from bayesmf import PMF, load_movielens, train_test_split
from bayesmf.datasets import simulate
from bayesmf.exceptions import ConvergenceWarning
from bayesmf.latent import latent_scores_per_draw

HERE = Path(__file__).resolve().parent
ESS_TARGET = 400
PAIR_SEED = 123

#: the default's posterior means on ML-100K u1: sigma 0.778, sigma_factor 0.411 (variance 0.169)
_PIN_NOISE_SD, _PIN_FACTOR_VAR = 0.778, 0.169
_TIGHT = 1e5  # inverse-gamma shape: sd of the pinned variance about 0.3 % of its value
#: ``sigma`` of the "fixed-noise" variant: the data scale's default noise sd (`PMF.noise_sd`)
SCALE_DEFAULT = "scale default"

#: variant -> (PMF options, fit options)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "fixed": ({"priors": "fixed"}, {}),
    "rank5": ({"n_factors": 5}, {}),
    "per-factor": ({"per_factor_scales": True}, {}),
    "pin-noise": ({"sigma": _PIN_NOISE_SD}, {}),
    "fixed-noise": ({"sigma": SCALE_DEFAULT}, {}),
    "pin-scale": ({"hyperpriors": {"factor_var": (_TIGHT, _TIGHT * _PIN_FACTOR_VAR)}}, {}),
    "no-overrelax": ({}, {"overrelaxation": 0.0}),
}


def load(dataset: str, quick: bool):
    """``(train, test)`` of a dataset name."""
    if quick:
        data = simulate(n_users=60, n_items=40, n_factors=2, density=0.3, seed=0).data
        return train_test_split(data, test_size=0.2, seed=0)
    if dataset == "small":
        return train_test_split(load_movielens("ml-latest-small"), test_size=0.2, seed=0)
    return load_movielens("ml-100k", split=dataset, download=False)


def ess_min(draws: np.ndarray) -> np.ndarray:
    """The smaller of bulk and tail ESS of ``(..., chain, draw)`` arrays."""
    bulk = array_stats.ess(draws, chain_axis=-2, draw_axis=-1, method="bulk")
    tail = array_stats.ess(draws, chain_axis=-2, draw_axis=-1, method="tail", prob=0.94)
    return np.minimum(bulk, tail)


def measure(variant: str, train, test, seed: int, draws: int, tune: int, n_pairs: int) -> dict:
    """Fit one variant at one seed and summarize the mixing of its held-out predictions."""
    options, fit_options = VARIANTS[variant]
    if options.get("sigma") == SCALE_DEFAULT:  # (high - low) / 4.5: 0.89 on 1-5 stars, 1.0 on 0.5-5
        options = options | {"sigma": PMF(priors="fixed").noise_sd(train.scale)}
    spec = PMF(**{"n_factors": 10, **options})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = spec.fit(train, method="gibbs", draws=draws, tune=tune, thin=1, factor_draws=draws,
                       random_seed=seed, progressbar=False, **fit_options)
    rng = np.random.default_rng(PAIR_SEED)
    rows = rng.choice(test.n_ratings, min(n_pairs, test.n_ratings), replace=False)
    users, items = np.asarray(test.user_idx)[rows], np.asarray(test.item_idx)[rows]
    post, arrays = fit.posterior, fit.arrays()
    eta = latent_scores_per_draw(arrays.U, arrays.V, users, items, mu=arrays.mu,
                                 user_bias=arrays.user_bias, item_bias=arrays.item_bias)  # (chain x draw, pair)
    pred = eta.T.reshape(len(rows), fit.n_chains, fit.n_draws)
    n = pred.shape[1] * pred.shape[2]
    per_draw = ess_min(pred) / n
    expected = fit.predict(test, kind="expected", progressbar=False)["mean"].to_numpy()
    rmse = float(np.sqrt(np.mean((np.clip(expected, *train.scale) - np.asarray(test.rating)) ** 2)))
    scalars = {}
    # the per-side prior has a scale set per side: its column is the slower of the two sides'
    for name, sources in (("sigma", ("sigma",)), ("sigma_factor", ("sigma_factor", "sigma_factor_user", "sigma_factor_item"))):
        learned = [k for k in sources if k in post and float(np.ptp(post[k].values)) > 0]  # a fixed value is a constant
        for key in learned:
            values = post[key].values
            if values.ndim == 3:  # one scale per factor: labels exchangeable, the sorted set is identified
                values = np.moveaxis(np.sort(values, axis=-1), -1, 0)
            scalars[name] = min(scalars.get(name, np.inf), float(np.min(ess_min(values)) / n))
    return {
        "q01": float(np.quantile(per_draw, 0.01)),
        "q05": float(np.quantile(per_draw, 0.05)),
        "median": float(np.median(per_draw)),
        "failing": int(np.sum(per_draw * n < ESS_TARGET)),
        "pairs": len(rows),
        "max_rhat": float(np.max(array_stats.rhat(pred, chain_axis=-2, draw_axis=-1))),
        "rmse": rmse,
        **scalars,
    }


def table(records: list[dict], draws: int) -> list[str]:
    """Markdown rows, one per (dataset, variant, seed)."""
    lines = [
        f"| data | variant | seed | pred ESS/draw: 1st pct | 5th pct | median | pairs with ESS < {ESS_TARGET} "
        f"at 4 x {draws} | largest R-hat | sigma ESS/draw | sigma_factor ESS/draw | test RMSE |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        sigma, scale = (f"{r[key]:.2f}" if key in r else "fixed" for key in ("sigma", "sigma_factor"))
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {r['seed']} | {r['q01']:.3f} | {r['q05']:.3f} | {r['median']:.2f} | "
            f"{r['failing']} of {r['pairs']} | {r['max_rhat']:.3f} | {sigma} | {scale} | {r['rmse']:.4f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="u1,small")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny simulated data, 2 variants, 1 seed: checks the script only")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    datasets = args.datasets.split(",")
    if args.quick:
        datasets, variants, args.seeds, args.draws, args.tune, args.pairs = ["sim"], variants[:2], 1, 40, 20, 30
    load_before, start = os.getloadavg(), time.perf_counter()
    records = []
    for dataset in datasets:
        train, test = load(dataset, args.quick)
        for variant in variants:
            for seed in range(args.seeds):
                log(f"{dataset}: {variant}, seed {seed}")
                records.append({"dataset": dataset, "variant": variant, "seed": seed,
                                **measure(variant, train, test, seed, args.draws, args.tune, args.pairs)})
    lines = [
        "## Where the Gibbs sampler mixes slowly (`benchmarks/bench_mixing.py`)",
        "",
        *provenance("bench_mixing.py", argv, load_before, start),
        f"- each fit: 4 chains, {args.tune} burn-in sweeps, {args.draws} sweeps kept (thin 1), the sampler's "
        f"defaults otherwise; ESS per draw = min(bulk, tail ESS) / (4 x {args.draws}) of the predicted mean of "
        f"{args.pairs} held-out pairs (seed {PAIR_SEED}); u1: ML-100K fold u1; small: ml-latest-small, "
        "80/20 random split (seed 0)",
        "- variants: see the script's docstring (`pin-*`: the hyperparameter held at the default's posterior "
        "mean on u1; `fixed-noise`: the noise sd fixed at (high - low) / 4.5, the scales learned); sigma_factor "
        "with one scale per factor: the smallest ESS of the sorted scales",
        "",
        *table(records, args.draws),
    ]
    publish(args.results, "bench_mixing.py", lines, write=not (args.no_write or args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
