#!/usr/bin/env python
"""Kernel calls before and after the restructuring: the Gibbs kernels against the monolith's.

Usage::

    .venv/bin/python benchmarks/bench_kernel_calls.py [--before 33ede0a] [--reps 16]
        [--data-dir ../shared/data] [--results benchmarks/RESULTS.md] [--no-write]

Extracts the monolith's kernel module (``bayesmf/inference/_gibbs_kernels.py`` at
``--before``) into a temporary folder and times, in this one process on ML-100K u1 at rank
10 with biases, the same calls on the same inputs (checking the outputs are identical):

- the user pass of the row kernel, old ``sample_rows`` against the package's, called
  through a `TypedKernel` as the sweep calls it, and called plainly (numba types the
  NamedTuple arguments on every call);
- the sums of the sparse-row scale moves and the whole sparse-row move;
- what numba's per-call typing of the NamedTuple arguments costs (``numba.typeof``).

Old and new alternate in order (old first, then new first) over ``--reps`` blocks; the
table gives the minimum over blocks of the mean time per call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from bayesmf import PMF
from bayesmf.datasets import load_movielens
from bayesmf.inference.gibbs.kernels import rows, scale_moves
from bayesmf.inference.gibbs.kernels.structs import Marks, RowFit, Side
from bayesmf.inference.gibbs.kernels.typed import TypedKernel
from bayesmf.inference.gibbs.moves import SparseScaleMoves
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.start import initial_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def old_kernels(commit: str, folder: Path):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:bayesmf/inference/_gibbs_kernels.py"],
                            check=True, capture_output=True, text=True).stdout
    path = folder / "old_gibbs_kernels.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_gibbs_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def race(calls: dict, reps: int, inner: int, reset=None) -> dict[str, float]:
    """Minimum over blocks of the mean microseconds per call, blocks alternating in order."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            for _ in range(inner):
                if reset is not None:
                    reset()
                calls[name]()
            times[name].append((time.perf_counter() - t0) / inner * 1e6)
    return {name: min(v) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="33ede0a")
    parser.add_argument("--reps", type=int, default=16)
    parser.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()

    train, _ = load_movielens("ml-100k", split="u1", data_dir=args.data_dir)
    spec = PMF(n_factors=10)
    problem = build_problem(spec, train)
    rng = np.random.default_rng(0)
    state = initial_state(problem, spec, train, rng, "map")
    params, ratings, hyper = state.params, problem.ratings, problem.hyper
    marks = SparseScaleMoves(problem).marks
    by_user, by_item = ratings
    mu, sigma2 = float(params.scalars[0]), float(params.scalars[1])
    consts = np.array([hyper.sigma2.a, hyper.sigma2.b, hyper.factor.a, hyper.factor.b,
                       hyper.bias.a, hyper.bias.b, hyper.mu_mean, hyper.mu_prec])
    normals = rng.standard_normal(params.user.P.shape)
    uniforms = rng.random((3, 64))
    saved = [a.copy() for a in (params.user.P, params.item.P, params.scalars, params.factor_var,
                                params.user.prec, params.item.prec)]

    def reset() -> None:
        for target, value in zip((params.user.P, params.item.P, params.scalars, params.factor_var,
                                  params.user.prec, params.item.prec), saved, strict=True):
            target[:] = value

    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        old = old_kernels(args.before, Path(tmp))
        P_old, P_new = params.user.P.copy(), params.user.P.copy()
        typed_rows = TypedKernel(rows.sample_rows)
        fit = RowFit(mu, 1.0 / sigma2, True)
        calls = {
            "old": lambda: old.sample_rows(*by_user, params.item.P, mu, 1.0 / sigma2, params.user.prec, True,
                                           normals, P_old, -0.8, params.user.mean, False),
            "new (TypedKernel)": lambda: typed_rows(by_user, Side(P_new, params.user.prec, params.user.mean),
                                                    params.item.P, fit, normals, -0.8, False),
            "new (plain call)": lambda: rows.sample_rows(by_user, Side(P_new, params.user.prec, params.user.mean),
                                                         params.item.P, fit, normals, -0.8, False),
        }
        for f in calls.values():
            f()
        P_old[:] = P_new[:] = params.user.P
        calls["old"](), calls["new (TypedKernel)"]()
        same = np.array_equal(P_old, P_new)
        for name, us in race(calls, args.reps, 20).items():
            rows_out.append(f"| row kernel, user pass | {name} | {us:.1f} | {'identical' if same else 'DIFFERENT'} |")

        marks_arrays = (marks.user, marks.item)
        typed_sums = TypedKernel(scale_moves.sparse_scale_sums)
        sums_calls = {
            "old": lambda: old.sparse_scale_sums(*by_user, *by_item, params.user.P, params.item.P, mu, True,
                                                 *marks_arrays, True, 1, 11),
            "new (TypedKernel)": lambda: typed_sums(ratings, params.user.P, params.item.P, mu, True, marks, True, 1, 11),
            "new (plain call)": lambda: scale_moves.sparse_scale_sums(ratings, params.user.P, params.item.P, mu, True,
                                                                      marks, True, 1, 11),
        }
        results = [f() for f in sums_calls.values()]
        same = all(np.array_equal(results[0], r) for r in results[1:])
        for name, us in race(sums_calls, args.reps, 100).items():
            rows_out.append(f"| sparse-row sums, factors | {name} | {us:.1f} | {'identical' if same else 'DIFFERENT'} |")

        typed_moves = TypedKernel(scale_moves.sparse_scale_moves)
        move_calls = {
            "old": lambda: old.sparse_scale_moves(*by_user, *by_item, params.user.P, params.item.P, params.scalars,
                                                  params.factor_var, params.user.prec, params.item.prec, consts,
                                                  *marks_arrays, True, False, uniforms, 1000.0, -1),
            "new (TypedKernel)": lambda: typed_moves(ratings, params, hyper, marks, True, False, uniforms, 1000.0, -1),
        }
        results = []
        for f in move_calls.values():
            reset()
            results.append(f())
        reset()
        same = results[0] == results[1]
        for name, us in race(move_calls, args.reps, 100, reset=reset).items():
            rows_out.append(f"| sparse-row moves (3 moves, with the state reset) | {name} | {us:.1f} | {'identical' if same else 'DIFFERENT'} |")

    typeof_rows = []
    for label, value in (("one array (943 x 11)", params.user.P), ("ratings (Ratings: 2 x Csr of 3 arrays)", ratings),
                         ("chain parameters (Params: 2 x Side + 2 arrays)", params), ("Marks (2 arrays)", Marks(*marks_arrays))):
        t0 = time.perf_counter()
        for _ in range(2000):
            numba.typeof(value)
        typeof_rows.append(f"| {label} | {(time.perf_counter() - t0) / 2000 * 1e6:.1f} |")
    load_after = os.getloadavg()

    command = "`.venv/bin/python benchmarks/" + " ".join(shlex.quote(a) for a in [Path(__file__).name, *sys.argv[1:]]) + "`"
    lines = [
        "## Kernel calls before and after the restructuring (`benchmarks/bench_kernel_calls.py`)",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: `{' '.join(platform.uname())}`, nproc {os.cpu_count()}, Python {platform.python_version()}, numba {numba.__version__}",
        f"- command: {command}",
        f"- old: the monolith's kernels at `{args.before}`; new: this tree; ML-100K u1, rank 10, biases, the \"map\" start",
        f"- load average before / after: {' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}",
        f"- minimum over {args.reps} alternating blocks of the mean time per call",
        "",
        "| kernel | version | us per call | outputs |",
        "|---|---|---|---|",
        *rows_out,
        "",
        "What numba's per-call typing costs (`numba.typeof`, mean of 2,000 calls):",
        "",
        "| argument | us |",
        "|---|---|",
        *typeof_rows,
    ]
    sys.path.insert(0, str(HERE))
    from _sections import publish

    publish(args.results, "bench_kernel_calls.py", lines, write=not args.no_write)


if __name__ == "__main__":
    main()
