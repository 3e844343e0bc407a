r"""Approximate posterior by ADVI: ``pm.fit`` on `bayesmf.model.build_model`.

ADVI fits a Gaussian :math:`q(\theta)` on the unconstrained parameters by maximizing the
evidence lower bound

.. math::

    \mathrm{ELBO}(q) = E_q[\log p(R, \theta)] - E_q[\log q(\theta)] \le \log p(R),

with mean-field (diagonal, ``approximation="meanfield"``) or full-rank
(``approximation="fullrank"``) covariance, then draws from :math:`q` into the bayesmf
posterior layout (one chain). What makes it work on PMF: ``pm.fit`` from its default start
(U = V = 0, a saddle) with its default optimizer underfits badly; a start away from zero
and ``adam`` with learning rate 0.01 reach a flat ELBO (iterations and timings on ML-100K:
`benchmarks/RESULTS.md`, "NUTS and ADVI on ML-100K"). The start here is the MAP start of
the NUTS route (`bayesmf.inference.starts.map_start`), and the initial sds of :math:`q`
are 0.1.

Mean-field ADVI is known to underestimate posterior variance (it ignores correlations and
its KL direction prefers narrow fits): compare its intervals with Gibbs or NUTS before
trusting them.

Minibatches (``minibatch_size``): each iteration sees a random batch of ratings, and the
likelihood term is rescaled by ``n_ratings / batch`` (PyMC's ``total_size``) so the ELBO is
an unbiased estimate of the full one. The model of `build_model` is rewritten for this
(its rating indices and observed ratings replaced by ``pm.Minibatch`` slices), so the
same model definition serves both modes.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bayesmf._seed import base_seed
from bayesmf._validate import validate_choice, validate_positive, validate_positive_int
from bayesmf.diagnostics import verdict_info
from bayesmf.inference._contract import check_inputs
from bayesmf.posterior import FACTOR_VARS, make_posterior, param_names

if TYPE_CHECKING:
    import pymc as pm

    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["APPROXIMATIONS", "FULLRANK_MAX_PARAMS", "fit_advi"]

log = logging.getLogger("bayesmf")

#: the covariance of q: diagonal or full
APPROXIMATIONS = ("meanfield", "fullrank")
#: full-rank ADVI keeps a d x d Cholesky factor: above this many parameters it is refused
FULLRANK_MAX_PARAMS = 2000
_START_SD = 0.1
#: draws taken from the fitted approximation at a time (see `_sample_approximation`)
_DRAW_CHUNK = 100


def fit_advi(
    spec: PMF,
    data: RatingsData,
    *,
    approximation: Literal["meanfield", "fullrank"] = "meanfield",
    n: int = 20000,
    draws: int = 1000,
    learning_rate: float | None = None,
    minibatch_size: int | None = None,
    random_seed: Any = None,
    progressbar: bool = True,
    tolerance: float = 1e-3,
    blas_threads: int | None = 1,
) -> FitResult:
    r"""Fit a Gaussian approximation of the posterior by ADVI and draw from it.

    Parameters
    ----------
    spec : PMF
        Any spec.
    data : RatingsData
        Training ratings.
    approximation : {"meanfield", "fullrank"}
        Diagonal covariance (scales to any model) or full covariance (only models with at
        most `FULLRANK_MAX_PARAMS` parameters: it stores :math:`d(d+1)/2` numbers and each
        iteration costs :math:`O(d^2)`).
    n : int
        Maximum number of optimizer iterations.
    draws : int
        Draws taken from the fitted approximation (stored as one chain).
    learning_rate : float, optional
        Step size of the ``adam`` optimizer. Default 0.01 for mean-field (it also learns
        with minibatches of a hundred ratings on simulated data) and 0.001 for full-rank,
        whose Cholesky factor diverged at 0.01.
    minibatch_size : int, optional
        Ratings per iteration (None: all of them). Use for large data.
    random_seed : int, numpy.random.Generator or None
        Seed of the start, the optimizer's Monte Carlo draws and the final draws.
    progressbar : bool
        Show the optimizer's progress bar.
    tolerance : float
        Stop early when the relative change of the approximation's parameters between
        checks (every 500 iterations) falls below this (``CheckParametersConvergence``).
    blas_threads : int or None
        BLAS threads while fitting (None: leave as is).

    Returns
    -------
    FitResult
        ``method="advi"``, one chain of ``draws`` independent draws from :math:`q`.
        ``info``: ``elbo`` (ELBO per iteration, numpy array), ``iterations``,
        ``converged`` (stopped by the parameter-convergence check), ``elbo_flat``
        (`bayesmf.diagnostics.elbo_convergence`), ``fit_seconds``, ``approximation``,
        ``learning_rate``, ``minibatch_size``, ``n_params``, ``random_seed`` (an int that
        repeats the run).

    Raises
    ------
    ValueError
        Bad options; ``approximation="fullrank"`` on a model too large for it.

    Warns
    -----
    bayesmf.diagnostics.ConvergenceWarning
        When the ELBO was still changing at the end (raise ``n`` or ``learning_rate``).
    """
    import pymc as pm
    from pymc.variational.callbacks import CheckParametersConvergence

    from bayesmf.diagnostics import ConvergenceWarning, elbo_convergence
    from bayesmf.inference._pymc import blas_limit, quiet_pymc
    from bayesmf.inference.starts import map_start
    from bayesmf.model import build_model
    from bayesmf.results import FitResult

    check_inputs(spec, data, "advi")
    seed = base_seed(random_seed)
    validate_choice("approximation", approximation, APPROXIMATIONS)
    n = validate_positive_int("n", n)
    draws = validate_positive_int("draws", draws)
    if learning_rate is None:
        learning_rate = 0.01 if approximation == "meanfield" else 0.001
    learning_rate = float(validate_positive("learning_rate", learning_rate))  # type: ignore[arg-type]
    tolerance = float(validate_positive("tolerance", tolerance))  # type: ignore[arg-type]
    if minibatch_size is not None:
        minibatch_size = validate_positive_int("minibatch_size", minibatch_size)
        if minibatch_size >= data.n_ratings:
            minibatch_size = None  # a batch of everything is the full data
    if blas_threads is not None:
        blas_threads = validate_positive_int("blas_threads", blas_threads)

    if spec.per_factor_scales and spec.n_factors == 1:
        # PyTensor 3's numba backend fails to compile ADVI's step for a length-1 "factor"
        # scale (IndexError in its vectorize codegen); at rank 1 the two models are one
        raise ValueError(
            "per_factor_scales=True with n_factors=1 cannot be fitted by ADVI (PyTensor's numba "
            "backend fails to compile it); at rank 1 it is the same model as per_factor_scales=False, use that"
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    start_seed, fit_seed, draw_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=3))
    n_params = _n_params(spec, data)
    if approximation == "fullrank" and n_params > FULLRANK_MAX_PARAMS:
        raise ValueError(
            f"approximation='fullrank' on {n_params} parameters needs a {n_params} x {n_params} "
            f"covariance ({n_params * (n_params + 1) // 2} numbers, O(d^2) per iteration); it is "
            f"allowed up to {FULLRANK_MAX_PARAMS} parameters. Use approximation='meanfield', or "
            "NUTS/Gibbs for the full posterior"
        )
    start = map_start(spec, data.without_features(), random_seed=start_seed)  # weights start at 0
    model = build_model(spec, data)
    if minibatch_size is not None:
        model = _minibatch_model(model, data, minibatch_size, np.random.default_rng(fit_seed))
    start = {k: v for k, v in start.items() if k in model.named_vars}

    with model, quiet_pymc(not progressbar):
        if approximation == "meanfield":
            initial_point = model.initial_point()
            inference: Any = pm.ADVI(
                start=start,
                start_sigma={
                    v.name: np.full(int(np.size(initial_point[v.name])), _START_SD) for v in model.value_vars
                },
                random_seed=fit_seed,
            )
        else:
            inference = pm.FullRankADVI(start=start, random_seed=fit_seed)
            # PyMC starts the Cholesky factor at softplus(1) = 1.3 on the diagonal: far too
            # wide for factors of size ~0.5, and adam then diverges; start at _START_SD
            group = inference.approx.groups[0]
            dim = int(group.ddim)
            tril = np.eye(dim) * np.log(np.expm1(_START_SD))
            group.params_dict["L_tril"].set_value(tril[np.tril_indices(dim)].astype(np.float64))
        checker = CheckParametersConvergence(every=500, tolerance=tolerance, diff="relative")
        with blas_limit(blas_threads):
            approx = inference.fit(
                n,
                obj_optimizer=pm.adam(learning_rate=learning_rate),
                callbacks=[checker],
                progressbar=progressbar,
            )
        draws_out = _sample_approximation(approx, param_names(spec, data), draws, draw_seed)
    seconds = time.perf_counter() - started

    elbo = -np.asarray(approx.hist, dtype=np.float64)
    if minibatch_size is not None:
        # PyMC reports the minibatch loss divided by n_ratings / batch; undo it so the
        # trace estimates the full-data ELBO in both modes
        elbo = elbo * (data.n_ratings / minibatch_size)
    iterations = len(elbo)
    convergence = elbo_convergence(elbo)
    info: dict[str, Any] = {
        "fit_seconds": seconds,
        "elbo": elbo,
        "iterations": iterations,
        "converged": iterations < n,
        "elbo_flat": bool(convergence["flat"]),
        "approximation": approximation,
        "learning_rate": learning_rate,
        "minibatch_size": minibatch_size,
        "n_params": n_params,
        "random_seed": seed,
    }
    attrs = {"method": "advi", "approximation": approximation, "fit_seconds": seconds, "iterations": iterations}
    idata = make_posterior(spec, data, draws_out, attrs=attrs)
    if not convergence["flat"]:
        warnings.warn(
            f"ADVI ({approximation}) stopped after {iterations} iterations with the ELBO still changing "
            f"(relative change {convergence['relative_change']:.2g} between the last two tenths); "
            "raise n or learning_rate",
            ConvergenceWarning,
            stacklevel=2,
        )
    log.info("advi (%s): %d iterations in %.1f s", approximation, iterations, seconds)
    result = FitResult(spec=spec, idata=idata, method="advi", train=data, info=info)
    result.info.update(verdict_info(result))  # the fit carries diagnose()'s verdict
    return result


def _sample_approximation(approx: Any, names: list[str], draws: int, seed: int) -> dict[str, np.ndarray]:
    """``draws`` draws of ``names`` from the fitted approximation, as (1, draws, ...) arrays.

    Drawn ``_DRAW_CHUNK`` at a time: PyMC materializes every draw of every parameter in
    float64 several times over (gigabytes for a thousand draws of ml-latest-small), and the
    factors are kept as float32 as they arrive. Each chunk
    is a MultiTrace: the DataTree conversion chokes on the minibatch model's data nodes.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    done = 0
    while done < draws:
        size = min(_DRAW_CHUNK, draws - done)
        trace = approx.sample(
            size, random_seed=int(rng.integers(0, 2**31 - 1)), return_inferencedata=False
        )
        for name in names:
            values = np.asarray(trace.get_values(name))
            if name not in out:  # filled in place: no second copy of all draws
                dtype = np.float32 if name in FACTOR_VARS else values.dtype
                out[name] = np.empty((1, draws, *values.shape[1:]), dtype=dtype)
            out[name][0, done : done + size] = values
        done += size
    return out


