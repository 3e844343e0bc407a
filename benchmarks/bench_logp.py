#!/usr/bin/env python
"""Cost of one log-density + gradient evaluation of the PyMC model on ML-100K u1.

Usage::

    .venv/bin/python benchmarks/bench_logp.py [--data-dir /work/shared/data] [--split u1]
        [--rank 10] [--evals 300] [--results benchmarks/RESULTS.md] [--no-write]

NUTS, ADVI and ``find_MAP`` spend their time evaluating the model's log density and its
gradient. This compares, for the package's default model (hierarchical priors, biases) and
the per-side prior, the model as built (`bayesmf.model.build_model`, whose factor term is
the fused Op `bayesmf._pytensor_ops.pair_dot`) against the same model with that term
written as plain PyTensor, ``(U[user_idx] * V[item_idx]).sum(-1)``. Both are compiled by
PyMC's ``logp_dlogp_function`` (numba backend), evaluated at the same jittered point, with
one BLAS thread, after a warm-up call. The two log densities and gradients must agree
(the script stops otherwise). Writes the section between ``<!-- bench_logp.py:begin -->``
and ``<!-- bench_logp.py:end -->`` of ``--results``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _sections import write_section
from threadpoolctl import threadpool_limits

import bayesmf._pytensor_ops as ops
from bayesmf import PMF
from bayesmf.datasets import load_movielens
from bayesmf.model import build_model

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench_logp.py:begin -->", "<!-- bench_logp.py:end -->"


@contextmanager
def plain_factor_term():
    """Build models with the factor term as plain PyTensor gathers (the pre-Op graph).

    `build_model` imports ``pair_dot`` from `bayesmf._pytensor_ops` when it is called, so
    replacing the module attribute here changes the models built inside this block only.
    """
    fused = ops.pair_dot
    ops.pair_dot = lambda U, V, u, i: (U[u] * V[i]).sum(axis=-1)
    try:
        yield
    finally:
        ops.pair_dot = fused


def timed_logp(model, evals: int, seed: int) -> tuple[float, float, np.ndarray, float]:
    """(compile s, ms per logp+dlogp, gradient, logp) at a jittered initial point."""
    t0 = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    point = model.initial_point()
    x = np.concatenate([np.asarray(point[v.name], dtype=np.float64).ravel() for v in model.value_vars])
    x = x + 0.1 * np.random.default_rng(seed).standard_normal(x.size)
    logp, grad = fn(x)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(evals):
        fn(x)
    ms = (time.perf_counter() - t0) / evals * 1e3
    return compile_s, ms, np.asarray(grad).copy(), float(logp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--split", default="u1")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--evals", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    train, _ = load_movielens("ml-100k", split=args.split, data_dir=args.data_dir)
    load_before = os.getloadavg()
    rows = []
    specs = {
        "default": PMF(n_factors=args.rank),
        "per_side": PMF(n_factors=args.rank, per_factor_scales=True, factor_prior="per_side"),
    }
    with threadpool_limits(1):
        for label, spec in specs.items():
            c_op, ms_op, g_op, lp_op = timed_logp(build_model(spec, train), args.evals, args.seed)
            with plain_factor_term():
                c_pl, ms_pl, g_pl, lp_pl = timed_logp(build_model(spec, train), args.evals, args.seed)
            if not np.isclose(lp_op, lp_pl, rtol=1e-10) or not np.allclose(g_op, g_pl, rtol=1e-8, atol=1e-8):
                raise SystemExit(f"{label}: the fused and plain graphs disagree")
            rows.append((label, g_op.size, ms_pl, ms_op, c_pl, c_op))
            print(f"{label}: plain {ms_pl:.2f} ms, fused {ms_op:.2f} ms ({ms_pl / ms_op:.1f}x)")
    load_after = os.getloadavg()

    lines = [
        BEGIN,
        f"## Log density + gradient of the PyMC model (`benchmarks/bench_logp.py`), ML-100K {args.split}",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.system()}; load average before/after: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f}",
        f"- command: `.venv/bin/python benchmarks/bench_logp.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        f"- data: {train.n_ratings} training ratings, rank {args.rank}; {args.evals} evaluations "
        "after a warm-up, one BLAS thread; both graphs give the same logp and gradient (checked)",
        "",
        "| model | parameters | plain gathers (ms) | fused `pair_dot` (ms) | speed-up | compile + first call, plain / fused (s) |",
        "|---|---|---|---|---|---|",
    ]
    for label, n, ms_pl, ms_op, c_pl, c_op in rows:
        lines.append(
            f"| {label} | {n} | {ms_pl:.2f} | {ms_op:.2f} | {ms_pl / ms_op:.1f}x | {c_pl:.1f} / {c_op:.1f} |"
        )
    lines.append(END)
    if not args.no_write:
        write_section(Path(args.results), "\n".join(lines), BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
