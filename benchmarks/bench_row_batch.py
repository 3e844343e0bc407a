#!/usr/bin/env python
"""The Gibbs row kernels of this tree against those of an earlier commit, pass by pass.

Usage::

    .venv/bin/python benchmarks/bench_row_batch.py [--before 4f868a7] [--reps 12]
        [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write] [--quick]

Extracts the row kernels of ``--before`` (``bayesmf/inference/_rows.py``,
``bayesmf/inference/gibbs/kernels/rows.py`` and ``.../implicit_rows.py``) into a temporary
folder and times, in this one process, one pass of each side's rows as the sweep makes it
(the user pass without, the item pass with the residual sums; overrelaxation -0.8), old and
new on the same inputs, checking that the drawn rows and the sums are the same bit for bit:

- the rating kernel (`sample_rows`) on ML-100K u1 at ranks 10, 32 and 64, and on the bundled
  ml-latest-small (whole) at rank 10;
- the implicit-feedback kernel (`sample_implicit_rows`) on u1's training pairs as choices
  (confidence 1 + r) at ranks 10 and 64.

The parameters are those of the sampler's "map" start (seed 0). Old and new alternate in order
(old first, then new first) over ``--reps`` blocks; the table gives the minimum over blocks of
the mean milliseconds per pass and new / old. ``--quick``: a small simulated set, two ranks,
three blocks (to check the script, not to time anything).
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _sections import log, provenance, publish  # noqa: E402

from bayesmf import PMF, simulate  # noqa: E402
from bayesmf.datasets import load_movielens  # noqa: E402
from bayesmf.inference.gibbs.kernels import implicit_rows, rows  # noqa: E402
from bayesmf.inference.gibbs.kernels.structs import Side  # noqa: E402
from bayesmf.inference.gibbs.start import initial_state  # noqa: E402
from bayesmf.inference.gibbs.sweep import build_sweep, problem_for  # noqa: E402

#: the files taken from ``--before``, the module name each gets, and the imports rewritten in it
FILES = {
    "bayesmf/inference/_rows.py": ("old_rows_helper", {}),
    "bayesmf/inference/gibbs/kernels/rows.py": (
        "old_rows", {"from bayesmf.inference._rows import": "from old_rows_helper import"}),
    "bayesmf/inference/gibbs/kernels/implicit_rows.py": (
        "old_implicit_rows", {"from bayesmf.inference._rows import": "from old_rows_helper import",
                              "from bayesmf.inference.gibbs.kernels.rows import": "from old_rows import"}),
}


def old_kernels(commit: str, folder: Path) -> tuple:
    """Import the row kernels of ``commit`` from ``folder``: (rating module, implicit module)."""
    for path, (name, imports) in FILES.items():
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
                                check=True, capture_output=True, text=True).stdout
        for old, new in imports.items():
            source = source.replace(old, new)
        (folder / f"{name}.py").write_text(source)
    for name, _ in FILES.values():
        sys.modules.pop(name, None)  # a second run in one process reads its own commit
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("old_rows"), importlib.import_module("old_implicit_rows")
    finally:
        sys.path.remove(str(folder))


def race(calls: dict[str, Callable[[], object]], reset: Callable[[], None], reps: int, inner: int) -> dict[str, float]:
    """Minimum over blocks of the mean milliseconds per call; blocks alternate their order."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            elapsed = 0.0
            for _ in range(inner):
                reset()
                start = time.perf_counter()
                calls[name]()
                elapsed += time.perf_counter() - start
            times[name].append(elapsed / inner * 1e3)
    return {name: min(v) for name, v in times.items()}


