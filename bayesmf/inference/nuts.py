"""Full posterior by NUTS: ``pm.sample`` on `bayesmf.model.build_model`, nutpie by default.

Starting NUTS from the model's default point is fragile for PMF: at U = V = 0 every factor
gradient vanishes, and PyMC's own NUTS started from a jittered prior point adapted its step
size down to a tiny value on an ML-100K-sized model. So by default (``init="map"``) the
chains start from a quick MAP fit of the same model with fixed priors (ALS, SGD or
``find_MAP``; see `bayesmf.inference.starts.map_start`), with the hierarchical scales set
from it (the variance of the fitted factors, offsets and residuals).

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
  scales (`bayesmf.inference.starts.jitter_start`).

BLAS is limited to one thread per sampling thread (`bayesmf.inference._pymc.blas_limit`).

Determinism: the same integer ``random_seed`` gives the same MAP start and, with nutpie,
identical draws (each chain is seeded from it; checked in the tests, chains in threads).
PyMC's sampler seeds each chain too, but runs several processes; its determinism is
PyMC's and is not checked here.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bayesmf._seed import base_seed
from bayesmf._validate import validate_choice, validate_positive_int, validate_prob
from bayesmf.diagnostics import verdict_info
from bayesmf.inference._contract import check_inputs
from bayesmf.inference._pymc import blas_limit, quiet_pymc
from bayesmf.inference.starts import SCALE_VARS, jitter_start, map_start
from bayesmf.posterior import make_posterior, param_names

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

# map_start lives in bayesmf.inference.starts; re-exported here, where it was first public
__all__ = ["fit_nuts", "map_start", "nutpie_available"]

log = logging.getLogger("bayesmf")

NUTS_SAMPLERS = ("auto", "nutpie", "pymc")
INITS = ("map", "default")


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

    check_inputs(spec, data, "nuts")
    seed = base_seed(random_seed)
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
    rng = np.random.default_rng(seed)
    map_seed, sample_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    model = build_model(spec, data)
    names = param_names(spec, data)

    kwargs: dict[str, Any] = dict(sample_kwargs)
    nuts_options = dict(kwargs.pop("nuts", {}))
    nuts_options.setdefault("target_accept", target_accept)
    kwargs["nuts"] = nuts_options
    kwargs.setdefault("compute_convergence_checks", False)  # raw-factor R-hat is meaningless
    init_seconds = 0.0
    if init == "map":
        start = map_start(spec, data.without_features(), random_seed=map_seed)  # weights start at 0
        init_seconds = time.perf_counter() - started
        start = {k: v for k, v in start.items() if k in model.named_vars}
        scale_rvs = [model[k] for k in SCALE_VARS if k in model.named_vars and model[k] in model.free_RVs]
        if sampler == "nutpie":
            kwargs["initvals"] = start
            compile_kwargs = dict(kwargs.pop("compile_kwargs", None) or {})
            compile_kwargs.setdefault("jitter_rvs", set(scale_rvs))
            kwargs["compile_kwargs"] = compile_kwargs
        else:
            kwargs["initvals"] = [
                jitter_start(start, [rv.name for rv in scale_rvs], np.random.default_rng(chain_seed))
                for chain_seed in rng.integers(0, 2**31 - 1, size=chains)
            ]
            kwargs.setdefault("init", "adapt_diag")  # the starts are already spread

    with blas_limit(blas_threads), quiet_pymc(not progressbar):
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
        "random_seed": seed,
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
    result = FitResult(spec=spec, idata=idata, method="nuts", train=data, info=info)
    result.info.update(verdict_info(result))  # the fit carries diagnose()'s verdict
    return result


def _resolve_sampler(nuts_sampler: str) -> str:
    if nuts_sampler == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    if nuts_sampler == "nutpie" and not nutpie_available():
        raise ValueError(
            "nuts_sampler='nutpie' but nutpie is not installed; pip install 'bayesmf[nutpie]' "
            "or use nuts_sampler='pymc'"
        )
    return nuts_sampler


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
