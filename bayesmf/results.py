"""`FitResult`: what every inference route returns.

A result holds the spec, the posterior ``DataTree`` (in the layout of `bayesmf.posterior`,
MAP as one chain of one draw), the training ratings and a few facts about the run. Methods
are thin: prediction, recommendation, fold-in, diagnostics and saving live in their own
modules, and ``result.predict(...)`` is ``bayesmf.predict.predict(result, ...)`` with that
function's signature and docstring (`help`, Jupyter's shift-Tab). Those modules import this
one, not the other way round: each is imported on first use of its method.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.posterior import PosteriorArrays, posterior_arrays
from bayesmf.spec import PMF

__all__ = ["FitResult"]

log = logging.getLogger("bayesmf")

MAP_METHODS = ("map", "als", "sgd")
SAMPLING_METHODS = ("gibbs", "nuts", "advi")


class _Forward:
    """A method that calls ``module.name(self, ...)``, with that function's signature and doc.

    The module is imported on first access of the attribute (class or instance), which
    then replaces this placeholder on the class by a plain function: ``inspect.signature``,
    `help` and IPython see the target's parameters after the first, and its docstring.
    """

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, instance: Any, owner: type) -> Any:
        method = self.build(owner)
        setattr(owner, self.attr, method)
        return method if instance is None else method.__get__(instance, owner)

    def target(self) -> Callable[..., Any]:
        """Return the function forwarded to (importing its module)."""
        return getattr(importlib.import_module(self.module), self.name)  # type: ignore[no-any-return]

    def build(self, owner: type) -> Callable[..., Any]:
        """Return the method: a function with the target's signature (first parameter ``self``)."""
        func = self.target()

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return func(self, *args, **kwargs)

        sig = inspect.signature(func)
        params = list(sig.parameters.values())
        method.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[params[0].replace(name="self", annotation=inspect.Parameter.empty), *params[1:]]
        )
        method.__doc__ = func.__doc__
        method.__name__ = self.attr
        method.__qualname__ = f"{owner.__qualname__}.{self.attr}"
        method.__module__ = owner.__module__
        return method


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted PMF: spec, posterior draws, training data.

    Attributes
    ----------
    spec : PMF
        The model that was fitted.
    idata : xarray.DataTree
        Posterior (and ``sample_stats``, ``observed_data``, ``constant_data``) in the
        bayesmf layout; an ArviZ object, so ``arviz`` functions apply to it directly.
    method : str
        The inference route (``"gibbs"``, ``"nuts"``, ``"advi"``, ``"map"``, ``"als"``,
        ``"sgd"``).
    train : RatingsData
        The ratings it was fitted on (used to exclude rated items and for fold-in).
    info : dict
        Facts about the run: ``fit_seconds``, convergence traces, options used.
    """

    spec: PMF
    idata: xr.DataTree
    method: str
    train: RatingsData
    info: dict[str, Any] = field(default_factory=dict)

    # -- access ---------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        """The ``posterior`` group as an ``xarray.Dataset``."""
        return self.idata["posterior"].to_dataset()

    @property
    def is_map(self) -> bool:
        """True for point estimates (one chain, one draw)."""
        return self.method in MAP_METHODS

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return int(self.idata["posterior"].sizes["chain"])

    @property
    def n_draws(self) -> int:
        """Draws per chain."""
        return int(self.idata["posterior"].sizes["draw"])

    @property
    def users(self) -> IdEncoder:
        """Encoder of the user ids the model knows."""
        return self.train.users

    @property
    def items(self) -> IdEncoder:
        """Encoder of the item ids the model knows."""
        return self.train.items

    def arrays(self) -> PosteriorArrays:
        """Posterior draws as flat numpy arrays (see `bayesmf.posterior.PosteriorArrays`)."""
        return posterior_arrays(self.idata)

    def __repr__(self) -> str:
        secs = self.info.get("fit_seconds")
        took = f", {secs:.1f} s" if isinstance(secs, (int, float)) else ""
        return (
            f"FitResult(method={self.method!r}, {self.n_chains} chain(s) x {self.n_draws} draw(s), "
            f"rank {self.spec.n_factors}, priors={self.spec.priors!r}, biases={self.spec.biases}"
            f"{took}; {self.train!r})"
        )

    # -- downstream: each method is its module's function, with its signature and docstring
    predict = _Forward("bayesmf.predict", "predict")
    predict_draws = _Forward("bayesmf.predict", "predict_draws")
    predict_proba = _Forward("bayesmf.predict", "predict_proba")
    recommend = _Forward("bayesmf.recommend", "recommend")
    fold_in = _Forward("bayesmf.fold_in", "fold_in")
    fold_in_items = _Forward("bayesmf.fold_in", "fold_in_items")
    diagnose = _Forward("bayesmf.diagnostics", "diagnose")
    save = _Forward("bayesmf.storage", "save")
    thin = _Forward("bayesmf.thinning", "thin")