def one_pass(kernels: dict, responses, this, other, fit, resid: bool, reps: int, inner: int) -> tuple[dict, bool]:
    """Race ``kernels`` (name -> function) on one side's rows; (best ms per name, same outputs)."""
    normals = np.random.default_rng(1).standard_normal(this.P.shape)
    start = this.P.copy()
    P = {name: start.copy() for name in kernels}
    sums: dict[str, object] = {}

    def call(name: str) -> None:
        sums[name] = kernels[name](responses, Side(P[name], this.prec, this.mean), other.P, fit, normals, -0.8, resid)

    def reset() -> None:
        for rows_of in P.values():
            rows_of[:] = start

    calls = {name: (lambda name=name: call(name)) for name in kernels}
    reset()
    for f in calls.values():
        f()
    same = all(np.array_equal(P["old"], P[name]) and sums["old"] == sums[name] for name in kernels)
    return race(calls, reset, reps, inner), same


def passes(spec: PMF, data, label: str, old_module, new_module, kernel: str, reps: int) -> list[dict]:
    """Time both sides' passes of ``kernel`` (old and new) on ``data`` at the "map" start."""
    problem = problem_for(spec, data)
    state = initial_state(problem, spec, data, np.random.default_rng(0), "map")
    likelihood = build_sweep(problem).likelihood
    kernels = {"old": getattr(old_module, kernel), "new": getattr(new_module, kernel)}
    inner = min(50, max(1, int(3e5 / (data.n_ratings * spec.n_factors ** 1.5 / 32))))
    out = []
    for side, resid in (("user", False), ("item", True)):
        other = state.side("item" if side == "user" else "user")
        best, same = one_pass(kernels, likelihood.responses(state, side), state.side(side), other,
                              likelihood.row_fit(state), resid, reps, inner)
        out.append({"data": label, "kernel": kernel, "rank": spec.n_factors, "side": side,
                    "old": best["old"], "new": best["new"], "same": same})
        log(f"{label} {kernel} rank {spec.n_factors} {side}: {best['old']:.2f} -> {best['new']:.2f} ms, same {same}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="4f868a7")
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    load_before, t0 = os.getloadavg(), time.perf_counter()

    if args.quick:
        u1 = small = simulate(n_users=60, n_items=40, n_factors=2, density=0.3, seed=0).data
        rating_cases, implicit_ranks, reps = [("sim", u1, 4), ("sim", u1, 30)], [4], 3
    else:
        u1, _ = load_movielens("ml-100k", split="u1", data_dir=args.data_dir, download=False)
        small = load_movielens("ml-latest-small")
        rating_cases = [("ML-100K u1", u1, 10), ("ML-100K u1", u1, 32), ("ML-100K u1", u1, 64),
                        ("ml-latest-small", small, 10)]
        implicit_ranks, reps = [10, 64], args.reps
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        old_rating, old_implicit = old_kernels(args.before, Path(tmp))
        for label, data, rank in rating_cases:
            records += passes(PMF(n_factors=rank), data, label, old_rating, rows, "sample_rows", reps)
        for rank in implicit_ranks:
            spec = PMF(n_factors=rank, likelihood="implicit", confidence="linear", confidence_scale=1.0)
            label = "sim" if args.quick else "ML-100K u1"
            records += passes(spec, u1, label, old_implicit, implicit_rows, "sample_implicit_rows", reps)

    lines = [
        "## Row kernels of this tree against an earlier commit (`benchmarks/bench_row_batch.py`)",
        "",
        *provenance("bench_row_batch.py", argv, load_before, t0),
        f"- old: the row kernels at `{args.before}`; new: this tree. One pass of a side's rows as the sweep makes "
        "it (user pass without, item pass with the residual sums; overrelaxation -0.8), at the \"map\" start "
        f"(seed 0); minimum over {reps} alternating blocks of the mean milliseconds per pass",
        "",
        "| data | kernel | rank | side | old ms | new ms | new / old | same draws and sums |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {r['data']} | `{r['kernel']}` | {r['rank']} | {r['side']} | {r['old']:.2f} | {r['new']:.2f} | "
          f"{r['new'] / r['old']:.2f} | {'yes' if r['same'] else 'NO'} |" for r in records],
    ]
    publish(args.results, "bench_row_batch.py", lines, write=not args.no_write)
    return 0 if all(r["same"] for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
