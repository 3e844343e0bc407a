"""The demo: MAP vs the full posterior on a split, written up as Markdown with PNG figures.

`run_demo` is what ``make demo`` / ``bayesmf demo`` run. It computes everything through the
public API (fit, predict, metrics, diagnostics, plots) so the report's numbers are the ones
a user gets by calling those functions directly; ``report.json`` holds them machine-readably.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["compare_fits", "run_demo", "run_info", "versions"]

log = logging.getLogger("bayesmf")

_PROBS = (0.5, 0.8, 0.9, 0.95)


def versions() -> dict[str, str]:
    """Versions of bayesmf and the packages it stands on."""
    out = {"python": platform.python_version()}
    for name in ("bayesmf", "pymc", "pytensor", "arviz", "numpy", "pandas", "xarray", "numba", "nutpie"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_info(steps: Mapping[str, float] | None = None) -> str:
    """How a run was made, as text: versions, CPU, load average, and the wall seconds of each step.

    The closing cell of every notebook prints it: ``print(run_info(STEPS))``.

    Parameters
    ----------
    steps : mapping of str to float, optional
        Wall seconds of each step of the run, by name, in the order to show.

    Returns
    -------
    str
        A line of versions (`versions`), a line with the CPU, its cores, the 1-minute load
        average now and ``NUMBA_NUM_THREADS``, then one line per step (seconds to 0.1).
    """
    lines = [
        ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average at the end {os.getloadavg()[0]:.1f}; "
        f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}",
    ]
    if steps:
        lines.append(pd.Series(dict(steps), name="seconds", dtype=float).round(1).to_string())
    return "\n".join(lines)


def compare_fits(
    results: dict[str, Any],
    test: Any,
    probs: tuple[float, ...] = _PROBS,
    *,
    calibration: pd.DataFrame | None = None,
    progressbar: bool = True,
) -> pd.DataFrame:
    """One row per fit: test RMSE, MAE, coverage of the central intervals, width of the 90 % one, fit time.

    Parameters
    ----------
    results : dict of str to FitResult
        Fits to compare, by display name.
    test : RatingsData
        Held-out ratings sharing the fits' encoders.
    probs : tuple of float
        Interval levels for which coverage is reported.
    calibration : pandas.DataFrame, optional
        `bayesmf.metrics.calibration_table` of these fits on ``test`` at (at least) ``probs``,
        when already computed: its coverage and widths are reused instead of summarizing
        every pair's predictive again (the costly step on a posterior of many draws).
    progressbar : bool
        Show progress bars while predicting.
    """
    from bayesmf import metrics

    table = calibration if calibration is not None else metrics.calibration_table(results, test, probs=probs, progressbar=progressbar)
    rows = []
    for name, result in results.items():
        row: dict[str, Any] = {"fit": name, "method": result.method}
        pred = result.predict(test, prob=0.5, progressbar=progressbar)
        row["RMSE"] = metrics.rmse(pred["rating"], pred["mean"])
        row["MAE"] = metrics.mae(pred["rating"], pred["mean"])
        own = table[table["model"] == name]
        for prob in probs:
            at = own[np.isclose(own["prob"].to_numpy(dtype=float), prob)]
            if len(at) != 1:
                raise ValueError(f"calibration holds no single row for fit {name!r} at prob {prob:g}")
            row[f"coverage {prob:.0%}"] = float(at["coverage"].iloc[0])
            if prob == 0.9:
                row["width 90%"] = float(at["width"].iloc[0])
        row["fit seconds"] = float(result.info.get("fit_seconds", float("nan")))
        rows.append(row)
    return pd.DataFrame(rows).set_index("fit")


def _baselines(train: Any, test: Any) -> pd.DataFrame:
    from bayesmf import metrics

    rows = []
    for name, fn in (
        ("global mean", metrics.global_mean_baseline),
        ("mean of means", metrics.mean_of_means_baseline),
    ):
        pred = fn(train, test)
        rows.append({"fit": name, "method": "baseline", "RMSE": metrics.rmse(test.rating, pred), "MAE": metrics.mae(test.rating, pred)})
    return pd.DataFrame(rows).set_index("fit")


def _titles(dataset: str, data_dir: str | None) -> pd.DataFrame | None:
    """Item titles for the report, or None when the item table cannot be read."""
    from bayesmf.datasets import movielens_items

    try:
        items = movielens_items(dataset, data_dir=data_dir, download=False)
    except (OSError, ValueError) as exc:
        log.info("no item titles: %s", exc)
        return None
    return items[["item", "title"]]


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    """Markdown table with floats to 3 decimals and integers as integers."""
    return frame.to_markdown(index=index, floatfmt=".3f", intfmt="d")


def _pick_user(train: Any, test: Any, requested: str | None) -> Any:
    """Return the requested user, else the test user with the median number of training ratings."""
    if requested is not None:
        for raw in train.users.classes.tolist():
            if str(raw) == str(requested):
                return raw
        raise ValueError(f"--user {requested!r} is not a user of the training data")
    counts = train.user_counts()
    in_test = np.unique(test.user_idx)
    candidates = in_test[counts[in_test] > 0]
    order = candidates[np.argsort(counts[candidates], kind="stable")]
    return train.users.to_raw([order[len(order) // 2]])[0]


def run_demo(
    out: str | os.PathLike[str] = "demo-report",
    dataset: str = "ml-latest-small",
    data_dir: str | None = None,
    n_factors: int = 10,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    thin: int | None = None,
    seed: int = 2026,
    user: str | None = None,
    overwrite: bool = False,
    progressbar: bool = True,
    report_draws: int | None = 250,
) -> Path:
    """Fit MAP (ALS) and the full posterior (Gibbs), compare them, and write a report.

    Parameters
    ----------
    out : path
        Folder to write ``report.md``, ``report.json`` and the figures into. An existing
        report there is kept unless ``overwrite=True``.
    dataset : {"ml-latest-small", "ml-100k"}
        Bundled ml-latest-small (seeded 80/20 split by user) or ML-100K's canonical u1 split.
    data_dir : str, optional
        Where ml-100k lives (else ``$BAYESMF_DATA_DIR``, the cache, or a download).
    n_factors : int
        Rank.
    draws, tune, chains, thin : int, optional
        Gibbs settings; ``None`` keeps the sampler's defaults. A larger ``thin`` runs
        longer chains for the same stored draws, when the verdict asks for more.
    seed : int
        Seeds the split and both fits.
    user : str, optional
        Raw id of the user whose recommendations are shown.
    overwrite : bool
        Replace an existing report.
    progressbar : bool
        Show progress bars.
    report_draws : int or None
        Draws per chain, evenly spaced (`bayesmf.FitResult.thin`), behind the report's
        predictions, intervals and recommendations; the verdict judges every draw. None: every
        draw. On the default run (ml-latest-small, 962 draws per chain) 250 moved no coverage
        by more than 0.0005 (a seventh of its standard error) nor any mean width by more than
        0.001, and took the intervals and comparison from 39 s to 9 s
        (``benchmarks/bench_report_draws.py``; ``benchmarks/RESULTS.md``, "`make demo` wall time").

    Returns
    -------
    pathlib.Path
        Path of ``report.md``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from bayesmf import plots
    from bayesmf._validate import validate_positive_int
    from bayesmf.datasets import load_movielens
    from bayesmf.diagnostics import ConvergenceWarning
    from bayesmf.spec import PMF
    from bayesmf.split import train_test_split

    if report_draws is not None:
        report_draws = validate_positive_int("report_draws", report_draws)
    out = Path(out)
    if (out / "report.md").exists() and not overwrite:
        raise FileExistsError(f"{out / 'report.md'} exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out={str(out)!r} is a file, not a folder")
    # made before any fitting: a folder that cannot be made fails now, not after the fits
    out.parent.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    if dataset == "ml-100k":
        train, test = load_movielens("ml-100k", split="u1", data_dir=data_dir)
        split_note = "ML-100K canonical split u1 (80,000 / 20,000)"
    else:
        data = load_movielens(dataset)
        train, test = train_test_split(data, test_size=0.2, seed=seed, by="user")
        split_note = f"{dataset}, 20 % of each user's ratings held out (seed {seed})"
    log.info("data: %r train, %r test", train, test)

    log.info("fitting MAP by ALS (fixed priors)")
    map_fit = PMF(n_factors=n_factors, priors="fixed").fit(
        train, method="als", random_seed=seed, progressbar=progressbar
    )
    gibbs_kwargs = {k: v for k, v in {"draws": draws, "tune": tune, "chains": chains, "thin": thin}.items() if v is not None}
    log.info("sampling the hierarchical posterior by Gibbs")
    post_fit = PMF(n_factors=n_factors).fit(
        train, method="gibbs", random_seed=seed, progressbar=progressbar, **gibbs_kwargs
    )
    with warnings.catch_warnings():
        # the verdict goes into the report and the log; no need to warn twice
        warnings.simplefilter("ignore", ConvergenceWarning)
        diagnosis = post_fit.diagnose(test=test)
    log.log(logging.INFO if diagnosis.ok else logging.WARNING, "diagnostics: %s", diagnosis.verdict)
    shown_fit = post_fit if report_draws is None else post_fit.thin(draws=report_draws)
    fits = {"MAP (ALS)": map_fit, "posterior (Gibbs)": shown_fit}

    from bayesmf.metrics import calibration_table

    calibration = calibration_table(fits, test, probs=(0.1, 0.2, 0.3, 0.4, *_PROBS, 0.99), progressbar=progressbar)
    comparison = pd.concat(
        [_baselines(train, test), compare_fits(fits, test, calibration=calibration, progressbar=progressbar)]
    )
    shown_user = _pick_user(train, test, user)
    recs = shown_fit.recommend(shown_user, n=10, prob=0.9)
    titles = _titles(dataset, data_dir)
    if titles is not None:
        recs = recs.merge(titles, on="item", how="left")

    tmp = Path(tempfile.mkdtemp(prefix=".bayesmf-report-", dir=out.parent))
    try:
        fig, ax = plt.subplots(figsize=(5, 5))
        plots.plot_calibration(calibration, ax=ax)
        fig.savefig(tmp / "calibration.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plots.plot_recommendations(shown_fit, shown_user, n=10, prob=0.9, ax=ax)
        fig.savefig(tmp / "recommendations.png", dpi=110, bbox_inches="tight")
        plt.close(fig)

        elapsed = time.perf_counter() - t_start
        draws_note = (
            f"The posterior's predictions, intervals and recommendations use {shown_fit.n_draws} of its "
            f"{post_fit.n_draws} draws per chain, evenly spaced; the verdict below judges all of them."
            if shown_fit.n_draws < post_fit.n_draws else ""
        )
        facts = {
            "dataset": dataset,
            "split": split_note,
            "n_factors": n_factors,
            "seed": seed,
            "user": str(shown_user),
            "comparison": json.loads(comparison.reset_index().to_json(orient="records")),
            "calibration": json.loads(calibration.to_json(orient="records")),
            "diagnosis_ok": bool(diagnosis.ok),
            "gibbs": {k: post_fit.info.get(k) for k in ("draws", "tune", "chains", "fit_seconds")},
            "report_draws_per_chain": shown_fit.n_draws,
            "seconds": elapsed,
            "versions": versions(),
        }
        (tmp / "report.json").write_text(json.dumps(facts, indent=2, default=str))
        (tmp / "report.md").write_text(
            _markdown(split_note, train, test, comparison, calibration, diagnosis, shown_user, recs, elapsed, draws_note)
        )
        if out.exists():
            if not overwrite:
                raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out / "report.md"


def _markdown(
    split_note: str,
    train: Any,
    test: Any,
    comparison: pd.DataFrame,
    calibration: pd.DataFrame,
    diagnosis: Any,
    user: Any,
    recs: pd.DataFrame,
    elapsed: float,
    draws_note: str = "",
) -> str:
    rec_cols = [c for c in ("rank", "item", "title", "mean", "sd", "lower", "upper", "p_at_least") if c in recs.columns]
    post = comparison.loc["posterior (Gibbs)"]
    mapr = comparison.loc["MAP (ALS)"]
    lines = [
        "# bayesmf demo: MAP vs the full posterior",
        "",
        f"Data: {split_note}. Train {train.n_ratings:,} ratings, test {test.n_ratings:,}; "
        f"{train.n_users:,} users, {train.n_items:,} items. Total run time {elapsed:.0f} s. {draws_note}".rstrip(),
        "",
        "## Held-out accuracy and interval coverage",
        "",
        _table(comparison),
        "",
        f"The full posterior's test RMSE is {post['RMSE']:.3f} against {mapr['RMSE']:.3f} for MAP. "
        f"Its 90 % predictive intervals cover {post['coverage 90%']:.1%} of held-out ratings; "
        f"MAP's plug-in intervals (noise only, no parameter uncertainty) cover {mapr['coverage 90%']:.1%}.",
        "",
        "## Calibration",
        "",
        "![calibration](calibration.png)",
        "",
        _table(calibration, index=False),
        "",
        f"## Recommendations for user {user} (posterior, 90 % intervals)",
        "",
        "![recommendations](recommendations.png)",
        "",
        _table(recs[rec_cols], index=False),
        "",
        "## Diagnostics (Gibbs, identified quantities only)",
        "",
        f"Verdict: **{diagnosis.verdict}**",
        "",
        "Worst R-hat and smallest ESS per group of monitored quantities (predicted ratings "
        "are U_i.V_j plus biases for a fixed sample of training and held-out pairs; raw "
        "factors are not identified and are not diagnosed):",
        "",
        _table(diagnosis.summary),
        "",
    ]
    return "\n".join(lines)
