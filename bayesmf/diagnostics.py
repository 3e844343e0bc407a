r"""Convergence diagnostics of a PMF posterior, on the quantities the data identify.

The factors of a PMF are not identified: :math:`U R` and :math:`V R` with any orthogonal
:math:`R` (rotations, sign flips, permutations of the factors) give the same likelihood, and
so does :math:`U \to cU, V \to V / c`. Chains that agree on every prediction may sit at
different rotations, so R-hat of the raw factors is large by construction and says nothing
about convergence. This module monitors what *is* identified instead:

=====================  =========================================================================
quantity               definition
=====================  =========================================================================
``sigma``              noise sd (normal likelihood)
``mean_level``         :math:`\mu + \bar b + \bar c` (biases, normal): a constant shared by
                       :math:`\mu` and the offsets cancels in it, so it is identified while
                       :math:`\mu` and each offset alone are only identified up to that shift;
                       the offsets themselves are monitored through the predictions; with
                       ``factor_prior="per_side"`` plus :math:`\bar U \cdot \bar V`, i.e. the
                       mean of the whole predicted matrix (the side means trade with the offsets)
``sigma_user_bias``,   prior sds of the offsets (hierarchical priors with biases)
``sigma_item_bias``
``sigma_factor``       prior sd of the factors (hierarchical); with ``per_factor_scales`` the
                       sds are *sorted* in each draw (factor labels can permute between chains);
                       with ``factor_prior="per_side"`` not monitored: each side's scale and
                       mean are identified only through their priors (U -> cU, V -> V/c)
``cutpoints_rel``      ordinal cutpoints minus :math:`\bar b + \bar c` (a shift of both cancels)
``norm_UVt``           :math:`\lVert U V^\top \rVert_F = \sqrt{\operatorname{tr}((U^\top U)(V^\top V))}`,
                       rotation invariant, computed without forming :math:`U V^\top`
``pred_train``         mean rating :math:`E[r_{ij}]` of a seeded random sample of training pairs
``pred_test``,         the same on held-out pairs (when ``test`` is given), else on random
``pred_unrated``       pairs that are not in the training data
=====================  =========================================================================

The mean rating is :math:`\eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j` for the identity
link, :math:`\text{low} + (\text{high} - \text{low})\,\mathrm{logistic}(\eta_{ij})` for the
logistic link, and :math:`\sum_k \ell_k P(r_{ij} = \ell_k)` for the ordinal likelihood (where
:math:`\eta` alone is not identified). All are invariant under the symmetries above.

`diagnose` runs R-hat, bulk/tail ESS and MCSE (ArviZ) on them, adds the sampler's own
warnings (NUTS divergences and tree depth, ADVI's ELBO trace) and returns a `Diagnosis`.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesmf._validate import validate_choice, validate_positive, validate_positive_int
from bayesmf.data import RatingsData
from bayesmf.exceptions import ConvergenceWarning

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = [
    "ConvergenceWarning",
    "Diagnosis",
    "diagnose",
    "elbo_convergence",
    "identified_quantities",
    "plot_diagnostics",
]

log = logging.getLogger("bayesmf")

#: quantities that are one number per draw, in display order
SCALAR_QUANTITIES = (
    "sigma",
    "mean_level",
    "sigma_user_bias",
    "sigma_item_bias",
    "norm_UVt",
)
#: methods whose draws are independent draws from an approximation, not a Markov chain
_APPROXIMATE = ("advi",)
_SAMPLE_CHUNK = 256


# ---------------------------------------------------------------------------------------
# identified quantities
# ---------------------------------------------------------------------------------------
def identified_quantities(
    result: FitResult,
    n_pairs: int = 50,
    test: RatingsData | None = None,
    seed: int = 0,
) -> xr.DataTree:
    """Draws of the identified quantities of a fit, as a posterior-like ``DataTree``.

    Parameters
    ----------
    result : FitResult
        A fitted model (any method).
    n_pairs : int
        How many training pairs, and how many held-out (or unrated) pairs, to monitor.
        Fewer are used when fewer exist.
    test : RatingsData, optional
        Held-out ratings sharing the training encoders; their pairs are monitored as
        ``pred_test``. Without it, ``pred_unrated`` monitors random pairs absent from the
        training data.
    seed : int
        Seed of the pair sample (the same seed gives the same pairs).

    Returns
    -------
    xarray.DataTree
        Group ``posterior`` with dims ``(chain, draw, ...)`` holding the quantities listed in
        the module docstring (those the spec has), and ``sample_stats`` copied from the fit
        when present, so ArviZ functions (``az.summary``, ``arviz_plots.plot_rank``) apply.
        The pair variables have a dim ``train_pair`` / ``test_pair`` / ``unrated_pair``
        whose coordinate is ``"<user id>:<item id>"``.

    Raises
    ------
    TypeError
        If ``test`` is not a `RatingsData`.
    ValueError
        If ``test`` does not share the training encoders.
    """
    n_pairs = validate_positive_int("n_pairs", n_pairs)
    train = result.train
    if test is not None:
        if not isinstance(test, RatingsData):
            raise TypeError(f"test must be a RatingsData, got {type(test).__name__}")
        if not (test.users.equals(train.users) and test.items.equals(train.items)):
            raise ValueError(
                "test does not share the training encoders; build both from one split "
                "(or re-encode test with test.with_encoders(train.users, train.items))"
            )
    post = result.idata["posterior"].to_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    spec = result.spec

    def flat(name: str) -> np.ndarray | None:
        if name not in post:
            return None
        values = post[name].values
        return values.reshape((chains * draws, *values.shape[2:]))

    U, V = flat("U"), flat("V")
    if U is None or V is None:
        raise ValueError("not a bayesmf posterior: the posterior group lacks U or V")
    mu, user_bias, item_bias = flat("mu"), flat("user_bias"), flat("item_bias")
    cutpoints = flat("cutpoints")

    out: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    if "sigma" in post:
        out["sigma"] = ((), flat("sigma"))  # type: ignore[assignment]
    # a constant moved between mu, the user offsets and the item offsets (and, for the
    # ordinal likelihood, the cutpoints) leaves the likelihood unchanged
    level = np.zeros(chains * draws) if mu is None else mu.astype(np.float64)
    if user_bias is not None and item_bias is not None:
        level = level + user_bias.mean(axis=1) + item_bias.mean(axis=1)
        if "factor_mean_user" in post:
            # per-side factor means: U_i . m_V acts as a user offset (and m_U . V_j as an
            # item offset), so only the mean of the whole predicted matrix is identified
            level = level + np.einsum(
                "sk,sk->s", U.mean(axis=1, dtype=np.float64), V.mean(axis=1, dtype=np.float64)
            )
        if cutpoints is None:
            out["mean_level"] = ((), level)
    for name in ("sigma_user_bias", "sigma_item_bias"):
        if name in post:
            out[name] = ((), flat(name))  # type: ignore[assignment]
    if "sigma_factor" in post:
        scales = flat("sigma_factor")
        assert scales is not None
        if scales.ndim == 2:
            # factor labels are exchangeable: only the sorted set of scales is identified
            out["sigma_factor"] = (("rank",), np.sort(scales, axis=1)[:, ::-1])
        else:
            out["sigma_factor"] = ((), scales)
    if cutpoints is not None:
        out["cutpoints_rel"] = (("cutpoint",), cutpoints - level[:, None])
    out["norm_UVt"] = ((), _frobenius_norm(U, V))

    rng = np.random.default_rng(seed)
    train_pairs = _sample_rows(rng, train.user_idx, train.item_idx, train.n_items, n_pairs)
    if test is not None:
        other_name, other_dim = "pred_test", "test_pair"
        other_pairs = _sample_rows(rng, test.user_idx, test.item_idx, train.n_items, n_pairs)
    else:
        other_name, other_dim = "pred_unrated", "unrated_pair"
        other_pairs = _sample_unrated(rng, train, n_pairs)
    pair_coords: dict[str, np.ndarray] = {}
    for name, dim, (users, items) in (
        ("pred_train", "train_pair", train_pairs),
        (other_name, other_dim, other_pairs),
    ):
        if len(users) == 0:
            continue
        mean = _mean_rating(result, U, V, mu, user_bias, item_bias, cutpoints, users, items)
        out[name] = ((dim,), mean)
        raw_u = train.users.to_raw(users).tolist()
        raw_i = train.items.to_raw(items).tolist()
        pair_coords[dim] = np.asarray([f"{u}:{i}" for u, i in zip(raw_u, raw_i, strict=True)])

    data_vars = {
        name: (("chain", "draw", *dims), np.asarray(values, dtype=np.float64).reshape(chains, draws, *np.shape(values)[1:]))
        for name, (dims, values) in out.items()
    }
    coords: dict[str, Any] = {"chain": np.arange(chains), "draw": np.arange(draws), **pair_coords}
    if "sigma_factor" in out and out["sigma_factor"][0]:
        coords["rank"] = np.arange(spec.n_factors)
    if "cutpoints_rel" in out:
        coords["cutpoint"] = np.arange(out["cutpoints_rel"][1].shape[1])
    groups = {"posterior": xr.Dataset(data_vars, coords=coords, attrs={"method": result.method})}
    if "sample_stats" in result.idata.children:
        groups["sample_stats"] = result.idata["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def _frobenius_norm(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    r""":math:`\lVert U_s V_s^\top\rVert_F` per sample, via the K x K Gram matrices."""
    out = np.empty(U.shape[0])
    for start in range(0, U.shape[0], _SAMPLE_CHUNK):
        u = U[start : start + _SAMPLE_CHUNK].astype(np.float64)
        v = V[start : start + _SAMPLE_CHUNK].astype(np.float64)
        gram_u = np.matmul(u.transpose(0, 2, 1), u)
        gram_v = np.matmul(v.transpose(0, 2, 1), v)
        # tr(A B) = sum(A * B^T); both Gram matrices are symmetric
        out[start : start + _SAMPLE_CHUNK] = np.einsum("skl,skl->s", gram_u, gram_v)
    return np.sqrt(np.maximum(out, 0.0))


def _sample_rows(
    rng: np.random.Generator, user_idx: np.ndarray, item_idx: np.ndarray, n_items: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` distinct (user, item) pairs of the given ratings (without replacement)."""
    codes = np.unique(np.asarray(user_idx, dtype=np.int64) * n_items + np.asarray(item_idx, dtype=np.int64))
    chosen = np.sort(rng.choice(codes, size=min(n, len(codes)), replace=False))
    return chosen // n_items, chosen % n_items


