#!/usr/bin/env python
"""Benchmark bayesmf against its peers on the same folds, in one run.

Usage (see benchmarks/README.md)::

    .venv/bin/python benchmarks/run.py --datasets ml-100k,ml-latest-small,scaling \
        --systems all --out benchmarks/

Each (dataset, system) runs in its own worker subprocess (so a crash, a timeout or a
missing peer costs that cell only, and peak memory is the worker's own). Inside the
worker, for each fold: build the adapter (`peers.py`), reset the peak-RSS counter, fit,
read the peak, reset, predict, read the peak. Records are written after every fold, so a
worker killed by its time limit keeps the folds it finished.

Outputs in ``--out``: ``results.json`` (every record, summaries, scaling, targets and the
machine/versions) and the section of ``RESULTS.md`` between ``<!-- run.py:begin -->`` and
``<!-- run.py:end -->`` (the rest of that file belongs to others and is kept), and
``scaling.png`` when the scaling part ran. The workers' output goes to ``run.log`` in the
cache folder (``$BAYESMF_BENCH_CACHE``, default ``/tmp/bayesmf-bench-cache``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402  (a sibling module, found through the path above)
from _sections import write_section  # noqa: E402

DATASETS = ("ml-100k", "ml-latest-small")
SCALING = "scaling"
PROBS = (0.5, 0.9)
N_MONITOR = 100
BEGIN, END = "<!-- run.py:begin -->", "<!-- run.py:end -->"

#: systems run on a dataset only (the brief: SVD++ is slow, ML-100K only)
ONLY_ON = {"surprise.svdpp": ("ml-100k",)}
#: default per-system fold limits (NUTS on 5 folds does not fit in the run's budget)
#: (measured on the shared 2-core machine under load 2-6: NUTS 360-770 s a fold, ADVI
#: 360-390 s, find_MAP ordinal 75-150 s; NUTS ordinal did not finish u1 in 25 min, ADVI
#: ordinal took 500 s at load 2 and did not finish in 20 min at load 6-9: off by default, run them with e.g.
#: --fold-limit bayesmf.advi-ordinal=1 --merge); "dataset:system" keys apply to one dataset
DEFAULT_FOLD_LIMITS = {
    "bayesmf.nuts": 1, "bayesmf.advi": 1, "bayesmf.map-ordinal": 1,
    "bayesmf.nuts-bpmf": 1, "bayesmf.advi-bpmf": 1,
    "bayesmf.nuts-ordinal": 0, "bayesmf.advi-ordinal": 0,
}

#: ML-1M and ML-10M shapes (users, items) for the simulated scaling sets
SCALING_SHAPES = {"100k": (943, 1682), "1m": (6040, 3706), "10m": (69878, 10677)}
SCALING_SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
#: (short, long) steps per system@size[@rank]; bayesmf Gibbs at 10M runs the 100 sweeps of the target
SCALING_STEPS = {
    "bayesmf.gibbs@100k": "20:220", "bayesmf.gibbs@1m": "10:60", "bayesmf.gibbs@10m": "10:100",
    "bayesmf.gibbs@1m@20": "5:30", "bayesmf.gibbs@1m@50": "3:13",
    "myfm.gibbs@100k": "10:60", "myfm.gibbs@1m": "3:10", "myfm.gibbs@1m@50": "2:5", "myfm.gibbs@10m": "2:5",
    "bayesmf.advi@100k": "100:600", "bayesmf.advi@1m": "20:120", "bayesmf.advi@10m": "5:25",
}


# =======================================================================================
# data
# =======================================================================================
def data_dir() -> Path:
    return Path(os.environ.get("BAYESMF_DATA_DIR", "/work/shared/data"))


def load_folds(dataset: str, folds: Sequence[int]) -> Iterator[tuple[str, Any, Any, str]]:
    """Yield ``(fold_name, train, test, loader)`` for the 1-based fold numbers asked for."""
    import bayesmf.datasets as ds

    if dataset == "ml-100k":
        for k in folds:
            if hasattr(ds, "load_movielens"):
                train, test = ds.load_movielens("ml-100k", split=f"u{k}", data_dir=data_dir(), download=False)
                yield f"u{k}", train, test, "bayesmf.datasets.load_movielens"
            else:
                train, test = _read_ml100k_fold(k)
                yield f"u{k}", train, test, "benchmarks/run.py fallback reader (load_movielens not in this checkout)"
    elif dataset == "ml-latest-small":
        from bayesmf.split import kfold

        if hasattr(ds, "load_movielens"):
            data, loader = ds.load_movielens("ml-latest-small"), "bayesmf.datasets.load_movielens"
        else:
            data, loader = _read_ml_latest_small(), "benchmarks/run.py fallback reader"
        splits = list(kfold(data, n_splits=5, seed=0))
        for k in folds:
            train, test = splits[k - 1]
            yield f"k{k}", train, test, loader + " + bayesmf.split.kfold(n_splits=5, seed=0)"
    elif dataset.startswith("sim-"):
        train, test = simulated(dataset)
        yield "holdout", train, test, "bayesmf.datasets.simulate (cached) + train_test_split(0.1, seed=0)"
    elif dataset.startswith("tiny"):
        # the smoke test's set: a few hundred ratings from the model
        from bayesmf.datasets import simulate
        from bayesmf.split import kfold

        sim = simulate(n_users=60, n_items=40, n_factors=2, density=0.25, noise=0.5, seed=3)
        splits = list(kfold(_rounded(sim.data), n_splits=5, seed=0))
        for k in folds:
            train, test = splits[k - 1]
            yield f"k{k}", train, test, "bayesmf.datasets.simulate (rounded to 1..5 stars)"
    else:
        raise ValueError(f"unknown dataset {dataset!r}")


def _rounded(data: Any) -> Any:
    """Ratings rounded and clipped to 1..5 stars (so the ordinal systems have levels)."""
    from bayesmf.data import RatingsData

    rating = np.clip(np.round(data.rating), 1, 5)
    return RatingsData(data.user_idx, data.item_idx, rating, (1.0, 5.0), data.users, data.items)


def _read_ml100k_fold(k: int) -> tuple[Any, Any]:
    import pandas as pd

    from bayesmf.data import RatingsData

    base = data_dir() / "ml-100k"
    names = ["userId", "movieId", "rating", "timestamp"]
    train = pd.read_csv(base / f"u{k}.base", sep="\t", names=names)
    test = pd.read_csv(base / f"u{k}.test", sep="\t", names=names)
    both = RatingsData.from_dataframe(pd.concat([train, test], ignore_index=True), scale=(1.0, 5.0))
    n = len(train)
    return both.subset(np.arange(n)), both.subset(np.arange(n, n + len(test)))


def _read_ml_latest_small() -> Any:
    import pandas as pd

    from bayesmf.data import RatingsData

    frame = pd.read_csv(data_dir() / "ml-latest-small" / "ratings.csv")
    return RatingsData.from_dataframe(frame, scale=(0.5, 5.0))


def cache_dir() -> Path:
    path = Path(os.environ.get("BAYESMF_BENCH_CACHE", Path(tempfile.gettempdir()) / "bayesmf-bench-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def simulated(dataset: str) -> tuple[Any, Any]:
    """A simulated set of ML-1M/ML-10M shape, rank 10, cached as .npz (simulate is ~20 s at 10M)."""
    from bayesmf.data import IdEncoder, RatingsData
    from bayesmf.split import train_test_split

    size = dataset.removeprefix("sim-")
    path = cache_dir() / f"{dataset}.npz"
    if not path.exists():
        from bayesmf.datasets import simulate

        n_users, n_items = SCALING_SHAPES[size]
        sim = simulate(
            n_users=n_users, n_items=n_items, n_factors=10,
            density=SCALING_SIZES[size] / (n_users * n_items), noise=0.9, seed=0,
            popularity_skew=0.5,
        )
        d = sim.data
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, user_idx=d.user_idx, item_idx=d.item_idx, rating=d.rating,
                 scale=np.array(d.scale), n_users=n_users, n_items=n_items)
        tmp.replace(path)
    z = np.load(path)
    n_users, n_items = int(z["n_users"]), int(z["n_items"])
    data = RatingsData(
        z["user_idx"], z["item_idx"], z["rating"], tuple(z["scale"].tolist()),
        IdEncoder("user", np.arange(n_users, dtype=np.int64)),
        IdEncoder("item", np.arange(n_items, dtype=np.int64)),
    )
    return tuple(train_test_split(data, test_size=0.1, seed=0))  # type: ignore[return-value]


# =======================================================================================
# measuring
# =======================================================================================
def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) so the next reading covers what follows only."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float | None:
    """Peak RSS (VmHWM) since the last reset, MiB; ru_maxrss (since start) where /proc lacks it."""
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return kb / 1024


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def metrics(y: np.ndarray, pred: peers.Prediction) -> dict[str, Any]:
    """RMSE, MAE and, per interval, coverage and mean width (arrays in, floats out)."""
    err = pred.mean - y
    out: dict[str, Any] = {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
    }
    for p, (lower, upper) in pred.intervals.items():
        tag = f"{round(100 * p)}"
        out[f"cov{tag}"] = float(np.mean((y >= lower) & (y <= upper)))
        out[f"width{tag}"] = float(np.mean(upper - lower))
    return out


def _numeric(info: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in info.items()
            if isinstance(v, (int, float, str, bool)) and not (isinstance(v, float) and not math.isfinite(v))}


# =======================================================================================
# the worker: one (dataset, system), its folds
# =======================================================================================
def run_cell(task: dict[str, Any]) -> None:
    """Fit and score one system on the folds of one dataset, appending to task['out']."""
    out = Path(task["out"])
    records: list[dict[str, Any]] = []

    def flush() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(records))
        tmp.replace(out)

    system, dataset = task["system"], task["dataset"]
    adapter = peers.make(system, rank=task["rank"], seed=task["seed"], **task.get("overrides", {}))
    base = {"dataset": dataset, "system": system, "family": adapter.family, "options": adapter.describe()}
    why = adapter.available()
    if why is not None:
        status = why if why.startswith(("not installed", "not available", "import failed")) else f"not available: {why}"
        records.extend({**base, "fold": name, "status": status} for name in _fold_names(dataset, task["folds"]))
        flush()
        return
    for fold, train, test, loader in load_folds(dataset, task["folds"]):
        record = {**base, "fold": fold, "loader": loader, "n_train": int(train.n_ratings), "n_test": int(test.n_ratings)}
        adapter = peers.make(system, rank=task["rank"], seed=task["seed"], **task.get("overrides", {}))
        rng = np.random.default_rng(1)
        monitor_idx = np.sort(rng.choice(test.n_ratings, size=min(N_MONITOR, test.n_ratings), replace=False))
        try:
            record["rss_before_mb"] = rss_mb()
            record["peak_reset"] = reset_peak()
            _, record["fit_s"] = peers.timed(lambda a=adapter, t=train: a.fit(t))
            record["peak_fit_rss_mb"] = peak_mb()
            reset_peak()
            pred, record["predict_s"] = peers.timed(
                lambda a=adapter, t=test, m=monitor_idx: a.predict(t, PROBS, m if a.sampler else None)
            )
            record["peak_predict_rss_mb"] = peak_mb()
            record.update(metrics(np.asarray(test.rating), pred))
            record["interval_kind"] = pred.interval_kind
            record.update({f"info_{k}": v for k, v in _numeric(pred.info).items()})
            if isinstance(adapter, peers.BayesMF):
                record.update({f"route_{k}": v for k, v in _numeric(adapter.result.info).items()})
            if pred.monitor is not None:
                ess = peers.ess_bulk(pred.monitor)
                record["ess_monitor_median"] = peers.finite(float(np.nanmedian(ess)))
                record["ess_monitor_min"] = peers.finite(float(np.nanmin(ess)))
                record["ess_source"] = "arviz bulk ESS of the latent mean at 100 test pairs"
            if isinstance(adapter, peers.BayesMF) and adapter.sampler:
                diag = _diagnose(adapter, test)
                record.update(diag)
            ess_med = record.get("ess_pred_test_median", record.get("ess_monitor_median"))
            if ess_med is not None:
                record["ess_per_s"] = ess_med / record["fit_s"]
            record["status"] = "ok"
        except peers.NotAvailable as exc:
            record["status"] = f"not available: {exc}"
        except (ImportError, NotImplementedError) as exc:
            # a route (or a part it needs) that has not landed yet: reported, not dropped
            record["status"] = f"not available: {type(exc).__name__}: {_first_line(exc)}"
        except Exception as exc:
            record["status"] = f"failed: {type(exc).__name__}: {_first_line(exc)}"
            record["traceback"] = traceback.format_exc()[:3000]
        records.append(record)
        flush()
        del adapter
    flush()


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else ""


def _diagnose(adapter: peers.BayesMF, test: Any) -> dict[str, Any]:
    """bayesmf's own diagnostics: bulk ESS of predicted ratings at held-out pairs."""
    try:
        from bayesmf.diagnostics import diagnose
    except ImportError:
        return {}
    try:
        report = diagnose(adapter.result, test=test, warn=False)
    except Exception as exc:
        return {"diagnose_error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"diagnose_ok": report.ok, "diagnose_problems": list(report.problems)}
    table = report.table
    if len(table) and "quantity" in table:
        rows = table[table["quantity"] == "pred_test"]
        if len(rows):
            ess = np.asarray(rows["ess_bulk"], dtype=float)
            out["ess_pred_test_median"] = peers.finite(float(np.nanmedian(ess)))
            out["ess_pred_test_min"] = peers.finite(float(np.nanmin(ess)))
            out["ess_source"] = "bayesmf diagnose(): bulk ESS of E[rating] at 50 held-out pairs"
        rhat = np.asarray(table["r_hat"], dtype=float)
        if np.isfinite(rhat).any():
            out["rhat_max"] = float(np.nanmax(rhat))
    if report.sampler:
        out.update({f"nuts_{k}": v for k, v in _numeric(report.sampler).items()})
    return out


# =======================================================================================
# scaling: seconds per Gibbs sweep / ADVI epoch and peak memory vs n and rank
# =======================================================================================
def run_scaling_point(task: dict[str, Any]) -> None:
    """Seconds per sweep (epoch) as the difference of a short and a long run, after a warm-up.

    The warm-up run (1 step, untimed) pays the one-time costs (numba cache loading, PyTensor
    compilation) so that the short and the long run differ by their extra steps only; their
    difference divided by the step difference is the per-step time, and what remains of the
    short run is the per-fit setup (data preparation, initialization, packaging the posterior).
    """
    out = Path(task["out"])
    system, dataset, rank = task["system"], task["dataset"], task["rank"]
    short, long_ = task["steps"]
    record: dict[str, Any] = {"dataset": dataset, "system": system, "rank": rank, "steps": [short, long_]}
    try:
        adapter = peers.make(system, rank=rank, seed=0)
        why = adapter.available()
        if why is not None:
            record["status"] = why
            out.write_text(json.dumps(record))
            return
        record["rss_base_mb"] = rss_mb()  # interpreter and imports, before the data
        train, _test = simulated(dataset)
        record["n_train"] = int(train.n_ratings)
        record["rss_before_mb"] = rss_mb()
        warm = peers.make(system, rank=rank, seed=0, **_step_options(system, 1))
        _, record["warmup_s"] = peers.timed(lambda: warm.fit(train))
        warm = None
        times, peaks = [], []
        for steps in (short, long_):
            adapter = peers.make(system, rank=rank, seed=0, **_step_options(system, steps))
            reset_peak()
            _, secs = peers.timed(lambda a=adapter: a.fit(train))
            times.append(secs)
            peaks.append(peak_mb())
            if isinstance(adapter, peers.BayesMF):
                record[f"route_info_{steps}"] = _numeric(adapter.result.info)
            del adapter
        record["fit_s"] = times
        record["peak_rss_mb"] = max(p for p in peaks if p is not None)
        per_step = (times[1] - times[0]) / (long_ - short)
        record["seconds_per_step"] = per_step
        record["setup_s"] = times[0] - short * per_step
        record["step"] = "iteration (full-batch: one epoch)" if "advi" in system else "sweep"
        record["status"] = "ok" if per_step > 0 else "failed: non-positive per-step time (noise): use more steps"
    except Exception as exc:
        record["status"] = f"failed: {type(exc).__name__}: {_first_line(exc)}"
        record["traceback"] = traceback.format_exc()[-2000:]
    out.write_text(json.dumps(record))


def _step_options(system: str, steps: int) -> dict[str, Any]:
    if system.startswith("myfm"):
        return {"sweeps": steps, "kept": max(1, steps // 2)}
    if system == "bayesmf.gibbs":
        # one chain, no burn-in, no thinning: `steps` sweeps exactly (plus the route's short
        # ALS start)
        return {"draws": steps, "tune": 0, "thin": 1, "chains": 1}
    if system == "bayesmf.advi":
        # full batch (one iteration = one epoch), no early stop, no MAP start, few final draws
        return {"n": steps, "tolerance": 1e-12, "init": "jitter", "draws": 100}
    raise ValueError(f"no scaling options for {system!r}")


# =======================================================================================
# the parent
# =======================================================================================
def spawn(task: dict[str, Any], timeout: float, log: Path) -> tuple[int | None, str]:
    """Run a worker; return (exit code or None on timeout, last stderr line)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(task)]
    with open(log, "a") as fh:
        fh.write(f"\n=== {task['system']} on {task['dataset']} ({dt.datetime.now():%H:%M:%S})\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()
            return None, f"timeout after {timeout:.0f} s"
    tail = ""
    with contextlib.suppress(OSError):
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        tail = lines[-1] if lines else ""
    return code, tail


def parse_folds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def parse_limits(text: str | None) -> dict[str, int]:
    limits = dict(DEFAULT_FOLD_LIMITS)
    for part in (text or "").split(","):
        if part.strip():
            key, value = part.split("=")
            limits[key.strip()] = int(value)
    return limits


def select_systems(text: str) -> list[str]:
    if text == "all":
        return list(peers.ALL_SYSTEMS)
    chosen: list[str] = []
    for pattern in text.split(","):
        hits = [s for s in peers.ALL_SYSTEMS if fnmatch.fnmatch(s, pattern.strip())]
        if not hits:
            raise SystemExit(f"--systems: {pattern!r} matches no system; known: {', '.join(peers.ALL_SYSTEMS)}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(float(line.split()[1]) / 1024**2, 1)
    return {
        "uname": " ".join(platform.uname()),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_gib": mem,
        "python": sys.version.split()[0],
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS") if k in os.environ},
    }


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist in ("bayesmf", "numpy", "scipy", "pandas", "pymc", "pytensor", "nutpie", "numba", "arviz",
                 "arviz-stats", "xarray", "myfm", "scikit-surprise", "cornac"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    with contextlib.suppress(Exception):
        out["bayesmf_git"] = subprocess.run(
            ["git", "-C", str(HERE.parent), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
        ).stdout.strip()[:100]
    return out


def load_snapshot() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def top_processes(n: int = 5) -> list[str]:
    with contextlib.suppress(Exception):
        out = subprocess.run(["ps", "-eo", "pcpu,etime,comm", "--sort=-pcpu"], capture_output=True, text=True, check=False)
        return [line.strip() for line in out.stdout.splitlines()[1 : n + 1]]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small,scaling",
                        help="comma list of ml-100k, ml-latest-small, scaling (and tiny for the smoke test)")
    parser.add_argument("--systems", default="all", help="'all' or comma list of names/globs (e.g. 'bayesmf.*,myfm.gibbs')")
    parser.add_argument("--folds", default="1-5", help="1-based folds, e.g. '1-5' or '1,3'")
    parser.add_argument("--fold-limit", default=None,
                        help="per-system max folds, e.g. 'bayesmf.nuts=2' or per dataset 'ml-latest-small:bayesmf.nuts=0'; "
                             f"defaults {DEFAULT_FOLD_LIMITS}")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1500, help="seconds per (dataset, system) worker")
    parser.add_argument("--scaling-sizes", default="100k,1m,10m")
    parser.add_argument("--scaling-timeout", type=float, default=600, help="seconds per scaling point")
    parser.add_argument("--scaling-ranks", default="5,10,20,50", help="ranks at the 1m size")
    parser.add_argument("--scaling-systems", default="bayesmf.gibbs,myfm.gibbs,bayesmf.advi")
    parser.add_argument("--scaling-steps", default="",
                        help="override steps of the short and long run, e.g. 'bayesmf.gibbs@10m=10:100,myfm.gibbs@1m=2:6'; "
                             f"defaults {SCALING_STEPS}")
    parser.add_argument("--out", default=str(HERE), help="folder for results.json, RESULTS.md, scaling.png")
    parser.add_argument("--merge", action="store_true",
                        help="keep records of results.json that this run does not redo (same dataset and system; scaling points: same dataset, system and rank)")
    parser.add_argument("--no-markdown", action="store_true", help="write results.json only")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: recompute summaries and targets from --out/results.json and rewrite RESULTS.md and scaling.png")
    parser.add_argument("--log", help="workers' output (default: $BAYESMF_BENCH_CACHE/run.log)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scaling-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        run_cell(json.loads(args.worker))
        return 0
    if args.scaling_worker:
        run_scaling_point(json.loads(args.scaling_worker))
        return 0

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.render:
        payload = json.loads((out_dir / "results.json").read_text())
        return finish(payload, out_dir, markdown=not args.no_markdown)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    systems = select_systems(args.systems)
    folds = parse_folds(args.folds)
    limits = parse_limits(args.fold_limit)
    started = time.time()
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": versions(),
        "load_before": load_snapshot(),
        "top_before": top_processes(),
        "peak_memory_method": (
            "per fold, inside a worker subprocess per (dataset, system): VmHWM of /proc/self/status "
            "after resetting it (write 5 to /proc/self/clear_refs) just before fit and again before "
            "predict; it is the whole process's resident peak (interpreter, imports and data included; "
            "rss_before_mb is the resident size before the fit)"
        ),
        "ess_method": (
            "bayesmf samplers: bulk ESS (ArviZ, via bayesmf.diagnostics.diagnose) of the predicted mean "
            "rating at 50 held-out pairs, median over pairs; myFM: bulk ESS (arviz_stats) of its "
            "per-sample predictions at 100 held-out pairs, median. ESS/s divides by the fit wall time."
        ),
        "interval_method": (
            "central intervals of the posterior predictive: bayesmf via result.predict(test, prob=p); "
            "myFM Gibbs regressor: exact quantiles of the Gaussian mixture over its kept samples "
            "(per-sample prediction and noise sd 1/sqrt(alpha)); myFM ordered probit: quantiles of the "
            "averaged level probabilities (discrete, so intervals are sets of levels); MAP routes: plug-in"
        ),
    }
    log = Path(args.log) if args.log else cache_dir() / "run.log"  # not in the repository
    log.write_text(f"{meta['command']}\n")
    records: list[dict[str, Any]] = []
    scaling: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bayesmf-bench-") as tmp:
        for dataset in [d for d in datasets if d != SCALING]:
            for system in systems:
                if dataset in ONLY_ON.get(system, (dataset,)) or dataset.startswith("tiny"):
                    run_folds = folds[: limits.get(f"{dataset}:{system}", limits.get(system, len(folds)))]
                    if not run_folds:
                        records.append({"dataset": dataset, "system": system, "fold": "*",
                                        "status": "skipped: fold limit 0 (--fold-limit)"})
                        continue
                else:
                    records.append({"dataset": dataset, "system": system, "fold": "*", "status": f"skipped: run on {', '.join(ONLY_ON[system])} only"})
                    continue
                task = {"dataset": dataset, "system": system, "folds": run_folds, "rank": args.rank,
                        "seed": args.seed, "out": str(Path(tmp) / f"{dataset}-{system}.json")}
                t0 = time.time()
                code, tail = spawn(task, args.timeout, log)
                got = json.loads(Path(task["out"]).read_text()) if Path(task["out"]).exists() else []
                done = {r["fold"] for r in got}
                names = _fold_names(dataset, run_folds)
                for name in names:
                    if name not in done:
                        reason = tail if code is None else f"failed: worker exited {code}: {tail[:200]}"
                        got.append({"dataset": dataset, "system": system, "fold": name, "status": reason})
                for record in got:
                    record["run"] = meta["date"]
                records.extend(got)
                print(f"[{time.time() - started:7.1f}s] {dataset:16s} {system:22s} {time.time() - t0:7.1f}s  "
                      f"{_brief(got)}", flush=True)
        if SCALING in datasets:
            scaling = run_scaling(args, Path(tmp), log, started)
    meta["load_after"] = load_snapshot()
    meta["top_after"] = top_processes()
    meta["total_seconds"] = round(time.time() - started, 1)
    meta["fold_limits"] = limits

    json_path = out_dir / "results.json"
    if args.merge and json_path.exists():
        old = json.loads(json_path.read_text())
        redone = {(r["dataset"], r["system"]) for r in records}
        records = [r for r in old.get("records", []) if (r["dataset"], r["system"]) not in redone] + records
        # scaling points this run did not redo are kept (same dataset, system and rank)
        redone_points = {(p["dataset"], p["system"], p.get("rank")) for p in scaling}
        scaling = [
            p for p in old.get("scaling", [])
            if (p["dataset"], p["system"], p.get("rank")) not in redone_points
        ] + scaling
        old_meta = old.get("meta", {})
        keep = ("date", "command", "load_before", "load_after", "total_seconds", "fold_limits")
        meta["earlier_runs"] = [{k: old_meta.get(k) for k in keep}, *old_meta.get("earlier_runs", [])]
    payload = {"meta": meta, "records": records, "scaling": scaling}
    print(f"workers' log: {log}")
    return finish(payload, out_dir, markdown=not args.no_markdown)


def finish(payload: dict[str, Any], out_dir: Path, markdown: bool = True) -> int:
    """Summaries, fits and targets from the records; write results.json, the plot, RESULTS.md."""
    payload["summary"] = summarize(payload["records"])
    payload["scaling_fits"] = scaling_fits(payload["scaling"])
    payload["targets"] = targets(payload)
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    if payload["scaling"]:
        with contextlib.suppress(Exception):
            plot_scaling(payload, out_dir / "scaling.png")
    if markdown:
        write_markdown(payload, out_dir / "RESULTS.md")
    print(f"wrote {json_path} (run time {payload['meta'].get('total_seconds')} s)")
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _fold_names(dataset: str, folds: Sequence[int]) -> list[str]:
    if dataset == "ml-100k":
        return [f"u{k}" for k in folds]
    if dataset.startswith("sim-"):
        return ["holdout"]
    return [f"k{k}" for k in folds]


def _brief(records: list[dict[str, Any]]) -> str:
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return records[0].get("status", "?")[:100] if records else "no records"
    return f"RMSE {np.mean([r['rmse'] for r in ok]):.4f} over {len(ok)} fold(s), fit {np.mean([r['fit_s'] for r in ok]):.2f}s"


def run_scaling(args: argparse.Namespace, tmp: Path, log: Path, started: float) -> list[dict[str, Any]]:
    sizes = [s.strip() for s in args.scaling_sizes.split(",") if s.strip()]
    ranks = [int(r) for r in args.scaling_ranks.split(",") if r.strip()]
    steps = dict(SCALING_STEPS)
    for part in filter(None, (p.strip() for p in args.scaling_steps.split(","))):
        key, value = part.split("=")
        steps[key] = value
    systems = [s.strip() for s in args.scaling_systems.split(",") if s.strip()]
    # generate (and cache) each simulated set once, outside the timed workers
    for size in sizes:
        t0 = time.time()
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); import run; run.simulated('sim-{size}')"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"[{time.time() - started:7.1f}s] simulated sim-{size} ready ({time.time() - t0:.1f}s)", flush=True)
    points = [(size, args.rank) for size in sizes] + [("1m", r) for r in ranks if r != args.rank and "1m" in sizes]
    out: list[dict[str, Any]] = []
    for system in systems:
        for size, rank in points:
            spec = steps.get(f"{system}@{size}@{rank}") or steps.get(f"{system}@{size}") or "5:15"
            task = {"dataset": f"sim-{size}", "system": system, "rank": rank,
                    "steps": [int(x) for x in spec.split(":")],
                    "out": str(tmp / f"scale-{system}-{size}-{rank}.json")}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--scaling-worker", json.dumps(task)]
            t0 = time.time()
            with open(log, "a") as fh:
                fh.write(f"\n=== scaling {system} {size} rank {rank}\n")
                fh.flush()
                try:
                    subprocess.run(cmd, stdout=fh, stderr=fh, timeout=args.scaling_timeout, check=False, start_new_session=True)
                except subprocess.TimeoutExpired:
                    pass
            path = Path(task["out"])
            rec = json.loads(path.read_text()) if path.exists() else {
                "dataset": task["dataset"], "system": system, "rank": rank, "status": "failed or timed out (see run.log)"}
            rec["size"] = size
            out.append(rec)
            per = rec.get("seconds_per_step")
            print(f"[{time.time() - started:7.1f}s] scaling {system:16s} {size:5s} rank {rank:3d} "
                  f"{time.time() - t0:6.1f}s  {rec['status'] if rec['status'] != 'ok' else f'{per:.4f} s/step'}", flush=True)
    return out


# =======================================================================================
# summaries, targets
# =======================================================================================
METRICS = ("rmse", "mae", "cov50", "width50", "cov90", "width90", "fit_s", "predict_s", "ess_per_s")


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean over the folds that ran of each metric, per (dataset, system), and which folds ran."""
    out = []
    keys: list[tuple[str, str]] = []
    for r in records:
        if (r["dataset"], r["system"]) not in keys:
            keys.append((r["dataset"], r["system"]))
    for dataset, system in keys:
        rows = [r for r in records if r["dataset"] == dataset and r["system"] == system]
        ok = [r for r in rows if r.get("status") == "ok"]
        entry: dict[str, Any] = {"dataset": dataset, "system": system, "family": rows[0].get("family"),
                                 "folds_run": [r["fold"] for r in ok]}
        bad = sorted({r["status"] for r in rows if r.get("status") != "ok"})
        entry["status"] = "ok" if not bad else ("; ".join(bad) if not ok else "partial: " + "; ".join(bad))
        for m in METRICS:
            vals = [r[m] for r in ok if r.get(m) is not None]
            if vals:
                entry[m] = float(np.mean(vals))
                if m == "rmse" and len(vals) > 1:
                    entry["rmse_sd"] = float(np.std(vals, ddof=1))
        fits = [r["fit_s"] for r in ok if r.get("fit_s") is not None]
        if fits:
            entry["fit_s_median"] = float(np.median(fits))
        if ok:
            entry["first_fold"], entry["rmse_first_fold"] = ok[0]["fold"], ok[0].get("rmse")
        peaks = [max(r.get("peak_fit_rss_mb") or 0, r.get("peak_predict_rss_mb") or 0) for r in ok]
        if peaks:
            entry["peak_rss_mb"] = float(max(peaks))
        out.append(entry)
    return out


FULL_POSTERIOR = ("bayesmf.gibbs", "bayesmf.gibbs-ard", "bayesmf.gibbs-bpmf", "bayesmf.nuts", "bayesmf.nuts-bpmf",
                  "bayesmf.advi", "bayesmf.advi-bpmf", "bayesmf.nuts-ordinal", "bayesmf.advi-ordinal")


def _rmse_on(records: list[dict[str, Any]], dataset: str, system: str, folds: set[str]) -> float | None:
    vals = [r["rmse"] for r in records if r["dataset"] == dataset and r["system"] == system
            and r.get("status") == "ok" and r["fold"] in folds]
    return float(np.mean(vals)) if len(vals) == len(folds) and vals else None


def targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The brief's targets, each with what was measured and whether it was met (None: not measured)."""
    records, summary = payload["records"], payload["summary"]
    by = {(s["dataset"], s["system"]): s for s in summary}
    out: list[dict[str, Any]] = []
    all5 = {f"u{k}" for k in range(1, 6)}

    # 1. best bayesmf full posterior on ML-100K u1-u5
    cands = [(s["rmse"], s["system"]) for s in summary if s["dataset"] == "ml-100k" and s["system"] in FULL_POSTERIOR
             and set(s["folds_run"]) == all5 and "rmse" in s]
    best = min(cands) if cands else None
    t1: dict[str, Any] = {"target": "ML-100K u1-u5: best bayesmf full posterior mean RMSE <= 0.890", "threshold": 0.890}
    if best:
        t1.update(measured=best[0], system=best[1], met=best[0] <= 0.890)
    else:
        t1.update(measured=None, met=None, note="no bayesmf full-posterior route ran all of u1-u5")
    out.append(t1)
    for peer in ("myfm.gibbs", "surprise.svdpp"):
        t: dict[str, Any] = {"target": f"ML-100K: best bayesmf full posterior RMSE below {peer} on the same folds"}
        if best:
            theirs = _rmse_on(records, "ml-100k", peer, all5)
            t.update(measured=best[0], peer=theirs, system=best[1], met=None if theirs is None else best[0] < theirs)
        else:
            t.update(measured=None, met=None)
        out.append(t)
    # 2. ALS faster than Surprise SVD (fit wall time, ML-100K)
    als, svd = by.get(("ml-100k", "bayesmf.als"), {}), by.get(("ml-100k", "surprise.svd"), {})
    t2: dict[str, Any] = {"target": "ML-100K: bayesmf ALS fit faster than Surprise SVD (median fit seconds over the folds)"}
    if "fit_s_median" in als and "fit_s_median" in svd:
        t2.update(measured=als["fit_s_median"], peer=svd["fit_s_median"], met=als["fit_s_median"] < svd["fit_s_median"],
                  note=f"means {als['fit_s']:.3f} vs {svd['fit_s']:.3f} s; each worker's first ALS fit also loads "
                       "the numba-cached kernels")
    else:
        t2.update(measured=None, met=None)
    out.append(t2)
    # 3. Gibbs within 2x of myFM for the same sweeps and rank
    g, m = by.get(("ml-100k", "bayesmf.gibbs"), {}), by.get(("ml-100k", "myfm.gibbs"), {})
    t3: dict[str, Any] = {"target": f"ML-100K rank 10, {peers.GIBBS_TUNE + peers.GIBBS_DRAWS} sweeps, one chain: bayesmf Gibbs fit time <= 2x myFM's",
                          "threshold": 2.0}
    if "fit_s" in g and "fit_s" in m:
        ratio = g["fit_s"] / m["fit_s"]
        t3.update(measured=ratio, bayesmf_s=g["fit_s"], myfm_s=m["fit_s"], met=ratio <= 2.0,
                  note=f"mean fit {g['fit_s']:.2f} s vs myFM {m['fit_s']:.2f} s")
    else:
        t3.update(measured=None, met=None)
    out.append(t3)
    # 4. 10M: 100 sweeps <= 10 min, <= 8 GiB
    pt = next((s for s in payload["scaling"] if s.get("system") == "bayesmf.gibbs" and s.get("size") == "10m"
               and s.get("rank") == 10 and s.get("status") == "ok"), None)
    t4: dict[str, Any] = {"target": "10M simulated ratings, rank 10: 100 Gibbs sweeps <= 10 min", "threshold": 600.0}
    t5: dict[str, Any] = {"target": "10M simulated ratings, rank 10: Gibbs peak memory <= 8 GiB", "threshold": 8192.0}
    if pt:
        if pt["steps"][1] == 100:
            total = pt["fit_s"][1]
            how = "measured: one fit of 100 sweeps, one chain (initialization included)"
        else:
            total = pt["setup_s"] + 100 * pt["seconds_per_step"]
            how = (f"extrapolated: setup {pt['setup_s']:.1f} s + 100 x {pt['seconds_per_step']:.2f} s per sweep "
                   f"(from runs of {pt['steps'][0]} and {pt['steps'][1]} sweeps)")
        t4.update(measured=total, met=total <= 600.0, note=how)
        t5.update(measured=pt["peak_rss_mb"], met=pt["peak_rss_mb"] <= 8192.0,
                  note=f"peak RSS (MiB) of the worker during the {pt['steps'][1]}-sweep fit, data included")
    else:
        t4.update(measured=None, met=None)
        t5.update(measured=None, met=None)
    out += [t4, t5]
    return out


def scaling_fits(scaling: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Least-squares slope of log(seconds per step) on log(n) at rank 10, and on log(rank) at 1M."""
    fits = []
    for system in sorted({s["system"] for s in scaling}):
        ok = [s for s in scaling if s["system"] == system and s.get("status") == "ok" and s.get("seconds_per_step", 0) > 0]
        for kind, pts in (
            ("n", [(s["n_train"], s["seconds_per_step"]) for s in ok if s["rank"] == 10]),
            ("rank", [(s["rank"], s["seconds_per_step"]) for s in ok if s.get("size") == "1m"]),
            # memory above the interpreter and imports (data + fit), which is what grows with n
            ("n_memory", [(s["n_train"], s["peak_rss_mb"] - s.get("rss_base_mb", 0.0)) for s in ok if s["rank"] == 10]),
        ):
            if len(pts) >= 2:
                x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
                slope = float(np.polyfit(x, y, 1)[0])
                fits.append({"system": system, "vs": kind, "exponent": slope, "points": len(pts)})
    return fits


# =======================================================================================
# rendering
# =======================================================================================
def _f(value: Any, fmt: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def results_table(payload: dict[str, Any], dataset: str) -> list[str]:
    rows = [s for s in payload["summary"] if s["dataset"] == dataset]
    lines = [
        "| system | folds | RMSE | RMSE first fold | MAE | cov 50% | width 50% | cov 90% | width 90% | fit s | predict s | peak RSS MiB | ESS/s | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        folds = ",".join(s["folds_run"]) if s["folds_run"] else "-"
        rmse = _f(s.get("rmse"), ".4f") + (f" ± {s['rmse_sd']:.3f}" if "rmse_sd" in s else "")
        lines.append(
            f"| {s['system']} | {folds} | {rmse} | {_f(s.get('rmse_first_fold'), '.4f')} | {_f(s.get('mae'), '.4f')} | {_f(s.get('cov50'))} | "
            f"{_f(s.get('width50'))} | {_f(s.get('cov90'))} | {_f(s.get('width90'))} | {_f(s.get('fit_s'), '.2f')} | "
            f"{_f(s.get('predict_s'), '.2f')} | {_f(s.get('peak_rss_mb'), '.0f')} | {_f(s.get('ess_per_s'), '.2f')} | "
            f"{s['status'][:120]} |"
        )
    return lines


def scaling_table(payload: dict[str, Any]) -> list[str]:
    lines = [
        "| system | size | ratings (train) | rank | s per sweep / epoch | setup s | peak RSS MiB | of which above imports | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in payload["scaling"]:
        lines.append(
            f"| {s['system']} | {s.get('size', '-')} | {s.get('n_train', '-')} | {s.get('rank')} | "
            f"{_f(s.get('seconds_per_step'), '.4f')} | {_f(s.get('setup_s'), '.1f')} | "
            f"{_f(s.get('peak_rss_mb'), '.0f')} | "
            f"{_f(s['peak_rss_mb'] - s['rss_base_mb'] if 'rss_base_mb' in s and 'peak_rss_mb' in s else None, '.0f')} | "
            f"{s['status'][:100]} |"
        )
    return lines


def write_markdown(payload: dict[str, Any], path: Path) -> None:
    meta = payload["meta"]
    m = meta["machine"]
    lines = [BEGIN, "", "## bayesmf vs peers (generated by `benchmarks/run.py`; do not edit by hand)", ""]
    lines += [
        f"- date (UTC): {meta['date']}; total run time {meta['total_seconds']} s",
        f"- command: `{meta['command']}`",
        *(f"- records kept from an earlier run ({r['date']}, load {_load(r.get('load_before'))} / {_load(r.get('load_after'))}, "
          f"{r.get('total_seconds')} s): `{r['command']}`" for r in meta.get("earlier_runs", [])),
        f"- machine: `{m['uname']}`; CPU: {m['cpu']}; nproc {m['nproc']}; RAM {m['mem_total_gib']} GiB",
        f"- load average (1, 5, 15 min) before: {_load(meta.get('load_before'))}, after: {_load(meta.get('load_after'))}"
        + ("  **(the machine was shared: timings are noisy)**" if _busy(meta) else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v),
        f"- fold limits: {meta.get('fold_limits')}",
        f"- peak memory: {meta['peak_memory_method']}",
        f"- ESS: {meta['ess_method']}",
        f"- intervals: {meta['interval_method']}",
        "",
    ]
    for dataset in dict.fromkeys(s["dataset"] for s in payload["summary"]):
        lines += [f"### {dataset}", "", *results_table(payload, dataset), ""]
    if payload["scaling"]:
        lines += ["### Scaling (simulated, ML-1M/ML-10M shape)", "",
                  "Seconds per step = (time of the long run - time of the short run) / (step difference), "
                  "so setup, JIT compilation and posterior packaging cancel; setup s is the rest.", "",
                  *scaling_table(payload), ""]
        for fit in payload["scaling_fits"]:
            lines.append(f"- {fit['system']}: log-log slope vs {fit['vs']} = {fit['exponent']:.2f} ({fit['points']} points)")
        lines += ["", "![scaling](scaling.png)", ""]
    lines += ["### Targets", "", "| target | measured | peer | met |", "|---|---|---|---|"]
    for t in payload["targets"]:
        met = {True: "yes", False: "**NO**", None: "not measured"}[t.get("met")]
        note = f" ({t['note']})" if t.get("note") else ""
        sysname = f" [{t['system']}]" if t.get("system") else ""
        lines.append(f"| {t['target']}{note} | {_f(t.get('measured'), '.4g')}{sysname} | {_f(t.get('peer'), '.4g')} | {met} |")
    lines += ["", END]
    write_section(path, "\n".join(lines), BEGIN, END)


def _load(load: Any) -> str:
    return "-" if not load else ", ".join(f"{x:.2f}" for x in load)


def _busy(meta: dict[str, Any]) -> bool:
    nproc = meta["machine"].get("nproc") or 1
    return any(load and load[0] > 0.5 * nproc for load in (meta.get("load_before"), meta.get("load_after")))


def plot_scaling(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [s for s in payload["scaling"] if s.get("status") == "ok"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for system in sorted({s["system"] for s in ok}):
        pts = sorted((s["n_train"], s["seconds_per_step"], s["peak_rss_mb"] - s.get("rss_base_mb", 0.0))
                     for s in ok if s["system"] == system and s["rank"] == 10)
        if pts:
            axes[0].loglog([p[0] for p in pts], [p[1] for p in pts], "o-", label=system)
            axes[2].loglog([p[0] for p in pts], [p[2] for p in pts], "o-", label=system)
        rk = sorted((s["rank"], s["seconds_per_step"]) for s in ok if s["system"] == system and s.get("size") == "1m")
        if rk:
            axes[1].loglog([p[0] for p in rk], [p[1] for p in rk], "o-", label=system)
    ranks = sorted({s["rank"] for s in ok if s.get("size") == "1m"})
    if ranks:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        axes[1].set_xticks(ranks)
        axes[1].xaxis.set_major_formatter(ScalarFormatter())
        axes[1].xaxis.set_minor_formatter(NullFormatter())
    slopes = {(f["system"], f["vs"]): f["exponent"] for f in payload["scaling_fits"]}
    axes[0].set(xlabel="training ratings", ylabel="seconds per Gibbs sweep / ADVI epoch", title="time vs n (rank 10)")
    axes[1].set(xlabel="rank", ylabel="seconds per sweep / epoch", title="time vs rank (ML-1M shape)")
    axes[2].set(xlabel="training ratings", ylabel="peak RSS above imports (MiB)", title="memory (data + fit) vs n (rank 10)")
    for ax, kind in zip(axes, ("n", "rank", "n_memory"), strict=True):
        handles, labels = ax.get_legend_handles_labels()
        labels = [f"{lab} (slope {slopes[(lab, kind)]:.2f})" if (lab, kind) in slopes else lab for lab in labels]
        if handles:
            ax.legend(handles, labels, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
