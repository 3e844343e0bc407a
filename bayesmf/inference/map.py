"""MAP by ``pymc.find_MAP`` (L-BFGS-B) on the PyMC model, for fixed priors.

Works for every link and likelihood. ``find_MAP`` from the model's default start (the
prior mean, U = V = 0) never leaves the saddle at zero -- the gradient of every factor
vanishes there -- so the optimizer starts from small random factors (seeded), the global
mean at the mean rating and the cutpoints at the empirical level frequencies. A result
whose factors are all ~0 raises a `CollapsedFactorsWarning`.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmf._seed import base_seed
from bayesmf._validate import validate_positive, validate_positive_int
from bayesmf.inference._contract import check_inputs
from bayesmf.inference._point import (
    ConvergenceWarning,
    check_collapse,
    initial_point,
    point_result,
)
from bayesmf.model import build_model
from bayesmf.objective import objective
from bayesmf.posterior import param_names

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["fit_map"]


def fit_map(
    spec: PMF,
    data: RatingsData,
    *,
    maxeval: int = 50_000,
    ftol: float = 2.2e-9,
    gtol: float = 1e-5,
    init_sd: float = 0.1,
    random_seed: Any = None,
    progressbar: bool = True,
    blas_threads: int | None = 1,
) -> FitResult:
    r"""MAP of a fixed-prior PMF by ``pm.find_MAP`` (L-BFGS-B with PyTensor gradients).

    Minimizes :math:`-\log p(\theta \mid R)`; for the normal likelihood this is
    :math:`E / \sigma^2 + \text{const}` with :math:`E` the objective of
    `bayesmf.objective.objective`, the same function ALS and SGD minimize.

    Parameters
    ----------
    spec : PMF
        ``priors="fixed"``; any link and likelihood.
    data : RatingsData
        Training ratings.
    maxeval : int
        Maximum number of L-BFGS-B iterations (and of objective evaluations).
    ftol : float
        Stop when the relative decrease of :math:`-\log p` in an iteration is below this
        (scipy's default); use 1e-15 (with ``gtol=1e-9``) to reach the minimum to near
        machine precision. Iterations and times on ML-100K: `benchmarks/RESULTS.md`, "MAP
        on ML-100K".
    gtol : float
        Stop when the largest gradient component is below this.
    init_sd : float
        Sd of the random starting factors (a start at U = V = 0 would never move).
    random_seed : int, numpy.random.Generator or None
        Seed of the start (see `bayesmf._seed`).
    progressbar : bool
        Show the optimizer's progress bar.
    blas_threads : int or None
        BLAS threads while optimizing (None: leave as is). One avoids threads fighting
        over a few cores on the small matrix products of the gradient.

    Returns
    -------
    FitResult
        One chain, one draw. ``info``: ``fit_seconds``, ``iterations``, ``n_evaluations``,
        ``neg_log_posterior`` (at the optimum), ``objective`` (:math:`E` at the start and
        at the optimum, normal likelihood only), ``converged``, ``message``, ``collapsed``,
        ``random_seed`` (an int that repeats the run).
    """
    check_inputs(spec, data, "map")
    seed = base_seed(random_seed)
    maxeval = validate_positive_int("maxeval", maxeval)
    ftol = float(validate_positive("ftol", ftol))  # type: ignore[arg-type]
    gtol = float(validate_positive("gtol", gtol))  # type: ignore[arg-type]
    init_sd = float(validate_positive("init_sd", init_sd))  # type: ignore[arg-type]
    if blas_threads is not None:
        blas_threads = validate_positive_int("blas_threads", blas_threads)
    import pymc as pm

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    model = build_model(spec, data)
    start = initial_point(spec, data, rng, init_sd)
    initvals = {name: value for name, value in start.items() if name in model.named_vars}
    with threadpool_limits(limits=blas_threads, user_api="blas"), warnings.catch_warnings():
        # find_MAP's own "did not converge" warning is replaced by ours below
        warnings.filterwarnings("ignore", message="The optimizer did not converge", category=UserWarning)
        tree = pm.find_MAP(
            method="L-BFGS-B",
            model=model,
            initvals=initvals,
            jitter=False,
            random_seed=int(rng.integers(2**31)),
            progressbar=progressbar,
            return_inferencedata=True,
            maxiter=maxeval,
            ftol=ftol,
            gtol=gtol,
        )
    seconds = time.perf_counter() - started

    post = tree["posterior"].to_dataset()
    params = {name: post[name].values[0, 0] for name in param_names(spec, data) if name in post}
    opt = tree["optimizer_result"].to_dataset() if "optimizer_result" in tree.children else None
    info: dict[str, Any] = {"fit_seconds": seconds, "random_seed": seed}
    if opt is not None:
        info["iterations"] = int(opt["nit"].values) if "nit" in opt else None
        info["n_evaluations"] = int(opt["nfev"].values) if "nfev" in opt else None
        info["neg_log_posterior"] = float(opt["fun"].values) if "fun" in opt else None
        info["converged"] = bool(opt["success"].values) if "success" in opt else None
        info["message"] = str(opt["message"].values) if "message" in opt else ""
    if spec.likelihood == "normal":
        lam = spec.lambdas(data.scale)

        def energy(p: dict[str, Any]) -> float:
            kw: dict[str, Any] = {}
            if spec.biases:
                kw = dict(
                    mu=p["mu"],
                    user_bias=p["user_bias"],
                    item_bias=p["item_bias"],
                    lambda_bias=lam["lambda_bias"],
                )
            return objective(p["U"], p["V"], data, lam["lambda_u"], lam["lambda_v"], link=spec.link, **kw)

        info["objective"] = [energy(start), energy(params)]
        info["final_objective"] = info["objective"][-1]
    if info.get("converged") is False:
        warnings.warn(
            f"find_MAP stopped before converging ({info.get('message', '')}); raise maxeval "
            f"(now {maxeval}) or loosen ftol/gtol",
            ConvergenceWarning,
            stacklevel=2,
        )
    info["collapsed"] = check_collapse(params["U"], params["V"], "map")
    return point_result(spec, data, params, "map", info)