def _sample_unrated(rng: np.random.Generator, train: RatingsData, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` random (user, item) pairs absent from the training data."""
    n_cells = train.n_users * train.n_items
    rated = np.unique(train.user_idx * train.n_items + train.item_idx)
    n = min(n, n_cells - len(rated))
    if n <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    chosen: np.ndarray = np.empty(0, np.int64)
    while len(chosen) < n:  # rejection sampling; data are sparse, so this loops once or twice
        proposal = rng.integers(0, n_cells, size=2 * n + 16)
        proposal = proposal[~np.isin(proposal, rated)]
        chosen = np.unique(np.concatenate([chosen, proposal]))
    chosen = np.sort(rng.choice(chosen, size=n, replace=False))
    return chosen // train.n_items, chosen % train.n_items


def _mean_rating(
    result: FitResult,
    U: np.ndarray,
    V: np.ndarray,
    mu: np.ndarray | None,
    user_bias: np.ndarray | None,
    item_bias: np.ndarray | None,
    cutpoints: np.ndarray | None,
    users: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    r"""Mean rating :math:`E[r_{ij} \mid \theta]` per sample for index pairs, (sample, pair)."""
    eta = np.einsum("spk,spk->sp", U[:, users].astype(np.float64), V[:, items].astype(np.float64))
    if mu is not None:
        eta += mu[:, None]
    if user_bias is not None:
        eta += user_bias[:, users]
    if item_bias is not None:
        eta += item_bias[:, items]
    from bayesmf.model import mean_rating  # the one definition of each link's mean

    cut = None if cutpoints is None else cutpoints[:, None, :]
    return np.asarray(
        mean_rating(eta, result.spec, result.train.scale, cutpoints=cut, levels=result.train.levels)
    )


# ---------------------------------------------------------------------------------------
# the diagnosis
# ---------------------------------------------------------------------------------------
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
            items = ", ".join(f"{html.escape(str(k))}={html.escape(str(v))}" for k, v in self.sampler.items())
            parts.append(f"<p>sampler: {items}</p>")
        if self.elbo:
            items = ", ".join(
                f"{html.escape(str(k))}={html.escape(str(v))}" for k, v in self.elbo.items() if k != "history"
            )
            parts.append(f"<p>ELBO: {items}</p>")
        return "\n".join(parts)


def diagnose(
    result: FitResult,
    *,
    n_pairs: int = 50,
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
    table = _summary_table(tree)
    approximate = method in _APPROXIMATE
    problems: list[str] = []
    notes: list[str] = []

    if approximate:
        notes.append(
            f"{method.upper()} draws are independent draws from the fitted approximation: "
            "R-hat and ESS do not measure its quality, the ELBO trace does."
        )
    else:
        if chains < 2:
            notes.append("R-hat needs two chains or more: not computed (one chain).")
        else:
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
    head = (
        f"{method}: {chains} chain(s) x {draws} draw(s), {len(table)} identified quantities "
        f"monitored (R-hat <= {rhat_max:g}, ESS >= {ess_min:g})."
    )
    if ok:
        body = "All checks passed."
    else:
        body = "Problems: " + " ".join(problems)
    verdict = " ".join([head, body, *notes])
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


def _summary_table(tree: xr.DataTree) -> pd.DataFrame:
    """ArviZ summary of every monitored scalar, with a ``quantity`` column."""
    import arviz as az

    with warnings.catch_warnings():
        # single chains and constant draws give NaN diagnostics, which we report ourselves
        warnings.simplefilter("ignore", RuntimeWarning)
        table = az.summary(tree, round_to="none")
    table = pd.DataFrame(table)
    labels = table.index.astype(str)
    table.insert(0, "quantity", [label.split("[", 1)[0] for label in labels])
    table.index = pd.Index(labels, name="label")
    keep = ["quantity", "mean", "sd", "r_hat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"]
    return table[[c for c in keep if c in table.columns]]


def _group_summary(table: pd.DataFrame, rhat_max: float, ess_min: float, check_mcmc: bool) -> pd.DataFrame:
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


def elbo_convergence(elbo: np.ndarray, window: float = 0.1, rel_tol: float = 1e-3) -> dict[str, Any]:
    """Tell whether an ELBO trace has flattened.

    Compares the mean ELBO over the last ``window`` fraction of iterations with the mean
    over the window before it. The trace is flat when the change is within
    ``rel_tol * |ELBO|`` or within three standard errors of the iteration-to-iteration noise
    (stochastic ELBO estimates never settle exactly).

    Parameters
    ----------
    elbo : numpy.ndarray
        ELBO per iteration (higher is better); non-finite values are dropped.
    window : float
        Fraction of the trace in each of the two windows compared.
    rel_tol : float
        Relative tolerance.

    Returns
    -------
    dict
        ``iterations``, ``final`` (mean of the last window), ``change`` (last minus previous
        window mean), ``relative_change``, ``noise_se`` and ``flat`` (bool).
    """
    elbo = np.asarray(elbo, dtype=np.float64)
    elbo = elbo[np.isfinite(elbo)]
    n = len(elbo)
    if n < 20:
        return {"iterations": n, "flat": False, "relative_change": float("nan"), "reason": "too few iterations"}
    width = max(int(n * window), 10)
    last, before = elbo[-width:], elbo[-2 * width : -width]
    change = float(last.mean() - before.mean())
    scale = max(abs(float(last.mean())), 1e-12)
    noise_se = float(np.sqrt(last.var(ddof=1) / len(last) + before.var(ddof=1) / len(before)))
    flat = abs(change) <= max(rel_tol * scale, 3.0 * noise_se)
    return {
        "iterations": n,
        "final": float(last.mean()),
        "change": change,
        "relative_change": abs(change) / scale,
        "noise_se": noise_se,
        "flat": bool(flat),
    }


# ---------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------
def plot_diagnostics(
    result: FitResult,
    kind: Literal["trace", "rank"] = "trace",
    *,
    var_names: Sequence[str] | None = None,
    n_pairs: int = 3,
    test: RatingsData | None = None,
    seed: int = 0,
    **plot_kwargs: Any,
) -> Any:
    """Trace or rank plots of the identified quantities (`identified_quantities`).

    Parameters
    ----------
    result : FitResult
        A sampled fit (a MAP estimate has no trace to plot).
    kind : {"trace", "rank"}
        ``"trace"``: `arviz_plots.plot_trace_dist` (densities and traces per chain);
        ``"rank"``: `arviz_plots.plot_rank` (rank ECDFs per chain; uniform when chains agree).
    var_names : sequence of str, optional
        Quantities to plot (default: all, with ``n_pairs`` predicted ratings of each kind).
    n_pairs : int
        Predicted ratings of training and held-out/unrated pairs shown.
    test, seed
        See `identified_quantities`.
    **plot_kwargs
        Passed to the arviz_plots function (``backend``, ``figure_kwargs``, ...).

    Returns
    -------
    arviz_plots.PlotCollection
        Save with ``.savefig(path)``.
    """
    import arviz_plots as azp

    validate_choice("kind", kind, ("trace", "rank"))
    if result.n_chains * result.n_draws <= 1:
        raise ValueError(f"method={result.method!r} gave a point estimate (one draw): nothing to plot")
    tree = identified_quantities(result, n_pairs=n_pairs, test=test, seed=seed)
    names = list(tree["posterior"].data_vars)
    if var_names is not None:
        unknown = [v for v in var_names if v not in names]
        if unknown:
            raise ValueError(f"unknown quantities {unknown}; available: {names}")
        names = list(var_names)
    if kind == "trace":
        return azp.plot_trace_dist(tree, var_names=names, **plot_kwargs)
    return azp.plot_rank(tree, var_names=names, **plot_kwargs)
