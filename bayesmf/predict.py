r"""Posterior-predictive summaries and draws for (user, item) pairs, chunked.

For posterior draw :math:`s` and the pair (user :math:`i`, item :math:`j`) the latent
score is :math:`\eta^{(s)}_{ij} = \mu^{(s)} + b^{(s)}_i + c^{(s)}_j + U^{(s)}_i \cdot
V^{(s)}_j` and the mean rating :math:`m^{(s)}_{ij} = g(\eta^{(s)}_{ij})` (`bayesmf.model.mean_rating`:
the identity, ``low + (high - low) logistic(eta)``, or the ordinal expectation).

Two kinds of prediction:

``kind="expected"`` (epistemic)
    The distribution over draws of the mean rating :math:`m^{(s)}_{ij}`: how well the model
    knows the user's taste for the item. Summaries are those of the draws (sample mean,
    sd, quantiles, HDI). For a MAP result (one draw) it has zero width: ``sd = 0`` and
    ``lower = median = upper = mean``; a point estimate carries no epistemic uncertainty.
``kind="predictive"`` (what the user will actually rate)
    The posterior predictive :math:`p(r) = \frac1S \sum_s p(r \mid \theta^{(s)})`.
    For the normal likelihood this is a mixture of :math:`S` normals
    :math:`\mathcal N(m^{(s)}, \tau^{(s)2})`, :math:`\tau` the noise sd in rating units
    (:math:`\sigma` or :math:`(\text{high}-\text{low})\sigma` with the logistic link), and it
    is summarized EXACTLY, without Monte Carlo over the noise: mean and sd in closed form,
    :math:`P(r \ge t) = \frac1S\sum_s \bar\Phi((t - m^{(s)})/\tau^{(s)})`, and equal-tailed
    quantiles as roots of the mixture CDF (Halley iterations safeguarded by bisection; error
    about 1e-9 of the predictive sd: checked against brentq to 1e-7 in the tests).
    A MAP result gives the plug-in :math:`\mathcal N(m, \tau^2)`: analytic normal quantiles.
    With ``clip=True`` every component is censored to the rating scale (a rating cannot
    leave [low, high]): closed-form censored-normal moments, clipped quantiles, and
    :math:`P(r \ge \text{low}) = 1`. For ``likelihood="ordinal"`` the predictive is
    discrete over the rating levels (see `predict_proba`); its quantiles are levels.

HDIs (``interval="hdi"``): of the draws for ``"expected"``; for the normal predictive, of
seeded draws from the mixture (at least 4,000 per pair, ``random_seed``), then clipped;
for a MAP normal predictive it equals the equal-tailed interval (a normal is symmetric);
for the ordinal predictive, the shortest run of levels holding ``prob``.

Unknown ids (``unknown="prior"``): a user or item the encoder does not know gets factors
(and a bias) drawn from the prior given each draw's scales (``sigma_factor``,
``sigma_user_bias``, ``sigma_item_bias`` of the draw, or the fixed ``sigma_u``/``sigma_v``/
``sigma_bias``; with ``factor_prior="per_side"`` the side's ``factor_mean_*`` and
``sigma_factor_*``), seeded per id, and is flagged ``new_user``/``new_item``; at least 1,000
components are used for such pairs (posterior draws repeated with fresh prior draws), so a
MAP result gives a usable prior predictive too. ``unknown="raise"`` raises a `KeyError`
naming the id.

Memory: pairs are processed in chunks whose (pairs x draws) buffer holds about
``2**22`` float64 (32 MB) by default (``chunk_size`` sets the pairs per chunk); nothing of
size users x items x draws is ever built.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from bayesmf import _kernels_predict as kern
from bayesmf._validate import (
    validate_bool,
    validate_choice,
    validate_in_scale,
    validate_positive_int,
    validate_prob,
)
from bayesmf.data import RatingsData
from bayesmf.model import mean_rating, ordinal_probs
from bayesmf.posterior import PosteriorArrays, posterior_arrays, prior_moments

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["predict", "predict_draws", "predict_proba"]

log = logging.getLogger("bayesmf")

KINDS = ("predictive", "expected")
INTERVALS = ("eti", "hdi")
UNKNOWN = ("prior", "raise")

#: float64 elements of the per-chunk (pairs x components) buffer (32 MB)
CHUNK_BUDGET = 2**22
#: components used for pairs with an unknown user or item (prior draws)
MIN_PRIOR_COMPONENTS = 1000
#: draws per pair behind a predictive HDI of the normal likelihood
HDI_DRAWS = 4000
#: quantile root finding: bracket tolerance (x scale width) and Halley stopping rule (x sd)
_ROOT_TOL = 1e-12
_ROOT_STOP = 1e-3
#: largest (draws x pairs) array `predict_draws` returns unless told otherwise (512 MB)
MAX_DRAWS_ELEMENTS = 2**26


# ---------------------------------------------------------------------------------------
# What the kernels need from a result
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Model:
    """Posterior arrays plus the per-draw prior scales and noise, read once per call."""

    result: FitResult
    arrays: PosteriorArrays
    low: float
    high: float
    n_samples: int
    n_factors: int
    ordinal: bool
    noise: np.ndarray | None  # (S,) noise sd in rating units (normal likelihood)
    cutpoints: np.ndarray | None  # (S, L-1) (ordinal)
    levels: np.ndarray | None  # (L,) rating levels (ordinal, or of the train data)
    prior_u: np.ndarray  # (S, K) prior sd of a user's factors, per draw
    prior_v: np.ndarray  # (S, K) prior sd of an item's factors
    prior_mean_u: np.ndarray  # (S, K) prior mean of a user's factors (0 unless per-side)
    prior_mean_v: np.ndarray  # (S, K)
    prior_ub: np.ndarray  # (S,) prior sd of a user bias (unused without biases)
    prior_ib: np.ndarray  # (S,)
    mu: np.ndarray  # (S,) zeros when the model has no global mean
    has_bias: bool

    @property
    def spec(self) -> Any:
        return self.result.spec


def _draw_scales(result: FitResult) -> dict[str, np.ndarray]:
    """Per-draw prior sds (and factor means) of users and items, under short keys."""
    moments = prior_moments(result.idata, result.spec)
    return {
        "u": moments["user_factor"],
        "v": moments["item_factor"],
        "mu_u": moments["user_factor_mean"],
        "mu_v": moments["item_factor_mean"],
        "ub": moments["user_bias"],
        "ib": moments["item_bias"],
    }


def _model(result: FitResult) -> _Model:
    arrays = posterior_arrays(result.idata)
    spec = result.spec
    low, high = (float(x) for x in result.train.scale)
    n_samples = arrays.n_samples
    n_factors = int(arrays.U.shape[2])
    ordinal = spec.likelihood == "ordinal"
    noise = None
    if not ordinal:
        if arrays.sigma is None:
            raise ValueError("a normal-likelihood posterior lacks sigma")
        noise = np.asarray(arrays.sigma, dtype=np.float64).reshape(n_samples)
        if spec.link == "logistic":
            noise = noise * (high - low)
    cut = None if arrays.cutpoints is None else np.asarray(arrays.cutpoints, dtype=np.float64)
    levels = result.train.levels
    if ordinal and (cut is None or levels is None or cut.shape[1] != len(levels) - 1):
        raise ValueError("an ordinal posterior needs cutpoints and the rating levels of its train data")
    scales = _draw_scales(result)
    mu = np.zeros(n_samples) if arrays.mu is None else np.asarray(arrays.mu, dtype=np.float64)
    return _Model(
        result=result,
        arrays=arrays,
        low=low,
        high=high,
        n_samples=n_samples,
        n_factors=n_factors,
        ordinal=ordinal,
        noise=noise,
        cutpoints=cut,
        levels=None if levels is None else np.asarray(levels, dtype=np.float64),
        prior_u=scales["u"],
        prior_v=scales["v"],
        prior_mean_u=scales["mu_u"],
        prior_mean_v=scales["mu_v"],
        prior_ub=scales["ub"],
        prior_ib=scales["ib"],
        mu=mu,
        has_bias=spec.biases,
    )


# ---------------------------------------------------------------------------------------
# Pairs: raw ids -> indices (-1 unknown), flags
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Pairs:
    user: np.ndarray  # raw ids
    item: np.ndarray
    uidx: np.ndarray  # int64, -1 for an id the model does not know
    iidx: np.ndarray
    rating: np.ndarray | None
    new_user: np.ndarray  # unknown or no training rating
    new_item: np.ndarray
    user_code: np.ndarray  # per pair: 0.. over the distinct unknown users (-1 when known)
    item_code: np.ndarray

    def __len__(self) -> int:
        return len(self.uidx)

    @property
    def unknown(self) -> np.ndarray:
        return (self.uidx < 0) | (self.iidx < 0)


def _codes(raw: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Give the distinct unknown ids codes 0, 1, ... by first appearance (-1 marks a known id)."""
    codes = np.full(len(raw), -1, dtype=np.int64)
    if unknown.any():
        seen: dict[Any, int] = {}
        for pos in np.flatnonzero(unknown).tolist():
            key = raw[pos].item() if isinstance(raw[pos], np.generic) else raw[pos]
            codes[pos] = seen.setdefault(key, len(seen))
    return codes


