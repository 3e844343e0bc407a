r"""Per-pair summaries of the predictive (or expected) rating: mean, sd, quantiles, P(r >= t), HDI.

Normal likelihood, ``kind="predictive"``: the exact mixture of normals (numba kernel
`bayesmf._kernels_predict.mixture_summary`); its HDI from seeded draws. Ordinal
likelihood: the discrete distribution over the rating levels (Bernoulli: over 0 and 1, with
:math:`P(y = 1)` the mean of :math:`\Phi(\eta)` over the draws). ``kind="expected"``:
summaries of the draws of the mean rating. See `bayesmf.predict` for the maths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.special import ndtri

from bayesmf import _kernels_predict as kern
from bayesmf.link import mean_rating, ordinal_probs
from bayesmf.predictive.components import blocks, latent, pair_seeds
from bayesmf.predictive.lazy import by_groups, is_lazy
from bayesmf.predictive.pairs import Pairs
from bayesmf.predictive.view import ModelView

__all__ = ["HDI_DRAWS", "Summary", "mean_of", "summarize"]

#: draws per pair behind a predictive HDI of the normal likelihood
HDI_DRAWS = 4000
#: quantile root finding: bracket tolerance (x scale width) and Halley stopping rule (x sd)
_ROOT_TOL = 1e-12
_ROOT_STOP = 1e-3


@dataclass(frozen=True, eq=False)
class Summary:
    """Summaries of P pairs (``p_at_least``/``hdi`` None when not asked for)."""

    mean: np.ndarray
    sd: np.ndarray
    quantiles: np.ndarray  # (P, Q)
    p_at_least: np.ndarray | None
    hdi: np.ndarray | None  # (P, 2)


def mean_of(view: ModelView, eta: np.ndarray, s_of_c: np.ndarray) -> np.ndarray:
    """Mean rating per (pair, component) via `bayesmf.model.mean_rating`."""
    if view.ordinal:
        assert view.cutpoints is not None and view.levels is not None
        return mean_rating(
            eta, view.spec, (view.low, view.high), cutpoints=view.cutpoints[s_of_c], levels=view.levels
        )
    return np.asarray(mean_rating(eta, view.spec, (view.low, view.high)), dtype=np.float64)


def _discrete_summary(
    probs: np.ndarray, levels: np.ndarray, qs: np.ndarray, threshold: float, hdi_prob: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sd, quantiles (levels), P(r >= threshold) and shortest-run HDI of level probabilities."""
    mean = probs @ levels
    sd = np.sqrt(np.maximum(probs @ levels**2 - mean**2, 0.0))
    cdf = np.cumsum(probs, axis=1)
    n_levels = len(levels)
    quant = np.empty((len(probs), len(qs)))
    for j, q in enumerate(qs):
        quant[:, j] = levels[np.minimum(np.argmax(cdf >= q - 1e-12, axis=1), n_levels - 1)]
    pge = probs[:, levels >= threshold - 1e-9].sum(axis=1) if not math.isnan(threshold) else np.full(len(probs), np.nan)
    hdi = np.full((len(probs), 2), np.nan)
    if not math.isnan(hdi_prob):
        padded = np.concatenate([np.zeros((len(probs), 1)), cdf], axis=1)
        done = np.zeros(len(probs), dtype=bool)
        for width in range(1, n_levels + 1):
            mass = padded[:, width:] - padded[:, :-width]  # (P, n_levels - width + 1)
            ok = (mass.max(axis=1) >= hdi_prob - 1e-12) & ~done
            if ok.any():
                start = np.argmax(mass[ok], axis=1)
                hdi[ok, 0] = levels[start]
                hdi[ok, 1] = levels[start + width - 1]
                done |= ok
            if done.all():
                break
    return mean, sd, quant, pge, hdi


def _normal_hdi(
    view: ModelView, means: np.ndarray, sds: np.ndarray, seeds: np.ndarray, hdi_prob: float, clip: bool, hdi: np.ndarray
) -> None:
    """HDI of the normal mixture: analytic for one component, else from seeded draws."""
    n_comp = means.shape[1]
    if n_comp == 1:
        # a normal is symmetric: its HDI is the equal-tailed interval
        z = float(ndtri(1.0 - (1.0 - hdi_prob) / 2.0))
        hdi[:, 0] = means[:, 0] - z * sds[0]
        hdi[:, 1] = means[:, 0] + z * sds[0]
    else:
        kern.normal_hdi(means, sds, seeds, max(1, math.ceil(HDI_DRAWS / n_comp)), hdi_prob, hdi)
    if clip:
        np.clip(hdi, view.low, view.high, out=hdi)


