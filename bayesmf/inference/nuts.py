"""Full posterior by NUTS: ``pm.sample`` on `bayesmf.model.build_model`, nutpie by default.

Starting NUTS from the model's default point is fragile for PMF: at U = V = 0 every factor
gradient vanishes, and PyMC's own NUTS started from a jittered prior point was measured to
adapt its step size down to 4e-4 on an ML-100K-sized model. So by default (``init="map"``)
the chains start from a quick MAP fit of the same model with fixed priors (ALS, SGD or
``find_MAP``; see `map_start`), with the hierarchical scales set from it
(the variance of the fitted factors, offsets and residuals).

How the chains are spread around that start:

- nutpie (through ``pm.sample``) takes a single initial point, not one per chain; each chain
  draws its own jitter, uniform on (-1, 1) on the log scale, of the *scale* parameters only
  (``sigma2``, ``factor_var``, ...). Factors, offsets and cutpoints start at the MAP in every
  chain: a jitter of (-1, 1) would throw factors of size ~0.3 far from any mode, and the chains
  separate within a few iterations anyway. Chains therefore start less dispersed than the
  textbook R-hat recipe assumes; the diagnostics monitor quantities whose posterior the
  chains reach from any start.
- PyMC's NUTS takes one initial point per chain: each gets the MAP with Gaussian noise of a
  tenth of each block's scale on the factors and offsets and the same log-scale jitter of the
  scales.

BLAS is limited to one thread per sampling thread (`threadpoolctl`): on small machines,
BLAS threads of parallel chains fight over the cores (measured 25x slower on 2 cores).

Determinism: the same integer ``random_seed`` gives the same MAP start and, with nutpie,
identical draws (each chain is seeded from it; checked in the tests, chains in threads).
PyMC's sampler seeds each chain too, but runs several processes; its determinism is
PyMC's and is not checked here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf._validate import validate_choice, validate_positive_int, validate_prob
from bayesmf.data import RatingsData
from bayesmf.posterior import make_posterior, param_names

if TYPE_CHECKING:
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["fit_nuts", "map_start", "nutpie_available"]

log = logging.getLogger("bayesmf")

NUTS_SAMPLERS = ("auto", "nutpie", "pymc")
INITS = ("map", "default")
#: variance parameters of the hierarchical model (names in `bayesmf.model.build_model`)
_SCALE_VARS = (
    "sigma2",
    "factor_var",
    "factor_var_user",
    "factor_var_item",
    "user_bias_var",
    "item_bias_var",
)
_FLOOR = 1e-4


def nutpie_available() -> bool:
    """Tell whether nutpie can be imported."""
    from importlib.util import find_spec

    return find_spec("nutpie") is not None


def fit_nuts(
    spec: PMF,
    data: RatingsData,
    *,
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    random_seed: Any = None,
    progressbar: bool = True,
    nuts_sampler: Literal["auto", "nutpie", "pymc"] = "auto",
    target_accept: float = 0.8,
    init: Literal["map", "default"] = "map",
    cores: int | None = None,
    blas_threads: int | None = 1,
    **sample_kwargs: Any,
) -> FitResult:
    """Sample the posterior of any PMF spec by NUTS.

    Parameters
    ----------
    spec : PMF
        Any spec (fixed or hierarchical priors, any link and likelihood).
    data : RatingsData
        Training ratings.
    draws, tune : int
        Kept draws and tuning (warm-up) iterations per chain.
    chains : int
        Number of chains (two or more to compute R-hat).
    random_seed : int, numpy.random.Generator or None
        Seed of the MAP start, the jitter and the sampler; the same int gives the same draws.
    progressbar : bool
        Show progress (``False`` also silences PyMC's log messages).
    nuts_sampler : {"auto", "nutpie", "pymc"}
        ``"auto"``: nutpie when installed (faster: compiled Rust sampler, chains in threads),
        else PyMC's NUTS.
    target_accept : float
        Target mean acceptance probability of the step-size adaptation; raise it (0.9,
        0.95) if the diagnosis reports divergences.
    init : {"map", "default"}
        ``"map"``: start at a MAP fit (see the module docstring). ``"default"``: the
        sampler's own initialization (the model's initial point, jittered).
    cores : int, optional
        Chains run in parallel (nutpie threads, PyMC processes); default min(4, CPUs).
    blas_threads : int or None
        BLAS threads while sampling (None: leave as is).
    **sample_kwargs
        Passed to ``pymc.sample`` (e.g. ``nuts={"max_treedepth": 12}``).

    Returns
    -------
    FitResult
        ``method="nuts"``; posterior in the bayesmf layout (factors float32) and the
        sampler's per-draw ``sample_stats`` (``diverging``, ``depth``/``tree_depth``...).
        ``info``: ``fit_seconds``, ``init_seconds``, ``sampler``, ``draws``, ``tune``,
        ``chains``, ``target_accept``, ``init``, ``random_seed``, ``divergences``.

    Raises
    ------
    ValueError
        Bad option values; ``nuts_sampler="nutpie"`` when nutpie is not installed.

    Warns
    -----
    bayesmf.diagnostics.ConvergenceWarning
        When the sampler reports divergent transitions (see ``result.diagnose()``).
    """
    import pymc as pm

    from bayesmf.diagnostics import ConvergenceWarning
    from bayesmf.model import build_model
    from bayesmf.results import FitResult

    draws = validate_positive_int("draws", draws)
    tune = validate_positive_int("tune", tune, minimum=0)
    chains = validate_positive_int("chains", chains)
    target_accept = validate_prob(target_accept, "target_accept")
    validate_choice("nuts_sampler", nuts_sampler, NUTS_SAMPLERS)
    validate_choice("init", init, INITS)
    if cores is not None:
        cores = validate_positive_int("cores", cores)
    if blas_threads is not None:
        blas_threads = validate_positive_int("blas_threads", blas_threads)
    sampler = _resolve_sampler(nuts_sampler)
    for reserved in ("initvals", "var_names", "model", "return_inferencedata", "step"):
        if reserved in sample_kwargs:
            raise ValueError(f"fit_nuts sets {reserved!r} itself; it cannot be passed through")

    started = time.perf_counter()
    rng = np.random.default_rng(random_seed)
    map_seed, sample_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    model = build_model(spec, data)
    names = param_names(spec)

    kwargs: dict[str, Any] = dict(sample_kwargs)
    nuts_options = dict(kwargs.pop("nuts", {}))
    nuts_options.setdefault("target_accept", target_accept)
    kwargs["nuts"] = nuts_options
    kwargs.setdefault("compute_convergence_checks", False)  # raw-factor R-hat is meaningless
    init_seconds = 0.0
    if init == "map":
        start = map_start(spec, data, random_seed=map_seed)
        init_seconds = time.perf_counter() - started
        start = {k: v for k, v in start.items() if k in model.named_vars}
        scale_rvs = [model[k] for k in _SCALE_VARS if k in model.named_vars and model[k] in model.free_RVs]
        if sampler == "nutpie":
            kwargs["initvals"] = start
            compile_kwargs = dict(kwargs.pop("compile_kwargs", None) or {})
            compile_kwargs.setdefault("jitter_rvs", set(scale_rvs))
            kwargs["compile_kwargs"] = compile_kwargs
        else:
            kwargs["initvals"] = [
                _jitter(start, [rv.name for rv in scale_rvs], np.random.default_rng(seed))
                for seed in rng.integers(0, 2**31 - 1, size=chains)
            ]
            kwargs.setdefault("init", "adapt_diag")  # the starts are already spread

    with _blas_limit(blas_threads), quiet_pymc(not progressbar):
        with model, warnings.catch_warnings():
            # PyMC's small-sample notice duplicates what diagnose() reports
            warnings.filterwarnings("ignore", message=".*samples per chain.*")
            tree = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=sample_seed,
                progressbar=progressbar,
                quiet=not progressbar,
                nuts_sampler=sampler,
                var_names=names,
                **kwargs,
            )
    seconds = time.perf_counter() - started

    post = tree["posterior"].to_dataset()
    draws_out = {name: post[name].values for name in names}
    stats = _sample_stats(tree)
    divergences = int(np.asarray(stats.get("diverging", np.zeros(1)), dtype=bool).sum())
    info: dict[str, Any] = {
        "fit_seconds": seconds,
        "init_seconds": init_seconds,
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "target_accept": target_accept,
        "init": init,
        "random_seed": random_seed if isinstance(random_seed, int) else None,
        "divergences": divergences,
    }
    attrs = {"method": "nuts", "sampler": sampler, "fit_seconds": seconds}
    idata = make_posterior(spec, data, draws_out, sample_stats=stats, attrs=attrs)
    if divergences:
        warnings.warn(
            f"NUTS ({sampler}) had {divergences} divergent transition(s) of {chains * draws}; "
            "the posterior may be biased there. See result.diagnose(); try target_accept=0.9 "
            "or 0.95.",
            ConvergenceWarning,
            stacklevel=2,
        )
    log.info("nuts (%s): %d chains x %d draws in %.1f s", sampler, chains, draws, seconds)
    return FitResult(spec=spec, idata=idata, method="nuts", train=data, info=info)


def _resolve_sampler(nuts_sampler: str) -> str:
    if nuts_sampler == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    if nuts_sampler == "nutpie" and not nutpie_available():
        raise ValueError(
            "nuts_sampler='nutpie' but nutpie is not installed; pip install 'bayesmf[nutpie]' "
            "or use nuts_sampler='pymc'"
        )
    return nuts_sampler


@contextmanager
def _blas_limit(threads: int | None) -> Iterator[None]:
    """Limit BLAS threads inside the block (None: leave them as they are)."""
    if threads is None:
        yield
        return
    with threadpool_limits(limits=threads):
        yield


@contextmanager
def quiet_pymc(quiet: bool) -> Iterator[None]:
    """Silence PyMC's INFO log lines ("Finished...", "Sequential sampling...") in the block.

    bayesmf never prints; with ``progressbar=False`` the user asked for silence too.
    """
    if not quiet:
        yield
        return
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _sample_stats(tree: Any) -> dict[str, np.ndarray]:
    """Per-draw numeric statistics of the sampler (those with dims exactly chain, draw)."""
    if "sample_stats" not in tree.children:
        return {}
    stats = tree["sample_stats"].to_dataset()
    out = {}
    for name, var in stats.data_vars.items():
        if var.dims == ("chain", "draw") and var.dtype.kind in "biuf":
            out[str(name)] = var.values
    return out


# ---------------------------------------------------------------------------------------
# MAP start
# ---------------------------------------------------------------------------------------
def map_start(spec: PMF, data: RatingsData, *, random_seed: Any = None) -> dict[str, np.ndarray]:
    """Find a starting point for sampling or ADVI: a quick MAP fit, with scales set from it.

    The joint mode of a hierarchical model is degenerate (scales collapse to zero), and the
    fixed-prior MAP with the spec's default scales can collapse the factors to zero on small
    data (a saddle of the posterior that NUTS leaves only slowly), so the start is a
    two-step empirical-Bayes MAP of ``spec`` with fixed priors (ALS for the identity-link
    normal model, SGD for the logistic link; for the ordinal likelihood, ALS on the centred
    ratings carried over to the logit scale, see `_ordinal_start`), with no model to
    compile:

    1. prior sds 1 for factors and offsets and noise sd half the sd of the ratings (on the
       likelihood's scale): a weak penalty, so the factors do not collapse;
    2. refit with the noise sd, factor sd and offset sd set to the root mean squares of the
       residuals, factors and offsets of step 1.

    For hierarchical specs the variances then start at the mean squares of the fitted
    factors (per factor with ``per_factor_scales``) and offsets, and the noise variance at
    the mean squared residual.

    Parameters
    ----------
    spec : PMF
        The spec to be sampled.
    data : RatingsData
        Training ratings.
    random_seed : int, numpy.random.Generator or None
        Seed of the MAP fit's random start.

    Returns
    -------
    dict of str to numpy.ndarray
        Values in the constrained space keyed by the model's random-variable names
        (``U``, ``V``, ``mu``, ``user_bias``, ``item_bias``, ``cutpoints``, ``sigma2``,
        ``factor_var`` (or ``factor_var_user``, ``factor_var_item``, ``factor_mean_user``,
        ``factor_mean_item``), ``user_bias_var``, ``item_bias_var``: those the spec has).
    """
    from bayesmf.model import to_unit

    rng = np.random.default_rng(random_seed)
    ordinal = spec.likelihood == "ordinal"
    fit_data, fit_spec = data, spec
    if ordinal:
        # no compile: fit the normal model to the centred ratings by ALS, then rescale
        mean = float(np.mean(data.rating))
        low, high = data.scale
        fit_data = RatingsData(
            data.user_idx, data.item_idx, data.rating - mean, (low - mean, high - mean), data.users, data.items
        )
        fit_spec = dataclasses.replace(spec, likelihood="normal", link="identity")
    observed = to_unit(np.asarray(fit_data.rating, dtype=np.float64), fit_data.scale, fit_spec.link)
    weak = dataclasses.replace(
        fit_spec,
        priors="fixed",
        per_factor_scales=False,
        factor_prior="shared",
        sigma=max(0.5 * float(np.std(observed)), 1e-3),
        sigma_u=1.0,
        sigma_v=1.0,
        sigma_bias=1.0,
    )
    start = _point_fit(weak, fit_data, rng)
    residual, factor_rms, bias_rms = _fit_scales(fit_spec, fit_data, start, observed)
    refit = dataclasses.replace(
        weak,
        sigma=max(residual, 1e-3),
        sigma_u=max(factor_rms, 1e-2),
        sigma_v=max(factor_rms, 1e-2),
        sigma_bias=max(bias_rms, 1e-2),
    )
    start = _point_fit(refit, fit_data, rng)
    if ordinal:
        start = _ordinal_start(start, data, float(np.std(data.rating)))
    _fill_unrated(start, data, rng)
    if spec.priors == "hierarchical":
        residual, _, _ = _fit_scales(spec, data, start, observed)
        if spec.factor_prior == "per_side":
            for side, name in (("user", "U"), ("item", "V")):
                column_mean = np.asarray(start[name].mean(axis=0))
                start[f"factor_mean_{side}"] = column_mean
                start[f"factor_var_{side}"] = _mean_square(start[name] - column_mean, spec.per_factor_scales)
        else:
            factors = np.concatenate([start["U"], start["V"]])
            start["factor_var"] = _mean_square(factors, spec.per_factor_scales)
        if spec.biases:
            start["user_bias_var"] = np.asarray(max(float(np.mean(start["user_bias"] ** 2)), _FLOOR))
            start["item_bias_var"] = np.asarray(max(float(np.mean(start["item_bias"] ** 2)), _FLOOR))
        if spec.likelihood == "normal":
            start["sigma2"] = np.asarray(max(residual**2, _FLOOR))
    return start


def _mean_square(values: np.ndarray, per_factor: bool) -> np.ndarray:
    """Mean square of the columns (``per_factor``) or of all entries, floored at ``_FLOOR``."""
    if per_factor:
        return np.maximum(np.mean(values**2, axis=0), _FLOOR)
    return np.asarray(max(float(np.mean(values**2)), _FLOOR))


def _fill_unrated(start: dict[str, np.ndarray], data: RatingsData, rng: np.random.Generator) -> None:
    """Give users and items without training ratings prior-sized random values, not 0.

    Their MAP is exactly 0, where the gradient of every such coordinate vanishes; nutpie
    sets its initial mass matrix from the gradient and refuses such a start ("bad initial
    gradient"), and a zero start sits on the U = V = 0 saddle of those rows anyway.
    """
    for counts, factor_name, bias_name in (
        (data.user_counts(), "U", "user_bias"),
        (data.item_counts(), "V", "item_bias"),
    ):
        empty = counts == 0
        if not empty.any():
            continue
        for name in (factor_name, bias_name):
            if name not in start:
                continue
            value = start[name].copy()
            rated = value[~empty]
            sd = float(np.sqrt(np.mean(rated**2))) if rated.size else 0.1
            value[empty] = rng.normal(0.0, max(sd, 1e-2), size=value[empty].shape)
            start[name] = value


def _ordinal_start(start: dict[str, np.ndarray], data: RatingsData, rating_sd: float) -> dict[str, np.ndarray]:
    r"""Carry a normal fit of the centred ratings over to the ordered-logistic scale.

    The latent score of the ordinal model is on the logit scale, where the logistic
    distribution has sd :math:`\pi/\sqrt 3 \approx 1.8`: scale the centred fit by
    :math:`c = 1.8 / \mathrm{sd}(r)` (factors by :math:`\sqrt c` each), fold the fitted
    mean (near 0) into the user offsets, and set the cutpoints from the level frequencies.
    """
    from bayesmf.model import initial_cutpoints, level_codes

    levels = data.levels
    if levels is None:
        raise ValueError("likelihood='ordinal' needs discrete rating levels")
    c = (np.pi / np.sqrt(3.0)) / max(rating_sd, 1e-6)
    out = {"U": start["U"] * np.sqrt(c), "V": start["V"] * np.sqrt(c)}
    if "user_bias" in start:
        out["user_bias"] = c * (start["user_bias"] + float(start.get("mu", 0.0)))
        out["item_bias"] = c * start["item_bias"]
    out["cutpoints"] = initial_cutpoints(level_codes(np.asarray(data.rating), levels), len(levels))
    return out


def _point_fit(fixed: PMF, data: RatingsData, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from bayesmf.inference.als import fit_als
    from bayesmf.inference.sgd import fit_sgd

    seed = int(rng.integers(0, 2**31 - 1))
    with warnings.catch_warnings():
        # a rough optimum is all a start needs: stopping early is fine here
        warnings.simplefilter("ignore", UserWarning)
        if fixed.likelihood == "normal" and fixed.link == "identity":
            point = fit_als(fixed, data, max_iter=50, tol=1e-5, random_seed=seed, progressbar=False)
        else:
            point = fit_sgd(fixed, data, epochs=100, random_seed=seed, progressbar=False)
    post = point.idata["posterior"].to_dataset()
    return {
        name: np.asarray(post[name].values[0, 0], dtype=np.float64)
        for name in ("U", "V", "mu", "user_bias", "item_bias", "cutpoints")
        if name in post
    }


def _fit_scales(
    spec: PMF, data: RatingsData, point: Mapping[str, np.ndarray], observed: np.ndarray
) -> tuple[float, float, float]:
    """Root mean squares of the residuals (normal likelihood), factors and offsets of a fit."""
    from bayesmf.model import unit_mean

    U, V = point["U"], point["V"]
    u, i = data.user_idx, data.item_idx
    eta = np.einsum("nk,nk->n", U[u], V[i])
    biases = np.zeros(1)
    if "user_bias" in point:
        eta = eta + point["user_bias"][u] + point["item_bias"][i]
        biases = np.concatenate([point["user_bias"], point["item_bias"]])
    if "mu" in point:
        eta = eta + point["mu"]
    residual = float(np.sqrt(np.mean((observed - unit_mean(eta, spec.link)) ** 2)))
    factor_rms = float(np.sqrt(np.mean(np.concatenate([U, V]) ** 2)))
    return residual, factor_rms, float(np.sqrt(np.mean(biases**2)))


def _jitter(start: Mapping[str, np.ndarray], scale_names: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Spread one chain's start around ``start``.

    Location parameters get noise of a tenth of their block's rms, variances a log-uniform
    (-1, 1) factor; cutpoints are kept (they must stay ordered).
    """
    out = {}
    for name, value in start.items():
        value = np.asarray(value, dtype=np.float64)
        if name in scale_names:
            out[name] = value * np.exp(rng.uniform(-1.0, 1.0, size=value.shape))
        elif name == "cutpoints":
            out[name] = value.copy()
        else:
            rms = float(np.sqrt(np.mean(value**2))) if value.size else 0.0
            out[name] = value + 0.1 * max(rms, 1e-3) * rng.normal(size=value.shape)
    return out