def _resolve_pairs(
    result: FitResult,
    data: Any,
    *,
    unknown: str,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
) -> _Pairs:
    validate_choice("unknown", unknown, UNKNOWN)
    train = result.train
    rating: np.ndarray | None
    if isinstance(data, RatingsData):
        if data.users.equals(train.users) and data.items.equals(train.items):
            uidx = np.asarray(data.user_idx, dtype=np.int64)
            iidx = np.asarray(data.item_idx, dtype=np.int64)
            user_raw = train.users.to_raw(uidx)
            item_raw = train.items.to_raw(iidx)
        else:  # other encoders: go through the raw ids
            user_raw = data.users.to_raw(data.user_idx)
            item_raw = data.items.to_raw(data.item_idx)
            uidx = train.users.to_index(user_raw, unknown="flag")
            iidx = train.items.to_index(item_raw, unknown="flag")
        rating = np.asarray(data.rating, dtype=np.float64)
    elif isinstance(data, pd.DataFrame):
        missing = [c for c in (user_col, item_col) if c not in data.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} not in the frame (its columns: {list(data.columns)}); "
                "name the id columns with user_col=/item_col="
            )
        user_raw = data[user_col].to_numpy()
        item_raw = data[item_col].to_numpy()
        uidx = train.users.to_index(user_raw, unknown="flag")
        iidx = train.items.to_index(item_raw, unknown="flag")
        rating = None
        if rating_col is not None and rating_col in data.columns:
            rating = pd.to_numeric(data[rating_col]).to_numpy(dtype=np.float64)
    else:
        raise TypeError(
            "data must be a RatingsData or a pandas DataFrame of (user, item) ids, got "
            f"{type(data).__name__}"
        )
    if unknown == "raise":
        for name, raw, idx, encoder in (("user", user_raw, uidx, train.users), ("item", item_raw, iidx, train.items)):
            if (idx < 0).any():
                bad = list(dict.fromkeys(_py(v) for v in raw[idx < 0]))
                from bayesmf.data import UnknownIdError

                raise UnknownIdError(
                    f"unknown {name} id(s) {bad[:5]!r}{' and more' if len(bad) > 5 else ''}: not in "
                    f"the model's {encoder.name} encoder; pass unknown='prior' for prior predictions"
                )
    counts_u = train.user_counts()
    counts_i = train.item_counts()
    new_user = (uidx < 0) | (counts_u[np.maximum(uidx, 0)] == 0)
    new_item = (iidx < 0) | (counts_i[np.maximum(iidx, 0)] == 0)
    return _Pairs(
        user=np.asarray(user_raw),
        item=np.asarray(item_raw),
        uidx=uidx,
        iidx=iidx,
        rating=rating,
        new_user=np.asarray(new_user, dtype=bool),
        new_item=np.asarray(new_item, dtype=bool),
        user_code=_codes(np.asarray(user_raw, dtype=object), uidx < 0),
        item_code=_codes(np.asarray(item_raw, dtype=object), iidx < 0),
    )


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------------
# Latent scores per chunk
# ---------------------------------------------------------------------------------------
def _base_seed(random_seed: Any) -> int:
    """Return a 63-bit integer seed from an int, a Generator or None (fresh entropy)."""
    if isinstance(random_seed, np.random.Generator):
        return int(random_seed.integers(2**63))
    if random_seed is None:
        return int(np.random.SeedSequence().generate_state(2, np.uint64)[0] >> np.uint64(1))
    if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)):
        raise TypeError(f"random_seed must be an int, a numpy Generator or None, got {random_seed!r}")
    if random_seed < 0:
        raise ValueError(f"random_seed must be >= 0, got {random_seed!r}")
    return int(random_seed)


