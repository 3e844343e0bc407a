"""Convergence diagnostics of a PMF posterior: the verdict (`diagnose`, `Diagnosis`).

`diagnose` runs R-hat, bulk/tail ESS and MCSE (ArviZ's definitions) on the quantities the data identify
(`bayesmf.identified.identified_quantities`: the raw factors are not identified, so their
R-hat says nothing), adds the sampler's own warnings (NUTS divergences and tree depth,
ADVI's ELBO trace, `bayesmf.elbo.elbo_convergence`) and returns a `Diagnosis`: a verdict,
one row per monitored scalar and one per quantity.

This module also re-exports what the diagnostics are used with, so that
``from bayesmf.diagnostics import identified_quantities, elbo_convergence,
plot_diagnostics, ConvergenceWarning`` works: the trace and rank plots are drawing code
(`bayesmf.convergence_plots`, also re-exported by `bayesmf.plots`).
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmf._validate import validate_positive
from bayesmf.convergence_plots import plot_diagnostics
from bayesmf.convergence_stats import convergence_table
from bayesmf.data import RatingsData
from bayesmf.elbo import elbo_convergence
from bayesmf.exceptions import ConvergenceWarning
from bayesmf.identified import SCALAR_QUANTITIES as SCALAR_QUANTITIES
from bayesmf.identified import identified_quantities
from bayesmf.monitored_pairs import DEFAULT_N_PAIRS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bayesmf.results import FitResult

__all__ = [
    "ConvergenceWarning",
    "Diagnosis",
    "chain_notes",
    "diagnose",
    "elbo_convergence",
    "identified_quantities",
    "mcmc_problems",
    "plot_diagnostics",
    "summary_table",
    "verdict_info",
    "verdict_text",
]

#: methods whose draws are independent draws from an approximation, not a Markov chain
_APPROXIMATE = ("advi",)


@dataclass(frozen=True)
class Diagnosis:
    """The outcome of `diagnose`.

    Attributes
    ----------
    ok : bool or None
        True if every check passed, False if one failed, None when there was nothing to
        check (a MAP point estimate).
    verdict : str
        One paragraph saying what passed and what failed.
    table : pandas.DataFrame
        One row per monitored scalar (``quantity``, ``label``, ``mean``, ``sd``, ``r_hat``,
        ``ess_bulk``, ``ess_tail``, ``mcse_mean``, ``mcse_sd``), indexed by label.
    summary : pandas.DataFrame
        One row per quantity: how many scalars, the worst R-hat, the smallest bulk and tail
        ESS, and whether it passed.
    sampler : dict
        NUTS statistics (``divergences``, ``mean_tree_depth``, ``max_tree_depth``,
        ``max_depth_hits``), empty for other methods.
    elbo : dict
        ADVI convergence (see `elbo_convergence`), empty for other methods.
    problems : list of str
        Each failed check, in words.
    method : str
        The inference route diagnosed.
    thresholds : dict
        ``rhat_max`` and ``ess_min`` used.
    """

    ok: bool | None
    verdict: str
    table: pd.DataFrame
    summary: pd.DataFrame
    sampler: dict[str, Any] = field(default_factory=dict)
    elbo: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    method: str = ""
    thresholds: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __repr__(self) -> str:
        status = {True: "OK", False: "PROBLEMS", None: "NOT APPLICABLE"}[self.ok]
        lines = [f"Diagnosis({self.method}): {status}", self.verdict]
        if not self.summary.empty:
            lines += ["", self.summary.to_string(float_format=lambda x: f"{x:.3g}")]
        if self.sampler:
            lines += ["", "sampler: " + ", ".join(f"{k}={v}" for k, v in self.sampler.items())]
        if self.elbo:
            shown = {k: v for k, v in self.elbo.items() if k != "history"}
            lines += ["", "ELBO: " + ", ".join(f"{k}={v}" for k, v in shown.items())]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        status = {True: "OK", False: "PROBLEMS", None: "NOT APPLICABLE"}[self.ok]
        colour = {True: "#1a7f37", False: "#cf222e", None: "#57606a"}[self.ok]
        parts = [
            f"<p><b>Diagnosis ({html.escape(self.method)}): "
            f"<span style='color:{colour}'>{status}</span></b></p>",
            f"<p>{html.escape(self.verdict)}</p>",
        ]
        if not self.summary.empty:
            parts.append(self.summary.to_html(float_format=lambda x: f"{x:.3g}"))
        if self.sampler:
            items = ", ".join(
                f"{html.escape(str(k))}={html.escape(str(v))}" for k, v in self.sampler.items()
            )
            parts.append(f"<p>sampler: {items}</p>")
        if self.elbo:
            items = ", ".join(
                f"{html.escape(str(k))}={html.escape(str(v))}"
                for k, v in self.elbo.items()
                if k != "history"
            )
            parts.append(f"<p>ELBO: {items}</p>")
        return "\n".join(parts)


def diagnose(
    result: FitResult,
    *,
    n_pairs: int = DEFAULT_N_PAIRS,
    test: RatingsData | None = None,
    seed: int = 0,
    rhat_max: float = 1.01,
    ess_min: float = 400,
    warn: bool = True,
) -> Diagnosis:
    r"""Check convergence of a fit on its identified quantities.

    Checks, for MCMC (Gibbs, NUTS):

    - rank-normalized split R-hat :math:`\le` ``rhat_max`` for every monitored scalar
      (needs two chains or more; with one chain it is reported as not computable);
    - bulk and tail ESS :math:`\ge` ``ess_min`` (Vehtari et al. 2021);
    - no divergent NUTS transitions, and how often the tree hit its maximum depth.

    For ADVI the draws are independent draws from the fitted approximation, so R-hat and
    ESS say nothing about the fit: the check is that the ELBO trace has flattened
    (`elbo_convergence`). A MAP estimate (one draw) has nothing to diagnose.

    Parameters
    ----------
    result : FitResult
        The fit.
    n_pairs, test, seed
        Which predictions to monitor; see `identified_quantities`.
    rhat_max : float
        Largest acceptable R-hat (1.01 as recommended by Vehtari et al. 2021).
    ess_min : float
        Smallest acceptable bulk and tail ESS (400, i.e. 100 per chain for 4 chains).
    warn : bool
        Emit a `ConvergenceWarning` when a check fails.

    Returns
    -------
    Diagnosis

    References
    ----------
    Vehtari, Gelman, Simpson, Carpenter, Bürkner (2021). Rank-normalization, folding, and
    localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis.
    """
    rhat_max = float(validate_positive("rhat_max", rhat_max))  # type: ignore[arg-type]
    if rhat_max < 1.0:
        raise ValueError(f"rhat_max must be >= 1, got {rhat_max!r}")
    ess_min = float(validate_positive("ess_min", ess_min))  # type: ignore[arg-type]
    thresholds = {"rhat_max": rhat_max, "ess_min": ess_min}
    method = result.method
    chains = int(result.idata["posterior"].sizes["chain"])
    draws = int(result.idata["posterior"].sizes["draw"])
    if chains * draws <= 1:
        verdict = (
            f"method={method!r} gave a point estimate (one draw): there is no posterior sample "
            "to diagnose. Fit with method='gibbs', 'nuts' or 'advi' for uncertainty."
        )
        empty = pd.DataFrame()
        return Diagnosis(None, verdict, empty, empty, method=method, thresholds=thresholds)

    tree = identified_quantities(result, n_pairs=n_pairs, test=test, seed=seed)
    table = summary_table(tree)
    approximate = method in _APPROXIMATE
    problems: list[str] = []
    notes: list[str] = []

    if approximate:
        notes.append(
            f"{method.upper()} draws are independent draws from the fitted approximation: "
            "R-hat and ESS do not measure its quality, the ELBO trace does."
        )
    else:
        notes += chain_notes(chains)
        problems += mcmc_problems(table, chains, rhat_max, ess_min)

    sampler = _nuts_stats(result)
    if sampler.get("divergences", 0) > 0:
        problems.append(
            f"{sampler['divergences']} divergent transition(s): the sampler missed part of the "
            "posterior; raise target_accept or reparametrize."
        )
    if sampler.get("max_depth_hits", 0) > 0:
        notes.append(
            f"{sampler['max_depth_hits']} transition(s) hit the maximum tree depth (efficiency, "
            "not validity)."
        )

    elbo: dict[str, Any] = {}
    if "elbo" in result.info:
        elbo = elbo_convergence(np.asarray(result.info["elbo"], dtype=np.float64))
        if "converged" in result.info:
            elbo["callback_converged"] = bool(result.info["converged"])
        if approximate and not elbo["flat"]:
            problems.append(
                f"the ELBO is still changing at the end (relative change {elbo['relative_change']:.2g} "
                "over the last windows): run more iterations or raise the learning rate."
            )
    elif approximate:
        notes.append("no ELBO history in result.info: convergence of the fit not checked.")

    ok = not problems
    verdict = verdict_text(method, chains, draws, len(table), thresholds, problems, notes)
    summary = _group_summary(table, rhat_max, ess_min, check_mcmc=not approximate and chains > 1)
    if warn and not ok:
        warnings.warn(verdict, ConvergenceWarning, stacklevel=2)
    return Diagnosis(
        ok,
        verdict,
        table,
        summary,
        sampler=sampler,
        elbo=elbo,
        problems=problems,
        method=method,
        thresholds=thresholds,
    )


def chain_notes(chains: int) -> list[str]:
    """Return the notes a verdict on ``chains`` MCMC chains carries (R-hat needs two)."""
    return ["R-hat needs two chains or more: not computed (one chain)."] if chains < 2 else []


def verdict_text(
    method: str,
    chains: int,
    draws: int,
    quantities: int,
    thresholds: dict[str, float],
    problems: Sequence[str],
    notes: Sequence[str] = (),
) -> str:
    """Word a verdict as `diagnose` does: what was judged, then "All checks passed." or the problems, then notes."""
    head = (
        f"{method}: {chains} chain(s) x {draws} draw(s), {quantities} identified quantities "
        f"monitored (R-hat <= {thresholds['rhat_max']:g}, ESS >= {thresholds['ess_min']:g})."
    )
    body = "Problems: " + " ".join(problems) if problems else "All checks passed."
    return " ".join([head, body, *notes])


def verdict_info(result: FitResult) -> dict[str, Any]:
    """``{"verdict_ok": ..., "verdict": ...}`` of `diagnose` with its defaults, without warning.

    Every sampling route (Gibbs of fixed length, NUTS, ADVI) puts this into its result's
    ``info``, so a fit carries its own verdict wherever it goes (a run of the Gibbs sampler
    until converged records the verdict its stopping rule reached instead, in the same words:
    `verdict_text`).
    """
    diagnosis = diagnose(result, warn=False)
    return {"verdict_ok": diagnosis.ok, "verdict": diagnosis.verdict}


def mcmc_problems(table: pd.DataFrame, chains: int, rhat_max: float, ess_min: float) -> list[str]:
    """List the failed MCMC checks of a `summary_table`, in words (empty when all pass).

    R-hat (two chains or more) at most ``rhat_max``; bulk and tail ESS at least ``ess_min``.
    `diagnose` and the Gibbs sampler's stopping rule (`bayesmf.inference.gibbs.monitor`)
    judge with this one function.
    """
    problems = []
    if chains >= 2:
        bad = table[table["r_hat"] > rhat_max]
        if len(bad):
            worst = bad["r_hat"].idxmax()
            problems.append(
                f"R-hat > {rhat_max:g} for {len(bad)} of {len(table)} monitored quantities "
                f"(worst {worst}: {bad['r_hat'].max():.3f}); chains disagree, run longer or "
                "check the model."
            )
    for column, kind in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        bad = table[table[column] < ess_min]
        if len(bad):
            worst = bad[column].idxmin()
            problems.append(
                f"{kind} ESS < {ess_min:g} for {len(bad)} of {len(table)} monitored quantities "
                f"(worst {worst}: {bad[column].min():.0f}); draw more samples."
            )
    if table[["r_hat", "ess_bulk", "ess_tail"]].isna().all(axis=None) and chains > 1:
        problems.append("R-hat and ESS could not be computed (constant or non-finite draws).")
    return problems


def summary_table(tree: xr.DataTree) -> pd.DataFrame:
    """Mean, sd, R-hat, bulk and tail ESS and MCSE of every monitored scalar, with a ``quantity`` column.

    The numbers of ``az.summary(tree, round_to="none")``, computed for all scalars at once
    (`bayesmf.convergence_stats.convergence_table`; ``tests/test_diagnostics.py`` checks them
    against ``az.summary``).
    """
    return convergence_table(tree["posterior"].to_dataset())


def _group_summary(
    table: pd.DataFrame, rhat_max: float, ess_min: float, check_mcmc: bool
) -> pd.DataFrame:
    grouped = table.groupby("quantity", sort=False)
    summary = pd.DataFrame(
        {
            "n": grouped.size(),
            "max_r_hat": grouped["r_hat"].max(),
            "min_ess_bulk": grouped["ess_bulk"].min(),
            "min_ess_tail": grouped["ess_tail"].min(),
        }
    )
    if check_mcmc:
        summary["ok"] = (
            (summary["max_r_hat"] <= rhat_max)
            & (summary["min_ess_bulk"] >= ess_min)
            & (summary["min_ess_tail"] >= ess_min)
        )
    return summary


def _nuts_stats(result: FitResult) -> dict[str, Any]:
    """Divergences and tree depth from ``sample_stats`` (PyMC and nutpie names)."""
    if "sample_stats" not in result.idata.children:
        return {}
    stats = result.idata["sample_stats"].to_dataset()
    out: dict[str, Any] = {}
    if "diverging" in stats:
        out["divergences"] = int(np.asarray(stats["diverging"].values, dtype=bool).sum())
    depth_name = "tree_depth" if "tree_depth" in stats else "depth" if "depth" in stats else None
    if depth_name is not None:
        depth = np.asarray(stats[depth_name].values, dtype=np.float64)
        out["mean_tree_depth"] = round(float(depth.mean()), 2)
        out["max_tree_depth"] = int(depth.max())
    for name in ("reached_max_treedepth", "maxdepth_reached"):
        if name in stats:
            out["max_depth_hits"] = int(np.asarray(stats[name].values, dtype=bool).sum())
    return out
