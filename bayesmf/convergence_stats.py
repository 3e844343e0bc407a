r"""Rank-normalized split R-hat and bulk and tail ESS of many scalars at once.

The same statistics as ArviZ's (``arviz_stats``: ``rhat(method="rank")``, ``ess(method="bulk")``
and ``ess(method="tail")``; Vehtari, Gelman, Simpson, Carpenter and Bürkner 2021), computed for
a stack of scalars ``(quantity, chain, draw)`` in a few array operations instead of one Python
call per scalar. The Gibbs sampler's stopping rule (`bayesmf.inference.gibbs.monitor`) looks at
a hundred or so scalars every few hundred sweeps, and ArviZ's per-scalar loop cost it a quarter
of a second to half a second per look (``benchmarks/RESULTS.md``, "Gibbs until converged").

For each scalar, as ArviZ computes it:

- the chains are split in halves (an odd draw in the middle is dropped);
- bulk: the split draws are replaced by the normal scores of their pooled ranks
  (average ranks for ties, Blom's offset 3/8); R-hat is the classic potential scale reduction
  of those scores, and the bulk ESS their effective sample size by Geyer's initial monotone
  sequence on FFT autocovariances;
- rank R-hat is the larger of the bulk R-hat and the R-hat of the folded draws
  :math:`|x - \text{median}|`, rank-normalized the same way;
- tail ESS is the smaller of the ESS of the indicators :math:`x \le q_{p}` and
  :math:`x \le q_{1 - p}` (quantiles of all draws, numpy's linear rule), split as above.

`convergence_table` gives, for every scalar of a posterior-like dataset, the columns of
``az.summary`` that the diagnostics read (mean, sd, R-hat, ESS, MCSE), labelled as
``az.summary`` labels them: `bayesmf.diagnostics.summary_table` and the stopping rule's looks
(`bayesmf.inference.gibbs.monitor`, through its parts `labelled_stack` and `stacked_table`,
to judge some of the scalars only) are built on it: 3 times faster than ``az.summary``'s loop
over the scalars on ML-100K u1's 405 monitored quantities, 33 times on a small fit's
(``benchmarks/RESULTS.md``, "What a verdict costs").

`mcse_mean_sd` gives the Monte Carlo standard errors of the mean and of the sd as
``az.summary`` does (the ESS of the split raw draws, and of their squared deviations).

A scalar with a NaN, fewer than 4 draws, or (R-hat) fewer than 2 chains gets NaN. Draws that
do not vary give an ESS of the number of split draws and a NaN R-hat, as in ArviZ.
``tests/test_convergence_stats.py`` checks every value against ArviZ's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
from scipy import special, stats
from scipy.fft import next_fast_len

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["average_ranks", "convergence_table", "ess_bulk", "ess_tail", "labelled_stack", "mcse_mean_sd", "rank_rhat", "rhat_ess", "stacked_table"]

#: Blom's offset in the normal scores of ranks
_BLOM = 3 / 8


def _valid(x: np.ndarray, min_chains: int) -> np.ndarray:
    """(Q,) True where a scalar can be judged: no NaN, at least 4 draws and ``min_chains`` chains."""
    enough = x.shape[1] >= min_chains and x.shape[2] >= 4
    return ~np.isnan(x).any(axis=(1, 2)) & enough


def _split(x: np.ndarray) -> np.ndarray:
    """(Q, C, N) -> (Q, 2C, N // 2): first halves of the chains, then their last halves."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1)


def average_ranks(flat: np.ndarray) -> np.ndarray:
    """Ranks 1..n along each row of ``flat`` (Q, n), ties given their average: ``scipy.stats.rankdata``'s.

    One sort of every row, then each run of equal values gets the mean of its positions, all
    rows at once (scipy's ``rankdata(..., axis=1)`` took twice as long on a verdict's 405 x
    2,564 draws). Rows holding a NaN are left to scipy (NaN throughout, its ``propagate``).
    """
    q, n = flat.shape
    order = np.argsort(flat, axis=1)  # ties get their average rank, so the sort need not be stable
    ordered = np.take_along_axis(flat, order, axis=1)
    new_run = np.ones((q, n), dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new_run[:, 1:])
    starts = np.flatnonzero(new_run)  # every row opens a run, so no run spans two rows
    ends = np.append(starts[1:], q * n) - 1
    mean_rank = 0.5 * (starts + ends) - (starts // n) * n + 1.0
    ranks = np.empty((q, n))
    np.put_along_axis(ranks, order, mean_rank[np.cumsum(new_run.ravel()) - 1].reshape(q, n), axis=1)
    nan_rows = np.isnan(ordered[:, -1]) if n else np.zeros(q, dtype=bool)
    if nan_rows.any():
        ranks[nan_rows] = stats.rankdata(flat[nan_rows], method="average", axis=1)
    return ranks


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Return the normal scores of each scalar's pooled ranks (average ranks for ties), same shape."""
    flat = x.reshape(x.shape[0], -1)
    ranks = average_ranks(flat)
    return special.ndtri((ranks - _BLOM) / (flat.shape[1] - 2 * _BLOM + 1)).reshape(x.shape)


def _rhat(x: np.ndarray) -> np.ndarray:
    """(Q,) potential scale reduction of (Q, C, N) draws (ArviZ's ``_rhat``)."""
    n = x.shape[2]
    between = n * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.var(x, axis=2, ddof=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _autocov(x: np.ndarray) -> np.ndarray:
    """(Q, C, N) autocovariances at every lag along the draws (ArviZ's FFT estimate)."""
    n = x.shape[2]
    m = next_fast_len(2 * n)
    centred = x - x.mean(axis=2, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=2)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=m, axis=2)[:, :, :n] / n


@numba.njit(cache=True)
def _geyer(acov, chain_var_of_means):  # type: ignore[no-untyped-def]
    """(Q,) ESS from autocovariances ``acov`` (Q, C, N) and the variance of the chain means (Q,)."""
    n_q, n_chain, n_draw = acov.shape
    out = np.empty(n_q)
    rho = np.empty(n_draw)
    lag_mean = np.empty(n_draw)
    for q in range(n_q):
        for t in range(n_draw):
            s = 0.0
            for c in range(n_chain):
                s += acov[q, c, t]
            lag_mean[t] = s / n_chain
        mean_var = lag_mean[0] * n_draw / (n_draw - 1.0)
        var_plus = mean_var * (n_draw - 1.0) / n_draw
        if n_chain > 1:
            var_plus += chain_var_of_means[q]
        rho[:] = 0.0
        rho_even = 1.0
        rho[0] = rho_even
        rho_odd = 1.0 - (mean_var - lag_mean[1]) / var_plus
        rho[1] = rho_odd
        t = 1
        while t < n_draw - 3 and (rho_even + rho_odd) > 0.0:  # Geyer's initial positive sequence
            rho_even = 1.0 - (mean_var - lag_mean[t + 1]) / var_plus
            rho_odd = 1.0 - (mean_var - lag_mean[t + 2]) / var_plus
            if rho_even + rho_odd >= 0:
                rho[t + 1] = rho_even
                rho[t + 2] = rho_odd
            t += 2
        max_t = t - 2
        if rho_even > 0:
            rho[max_t + 1] = rho_even
        t = 1
        while t <= max_t - 2:  # Geyer's initial monotone sequence
            if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
                rho[t + 2] = rho[t + 1]
            t += 2
        total = n_chain * n_draw
        s = 0.0
        for k in range(max_t + 1):
            s += rho[k]
        tau = -1.0 + 2.0 * s + (rho[max_t + 1] if max_t + 1 < n_draw else 0.0)
        tau = max(tau, 1.0 / np.log10(total))
        ess = total / tau
        for k in range(n_draw):
            if np.isnan(rho[k]):
                ess = np.nan
        out[q] = ess
    return out


def _ess(x: np.ndarray) -> np.ndarray:
    """(Q,) effective sample size of (Q, C, N) draws (ArviZ's ``_ess``; constant draws: C N)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape[0], float(x.shape[1] * x.shape[2]))
    varies = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) >= np.finfo(float).resolution
    if varies.any():
        y = x[varies]
        between = np.var(y.mean(axis=2), axis=1, ddof=1) if y.shape[1] > 1 else np.zeros(len(y))
        out[varies] = _geyer(_autocov(y), between)
    return out


def _stack(x: np.ndarray) -> np.ndarray:
    """``x`` as float64 (Q, C, N), or a ValueError naming its shape."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"draws must be (quantity, chain, draw); got shape {x.shape}")
    return x


def _rank_rhat(split: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(Q,) rank R-hat from the split draws and their normal scores ``z = _z_scale(split)``."""
    bulk = _rhat(z)
    median = np.median(split.reshape(len(split), -1), axis=1)
    tail = _rhat(_z_scale(np.abs(split - median[:, None, None])))
    # ArviZ takes Python's max(bulk, tail): NaN where the bulk R-hat is, the bulk's where the tail's is
    return np.where(np.isnan(tail), bulk, np.maximum(bulk, tail))


def _tail_ess(y: np.ndarray, prob: float) -> np.ndarray:
    """(Q,) the smaller ESS of the indicators of the two tail quantiles of ``y`` (Q, C, N)."""
    flat = y.reshape(len(y), -1)
    each = [_ess(_split(y <= np.quantile(flat, p, axis=1)[:, None, None])) for p in sorted((prob, 1 - prob))]
    return np.minimum(*each)


def rhat_ess(x: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of (Q, C, N) draws, each (Q,); the split draws ranked once for both.

    NaN where a scalar cannot be judged: a NaN draw or fewer than 4 draws, and for R-hat
    fewer than 2 chains.
    """
    x = _stack(x)
    r_hat, bulk, tail = (np.full(x.shape[0], np.nan) for _ in range(3))
    ok = _valid(x, 1)
    if ok.any():
        y = x[ok]
        split = _split(y)
        z = _z_scale(split)
        bulk[ok] = _ess(z)
        tail[ok] = _tail_ess(y, prob)
        if x.shape[1] >= 2:
            r_hat[ok] = _rank_rhat(split, z)
    return r_hat, bulk, tail


def _judged(x: np.ndarray, min_chains: int, stat) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``stat`` of the valid scalars of ``x`` (Q, C, N); NaN for the others."""
    x = _stack(x)
    out = np.full(x.shape[0], np.nan)
    ok = _valid(x, min_chains)
    if ok.any():
        out[ok] = stat(x[ok])
    return out


def rank_rhat(x: np.ndarray) -> np.ndarray:
    """(Q,) rank-normalized split R-hat of (Q, C, N) draws (``arviz_stats`` ``rhat(method="rank")``)."""

    def stat(y: np.ndarray) -> np.ndarray:
        split = _split(y)
        return _rank_rhat(split, _z_scale(split))

    return _judged(x, 2, stat)


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """(Q,) bulk ESS of (Q, C, N) draws (``arviz_stats`` ``ess(method="bulk")``)."""
    return _judged(x, 1, lambda y: _ess(_z_scale(_split(y))))


def ess_tail(x: np.ndarray, prob: float) -> np.ndarray:
    """(Q,) tail ESS of (Q, C, N) draws at the central interval ``prob`` (``ess(method="tail", prob=prob)``)."""
    return _judged(x, 1, lambda y: _tail_ess(y, prob))


def mcse_mean_sd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q,) Monte Carlo standard errors of the mean and of the sd of (Q, C, N) draws.

    ArviZ's ``mcse(method="mean")`` (sd with ddof 1 over the ESS of the split draws) and
    ``mcse(method="sd")`` (from the ESS of the split squared deviations); NaN where a scalar
    has a NaN or fewer than 4 draws.
    """

    def stat(y: np.ndarray) -> np.ndarray:
        flat = y.reshape(len(y), -1)
        mean_se = flat.std(axis=1, ddof=1) / np.sqrt(_ess(_split(y)))
        squares = (y - flat.mean(axis=1)[:, None, None]) ** 2
        evar = squares.reshape(len(y), -1).mean(axis=1)
        varvar = ((squares**2).reshape(len(y), -1).mean(axis=1) - evar**2) / _ess(_split(squares))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.stack([mean_se, np.sqrt(varvar / evar / 4)])

    x = _stack(x)
    out = np.full((2, x.shape[0]), np.nan)
    ok = _valid(x, 1)
    if ok.any():
        out[:, ok] = stat(x[ok])
    return out[0], out[1]


def labelled_stack(posterior: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """Every scalar of ``posterior`` (dims chain, draw, ...) as (Q, C, N), labelled as ``az.summary`` does."""
    labels: list[str] = []
    columns = []
    for name, da in posterior.data_vars.items():
        flat = np.asarray(da.values, dtype=np.float64).reshape(da.shape[0], da.shape[1], -1)
        columns.append(np.moveaxis(flat, -1, 0))
        if da.ndim == 2:
            labels.append(str(name))
        else:
            grids = [np.asarray(da.coords[d].values) if d in da.coords else np.arange(da.sizes[d]) for d in da.dims[2:]]
            index = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, da.ndim - 2)
            labels += [f"{name}[{', '.join(str(x) for x in i)}]" for i in index]
    return labels, np.concatenate(columns)


def convergence_table(posterior: xr.Dataset, prob: float | None = None, full: bool = True) -> pd.DataFrame:
    """One row per scalar of ``posterior``: ``quantity``, then ``az.summary``'s diagnostics columns.

    ``full``: ``mean``, ``sd`` (ddof 1, as ArviZ), ``r_hat``, ``ess_bulk``, ``ess_tail``
    (at the central interval ``prob``; None: ArviZ's default, as ``az.summary``), ``mcse_mean``,
    ``mcse_sd``; otherwise the R-hat and ESS columns only (what the stopping rule judges by).
    Index: the labels ``az.summary`` gives.
    """
    labels, stacked = labelled_stack(posterior)
    return stacked_table(labels, stacked, prob, full)


def stacked_table(labels: list[str], stacked: np.ndarray, prob: float | None = None, full: bool = True) -> pd.DataFrame:
    """`convergence_table` of scalars already stacked as (Q, C, N) (`labelled_stack`), rows ``labels``."""
    import pandas as pd
    from arviz_stats.validate import validate_ci_prob

    prob = validate_ci_prob(prob)
    r_hat, bulk, tail = rhat_ess(stacked, prob)
    values: dict[str, np.ndarray] = {"r_hat": r_hat, "ess_bulk": bulk, "ess_tail": tail}
    if full:
        flat = stacked.reshape(len(stacked), -1)
        mcse_mean, mcse_sd = mcse_mean_sd(stacked)
        values = {"mean": flat.mean(axis=1), "sd": flat.std(axis=1, ddof=1)} | values
        values |= {"mcse_mean": mcse_mean, "mcse_sd": mcse_sd}
    table = pd.DataFrame(values, index=pd.Index(labels, name="label"))
    table.insert(0, "quantity", [label.split("[", 1)[0] for label in labels])
    return table
