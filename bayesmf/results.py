"""`FitResult`: what every inference route returns.

A result holds the spec, the posterior ``DataTree`` (in the layout of `bayesmf.posterior`,
MAP as one chain of one draw), the training ratings and a few facts about the run. Methods
are thin: prediction, recommendation, diagnostics and plots live in their own modules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.posterior import PosteriorArrays, posterior_arrays
from bayesmf.spec import PMF

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FitResult"]

log = logging.getLogger("bayesmf")

MAP_METHODS = ("map", "als", "sgd")
SAMPLING_METHODS = ("gibbs", "nuts", "advi")


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

    # -- downstream (thin wrappers) ------------------------------------------------------
    def predict(self, data: Any, **kwargs: Any) -> pd.DataFrame:
        """Posterior-predictive summaries for (user, item) pairs; see `bayesmf.predict.predict`."""
        from bayesmf.predict import predict

        return predict(self, data, **kwargs)

    def predict_draws(self, data: Any, **kwargs: Any) -> np.ndarray:
        """Posterior-predictive draws (sample, pair); see `bayesmf.predict.predict_draws`."""
        from bayesmf.predict import predict_draws

        return predict_draws(self, data, **kwargs)

    def predict_proba(self, data: Any, **kwargs: Any) -> pd.DataFrame:
        """P(rating = level) per pair for the ordinal likelihood; see `bayesmf.predict.predict_proba`."""
        from bayesmf.predict import predict_proba

        return predict_proba(self, data, **kwargs)

    def recommend(self, user: Any, **kwargs: Any) -> pd.DataFrame:
        """Top-N items with intervals; see `bayesmf.recommend.recommend`."""
        from bayesmf.recommend import recommend

        return recommend(self, user, **kwargs)

    def fold_in(self, ratings: Any, **kwargs: Any) -> FitResult:
        """Add new users without retraining; see `bayesmf.recommend.fold_in`."""
        from bayesmf.recommend import fold_in

        return fold_in(self, ratings, **kwargs)

    def diagnose(self, **kwargs: Any) -> Any:
        """Convergence diagnostics on identified quantities; see `bayesmf.diagnostics.diagnose`."""
        from bayesmf.diagnostics import diagnose

        return diagnose(self, **kwargs)

    def save(self, path: Any, **kwargs: Any) -> Any:
        """Write to netCDF (``.nc``) or zarr (``.zarr``); see `bayesmf.io.save`."""
        from bayesmf.io import save

        return save(self, path, **kwargs)
