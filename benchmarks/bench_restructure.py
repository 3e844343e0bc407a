#!/usr/bin/env python
"""The restructured package against the tree before it, in one run: same draws, same speed?

Usage::

    .venv/bin/python benchmarks/bench_restructure.py [--before 33ede0a] [--rounds 5]
        [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write]

Checks out ``--before`` (the last commit before the restructuring of issue 14) into a
temporary git worktree and runs the same workload on it and on this tree, each in its own
process (``PYTHONPATH`` selects the tree), alternating A B A B ... for ``--rounds`` rounds
after one warm-up run each (numba compiles into each tree's own cache); each process runs
in its tree's root. Per process, on
ML-100K u1 at rank 10:

- Gibbs, one chain, 300 sweeps (``tune=0, thin=1``), default ``PMF()`` and the per-side
  per-factor prior: sampling seconds per sweep (``info["sampling_seconds"] / 300``);
- ``predict`` of the 20,000 u1 test pairs (90 % intervals, ``threshold=4``) from a 2-chain
  x 200-draw Gibbs fit, timed on the process's first call (which also imports the
  predictive modules and loads their cached kernels) and on a second call, and ``recommend(n=10, rank_by="lower")`` for 20 users;
- a digest of the Gibbs draws and of the predictions, which must agree between the trees.

Reports the median over rounds per tree and the ratio after / before (timings from the
same run, as ratios: machines differ by 2x).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

WORKLOAD = r"""
import hashlib, json, sys, time
import numpy as np
import bayesmf
from bayesmf import PMF
from bayesmf.datasets import load_movielens
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.predict import predict
from bayesmf.recommend import recommend

data_dir, sweeps = sys.argv[1], int(sys.argv[2])
train, test = load_movielens("ml-100k", split="u1", data_dir=data_dir)
out = {"file": bayesmf.__file__}

def digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]

for name, spec in (("default", PMF(n_factors=10)),
                   ("per_side", PMF(n_factors=10, per_factor_scales=True, factor_prior="per_side"))):
    fit = fit_gibbs(spec, train, draws=sweeps, tune=0, thin=1, chains=1, random_seed=0,
                    progressbar=False)
    out[f"gibbs_{name}_ms_per_sweep"] = 1e3 * fit.info["sampling_seconds"] / sweeps
    post = fit.idata["posterior"]
    out[f"gibbs_{name}_digest"] = digest([post["U"].values, post["sigma"].values])

fit = fit_gibbs(PMF(n_factors=10), train, draws=200, chains=2, random_seed=1, progressbar=False)
for key in ("predict_first_s", "predict_s"):  # the first call also loads modules and kernels
    t0 = time.perf_counter()
    pred = predict(fit, test, prob=0.9, threshold=4, random_seed=0)
    out[key] = time.perf_counter() - t0
out["predict_digest"] = digest([pred[c].to_numpy(dtype=float) for c in ("mean", "sd", "lower", "upper")])
users = list(train.users.to_raw(np.arange(20)))
t0 = time.perf_counter()
recs = [recommend(fit, u, n=10, rank_by="lower", random_seed=0) for u in users]
out["recommend_s"] = time.perf_counter() - t0
out["recommend_digest"] = digest([r["item"].to_numpy().astype(str).astype(bytes) for r in recs])
print("RESULT " + json.dumps(out))
"""


def run_tree(tree: Path, data_dir: str, sweeps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), TQDM_DISABLE="1")
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD, data_dir, str(sweeps)],
        env=env, cwd=str(tree), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"workload failed in {tree}:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    if not result["file"].startswith(str(tree)):
        raise RuntimeError(f"{tree}: imported bayesmf from {result['file']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="33ede0a")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sweeps", type=int, default=300)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bayesmf-before-") as tmp:
        before = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
                       check=True, capture_output=True)
        try:
            trees = {"before": before, "after": ROOT}
            for tree in trees.values():  # warm-up: numba compiles into each tree's cache
                run_tree(tree, args.data_dir, 20)
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    runs[name].append(run_tree(tree, args.data_dir, args.sweeps))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                           check=False, capture_output=True)
    load_after = os.getloadavg()

    keys = ["gibbs_default_ms_per_sweep", "gibbs_per_side_ms_per_sweep", "predict_first_s", "predict_s", "recommend_s"]
    rows = []
    for key in keys:
        b = float(np.median([r[key] for r in runs["before"]]))
        a = float(np.median([r[key] for r in runs["after"]]))
        rows.append(f"| {key} | {b:.3f} | {a:.3f} | {a / b:.3f} |")
    digests = []
    for key in sorted(k for k in runs["after"][0] if k.endswith("_digest")):
        same = {r[key] for r in runs["before"] + runs["after"]}
        digests.append(f"| {key.removesuffix('_digest')} | {'identical' if len(same) == 1 else 'DIFFERENT'} |")

    command = "`.venv/bin/python benchmarks/" + " ".join(shlex.quote(a) for a in [Path(__file__).name, *sys.argv[1:]]) + "`"
    lines = [
        "## The restructured package against the tree before it (`benchmarks/bench_restructure.py`)",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: `{' '.join(platform.uname())}`, nproc {os.cpu_count()}, Python {platform.python_version()}",
        f"- command: {command}",
        f"- before: commit `{args.before}` (a temporary git worktree); after: this tree",
        f"- load average before / after: {' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}",
        f"- ML-100K u1, rank 10; median over {args.rounds} alternating rounds, each tree in its own process",
        "",
        "| workload | before | after | after / before |",
        "|---|---|---|---|",
        *rows,
        "",
        "Same seed, same numbers: digests of the Gibbs draws (U, sigma), the predictions and the",
        "recommended items, over every round of both trees:",
        "",
        "| output | before vs after |",
        "|---|---|",
        *digests,
    ]
    sys.path.insert(0, str(HERE))
    from _sections import publish

    publish(args.results, "bench_restructure.py", lines, write=not args.no_write)


if __name__ == "__main__":
    main()
