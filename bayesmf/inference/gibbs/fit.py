"""`fit_gibbs`: options, seeds, chains and the assembled `FitResult` of the Gibbs sampler."""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf._seed import seed_sequence
from bayesmf._validate import validate_choice, validate_positive_int
from bayesmf.inference._contract import check_inputs
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.runner import Schedule, run_chains
from bayesmf.inference.gibbs.sink import MemorySink
from bayesmf.inference.gibbs.start import INITS, initial_state
from bayesmf.inference.gibbs.sweep import build_sweep
from bayesmf.posterior import make_posterior, variable_shapes

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["fit_gibbs"]

log = logging.getLogger("bayesmf")

#: posteriors larger than this draw a warning before sampling starts
_LARGE_POSTERIOR_BYTES = 4e9
#: sample statistics recorded with every kept draw
_STATS = ("log_likelihood_sum",)


def _validate_overrelaxation(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"overrelaxation must be a number in (-1, 1), got {value!r}")
    value = float(value)
    if not -1.0 < value < 1.0:
        raise ValueError(f"overrelaxation must lie strictly between -1 and 1, got {value!r}")
    return value


def _available_cpus() -> int:
    """CPUs this process may run on (respects taskset / container limits where visible)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _warn_if_large(shapes: dict[str, Any], chains: int, stored: int) -> None:
    per_draw = 8 * len(_STATS) + sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in shapes.values())
    if stored * per_draw > _LARGE_POSTERIOR_BYTES:
        warnings.warn(
            f"the posterior will take about {stored * per_draw / 1e9:.1f} GB "
            f"({chains} chains x {stored // chains} draws); pass a larger thin or fewer draws "
            "to keep it smaller",
            UserWarning,
            stacklevel=3,
        )


def fit_gibbs(
    spec: PMF,
    data: RatingsData,
    *,
    draws: int = 500,
    tune: int = 200,
    chains: int = 4,
    thin: int = 5,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = True,
    cores: int | None = None,
    init: str = "map",
    keep_warmup: bool = False,
    overrelaxation: float = -0.8,
) -> FitResult:
    r"""Sample the posterior of ``spec`` on ``data`` by blocked conjugate Gibbs.

    See `bayesmf.inference.gibbs` for the model and `bayesmf.inference.gibbs.sweep` for
    the sweep. Supports ``link="identity"`` with ``likelihood="normal"``, fixed or
    hierarchical priors, with or without biases.

    Parameters
    ----------
    spec : PMF
        The model.
    data : RatingsData
        Training ratings.
    draws : int
        Draws kept per chain (after thinning).
    tune : int
        Burn-in sweeps per chain, discarded (unless ``keep_warmup``). From the ``"map"``
        start the noise and prior sds settle within a few dozen sweeps.
    chains : int
        Independent chains, each from its own start and its own generator.
    thin : int
        Keep every ``thin``-th sweep; a chain runs ``tune + draws * thin`` sweeps. The
        default 5 stores a fifth of the sweeps: successive sweeps are strongly correlated
        (overrelaxation, weak factors), so the kept draws lose little effective sample size
        and the posterior takes a fifth of the memory.
    random_seed : int, numpy.random.Generator or None
        Seed of the `numpy.random.SeedSequence` whose ``spawn(chains)`` children seed the
        chains (a Generator gives one integer seed drawn from it; `bayesmf._seed`). The
        same seed gives the same draws (on the same machine and build). None: fresh
        entropy. ``info["random_seed"]`` is the integer that repeats the run.
    progressbar : bool
        Show a tqdm bar over the sweeps of all chains.
    cores : int, optional
        Threads running chains at once; default ``min(chains, CPUs available)``.
    init : {"map", "prior"}
        ``"map"``: a few ALS (conditional-mean) sweeps from a small random start under the
        fixed-prior weights, then jittered per chain. ``"prior"``: a draw from the prior (a
        flat ``mu`` starts uniform on the rating scale).
    keep_warmup : bool
        Also store the burn-in sweeps (thinned alike) as groups ``warmup_posterior`` and
        ``warmup_sample_stats``.
    overrelaxation : float
        Coefficient :math:`\alpha \in (-1, 1)` of Adler's overrelaxation for the factor rows:
        a row whose conditional is :math:`\mathcal N(m, \Lambda^{-1})` moves from
        :math:`\theta` to :math:`m + \alpha(\theta - m) + \sqrt{1 - \alpha^2}\, L^{-\top} z`
        (:math:`\Lambda = L L^\top`, :math:`z` standard normal). This leaves the conditional
        invariant and is reversible, so the chain targets the same posterior; a negative
        :math:`\alpha` reflects each row to the other side of its conditional mean and damps
        the random walk of the alternating U | V, V | U updates. 0 is plain Gibbs. Too
        strong a reflection slows the factor sd down: it nearly keeps each row's distance
        from its conditional mean, so the sum of squares that drives the factor variance
        hardly moves. How the default was chosen:
        ``benchmarks/RESULTS.md``, "Gibbs overrelaxation coefficient".

    Notes
    -----
    Run lengths, timings and how often the defaults reach R-hat <= 1.01 with bulk ESS
    >= 400 on ML-100K: section "Gibbs sampler (bench_gibbs.py)" of
    ``benchmarks/RESULTS.md``. Predicted ratings of simulated data mix well; on real ratings
    some mix slowly: the weak factors of a rank-10 fit (singular values close to the noise
    level) drift among nearly equivalent configurations over hundreds of sweeps, and the
    predictions of heavily rated users and items move with them. Check the predictions you
    care about (`FitResult.diagnose`) and run longer (``thin``, ``draws``) when they need
    it; raw U and V are not identified (rotation, sign) and never converge.

    Returns
    -------
    FitResult
        ``method="gibbs"``; ``idata`` in the layout of `bayesmf.posterior` with
        ``sample_stats.log_likelihood_sum`` (the training log-likelihood of each draw);
        ``info`` holds ``fit_seconds``, ``sampling_seconds``, ``sweeps_per_second`` (all
        chains), ``cpu_ms_per_sweep`` (per chain sweep), ``posterior_nbytes``, the options
        and the seed.

    Raises
    ------
    ValueError, TypeError
        On an unsupported model, bad data, or bad options (each message names the value).

    Examples
    --------
    >>> from bayesmf import PMF, simulate
    >>> sim = simulate(n_users=40, n_items=30, n_factors=2, density=0.3, seed=1)
    >>> fit = fit_gibbs(PMF(n_factors=2), sim.data, draws=50, tune=50, chains=2,
    ...                 random_seed=0, progressbar=False)
    >>> fit.n_chains, fit.n_draws
    (2, 50)
    """
    from bayesmf.results import FitResult

    t0 = time.perf_counter()
    check_inputs(spec, data, "gibbs")
    draws = validate_positive_int("draws", draws)
    tune = validate_positive_int("tune", tune, minimum=0)
    chains = validate_positive_int("chains", chains)
    thin = validate_positive_int("thin", thin)
    validate_choice("init", init, INITS)
    overrelaxation = _validate_overrelaxation(overrelaxation)
    if cores is not None:
        cores = validate_positive_int("cores", cores)
    cores = min(chains, cores if cores is not None else _available_cpus())
    for name, flag in (("progressbar", progressbar), ("keep_warmup", keep_warmup)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    seed_seq = seed_sequence(random_seed)
    seed = int(seed_seq.entropy)  # type: ignore[arg-type]

    problem = build_problem(spec, data)
    sweep = build_sweep(problem, overrelaxation)
    rngs = [np.random.default_rng(child) for child in seed_seq.spawn(chains)]
    shapes = variable_shapes(spec, data.n_users, data.n_items)
    _warn_if_large(shapes, chains, chains * (draws + (tune // thin if keep_warmup else 0)))
    sink = MemorySink(shapes, _STATS, chains, draws)
    warm = MemorySink(shapes, _STATS, chains, tune // thin) if keep_warmup else None

    t_init = time.perf_counter()
    with threadpool_limits(limits=1):
        states = [initial_state(problem, spec, data, rng, init) for rng in rngs]
    init_seconds = time.perf_counter() - t_init
    if set(sweep.draws(states[0])) != set(shapes):  # the blocks must record the layout
        raise RuntimeError(f"the Gibbs blocks record {sorted(sweep.draws(states[0]))}, not {sorted(shapes)}")
    schedule = Schedule(tune, draws, thin)
    t_sample = time.perf_counter()
    cpu = run_chains(sweep, states, rngs, schedule, sink, warm, cores=cores, progressbar=progressbar)
    sampling_seconds = time.perf_counter() - t_sample

    attrs = {
        "method": "gibbs",
        "random_seed": str(seed),
        "tune": tune,
        "thin": thin,
        "init": init,
        "overrelaxation": overrelaxation,
    }
    idata = make_posterior(spec, data, sink.variables, sample_stats=sink.stats, attrs=attrs)
    if warm is not None and tune // thin > 0:
        warm_tree = make_posterior(spec, data, warm.variables, sample_stats=warm.stats, attrs=attrs)
        idata["warmup_posterior"] = warm_tree["posterior"]
        idata["warmup_sample_stats"] = warm_tree["sample_stats"]
    n_sweeps = chains * schedule.sweeps
    info: dict[str, Any] = {
        "fit_seconds": time.perf_counter() - t0,
        "init_seconds": init_seconds,
        "sampling_seconds": sampling_seconds,
        "sweeps_per_second": n_sweeps / sampling_seconds if sampling_seconds > 0 else float("inf"),
        "cpu_ms_per_sweep": 1e3 * sum(cpu) / n_sweeps,
        "chains": chains,
        "draws": draws,
        "tune": tune,
        "thin": thin,
        "cores": cores,
        "init": init,
        "overrelaxation": overrelaxation,
        "random_seed": seed,
        "posterior_nbytes": sink.nbytes,
    }
    log.info(
        "gibbs: %d chains x (%d tune + %d x %d) sweeps in %.1f s (%.1f sweeps/s), posterior %.1f MB",
        chains,
        tune,
        draws,
        thin,
        info["fit_seconds"],
        info["sweeps_per_second"],
        sink.nbytes / 1e6,
    )
    return FitResult(spec=spec, idata=idata, method="gibbs", train=data, info=info)
