"""`fit_gibbs`: options, seeds, chains and the assembled `FitResult` of the Gibbs sampler."""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf._seed import seed_sequence
from bayesmf._validate import (
    validate_choice,
    validate_open_interval,
    validate_positive,
    validate_positive_int,
)
from bayesmf.diagnostics import chain_notes, verdict_info, verdict_text
from bayesmf.inference._contract import check_inputs
from bayesmf.inference.gibbs.assemble import per_draw_bytes, posterior_tree, warn_stopped
from bayesmf.inference.gibbs.converge import FIXED_RUN_THIN, judge, sample, stopping_rule
from bayesmf.inference.gibbs.recording import Recording, check_factor_draws
from bayesmf.inference.gibbs.runner import ChainPool, Schedule, default_cores
from bayesmf.inference.gibbs.sink import MemorySink
from bayesmf.inference.gibbs.start import INITS, initial_states
from bayesmf.inference.gibbs.sweep import build_sweep, problem_for
from bayesmf.inference.gibbs.zarr_sink import check_store_path, finish_store, write_group
from bayesmf.posterior import SCALAR_GROUP, scalar_posterior, shapes_for

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["fit_gibbs"]

log = logging.getLogger("bayesmf")


def fit_gibbs(
    spec: PMF,
    data: RatingsData,
    *,
    draws: int | None = None,
    tune: int = 200,
    chains: int = 4,
    thin: int | None = None,
    max_sweeps: int | None = None,
    max_seconds: float | None = None,
    rhat_max: float = 1.01,
    ess_min: float = 400.0,
    min_draws: int = 100,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = True,
    cores: int | None = None,
    init: str = "map",
    keep_warmup: bool = False,
    overrelaxation: float = -0.8,
    store: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    factor_draws: int | None = 1000,
) -> FitResult:
    r"""Sample the posterior of ``spec`` on ``data`` by blocked conjugate Gibbs.

    See `bayesmf.inference.gibbs` for the model and `bayesmf.inference.gibbs.sweep` for
    the sweep. Supports ``likelihood="normal"`` (ratings, identity link),
    ``likelihood="implicit"`` (implicit feedback: every pair counts) and
    ``likelihood="bernoulli"`` (0/1 feedback, probit link, by data augmentation), fixed or
    hierarchical priors, with or without biases.

    Parameters
    ----------
    spec : PMF
        The model.
    data : RatingsData
        Training ratings.
    draws : int, optional
        Draws kept per chain (after thinning), for a run of fixed length. None (default):
        run until converged (see Notes): the draws per chain are what the rule needed.
    tune : int
        Burn-in sweeps per chain, discarded (unless ``keep_warmup``). From the ``"map"``
        start the noise and prior sds settle within a few dozen sweeps.
    chains : int
        Independent chains, each from its own start and its own generator.
    thin : int, optional
        Keep every ``thin``-th sweep; a chain runs ``tune + draws * thin`` sweeps. None
        (default): 1 when running until converged, so the rule's looks see every sweep
        (thinning throws effective draws away, and the rule then stops later) and
        ``factor_draws`` bounds the memory; 5 for a run of fixed length (``draws``), where
        it stores a fifth of the sweeps. How the default was chosen, and what it costs:
        ``benchmarks/RESULTS.md``, "Gibbs until converged, beside myFM".
    max_sweeps : int, optional
        Budget of a run until convergence: sweeps per chain, burn-in included. Default
        ``tune + 10000`` (`bayesmf.inference.gibbs.converge.DEFAULT_MAX_SWEEPS`). Not with
        ``draws``.
    max_seconds : float, optional
        Budget of wall time for sampling, in seconds; the chains stop at the end of their
        sweep when it runs out (with ``draws`` too). With a time budget every chain runs at
        once (their threads share the ``cores``), so each has draws when it ends. None: no time
        limit. A run stopped by its time budget is not reproducible from its seed alone.
    rhat_max, ess_min : float
        What converged means (the defaults of `bayesmf.diagnostics.diagnose`): R-hat at most
        ``rhat_max`` and bulk and tail ESS at least ``ess_min`` on every identified quantity.
    min_draws : int
        Draws per chain at the first look at convergence; later looks come at 1.5 times as
        many draws each time.
    random_seed : int, numpy.random.Generator or None
        Seed of the `numpy.random.SeedSequence` whose ``spawn(chains)`` children seed the
        chains (a Generator gives one integer seed drawn from it; `bayesmf._seed`). The
        same seed gives the same draws (on the same machine and build). None: fresh
        entropy. ``info["random_seed"]`` is the integer that repeats the run.
    progressbar : bool
        Show a tqdm bar over the sweeps of all chains.
    cores : int, optional
        Threads running chains at once; default ``min(chains, CPUs available)``, or 1 for a
        small problem (`bayesmf.inference.gibbs.runner.SMALL_SWEEP_WORK`), whose sweeps are
        so short that two threads handing the interpreter to each other run slower than one
        (1.35 x slower at 60 users x 40 items, rank 10; ``benchmarks/RESULTS.md``, "Gibbs on
        small problems"). The draws do not depend on it.
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
    store : str or path-like, optional
        A zarr store (a directory, e.g. ``"posterior.zarr"``) to write the kept draws to as
        they are made, a block of draws per chain at a time, so the sampler's memory does
        not grow with ``draws``. The store is a saved result (`bayesmf.load` reads it) and
        the returned ``idata`` reads it lazily (dask arrays chunked along the draws). None
        (default): the draws are kept in memory (a warning names the size of a large one).
    overwrite : bool
        Replace an existing zarr store at ``store``. Without it an existing path is an
        error, and a path that is not a zarr store is never replaced.
    factor_draws : int or None
        Most draws per chain kept in ``idata.posterior``, whose size the factors dominate;
        None: every kept draw. When a run goes past it, the posterior keeps every second
        kept draw, then every fourth, ... (`bayesmf.inference.gibbs.spacing`), so it holds
        between half and all of ``factor_draws`` per chain and stops growing, and the
        convergence rule judges exactly these draws. The scalars (noise sd, scales, level,
        ``log_likelihood_sum``) of every kept draw are in the group ``scalar_posterior``
        (`bayesmf.posterior.SCALAR_GROUP`); ``info["draw_spacing"]`` is the spacing. Keep
        ``chains * factor_draws`` at 2,000 or more when running until converged: R-hat on
        fewer draws is noisy enough that the rule may fail by chance on every look. Less
        than ``ess_min`` in all is refused.

    Notes
    -----
    **Running until converged** (``draws=None``, the default). After ``tune`` burn-in sweeps
    the chains keep a draw every ``thin`` sweeps; at ``min_draws`` draws per chain and then at
    1.5 times as many each time, the sampler checks the identified quantities (those
    `bayesmf.diagnostics.diagnose` monitors by default: sigma, the scales, the level,
    :math:`\lVert UV^\top\rVert`, 200 training and 200 unrated predictions, the unrated
    ones drawn in proportion to user x item activity: `bayesmf.monitored_pairs`) and stops when
    every one has R-hat :math:`\le` ``rhat_max`` and bulk and tail ESS :math:`\ge`
    ``ess_min``, or when the budget (``max_sweeps``, ``max_seconds``) runs out, with a
    `bayesmf.exceptions.ConvergenceWarning` naming the last verdict. Every draw after the
    burn-in is kept. ``diagnose(fit)`` then gives the verdict of the last check.
    ``info["stopped_by"]`` says what stopped the run (``"converged"``, ``"max_sweeps"``,
    ``"max_seconds"``, ``"interrupted"``, or ``"draws"`` for a run of fixed length) and
    ``info["checks"]`` lists each look (draws per chain, worst R-hat, smallest ESS, and how
    many quantities it judged: a look first judges those that failed the look before, and
    the rest only once they pass). Why this rule keeps the posterior calibrated:
    `bayesmf.inference.gibbs.converge`. The progress bar shows the worst R-hat, the
    smallest ESS and how many quantities fail at the last look.

    **Interrupting.** Ctrl-C (SIGINT, Jupyter's "interrupt kernel") stops every chain at
    the end of its current sweep and returns the draws kept so far, with a ``UserWarning``
    naming the sweep reached: the chains that kept at least one draw, each cut to the
    number of draws all of them completed (equal lengths keep R-hat and ESS valid; each
    chain is the start of the chain an uninterrupted run with the same seed makes).
    ``info["interrupted"]`` is True, ``info["interrupted_at_sweep"]`` the furthest sweep
    reached and ``info["chain_sweeps"]`` each chain's; ``info["chains"]`` and
    ``info["draws"]`` are what was kept. A second Ctrl-C while the chains stop raises
    ``KeyboardInterrupt`` (a store then keeps what was written, with draws not reached
    left as NaN). Only the calling thread of the main interpreter thread sees Ctrl-C.

    Run lengths and timings on ML-100K: section "Gibbs sampler (bench_gibbs.py)" of
    ``benchmarks/RESULTS.md``. Predicted ratings of simulated data mix well; on real ratings
    some mix slowly: the weak factors of a rank-10 fit (singular values close to the noise
    level) drift among nearly equivalent configurations over hundreds of sweeps, and the
    predictions of heavily rated users and items move with them. Check the predictions you
    care about (`FitResult.diagnose` with ``test=``) and run longer when they need it; raw U
    and V are not identified (rotation, sign) and never converge.

    Returns
    -------
    FitResult
        ``method="gibbs"``; ``idata`` in the layout of `bayesmf.posterior` with
        ``sample_stats.log_likelihood_sum`` (the training log-likelihood of each draw);
        ``info`` holds ``fit_seconds``, ``sampling_seconds``, ``sweeps_per_second`` (all
        chains), ``cpu_ms_per_sweep`` (per chain sweep), ``posterior_nbytes``, the options,
        the seed, ``stopped_by``, ``converged``, ``checks``, ``interrupted`` (see Notes),
        ``draws`` (per chain in ``posterior``), ``kept_draws`` (per chain in
        ``scalar_posterior``), ``draw_spacing``,
        ``verdict_ok`` and ``verdict`` (`bayesmf.diagnostics.diagnose`'s, or the stopping
        rule's, which is the same, word for word; not for a fixed-length run into a store) and, with
        ``store``, the ``store`` path.

    Raises
    ------
    ValueError, TypeError
        On an unsupported model, bad data, or bad options (each message names the value);
        ``store`` exists and ``overwrite`` is False.
    PermissionError
        ``store``'s directory is not writable (checked before sampling).
    OSError
        Writing to ``store`` failed during sampling (a full disk): sampling stops and the
        draws already written stay in the store, cut to equal lengths as on Ctrl-C; the
        message says how many and how to read them.
    TimeoutError
        ``max_seconds`` ran out before any draw was kept (within the burn-in).
    KeyboardInterrupt
        Ctrl-C before any draw was kept (a store this call created is removed), or a
        second Ctrl-C.

    Warns
    -----
    UserWarning
        When Ctrl-C stopped sampling (naming the sweep), or when an in-memory posterior
        will be (or, running until converged, has grown) large.
    ConvergenceWarning
        When a budget stopped a run before it converged (with the last verdict).

    Examples
    --------
    >>> from bayesmf import PMF, simulate
    >>> sim = simulate(n_users=40, n_items=30, n_factors=2, density=0.3, seed=1)
    >>> fit = fit_gibbs(PMF(n_factors=2), sim.data, draws=50, tune=50, chains=2,
    ...                 random_seed=0, progressbar=False)
    >>> fit.n_chains, fit.n_draws
    (2, 50)
    >>> fit = fit_gibbs(PMF(n_factors=2), sim.data, random_seed=0, progressbar=False)
    >>> fit.info["stopped_by"], fit.diagnose().ok
    ('converged', True)
    """
    from bayesmf.results import FitResult

    t0 = time.perf_counter()
    check_inputs(spec, data, "gibbs")
    if draws is not None:
        draws = validate_positive_int("draws", draws)
    tune = validate_positive_int("tune", tune, minimum=0)
    chains = validate_positive_int("chains", chains)
    thin = (1 if draws is None else FIXED_RUN_THIN) if thin is None else validate_positive_int("thin", thin)
    rule = stopping_rule(draws, tune, thin, max_sweeps, rhat_max, ess_min, min_draws)
    factor_draws = check_factor_draws(factor_draws, chains, None if rule is None else rule.ess_min)
    deadline_after = validate_positive("max_seconds", max_seconds, allow_none=True)
    validate_choice("init", init, INITS)
    overrelaxation = validate_open_interval("overrelaxation", overrelaxation, -1.0, 1.0)
    if cores is not None:
        cores = min(chains, validate_positive_int("cores", cores))
    for name, flag in (("progressbar", progressbar), ("keep_warmup", keep_warmup), ("overwrite", overwrite)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    path = None if store is None else check_store_path(store, overwrite)
    seed_seq = seed_sequence(random_seed)
    seed = int(seed_seq.entropy)  # type: ignore[arg-type]

    problem = problem_for(spec, data)
    cores = default_cores(problem, chains) if cores is None else cores
    sweep = build_sweep(problem, overrelaxation)
    rngs = [np.random.default_rng(child) for child in seed_seq.spawn(chains)]
    shapes = shapes_for(spec, data)
    n_warm = tune // thin if keep_warmup else 0
    # draws per chain the sinks start with (they grow as a run until convergence goes on)
    first: int = next(rule.checkpoints()) if rule is not None else draws  # type: ignore[assignment]
    attrs = {
        "method": "gibbs",
        "random_seed": str(seed),
        "tune": tune,
        "thin": thin,
        "init": init,
        "overrelaxation": overrelaxation,
    }
    options = {"chains": chains, "draws": draws, "tune": tune, "thin": thin, "cores": cores, "init": init}
    options["factor_draws"] = factor_draws
    info: dict[str, Any] = options | {"overrelaxation": overrelaxation, "random_seed": seed}
    if rule is not None:
        info |= {"max_draws": rule.max_draws, "rhat_max": rule.rhat_max, "ess_min": rule.ess_min}
    if spec.implicit_sets != "none":  # which sets N(i): from the training pairs, or with extra ones
        info |= {"implicit_sets": spec.implicit_sets, "implicit_protocol": problem.protocol}
    rec = Recording(
        spec, data, shapes, chains, first, n_warm=n_warm, factor_draws=factor_draws,
        most=rule.max_draws if rule is not None else first,
        with_monitor=rule is not None, path=path, overwrite=overwrite, attrs=attrs, info=info,
    )  # fmt: skip

    t_init = time.perf_counter()
    try:
        states = initial_states(problem, spec, data, rngs, init, cores)
    except BaseException:  # Ctrl-C or a failure before sampling: the new store holds nothing
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
        raise
    init_seconds = time.perf_counter() - t_init
    if set(sweep.draws(states[0])) != set(shapes):  # the blocks must record the layout
        raise RuntimeError(f"the Gibbs blocks record {sorted(sweep.draws(states[0]))}, not {sorted(shapes)}")
    t_sample = time.perf_counter()
    deadline = None if deadline_after is None else t_sample + deadline_after
    schedule = Schedule(tune, first, thin)
    pool = ChainPool(sweep, states, rngs, schedule, rec.recorder, rec.warm, cores=cores, progressbar=progressbar)
    try:
        outcome = sample(pool, rule, rec.monitor, rec.grow, deadline)
    finally:
        pool.close()
    report = outcome.report
    sampling_seconds = time.perf_counter() - t_sample
    kept, n, n_kept, error = rec.settle(report)
    reached = max(r.sweeps for r in report.chains)
    if n == 0:
        if path is not None:  # the store this call created holds no draw
            shutil.rmtree(path, ignore_errors=True)
        if error is not None:
            raise error
        if report.timed_out:
            raise TimeoutError(
                f"max_seconds={max_seconds!r} ran out at sweep {reached}, before the {tune} burn-in "
                "sweeps ended: no draw was kept; raise max_seconds or lower tune"
            )
        raise KeyboardInterrupt(
            f"Gibbs sampling interrupted at sweep {reached} ({tune} tuning sweeps), "
            "before any draw was kept: nothing to return"
        )

    n_sweeps = max(1, report.sweeps)
    info |= {
        "fit_seconds": time.perf_counter() - t0,
        "init_seconds": init_seconds,
        "sampling_seconds": sampling_seconds,
        "sweeps_per_second": n_sweeps / sampling_seconds if sampling_seconds > 0 else float("inf"),
        "cpu_ms_per_sweep": 1e3 * sum(r.cpu_seconds for r in report.chains) / n_sweeps,
        "posterior_nbytes": len(kept) * n * per_draw_bytes(shapes),
        "interrupted": report.interrupted,
        "stopped_by": outcome.stopped_by,
        "draws": n,
        "kept_draws": n_kept,
        "draw_spacing": rec.spaced.spacing,
    }
    if rule is not None:
        judge(info, outcome, n)
    if report.interrupted or error is not None or report.timed_out:
        info |= {"chains": len(kept), "draws": n, "chains_kept": kept}
        info |= {"interrupted_at_sweep": reached, "chain_sweeps": [r.sweeps for r in report.chains]}
        info["draws_requested"] = draws
    scalars = scalar_posterior(spec, data, rec.trace.variables, rec.trace.stats, rec.spaced.spacing)
    sink, warm = rec.sink, rec.warm
    if isinstance(sink, MemorySink):
        if error is not None:
            raise error
        pre_drawn = (warm.variables, warm.stats) if isinstance(warm, MemorySink) else None
        idata = posterior_tree(spec, data, (sink.variables, sink.stats), pre_drawn, attrs, scalars)
    elif path is not None and rec.root is not None and rec.template is not None:
        info["store"] = str(path)
        error = write_group(path, SCALAR_GROUP, scalars, error)
        template = rec.template._replace(info=info)
        idata = finish_store(path, rec.root, template, error, f"The first {n} draws of chain(s) {kept}")
    warn_stopped(info, pool, reached, kept, n)
    log.info(
        "gibbs: %d chains x (%d tune + %d x %d) sweeps in %.1f s (%.1f sweeps/s), posterior %d draws per chain "
        "(one in %d of those made), %.1f MB, stopped by %s",
        chains,
        tune,
        n_kept,
        thin,
        info["fit_seconds"],
        info["sweeps_per_second"],
        n,
        rec.spaced.spacing,
        info["posterior_nbytes"] / 1e6,
        outcome.stopped_by,
    )
    result = FitResult(spec=spec, idata=idata, method="gibbs", train=data, info=info)
    last = outcome.checks[-1] if outcome.checks else None
    if last is not None and last.draws == n and len(kept) == chains:  # the rule's verdict is diagnose()'s
        thresholds = {"rhat_max": info["rhat_max"], "ess_min": info["ess_min"]}
        verdict = verdict_text("gibbs", chains, n, last.total, thresholds, last.problems, chain_notes(chains))
        info |= {"verdict_ok": last.ok, "verdict": verdict}
    elif path is None:  # a store is not read back whole just for this
        info |= verdict_info(result)
    return result
