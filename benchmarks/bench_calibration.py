"""Calibration of predictive intervals on ML-100K u1: full posterior (Gibbs) vs MAP plug-in.

Fits ``PMF(n_factors=10)`` (biases, hierarchical priors) by Gibbs with its defaults and the
fixed-prior ``PMF(priors="fixed")`` by ALS on u1.base, then reports the empirical coverage
and mean width of central predictive intervals on the 20,000 u1.test ratings at several
levels (`bayesmf.metrics.calibration_table`). Target (issue 5): the Gibbs 90 % interval
covers between 0.885 and 0.915 of the test ratings.

Run: ``.venv/bin/python benchmarks/bench_calibration.py [--data-dir ../shared/data]``.
Writes the section between ``<!-- bench_calibration.py:begin/end -->`` of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bayesmf import PMF, __version__, load_movielens
from bayesmf.metrics import calibration_table, rmse

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench_calibration.py:begin -->", "<!-- bench_calibration.py:end -->"
PROBS = (0.5, 0.8, 0.9, 0.95, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    train, test = load_movielens("ml-100k", split="u1", data_dir=args.data_dir)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    gibbs = PMF(n_factors=10).fit(train, method="gibbs", random_seed=args.seed, progressbar=False)
    t_gibbs = time.perf_counter() - t0
    t0 = time.perf_counter()
    als = PMF(n_factors=10, priors="fixed").fit(train, method="als", random_seed=args.seed, progressbar=False)
    t_als = time.perf_counter() - t0
    table = calibration_table({"Gibbs (posterior)": gibbs, "ALS (MAP plug-in)": als}, test, probs=PROBS)
    pred_g = gibbs.predict(test)
    pred_a = als.predict(test)
    load_after = os.getloadavg()
    cov90 = float(table[(table["model"] == "Gibbs (posterior)") & (table["prob"] == 0.9)]["coverage"].iloc[0])

    lines = [
        BEGIN,
        "## Calibration of predictive intervals on ML-100K u1 (`benchmarks/bench_calibration.py`)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: `{platform.platform()}`, "
        f"nproc {os.cpu_count()}, Python {platform.python_version()}, bayesmf {__version__}",
        f"- command: `.venv/bin/python benchmarks/bench_calibration.py --seed {args.seed}`",
        f"- load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f} (other jobs were running when > 1)",
        f"- Gibbs: `PMF(n_factors=10).fit(train, method='gibbs')` defaults ({gibbs.n_chains} chains x {gibbs.n_draws} draws), "
        f"{t_gibbs:.1f} s wall; ALS: `PMF(n_factors=10, priors='fixed')`, {t_als:.1f} s wall",
        f"- test RMSE of the predictive mean: Gibbs {rmse(pred_g['rating'], pred_g['mean']):.4f}, ALS {rmse(pred_a['rating'], pred_a['mean']):.4f}",
        f"- **Gibbs 90 % predictive interval coverage: {cov90:.4f}** (target 0.885-0.915: "
        f"{'met' if 0.885 <= cov90 <= 0.915 else 'MISSED'})",
        "",
        table.to_markdown(index=False, floatfmt=".4f"),
        "",
        END,
    ]
    section = "\n".join(lines)
    path = Path(args.results)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