def _summarize_rows(
    view: ModelView,
    eta: np.ndarray,
    seeds: np.ndarray,
    *,
    kind: str,
    qs: np.ndarray,
    threshold: float,
    clip: bool,
    hdi_prob: float,
) -> tuple[np.ndarray, ...]:
    """Mean, sd, quantiles, P(r >= t), HDI of a block of pairs with latent scores ``eta``."""
    P, n_comp = eta.shape
    s_of_c = np.arange(n_comp) % view.n_samples
    mean, sd = np.empty(P), np.empty(P)
    quant = np.empty((P, len(qs)))
    pge = np.full(P, np.nan)
    hdi = np.full((P, 2), np.nan)
    if kind == "expected":
        values = mean_of(view, eta, s_of_c)
        if clip:
            np.clip(values, view.low, view.high, out=values)
        kern.sample_summary(values, qs, threshold, hdi_prob, mean, sd, quant, pge, hdi)
    elif view.ordinal or view.binary:
        assert view.levels is not None
        if view.binary:  # P(y = 1) = Phi(eta), averaged over the draws
            liked = mean_of(view, eta, s_of_c).mean(axis=1)
            probs = np.column_stack([1.0 - liked, liked])
        else:
            assert view.cutpoints is not None
            probs = ordinal_probs(eta, view.cutpoints[s_of_c], view.spec.link).mean(axis=1)
        mean, sd, quant, pge, hdi = _discrete_summary(probs, view.levels, qs, threshold, hdi_prob)
    else:
        assert view.noise is not None
        means = mean_of(view, eta, s_of_c)
        sds = view.noise[s_of_c]
        kern.mixture_summary(
            means, sds, qs, ndtri(qs), view.low, view.high, clip, threshold,
            _ROOT_TOL * (view.high - view.low), _ROOT_STOP, mean, sd, quant, pge,
        )
        if not math.isnan(hdi_prob):
            _normal_hdi(view, means, sds, seeds, hdi_prob, clip, hdi)
    return mean, sd, quant, pge, hdi


def _progress(items: list[Any], progressbar: bool, desc: str) -> Any:
    if progressbar and len(items) >= 4:
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, unit="chunk")
    return items


def summarize(
    view: ModelView,
    pairs: Pairs,
    *,
    kind: str,
    qs: np.ndarray,
    threshold: float,
    clip: bool,
    hdi_prob: float,
    chunk_size: int | None,
    base: int,
    progressbar: bool = False,
) -> Summary:
    """Summaries of every pair, chunk by chunk (known pairs: S components; unknown: >= 1000).

    ``qs`` are quantile levels; ``threshold`` and ``hdi_prob`` are NaN when not wanted.
    A lazy view (a posterior on disk) is worked through a group of pairs at a time.
    """
    if is_lazy(view):
        return by_groups(view, pairs, partial(
            summarize, kind=kind, qs=qs, threshold=threshold, clip=clip, hdi_prob=hdi_prob,
            chunk_size=chunk_size, base=base,
        ), progressbar=progressbar)
    n = len(pairs)
    out = (np.empty(n), np.empty(n), np.empty((n, len(qs))), np.full(n, np.nan), np.full((n, 2), np.nan))
    seeds = pair_seeds(base, pairs, stream=1)
    for block, n_comp in _progress(blocks(view, pairs, chunk_size), progressbar, "predict"):
        eta = latent(view, pairs, block, n_comp, base)
        parts = _summarize_rows(
            view, eta, seeds[block], kind=kind, qs=qs, threshold=threshold, clip=clip, hdi_prob=hdi_prob
        )
        for whole, part in zip(out, parts, strict=True):
            whole[block] = part
    mean, sd, quant, pge, hdi = out
    return Summary(mean, sd, quant, None if math.isnan(threshold) else pge, None if math.isnan(hdi_prob) else hdi)