def _n_params(spec: PMF, data: RatingsData) -> int:
    """Count the free parameters of the model (the dimension ADVI works in)."""
    n = spec.n_factors * (data.n_users + data.n_items)
    if spec.biases:
        n += data.n_users + data.n_items + int(spec.likelihood == "normal")  # offsets, mu
    if spec.likelihood == "ordinal":
        n += len(data.levels) - 1 if data.levels is not None else 0
    if spec.priors == "hierarchical":
        scales = spec.n_factors if spec.per_factor_scales else 1
        if spec.factor_prior == "per_side":
            n += 2 * (scales + spec.n_factors)  # each side's variance(s) and mean
        else:
            n += scales
        n += 2 * int(spec.biases) + int(spec.likelihood == "normal")
    for side in ("user", "item"):  # feature weights and their precision
        features = getattr(data, f"{side}_features", None)
        n += 0 if features is None else features.n_features * spec.n_factors + 1
    return n


def _minibatch_model(model: pm.Model, data: RatingsData, batch_size: int, rng: np.random.Generator) -> pm.Model:
    """Rewrite ``model`` so its likelihood sees a random batch of ratings per evaluation.

    The rating indices (``pm.Data`` ``user_idx``, ``item_idx``) and the observed ratings are
    replaced by ``pm.Minibatch`` slices (one random batch shared by the three), and the
    likelihood is wrapped so its log-density is scaled by ``n_ratings / batch_size``.
    """
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.model.fgraph import fgraph_from_model, model_from_fgraph, model_observed_rv
    from pymc.variational.minibatch_rv import create_minibatch_rv

    # starts are supplied by the caller; fgraph conversion refuses custom initial values
    for rv in list(model.rvs_to_initial_values):
        model.rvs_to_initial_values[rv] = None
    fgraph, memo = fgraph_from_model(model)
    observed = memo[model["rating"]]
    rv, value = observed.owner.inputs[0], observed.owner.inputs[1]
    user_shared = memo[model["user_idx"]].owner.inputs[0]
    item_shared = memo[model["item_idx"]].owner.inputs[0]
    batch_user, batch_item, batch_rating = pm.Minibatch(
        pt.as_tensor(np.asarray(data.user_idx, dtype=user_shared.dtype)),
        pt.as_tensor(np.asarray(data.item_idx, dtype=item_shared.dtype)),
        pt.as_tensor(np.asarray(value.eval())),
        batch_size=batch_size,
    )
    _seed_minibatch(batch_rating, rng)
    scaled = create_minibatch_rv(rv, total_size=data.n_ratings)
    fgraph.replace_all(
        [(observed, model_observed_rv(scaled, batch_rating, "rating"))], import_missing=True
    )
    fgraph.replace_all([(user_shared, batch_user), (item_shared, batch_item)], import_missing=True)
    return model_from_fgraph(fgraph, mutate_fgraph=True)


def _seed_minibatch(batch: Any, rng: np.random.Generator) -> None:
    """Seed the shared generator that draws the batch indices (for reproducibility)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    for var in ancestors([batch]):
        if isinstance(var, SharedVariable) and isinstance(var.get_value(borrow=True), np.random.Generator):
            var.set_value(np.random.default_rng(rng.integers(0, 2**31 - 1)), borrow=True)