def _pair_seeds(base: int, pairs: _Pairs, stream: int) -> np.ndarray:
    """One 32-bit seed per pair, a hash of (seed, stream, user, item).

    Keyed by the pair itself (an unknown id by its code), so a pair's random draws do not
    depend on chunking nor on which other pairs are asked for.
    """
    mask = np.uint64(0xFFFFFFFFFFFFFFFF)
    user_key = np.where(pairs.uidx >= 0, pairs.uidx, (1 << 40) + pairs.user_code).astype(np.uint64)
    item_key = np.where(pairs.iidx >= 0, pairs.iidx, (1 << 40) + pairs.item_code).astype(np.uint64)
    h = _splitmix(np.full(len(pairs), (base * 4 + stream) & int(mask), dtype=np.uint64))
    h = _splitmix(h ^ user_key)
    h = _splitmix(h ^ item_key)
    return (h >> np.uint64(32)).astype(np.int64)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (vectorized, wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _prior_draws(model: _Model, base: int, side: int, code: int, n_comp: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior factors (C, K) and bias (C,) for unknown id ``code`` (side 0 user, 1 item), seeded per id."""
    rng = np.random.default_rng([base, 7, side, code])
    z = rng.standard_normal((n_comp, model.n_factors + 1))
    s_of_c = np.arange(n_comp) % model.n_samples
    scale_f = model.prior_u if side == 0 else model.prior_v
    mean_f = model.prior_mean_u if side == 0 else model.prior_mean_v
    scale_b = model.prior_ub if side == 0 else model.prior_ib
    factors = mean_f[s_of_c] + z[:, :-1] * scale_f[s_of_c]
    bias = z[:, -1] * scale_b[s_of_c] if model.has_bias else np.zeros(n_comp)
    return factors, bias


def _latent(model: _Model, pairs: _Pairs, rows: np.ndarray, n_comp: int, base: int) -> np.ndarray:
    """Latent scores ``(len(rows), n_comp)``; component ``c`` uses posterior draw ``c % S``."""
    a = model.arrays
    S = model.n_samples
    uidx, iidx = pairs.uidx[rows], pairs.iidx[rows]
    known = (uidx >= 0) & (iidx >= 0)
    out = np.empty((len(rows), n_comp))
    if known.any():
        block = np.empty((S, int(known.sum())))
        ub = a.user_bias if a.user_bias is not None else np.zeros((S, 1))
        ib = a.item_bias if a.item_bias is not None else np.zeros((S, 1))
        kern.eta_known(a.U, a.V, model.mu, ub, ib, uidx[known], iidx[known], model.has_bias, block)
        if known.all():
            kern.transpose_tiled(block, out, n_comp // S)
        else:
            dst = np.empty((block.shape[1], n_comp))
            kern.transpose_tiled(block, dst, n_comp // S)
            out[known] = dst
    if (~known).any():
        sub = np.flatnonzero(~known)
        s_of_c = np.arange(n_comp) % S
        Uf = np.empty((len(sub), n_comp, model.n_factors))
        Vf = np.empty_like(Uf)
        bu = np.zeros((len(sub), n_comp))
        bi = np.zeros((len(sub), n_comp))
        for side, idx, codes, F, B, arr, bias in (
            (0, uidx[sub], pairs.user_code[rows][sub], Uf, bu, a.U, a.user_bias),
            (1, iidx[sub], pairs.item_code[rows][sub], Vf, bi, a.V, a.item_bias),
        ):
            have = idx >= 0
            if have.any():
                F[have] = arr[s_of_c[None, :], idx[have][:, None]]
                if bias is not None:
                    B[have] = bias[s_of_c[None, :], idx[have][:, None]]
            for code in np.unique(codes[~have]).tolist():
                factors, b = _prior_draws(model, base, side, code, n_comp)
                where = codes == code
                F[where] = factors
                B[where] = b
        out[~known] = model.mu[s_of_c] + bu + bi + np.einsum("pck,pck->pc", Uf, Vf)
    return out


def _chunks(rows: np.ndarray, n_comp: int, width: int, chunk_size: int | None) -> Iterator[np.ndarray]:
    """Row blocks whose (rows x components x width) buffers stay near `CHUNK_BUDGET`."""
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BUDGET // max(n_comp * width, 1))
    for start in range(0, len(rows), chunk_size):
        yield rows[start : start + chunk_size]


def _chunk_width(model: _Model, unknown: bool) -> int:
    """Elements per (pair, component) of the chunk buffers (factor gathers, ordinal probs)."""
    width = 1
    if unknown:
        width = 2 * model.n_factors + 3
    if model.ordinal and model.levels is not None:
        width = max(width, len(model.levels) + 1)
    return width


# ---------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Summary:
    mean: np.ndarray
    sd: np.ndarray
    quantiles: np.ndarray  # (P, Q)
    p_at_least: np.ndarray | None
    hdi: np.ndarray | None  # (P, 2)


def _mean_of(model: _Model, eta: np.ndarray, s_of_c: np.ndarray) -> np.ndarray:
    """Mean rating per (pair, component) via `bayesmf.model.mean_rating`."""
    spec = model.spec
    if model.ordinal:
        assert model.cutpoints is not None and model.levels is not None
        return mean_rating(eta, spec, (model.low, model.high), cutpoints=model.cutpoints[s_of_c], levels=model.levels)
    return np.asarray(mean_rating(eta, spec, (model.low, model.high)), dtype=np.float64)


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


def _summarize_rows(
    model: _Model,
    pairs: _Pairs,
    rows: np.ndarray,
    *,
    kind: str,
    qs: np.ndarray,
    threshold: float,
    clip: bool,
    hdi_prob: float,
    n_comp: int,
    base: int,
    seeds: np.ndarray,
) -> _Summary:
    """Summaries of a block of pairs that share a component count."""
    P = len(rows)
    S = model.n_samples
    s_of_c = np.arange(n_comp) % S
    eta = _latent(model, pairs, rows, n_comp, base)
    mean = np.empty(P)
    sd = np.empty(P)
    quant = np.empty((P, len(qs)))
    pge = np.full(P, np.nan)
    hdi = np.full((P, 2), np.nan)
    if kind == "expected":
        values = _mean_of(model, eta, s_of_c)
        if clip:
            np.clip(values, model.low, model.high, out=values)
        kern.sample_summary(values, qs, threshold, hdi_prob, mean, sd, quant, pge, hdi)
    elif model.ordinal:
        assert model.cutpoints is not None and model.levels is not None
        probs = ordinal_probs(eta, model.cutpoints[s_of_c]).mean(axis=1)
        mean, sd, quant, pge, hdi = _discrete_summary(probs, model.levels, qs, threshold, hdi_prob)
    else:
        assert model.noise is not None
        means = _mean_of(model, eta, s_of_c)
        sds = model.noise[s_of_c]
        zq = ndtri(qs)
        kern.mixture_summary(
            means, sds, qs, zq, model.low, model.high, clip, threshold, _ROOT_TOL * (model.high - model.low),
            _ROOT_STOP, mean, sd, quant, pge,
        )
        if not math.isnan(hdi_prob):
            if n_comp == 1:
                # a normal is symmetric: its HDI is the equal-tailed interval
                tail = (1.0 - hdi_prob) / 2.0
                z = float(ndtri(1.0 - tail))
                hdi[:, 0] = means[:, 0] - z * sds[0]
                hdi[:, 1] = means[:, 0] + z * sds[0]
            else:
                n_rep = max(1, math.ceil(HDI_DRAWS / n_comp))
                kern.normal_hdi(means, sds, seeds[rows], n_rep, hdi_prob, hdi)
            if clip:
                np.clip(hdi, model.low, model.high, out=hdi)
    return _Summary(mean, sd, quant, None if math.isnan(threshold) else pge, None if math.isnan(hdi_prob) else hdi)


def _summarize(
    model: _Model,
    pairs: _Pairs,
    *,
    kind: str,
    qs: np.ndarray,
    threshold: float,
    clip: bool,
    hdi_prob: float,
    chunk_size: int | None,
    base: int,
    progressbar: bool = False,
) -> _Summary:
    """Summaries of every pair, chunk by chunk (known pairs: S components; unknown: >= 1000)."""
    n = len(pairs)
    S = model.n_samples
    mean = np.empty(n)
    sd = np.empty(n)
    quant = np.empty((n, len(qs)))
    pge = np.full(n, np.nan)
    hdi = np.full((n, 2), np.nan)
    seeds = _pair_seeds(base, pairs, stream=1)
    unknown = pairs.unknown
    groups = [(np.flatnonzero(~unknown), S, False)]
    if unknown.any():
        groups.append((np.flatnonzero(unknown), S * max(1, math.ceil(MIN_PRIOR_COMPONENTS / S)), True))
    blocks = [
        (block, n_comp)
        for rows, n_comp, unk in groups
        for block in _chunks(rows, n_comp, _chunk_width(model, unk), chunk_size)
    ]
    for block, n_comp in _progress(blocks, progressbar, "predict"):
        part = _summarize_rows(
            model, pairs, block, kind=kind, qs=qs, threshold=threshold, clip=clip,
            hdi_prob=hdi_prob, n_comp=n_comp, base=base, seeds=seeds,
        )
        mean[block], sd[block], quant[block] = part.mean, part.sd, part.quantiles
        if part.p_at_least is not None:
            pge[block] = part.p_at_least
        if part.hdi is not None:
            hdi[block] = part.hdi
    return _Summary(mean, sd, quant, None if math.isnan(threshold) else pge, None if math.isnan(hdi_prob) else hdi)


def _progress(blocks: list[Any], progressbar: bool, desc: str) -> Any:
    if progressbar and len(blocks) >= 4:
        from tqdm.auto import tqdm

        return tqdm(blocks, desc=desc, unit="chunk")
    return blocks


# ---------------------------------------------------------------------------------------
# Validation shared with recommend / metrics
# ---------------------------------------------------------------------------------------
def _check_threshold(threshold: Any, low: float, high: float) -> float:
    """NaN for None, else the threshold as a float inside the rating scale."""
    if threshold is None:
        return math.nan
    try:
        return validate_in_scale("threshold", threshold, (low, high))
    except ValueError as exc:
        raise ValueError(f"{exc}; pass a rating on the scale (or threshold=None)") from None


def _check_chunk_size(chunk_size: Any) -> int | None:
    return None if chunk_size is None else validate_positive_int("chunk_size", chunk_size)


def _check_bool(name: str, value: Any) -> bool:
    return validate_bool(name, value)


def _frame(pairs: _Pairs, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    out: dict[str, Any] = {"user": pairs.user, "item": pairs.item}
    if pairs.rating is not None:
        out["rating"] = pairs.rating
    out.update(columns)
    out["new_user"] = pairs.new_user
    out["new_item"] = pairs.new_item
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------
def predict(
    result: FitResult,
    data: Any,
    prob: float = 0.9,
    kind: str = "predictive",
    interval: str = "eti",
    threshold: float | None = None,
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
    progressbar: bool = True,
) -> pd.DataFrame:
    r"""Posterior-predictive (or expected-rating) summaries for (user, item) pairs.

    Parameters
    ----------
    result : FitResult
        A fitted model (any inference route; MAP gives plug-in intervals).
    data : RatingsData or pandas.DataFrame
        The pairs: a `RatingsData` (e.g. the test part of a split; other encoders are
        re-encoded through the raw ids) or a frame with raw user and item ids (columns
        ``user_col``, ``item_col``; ``rating_col`` is carried along when present).
    prob : float
        Probability of the interval, in (0, 1).
    kind : {"predictive", "expected"}
        ``"predictive"``: the rating the user would give (noise included);
        ``"expected"``: the mean rating :math:`g(\eta)`, epistemic uncertainty only (zero
        width for MAP). See the module docstring for the maths.
    interval : {"eti", "hdi"}
        Equal-tailed (central) interval or highest-density interval.
    threshold : float, optional
        Adds ``p_at_least`` = :math:`P(r \ge \text{threshold})` (predictive) or
        :math:`P(g(\eta) \ge \text{threshold})` (expected); must lie on the rating scale.
        Ratings are continuous under the normal likelihood: no continuity correction.
    clip : bool
        Censor predictive draws (and clip expected ratings) to the rating scale.
    unknown : {"prior", "raise"}
        Ids the model does not know: prior predictive (flagged) or `KeyError` naming them.
    chunk_size : int, optional
        Pairs per chunk; default keeps each chunk's (pairs x draws) buffer near 32 MB.
        Results do not depend on it.
    random_seed : int or numpy.random.Generator, optional
        Seeds what is random: prior draws for unknown ids and predictive HDIs. Equal-tailed
        summaries of known pairs are deterministic.
    user_col, item_col, rating_col : str
        Column names when ``data`` is a DataFrame.
    progressbar : bool
        Show a tqdm bar on long runs (at least 4 chunks).

    Returns
    -------
    pandas.DataFrame
        One row per pair, in input order: ``user``, ``item`` (raw ids), ``rating`` (when
        known), ``mean``, ``sd``, ``median``, ``lower``, ``upper``, ``p_at_least`` (with a
        threshold), ``new_user``, ``new_item`` (id unknown to the model or without training
        ratings). ``attrs`` records ``prob``, ``kind``, ``interval``.

    Raises
    ------
    ValueError
        ``prob`` outside (0, 1), ``threshold`` off the scale, a bad choice of ``kind``/
        ``interval``/``unknown``, or missing id columns (the message names them).
    KeyError
        An unknown id with ``unknown="raise"`` (a `bayesmf.data.UnknownIdError`, also a
        ``ValueError``).

    Examples
    --------
    >>> result.predict(test, prob=0.9, threshold=4)  # doctest: +SKIP
    """
    prob = validate_prob(prob)
    validate_choice("kind", kind, KINDS)
    validate_choice("interval", interval, INTERVALS)
    clip = _check_bool("clip", clip)
    chunk_size = _check_chunk_size(chunk_size)
    model = _model(result)
    thr = _check_threshold(threshold, model.low, model.high)
    pairs = _resolve_pairs(
        result, data, unknown=unknown, user_col=user_col, item_col=item_col, rating_col=rating_col
    )
    base = _base_seed(random_seed)
    tail = (1.0 - prob) / 2.0
    qs = np.array([0.5, tail, 1.0 - tail])
    summary = _summarize(
        model, pairs, kind=kind, qs=qs, threshold=thr, clip=clip,
        hdi_prob=prob if interval == "hdi" else math.nan, chunk_size=chunk_size, base=base,
        progressbar=progressbar,
    )
    columns: dict[str, np.ndarray] = {
        "mean": summary.mean,
        "sd": summary.sd,
        "median": summary.quantiles[:, 0],
    }
    if interval == "hdi":
        assert summary.hdi is not None
        columns["lower"], columns["upper"] = summary.hdi[:, 0], summary.hdi[:, 1]
    else:
        columns["lower"], columns["upper"] = summary.quantiles[:, 1], summary.quantiles[:, 2]
    if summary.p_at_least is not None:
        columns["p_at_least"] = summary.p_at_least
    frame = _frame(pairs, columns)
    frame.attrs.update(prob=prob, kind=kind, interval=interval, threshold=threshold, method=result.method)
    return frame


def predict_draws(
    result: FitResult,
    data: Any,
    kind: str = "predictive",
    n_draws: int | None = None,
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    *,
    max_elements: int = MAX_DRAWS_ELEMENTS,
    user_col: str = "user",
    item_col: str = "item",
) -> np.ndarray:
    r"""Draws of the predictive (or expected) rating, shape ``(sample, pair)``.

    Each posterior draw gives ``R = max(1, ceil(n_draws / S))`` draws (``S`` posterior
    draws), so there are ``S * R`` rows; sample ``c`` uses posterior draw ``c % S``. With
    ``n_draws=None`` at least 1,000 draws are made (so a MAP result gives 1,000 noise draws
    around its point prediction). Noise is seeded per pair, so the result does not depend on
    ``chunk_size``. Use it for sample-based metrics (`bayesmf.metrics.crps`, `pit`).

    Parameters
    ----------
    result : FitResult
        The fitted model.
    data : RatingsData or pandas.DataFrame
        Pairs, as in `predict`.
    kind : {"predictive", "expected"}
        Noisy ratings (ordinal: rating levels) or mean ratings :math:`g(\eta)`.
    n_draws : int, optional
        Minimum number of draws per pair (default ``max(S, 1000)``).
    clip : bool
        Censor to the rating scale.
    unknown : {"prior", "raise"}
        Policy for ids the model does not know (see `predict`).
    chunk_size : int, optional
        Pairs per chunk.
    random_seed : int or numpy.random.Generator, optional
        Seed of the noise and prior draws.
    max_elements : int
        Refuse to build an output larger than this many float64 (default ``2**26``, 512 MB).
    user_col, item_col : str
        Id columns of a DataFrame ``data``.

    Returns
    -------
    numpy.ndarray
        float64 array ``(S * R, n_pairs)``.

    Raises
    ------
    ValueError
        If the output would exceed ``max_elements`` (summarize with `predict` instead, or
        pass fewer pairs), or on bad options.
    """
    validate_choice("kind", kind, KINDS)
    clip = _check_bool("clip", clip)
    chunk_size = _check_chunk_size(chunk_size)
    max_elements = validate_positive_int("max_elements", max_elements)
    model = _model(result)
    S = model.n_samples
    target = max(S, MIN_PRIOR_COMPONENTS) if n_draws is None else validate_positive_int("n_draws", n_draws)
    n_comp = S * max(1, math.ceil(target / S))
    pairs = _resolve_pairs(result, data, unknown=unknown, user_col=user_col, item_col=item_col, rating_col=None)
    size = n_comp * len(pairs)
    if size > max_elements:
        raise ValueError(
            f"predict_draws would return {n_comp} x {len(pairs)} = {size:,} values, more than "
            f"max_elements={max_elements:,}; summarize with predict(), pass fewer pairs, "
            "fewer n_draws, or raise max_elements"
        )
    base = _base_seed(random_seed)
    seeds = _pair_seeds(base, pairs, stream=2)
    s_of_c = np.arange(n_comp) % S
    out = np.empty((n_comp, len(pairs)))
    rows_all = np.arange(len(pairs))
    for rows in _chunks(rows_all, n_comp, _chunk_width(model, bool(pairs.unknown.any())), chunk_size):
        eta = _latent(model, pairs, rows, n_comp, base)
        if kind == "expected":
            values = _mean_of(model, eta, s_of_c)
            if clip:
                np.clip(values, model.low, model.high, out=values)
            out[:, rows] = values.T
        elif model.ordinal:
            assert model.cutpoints is not None and model.levels is not None
            block = np.empty((n_comp, len(rows)))
            kern.ordinal_level_draws(eta, model.cutpoints[s_of_c], model.levels, seeds[rows], block)
            out[:, rows] = block
        else:
            assert model.noise is not None
            block = np.empty((n_comp, len(rows)))
            means = _mean_of(model, eta, s_of_c)
            kern.normal_draws(means, model.noise[s_of_c], seeds[rows], clip, model.low, model.high, block)
            out[:, rows] = block
    return out


def predict_proba(
    result: FitResult,
    data: Any,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
) -> pd.DataFrame:
    r"""Predictive probability of each rating level, one row per pair.

    For ``likelihood="ordinal"``: :math:`P(r = \ell_k) = \frac1S \sum_s
    [\mathrm{logistic}(c^{(s)}_k - \eta^{(s)}) - \mathrm{logistic}(c^{(s)}_{k-1} - \eta^{(s)})]`
    (``pm.OrderedLogistic``). For the normal likelihood on discrete ratings, the mass the
    censored normal mixture puts on each level's bin (halfway to the neighbouring levels,
    the end bins open): the rating rounded to the nearest level.

    Parameters
    ----------
    result : FitResult
        Fitted model whose training ratings have discrete levels (`RatingsData.levels`).
    data : RatingsData or pandas.DataFrame
        Pairs, as in `predict`.
    unknown, chunk_size, random_seed, user_col, item_col, rating_col
        As in `predict`.

    Returns
    -------
    pandas.DataFrame
        ``user``, ``item`` (, ``rating``), one column ``p_<level>`` per level (e.g. ``p_1``,
        ``p_4.5``; rows sum to 1), ``new_user``, ``new_item``.

    Raises
    ------
    ValueError
        If the training ratings have no discrete levels.
    """
    chunk_size = _check_chunk_size(chunk_size)
    model = _model(result)
    levels = model.levels
    if levels is None:
        raise ValueError(
            "predict_proba needs discrete rating levels, but the training ratings are continuous"
        )
    pairs = _resolve_pairs(result, data, unknown=unknown, user_col=user_col, item_col=item_col, rating_col=rating_col)
    base = _base_seed(random_seed)
    S = model.n_samples
    probs = np.empty((len(pairs), len(levels)))
    edges = np.concatenate([[-np.inf], (levels[1:] + levels[:-1]) / 2.0, [np.inf]])
    unknown_mask = pairs.unknown
    for rows_all, n_comp, unk in (
        (np.flatnonzero(~unknown_mask), S, False),
        (np.flatnonzero(unknown_mask), S * max(1, math.ceil(MIN_PRIOR_COMPONENTS / S)), True),
    ):
        if not len(rows_all):
            continue
        s_of_c = np.arange(n_comp) % S
        width = max(_chunk_width(model, unk), len(levels) + 1)
        for rows in _chunks(rows_all, n_comp, width, chunk_size):
            eta = _latent(model, pairs, rows, n_comp, base)
            if model.ordinal:
                assert model.cutpoints is not None
                probs[rows] = ordinal_probs(eta, model.cutpoints[s_of_c]).mean(axis=1)
            else:
                assert model.noise is not None
                from scipy.special import ndtr

                means = _mean_of(model, eta, s_of_c)
                z = (edges[None, None, :] - means[:, :, None]) / model.noise[s_of_c][None, :, None]
                cdf = ndtr(z).mean(axis=1)
                probs[rows] = np.diff(cdf, axis=1)
    names = [f"p_{level:g}" for level in levels]
    return _frame(pairs, dict(zip(names, probs.T, strict=True)))


def summarize_for(
    result: FitResult,
    data: Any,
    probs: Any,
    *,
    kind: str = "predictive",
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
) -> tuple[pd.DataFrame, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """Equal-tailed intervals at several probabilities in one pass (for calibration tables).

    Returns the pairs frame (ids, rating, mean, flags) and ``{prob: (lower, upper)}``.
    """
    validate_choice("kind", kind, KINDS)
    probs = [validate_prob(p) for p in np.atleast_1d(np.asarray(probs, dtype=float)).tolist()]
    model = _model(result)
    pairs = _resolve_pairs(result, data, unknown=unknown, user_col=user_col, item_col=item_col, rating_col=rating_col)
    tails = np.array([t for p in probs for t in ((1 - p) / 2, 1 - (1 - p) / 2)])
    summary = _summarize(
        model, pairs, kind=kind, qs=tails, threshold=math.nan, clip=_check_bool("clip", clip),
        hdi_prob=math.nan, chunk_size=_check_chunk_size(chunk_size), base=_base_seed(random_seed),
        progressbar=False,
    )
    intervals = {p: (summary.quantiles[:, 2 * k], summary.quantiles[:, 2 * k + 1]) for k, p in enumerate(probs)}
    return _frame(pairs, {"mean": summary.mean, "sd": summary.sd}), intervals
