"""Memory and time of prediction, recommendation and fold-in on an ML-100K-shaped posterior.

A fake posterior (random draws; no fit) with the shapes of a rank-10 fit of MovieLens 100K:
943 users, 1,682 items, 4 chains x 1,000 draws, biases, hierarchical priors. Measures

- peak resident memory ABOVE the loaded posterior while predicting 20,000 pairs x 4,000
  draws (``kind="predictive"`` and ``"expected"``), target < 1 GiB: the Linux high-water
  mark (VmHWM) is reset before each call through /proc/self/clear_refs, and numpy's own
  allocations are also traced with tracemalloc;
- wall time of those calls (after a JIT warm-up);
- fold-in of a new user with 3, 10 and 20 ratings followed by ``recommend(n=10)`` with
  intervals.

Run: ``.venv/bin/python benchmarks/bench_predict.py [--pairs 20000] [--draws 1000]
[--chains 4] [--results benchmarks/RESULTS.md]``. Writes (or replaces) the section between
``<!-- bench_predict.py:begin -->`` and ``<!-- bench_predict.py:end -->`` of ``--results``;
the rest of that file is kept. Wall time on a shared machine overstates the cost: CPU time
(all threads) and the load average are recorded beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from _sections import write_section

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.posterior import make_posterior
from bayesmf.predict import predict
from bayesmf.recommend import fold_in, recommend
from bayesmf.results import FitResult
from bayesmf.spec import PMF

GIB = 2**30
HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench_predict.py:begin -->", "<!-- bench_predict.py:end -->"
ROWS: list[tuple[str, float, float, float, float]] = []


def _status(key: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def fake_ml100k(chains: int, draws: int, seed: int = 0) -> FitResult:
    rng = np.random.default_rng(seed)
    n_users, n_items, K = 943, 1682, 10
    n_ratings = 90_000
    cells = rng.choice(n_users * n_items, n_ratings, replace=False)
    train = RatingsData(
        cells // n_items,
        cells % n_items,
        rng.integers(1, 6, n_ratings).astype(float),
        (1.0, 5.0),
        IdEncoder("user", np.arange(1, n_users + 1)),
        IdEncoder("item", np.arange(1, n_items + 1)),
    )
    spec = PMF(n_factors=K)
    cd = (chains, draws)
    # a concentrated posterior: one centre per parameter, draws spread by 0.1 around it
    def around(centre: np.ndarray) -> np.ndarray:
        return centre + 0.1 * rng.standard_normal((*cd, *centre.shape))

    post = {
        "U": around(rng.normal(0, 0.3, (n_users, K))).astype(np.float32),
        "V": around(rng.normal(0, 0.3, (n_items, K))).astype(np.float32),
        "mu": 3.5 + rng.normal(0, 0.01, cd),
        "user_bias": around(rng.normal(0, 0.3, n_users)),
        "item_bias": around(rng.normal(0, 0.3, n_items)),
        "sigma": 0.9 + rng.normal(0, 0.005, cd),
        "sigma_factor": 0.3 + rng.normal(0, 0.01, cd),
        "sigma_user_bias": 0.3 + rng.normal(0, 0.01, cd),
        "sigma_item_bias": 0.3 + rng.normal(0, 0.01, cd),
    }
    idata = make_posterior(spec, train, post)
    del post
    return FitResult(spec=spec, idata=idata, method="gibbs", train=train)


def measure(label: str, fn) -> tuple[float, float, float, object]:  # type: ignore[no-untyped-def]
    base = _status("VmRSS")
    reset = _reset_peak()
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    above = (_status("VmHWM") - base) if reset else float("nan")
    ROWS.append((label, secs, cpu, above, traced))
    print(f"{label:<46s} {secs:7.2f} s wall {cpu:7.2f} s CPU   peak RSS above start {above / GIB:6.3f} GiB   numpy peak {traced / GIB:6.3f} GiB")
    return secs, above, traced, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    import numba

    print(f"{time.strftime('%Y-%m-%d')}  {platform.node()}  {platform.processor() or platform.machine()}  "
          f"{os.cpu_count()} cpus  python {platform.python_version()}")
    result = fake_ml100k(args.chains, args.draws)
    rss_loaded = _status("VmRSS")
    print(f"posterior: {result!r}; process RSS after loading {_status('VmRSS') / GIB:.3f} GiB")
    rng = np.random.default_rng(1)
    pairs = pd.DataFrame(
        {"user": rng.integers(1, 944, args.pairs), "item": rng.integers(1, 1683, args.pairs)}
    )
    predict(result, pairs.head(50), progressbar=False)  # JIT warm-up (cached after the first run)
    predict(result, pairs.head(50), kind="expected", progressbar=False)
    recommend(result, 1, n=10)
    S = args.chains * args.draws
    for kind in ("predictive", "expected"):
        measure(f"predict {args.pairs} pairs x {S} draws, {kind}", lambda kind=kind: predict(result, pairs, kind=kind, progressbar=False))
    measure(f"predict {args.pairs // 10} pairs, predictive HDI", lambda: predict(result, pairs.head(args.pairs // 10), interval="hdi", progressbar=False))

    items = rng.permutation(np.arange(1, 1683))
    for n_ratings in (3, 10, 20):
        ratings = {int(i): float(r) for i, r in zip(items[:n_ratings], rng.integers(1, 6, n_ratings), strict=True)}
        secs_f, _, _, folded = measure(f"fold_in user with {n_ratings} ratings", lambda ratings=ratings: fold_in(result, ratings, user="new", random_seed=0))
        secs_r, _, _, _ = measure("  then recommend(n=10, rank_by='mean')", lambda folded=folded: recommend(folded, "new", n=10))
        measure("  then recommend(n=10, rank_by='lower')", lambda folded=folded: recommend(folded, "new", n=10, rank_by="lower"))
        print(f"  fold-in + recommend: {secs_f + secs_r:.2f} s")

    load_after = os.getloadavg()
    lines = [
        BEGIN,
        "## Prediction memory and fold-in time (`benchmarks/bench_predict.py`)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: `{' '.join(platform.uname())}`, nproc {os.cpu_count()}, numba threads "
        f"{numba.get_num_threads()}, Python {platform.python_version()}",
        f"- command: `.venv/bin/python {' '.join(sys.argv)}`",
        f"- posterior: fake (random centre + 0.1 sd per draw), ML-100K shaped: 943 users, 1682 items, rank 10, biases, "
        f"{args.chains} chains x {args.draws} draws; {S} draws in all; {rss_loaded / GIB:.2f} GiB "
        "process RSS with it loaded",
        f"- load average before / after: {' '.join(f'{x:.2f}' for x in load_before)} / "
        f"{' '.join(f'{x:.2f}' for x in load_after)} (2 cores shared with other jobs: wall times are inflated)",
        "- memory: peak RSS above the RSS at the start of the call (VmHWM reset through "
        "/proc/self/clear_refs), and the peak of numpy allocations (tracemalloc); target < 1 GiB",
        "",
        "| call | wall s | CPU s (all threads) | peak RSS above start, GiB | numpy peak, GiB |",
        "|---|---|---|---|---|",
        *[f"| {label.strip()} | {w:.2f} | {c:.2f} | {a / GIB:.3f} | {t / GIB:.3f} |" for label, w, c, a, t in ROWS],
        "",
        "JIT compilation is excluded (a warm-up call comes first; kernels are cached on disk).",
        END,
    ]
    write_section(Path(args.results), "\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    main()
