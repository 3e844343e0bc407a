"""Calibration on held-out ratings: predictive intervals and P(r >= t), posterior (Gibbs) vs MAP plug-in.

Fits ``PMF(n_factors=10)`` (biases, hierarchical priors) by Gibbs at the package defaults
(run until converged; its `diagnose()` verdict is reported, and no figure of a failing fit
should be quoted) and the fixed-prior ``PMF(priors="fixed")`` by ALS, on ML-100K u1 and on
ml-latest-small (20 % of each user's ratings held out, seed 2026, as `make demo`). Reports:

* the empirical coverage and mean width of central predictive intervals at several levels
  (`bayesmf.metrics.calibration_table`); target (issue 5): the Gibbs 90 % interval covers
  0.885-0.915 of the test ratings;
* P(rating >= t) for t = 3, 4, 5 against the share of held-out ratings at t or more: mean
  predicted, observed share, Brier score and ECE (ten equal-width bins,
  `bayesmf.binary_metrics.reliability`). The package's P(r >= t) is of the rating as typed
  (whole or half stars: `ModelView.threshold_cut`); the ``continuous`` rows give the
  model's P(y >= t) without that correction, what `predict` reported before it.

Run: ``.venv/bin/python benchmarks/bench_calibration.py [--datasets ml-100k,ml-latest-small]``.
Writes the section between ``<!-- bench_calibration.py:begin/end -->`` of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sections import log, provenance, publish

from bayesmf import PMF, load_movielens
from bayesmf.binary_metrics import reliability
from bayesmf.metrics import calibration_table, rmse
from bayesmf.predictive.view import ModelView
from bayesmf.split import train_test_split

HERE = Path(__file__).resolve().parent
PROBS = (0.5, 0.8, 0.9, 0.95, 0.99)
THRESHOLDS = (3.0, 4.0, 5.0)


def load(name: str, data_dir: str) -> tuple:
    if name == "ml-100k":
        return load_movielens("ml-100k", split="u1", data_dir=data_dir)
    data = load_movielens(name, data_dir=data_dir)
    return tuple(train_test_split(data, test_size=0.2, seed=2026, by="user"))


def p_at_least_rows(fits: dict, test) -> list[dict]:
    """Mean predicted P(r >= t), observed share, Brier and ECE per fit and threshold, as typed and continuous."""
    y = test.rating
    rows = []
    for how in ("as typed", "continuous"):
        patch = mock.patch.object(ModelView, "threshold_cut", lambda self, t, kind: t) if how == "continuous" else nullcontext()
        with patch:
            for name, fit in fits.items():
                for t in THRESHOLDS:
                    p = fit.predict(test, threshold=t, progressbar=False)["p_at_least"].to_numpy()
                    hit = (y >= t - 1e-9).astype(float)
                    rel = reliability(hit, p)
                    rows.append({"fit": name, "P(r >= t)": how, "t": t, "mean predicted": p.mean(),
                                 "observed share": hit.mean(), "Brier": rel.brier, "ECE": rel.ece})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load_before, start = os.getloadavg(), time.perf_counter()

    body: list[str] = []
    for name in args.datasets.split(","):
        train, test = load(name, args.data_dir)
        log(f"{name}: Gibbs")
        t0 = time.perf_counter()
        gibbs = PMF(n_factors=10).fit(train, method="gibbs", random_seed=args.seed, progressbar=False)
        t_gibbs = time.perf_counter() - t0
        verdict = gibbs.diagnose(test=test)
        t0 = time.perf_counter()
        als = PMF(n_factors=10, priors="fixed").fit(train, method="als", random_seed=args.seed, progressbar=False)
        t_als = time.perf_counter() - t0
        fits = {"Gibbs (posterior)": gibbs, "ALS (MAP plug-in)": als}
        log(f"{name}: intervals")
        table = calibration_table(fits, test, probs=PROBS, progressbar=False)
        pred_g, pred_a = gibbs.predict(test, progressbar=False), als.predict(test, progressbar=False)
        cov90 = float(table[(table["model"] == "Gibbs (posterior)") & (table["prob"] == 0.9)]["coverage"].iloc[0])
        log(f"{name}: P(r >= t)")
        probs = pd.DataFrame(p_at_least_rows(fits, test))
        body += [
            f"### {name} ({'u1' if name == 'ml-100k' else '20 % of each user held out, seed 2026'}; "
            f"{train.n_ratings:,} train / {test.n_ratings:,} test ratings)",
            "",
            f"- Gibbs: `PMF(n_factors=10).fit(train, method='gibbs', random_seed={args.seed})`, run until converged "
            f"({gibbs.n_chains} chains x {gibbs.n_draws} draws kept), {t_gibbs:.1f} s wall; verdict: "
            f"**{'pass' if verdict.ok else 'FAIL'}** ({verdict.verdict}); ALS: `PMF(n_factors=10, priors='fixed')`, "
            f"{t_als:.1f} s wall",
            f"- test RMSE of the predictive mean: Gibbs {rmse(pred_g['rating'], pred_g['mean']):.4f}, "
            f"ALS {rmse(pred_a['rating'], pred_a['mean']):.4f}",
            f"- **Gibbs 90 % predictive interval coverage: {cov90:.4f}** (target 0.885-0.915: "
            f"{'met' if 0.885 <= cov90 <= 0.915 else 'MISSED'})",
            "",
            table.to_markdown(index=False, floatfmt=".4f"),
            "",
            "P(rating >= t) against the share of held-out ratings at t or more (`as typed`: the package's; "
            "`continuous`: P(y >= t) of the normal model, without the continuity correction):",
            "",
            probs.to_markdown(index=False, floatfmt=".4f"),
            "",
        ]
    lines = [
        "## Calibration on held-out ratings: intervals and P(r >= t) (`benchmarks/bench_calibration.py`)",
        "",
        *provenance("bench_calibration.py", argv, load_before, start),
        "",
        *body,
    ]
    publish(args.results, "bench_calibration.py", lines, write=not args.no_write)


if __name__ == "__main__":
    main()
