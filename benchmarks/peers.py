"""The systems the benchmark compares, each behind one small adapter.

Every adapter has the same three verbs:

- ``available() -> str | None``: None when it can run here, else why not (a peer that is
  not installed, a bayesmf route that has not landed);
- ``fit(train)``: fit on a `bayesmf.data.RatingsData`;
- ``predict(test, probs) -> Prediction``: point predictions for the test pairs, central
  predictive intervals for each probability in ``probs`` when the system has them, and
  for samplers the draws of the latent mean of a few monitored pairs (for ESS).

Train and test share their id encoders (indices agree), so adapters work on indices. A
test user or item with no training rating is "cold": each system handles it its own way
(baselines fall back to the global mean, Surprise and cornac to their defaults, myFM and
bayesmf to the prior).

Peers are optional: ``pip install -e ".[bench]"`` installs myfm, scikit-surprise and
cornac. None of them is a runtime dependency of bayesmf.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# myFM draws a tqdm bar on every fit; the benchmark logs, it does not draw.
os.environ.setdefault("TQDM_DISABLE", "1")

Probs = Sequence[float]


@dataclass
class Prediction:
    """What a system returns for the test pairs.

    Attributes
    ----------
    mean : numpy.ndarray
        Point prediction per pair (posterior-predictive mean for Bayesian systems).
    intervals : dict
        ``prob -> (lower, upper)``: central predictive intervals (empty when the system has
        none).
    interval_kind : str
        How the intervals were made ("posterior predictive", "plug-in", ...).
    monitor : numpy.ndarray or None
        ``(chain, draw, pair)`` draws of the latent mean of the monitored pairs, for ESS.
    info : dict
        Anything else worth recording (sweeps run, options used).
    """

    mean: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    interval_kind: str = ""
    monitor: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


class NotAvailable(Exception):
    """The system cannot run here (not installed, route missing, model unsupported)."""


class Adapter:
    """Base class: a named system with fit/predict on `RatingsData`."""

    name: str = ""
    family: str = ""
    #: modules that must import for the system to run
    requires: tuple[str, ...] = ()
    #: a sampler (monitored draws -> ESS)
    sampler: bool = False

    def __init__(self, rank: int = 10, seed: int = 0, **options: Any) -> None:
        self.rank = rank
        self.seed = seed
        self.options = options

    def available(self) -> str | None:
        for module in self.requires:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                return f"not installed: {module.split('.')[0]}"
            try:
                importlib.import_module(module)
            except Exception as exc:  # an installed package that does not import is a result too
                return f"import failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return None

    def describe(self) -> dict[str, Any]:
        return {"rank": self.rank, **self.options}

    def fit(self, train: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:  # pragma: no cover
        raise NotImplementedError


# ---------------------------------------------------------------------------------------
# helpers shared by the adapters
# ---------------------------------------------------------------------------------------
def _seen(train: Any) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the users and items that have at least one training rating."""
    users = np.bincount(train.user_idx, minlength=train.n_users) > 0
    items = np.bincount(train.item_idx, minlength=train.n_items) > 0
    return users, items


def mixture_normal_quantiles(means: np.ndarray, sds: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    r"""Quantiles of the equal-weight mixture :math:`\frac1S\sum_s N(m_{s,n}, s_s^2)`, per column.

    The posterior predictive of a Gaussian-likelihood sampler given S draws is exactly
    this mixture; root-finding on its CDF avoids the Monte Carlo error of adding noise
    draws. ``means`` is (S, N), ``sds`` (S,). Safeguarded Newton from the normal
    approximation (a numba kernel: numpy over (S, N) per iteration was ~30 s on ML-100K).
    """
    # (pair, sample) contiguous: the kernel's inner loop runs over samples
    means = np.ascontiguousarray(np.asarray(means, dtype=np.float64).T)
    sds = np.ascontiguousarray(sds, dtype=np.float64)
    return [_mixture_quantile(means, sds, float(q)) for q in qs]


def _mixture_quantile(means: np.ndarray, sds: np.ndarray, q: float) -> np.ndarray:
    return _mixture_quantile_kernel()(means, sds, q)


_KERNEL: list[Any] = []


def _mixture_quantile_kernel() -> Any:
    if _KERNEL:
        return _KERNEL[0]
    import numba

    @numba.njit(cache=True)
    def kernel(means: np.ndarray, sds: np.ndarray, q: float) -> np.ndarray:  # pragma: no cover - compiled
        n_pairs, n_samples = means.shape
        out = np.empty(n_pairs)
        sd_max = sds.max()
        inv_sqrt2 = 1.0 / math.sqrt(2.0)
        inv_sqrt2pi = 1.0 / math.sqrt(2.0 * math.pi)
        # normal quantile of q by bisection on erfc (once)
        zl, zh = -40.0, 40.0
        for _ in range(200):
            zm = 0.5 * (zl + zh)
            if 0.5 * math.erfc(-zm * inv_sqrt2) < q:
                zl = zm
            else:
                zh = zm
        z = 0.5 * (zl + zh)
        for n in range(n_pairs):
            m1 = 0.0
            m2 = 0.0
            lo = 1e300
            hi = -1e300
            for s in range(n_samples):
                m = means[n, s]
                m1 += m
                m2 += m * m + sds[s] * sds[s]
                lo = min(lo, m)
                hi = max(hi, m)
            m1 /= n_samples
            var = max(m2 / n_samples - m1 * m1, 1e-300)
            lo -= 40.0 * sd_max
            hi += 40.0 * sd_max
            x = m1 + z * math.sqrt(var)
            for _ in range(100):
                cdf = 0.0
                pdf = 0.0
                for s in range(n_samples):
                    t = (x - means[n, s]) / sds[s]
                    cdf += 0.5 * math.erfc(-t * inv_sqrt2)
                    pdf += math.exp(-0.5 * t * t) * inv_sqrt2pi / sds[s]
                cdf /= n_samples
                pdf /= n_samples
                gap = cdf - q
                if abs(gap) < 1e-10:
                    break
                if gap < 0:
                    lo = x
                else:
                    hi = x
                step = x - gap / pdf if pdf > 0 else 0.5 * (lo + hi)
                x = step if lo < step < hi else 0.5 * (lo + hi)
                if hi - lo < 1e-10:
                    break
            out[n] = x
        return out

    _KERNEL.append(kernel)
    return kernel


def discrete_quantiles(probs: np.ndarray, levels: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Quantiles (smallest level with CDF >= q) of per-row categorical distributions."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    return [levels[np.minimum((cdf < q - 1e-12).sum(axis=1), len(levels) - 1)] for q in qs]


def _central(probs: Probs) -> list[tuple[float, float, float]]:
    return [(p, (1 - p) / 2, 1 - (1 - p) / 2) for p in probs]


# ---------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------
class GlobalMean(Adapter):
    """Predict the mean training rating for every pair."""

    name, family = "global_mean", "baseline"

    def fit(self, train: Any) -> None:
        self.mu = float(np.mean(train.rating))

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        return Prediction(mean=np.full(test.n_ratings, self.mu))

    def describe(self) -> dict[str, Any]:
        return {}


class MeanOfMeans(Adapter):
    """Average of the global mean, the user's mean and the item's mean.

    As the ``MeanOfMeansBaseline`` of PyMC's PMF example notebook; a cold user or item
    contributes the global mean in its place.
    """

    name, family = "mean_of_means", "baseline"

    def fit(self, train: Any) -> None:
        self.mu = float(np.mean(train.rating))
        self.user_mean = self._means(train.user_idx, train.rating, train.n_users)
        self.item_mean = self._means(train.item_idx, train.rating, train.n_items)

    def _means(self, idx: np.ndarray, rating: np.ndarray, n: int) -> np.ndarray:
        count = np.bincount(idx, minlength=n)
        total = np.bincount(idx, weights=rating, minlength=n)
        return np.where(count > 0, total / np.maximum(count, 1), self.mu)

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        user_mean = _lookup(self.user_mean, test.user_idx, self.mu)
        item_mean = _lookup(self.item_mean, test.item_idx, self.mu)
        return Prediction(mean=(self.mu + user_mean + item_mean) / 3.0)

    def describe(self) -> dict[str, Any]:
        return {}


def _lookup(table: np.ndarray, idx: np.ndarray, default: float) -> np.ndarray:
    out = np.full(len(idx), default)
    ok = idx < len(table)
    out[ok] = table[idx[ok]]
    return out


# ---------------------------------------------------------------------------------------
# Surprise
# ---------------------------------------------------------------------------------------
class SurpriseAdapter(Adapter):
    """An algorithm of scikit-surprise (its own defaults except the rank and the seed)."""

    family = "surprise"
    requires = ("surprise",)
    algo: str = ""

    def _make(self) -> Any:
        import surprise

        match self.algo:
            case "SVD":
                return surprise.SVD(n_factors=self.rank, random_state=self.seed)
            case "SVDpp":
                return surprise.SVDpp(n_factors=self.rank, random_state=self.seed, cache_ratings=True)
            case "BaselineOnly":
                return surprise.BaselineOnly(verbose=False)
        raise ValueError(f"unknown Surprise algorithm {self.algo!r}")

    def describe(self) -> dict[str, Any]:
        return {"rank": self.rank} if self.algo != "BaselineOnly" else {}

    def fit(self, train: Any) -> None:
        import pandas as pd
        import surprise

        frame = pd.DataFrame({"u": train.user_idx, "i": train.item_idx, "r": train.rating})
        reader = surprise.Reader(rating_scale=tuple(train.scale))
        trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
        self.model = self._make()
        self.model.fit(trainset)

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        predict = self.model.predict
        mean = np.fromiter(
            (predict(u, i).est for u, i in zip(test.user_idx.tolist(), test.item_idx.tolist(), strict=True)),
            dtype=float,
            count=test.n_ratings,
        )
        return Prediction(mean=mean)


class SurpriseSVD(SurpriseAdapter):
    name, algo = "surprise.svd", "SVD"


class SurpriseSVDpp(SurpriseAdapter):
    name, algo = "surprise.svdpp", "SVDpp"


class SurpriseBaselineOnly(SurpriseAdapter):
    name, algo = "surprise.baselineonly", "BaselineOnly"


# ---------------------------------------------------------------------------------------
# myFM
# ---------------------------------------------------------------------------------------
class _MyFMBase(Adapter):
    """Bayesian factorization machine on one-hot (user, item): Bayesian PMF with biases.

    ``sweeps`` Gibbs iterations, the last ``kept`` kept (one chain). Users and items are two
    prior groups (``group_shapes``), as in myFM's MovieLens example.
    """

    family = "myfm"
    requires = ("myfm",)
    sampler = True

    def __init__(self, rank: int = 10, seed: int = 0, sweeps: int = 300, kept: int = 200, **options: Any) -> None:
        super().__init__(rank, seed, sweeps=sweeps, kept=kept, **options)
        self.sweeps, self.kept = sweeps, kept

    def _design(self, data: Any) -> Any:
        import scipy.sparse as sps

        n = data.n_ratings
        rows = np.repeat(np.arange(n), 2)
        cols = np.stack([data.user_idx, self.n_users + data.item_idx], axis=1).ravel()
        return sps.csr_matrix(
            (np.ones(2 * n), (rows, cols)), shape=(n, self.n_users + self.n_items)
        )


class MyFMGibbs(_MyFMBase):
    """myFM ``MyFMGibbsRegressor``: Gaussian likelihood; intervals from its posterior samples."""

    name = "myfm.gibbs"

    def fit(self, train: Any) -> None:
        import myfm

        self.n_users, self.n_items = train.n_users, train.n_items
        self.model = myfm.MyFMGibbsRegressor(rank=self.rank, random_seed=self.seed)
        self.model.fit(
            self._design(train),
            np.asarray(train.rating, dtype=float),
            n_iter=self.sweeps,
            n_kept_samples=self.kept,
            group_shapes=[self.n_users, self.n_items],
            callback=lambda *args: (False, None),
        )

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        X = self._design(test)
        samples = self.model.predictor_.samples
        # per-sample latent means (S, N); their average is exactly model.predict(X)
        scores = np.stack([fm.predict_score(X, []) for fm in samples])
        # noise precision alpha of the kept sweeps (history holds every sweep; kept = last ones)
        alpha = np.array([h.alpha for h in self.model.history_.hypers[-len(samples):]])
        sds = 1.0 / np.sqrt(alpha)
        intervals = {}
        for p, lo, hi in _central(probs):
            lower, upper = mixture_normal_quantiles(scores, sds, (lo, hi))
            intervals[p] = (lower, upper)
        monitor = scores[None, :, monitor_idx] if monitor_idx is not None else None
        return Prediction(
            mean=scores.mean(axis=0),
            intervals=intervals,
            interval_kind="posterior predictive (Gaussian mixture over kept samples)",
            monitor=monitor,
            info={"sweeps": self.sweeps, "kept": len(samples), "chains": 1, "noise_sd_mean": float(sds.mean())},
        )


class MyFMOrdinal(_MyFMBase):
    """myFM ``MyFMOrderedProbit`` over the rating levels; intervals from the level probabilities."""

    name = "myfm.ordinal"

    def fit(self, train: Any) -> None:
        import myfm

        levels = train.levels
        if levels is None:
            raise NotAvailable("ordered probit needs discrete rating levels")
        self.levels = np.asarray(levels, dtype=float)
        y = np.searchsorted(self.levels, train.rating)
        self.n_users, self.n_items = train.n_users, train.n_items
        self.model = myfm.MyFMOrderedProbit(rank=self.rank, random_seed=self.seed)
        self.model.fit(
            self._design(train),
            y,
            n_iter=self.sweeps,
            n_kept_samples=self.kept,
            group_shapes=[self.n_users, self.n_items],
            callback=lambda *args: (False, None),
        )

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        X = self._design(test)
        proba = self.model.predict_proba(X)  # (N, levels): averaged over kept samples
        intervals = {}
        for p, lo, hi in _central(probs):
            lower, upper = discrete_quantiles(proba, self.levels, (lo, hi))
            intervals[p] = (lower, upper)
        monitor = None
        if monitor_idx is not None:
            Xm = X[monitor_idx]
            # expected rating under each kept sample, for the monitored pairs
            monitor = np.stack(
                [fm.oprobit_predict_proba(Xm, [], 0) @ self.levels for fm in self.model.predictor_.samples]
            )[None]
        return Prediction(
            mean=proba @ self.levels,
            intervals=intervals,
            interval_kind="posterior predictive over rating levels",
            monitor=monitor,
            info={"sweeps": self.sweeps, "kept": len(self.model.predictor_.samples), "chains": 1},
        )


# ---------------------------------------------------------------------------------------
# cornac
# ---------------------------------------------------------------------------------------
class CornacPMF(Adapter):
    """cornac ``PMF`` (SGD with RMSProp; its default non-linear variant), as in cornac's example."""

    name, family = "cornac.pmf", "cornac"
    requires = ("cornac",)

    def __init__(self, rank: int = 10, seed: int = 0, max_iter: int = 100, learning_rate: float = 0.001,
                 lambda_reg: float = 0.001, variant: str = "non_linear", **options: Any) -> None:
        super().__init__(rank, seed, max_iter=max_iter, learning_rate=learning_rate,
                         lambda_reg=lambda_reg, variant=variant, **options)

    def fit(self, train: Any) -> None:
        import cornac

        triples = list(zip(train.user_idx.tolist(), train.item_idx.tolist(), train.rating.tolist(), strict=True))
        self.train_set = cornac.data.Dataset.from_uir(triples, seed=self.seed)
        opts = {k: v for k, v in self.options.items() if k in ("max_iter", "learning_rate", "lambda_reg", "variant")}
        self.model = cornac.models.PMF(k=self.rank, seed=self.seed, verbose=False, **opts)
        self.model.fit(self.train_set)
        self.mu = float(np.mean(train.rating))

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        uid_map, iid_map = self.train_set.uid_map, self.train_set.iid_map
        mean = np.full(test.n_ratings, self.mu)
        users = np.array([uid_map.get(u, -1) for u in test.user_idx.tolist()])
        items = np.array([iid_map.get(i, -1) for i in test.item_idx.tolist()])
        known = (users >= 0) & (items >= 0)
        # `rate` is cornac's public per-pair prediction (score mapped back to the rating
        # scale for the non-linear variant, then clipped to it); `score(u)` alone is unscaled
        rate = self.model.rate
        for row in np.flatnonzero(known):
            mean[row] = float(np.asarray(rate(int(users[row]), int(items[row]))).ravel()[0])
        return Prediction(mean=mean, info={"cold_pairs_global_mean": int((~known).sum())})


# ---------------------------------------------------------------------------------------
# bayesmf
# ---------------------------------------------------------------------------------------
class BayesMF(Adapter):
    """A bayesmf route: ``PMF(**spec).fit(train, method=method, **fit_options)``.

    Intervals come from ``result.predict(test, prob=p)`` (the public API); the monitored
    latent means from the posterior arrays (chain-major, so they reshape to (chain, draw)).
    Options a route does not take are dropped and recorded (``ignored_options``).
    """

    family = "bayesmf"
    requires = ("bayesmf",)

    def __init__(self, name: str, method: str, spec: dict[str, Any], fit_options: dict[str, Any],
                 rank: int = 10, seed: int = 0) -> None:
        super().__init__(rank, seed)
        self.name, self.method = name, method
        self.spec_kwargs = {"n_factors": rank, **spec}
        self.fit_options = dict(fit_options)
        self.sampler = method in ("gibbs", "nuts", "advi")

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "spec": self.spec_kwargs, "fit_options": self.fit_options}

    def available(self) -> str | None:
        why = super().available()
        if why:
            return why
        if importlib.util.find_spec(f"bayesmf.inference.{self.method}") is None:
            return f"not available: route bayesmf.inference.{self.method} not in this checkout"
        if importlib.util.find_spec("bayesmf.predict") is None:
            return "not available: bayesmf.predict not in this checkout"
        from bayesmf.inference import check_supported
        from bayesmf.spec import PMF

        try:
            check_supported(PMF(**self.spec_kwargs), self.method)
        except ValueError as exc:
            return f"not available: {exc}"
        return None

    def _route_options(self) -> tuple[dict[str, Any], dict[str, Any]]:
        module = importlib.import_module(f"bayesmf.inference.{self.method}")
        route: Callable[..., Any] = getattr(module, f"fit_{self.method}")
        params = inspect.signature(route).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return dict(self.fit_options), {}
        used = {k: v for k, v in self.fit_options.items() if k in params}
        return used, {k: v for k, v in self.fit_options.items() if k not in params}

    def fit(self, train: Any) -> None:
        from bayesmf.spec import PMF

        options, self.ignored = self._route_options()
        # ImportError / NotImplementedError propagate: the runner records them as "not available"
        self.result = PMF(**self.spec_kwargs).fit(train, method=self.method, **options)

    def predict(self, test: Any, probs: Probs = (0.5, 0.9), monitor_idx: np.ndarray | None = None) -> Prediction:
        frames = {p: self.result.predict(test, prob=p) for p in probs}
        first = frames[probs[0]]
        intervals = {p: (f["lower"].to_numpy(float), f["upper"].to_numpy(float)) for p, f in frames.items()}
        monitor = None
        if self.sampler and monitor_idx is not None:
            monitor = self.latent_draws(test.user_idx[monitor_idx], test.item_idx[monitor_idx])
        info: dict[str, Any] = {"chains": self.result.n_chains, "draws": self.result.n_draws}
        if self.ignored:
            info["ignored_options"] = self.ignored
        return Prediction(
            mean=first["mean"].to_numpy(float),
            intervals=intervals,
            interval_kind="plug-in (MAP)" if self.result.is_map else "posterior predictive",
            monitor=monitor,
            info=info,
        )

    def latent_draws(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(chain, draw, pair) draws of mu + b_i + c_j + U_i . V_j for the given pairs."""
        arrays = self.result.arrays()
        eta = np.einsum("spk,spk->sp", arrays.U[:, users], arrays.V[:, items])
        if arrays.mu is not None:
            eta = eta + arrays.mu[:, None]
        if arrays.user_bias is not None:
            eta = eta + arrays.user_bias[:, users]
        if arrays.item_bias is not None:
            eta = eta + arrays.item_bias[:, items]
        return eta.reshape(self.result.n_chains, self.result.n_draws, -1)

    def diagnose_summary(self) -> dict[str, Any] | None:
        """What ``result.diagnose()`` reports, when that exists, reduced to JSON-able numbers."""
        if importlib.util.find_spec("bayesmf.diagnostics") is None:
            return None
        try:
            report = self.result.diagnose()
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        out: dict[str, Any] = {}
        for attr in ("summary", "table"):
            table = getattr(report, attr, None)
            if table is not None and hasattr(table, "describe"):
                for column in table.columns:
                    if "ess" in str(column).lower() or "rhat" in str(column).lower():
                        values = np.asarray(table[column], dtype=float)
                        out[f"{column}_median"] = float(np.nanmedian(values))
                        out[f"{column}_min"] = float(np.nanmin(values))
                break
        return out or {"repr": repr(report)[:300]}


def ess_bulk(monitor: np.ndarray) -> np.ndarray:
    """Bulk ESS (ArviZ) of each monitored pair; ``monitor`` is (chain, draw, pair)."""
    from arviz_stats.base import array_stats

    return np.asarray(array_stats.ess(monitor, chain_axis=0, draw_axis=1, method="bulk"), dtype=float)


# ---------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------
#: MCMC length shared by the Gibbs samplers so their wall times compare sweep for sweep
GIBBS_TUNE, GIBBS_DRAWS = 100, 200
#: one chain of GIBBS_TUNE + GIBBS_DRAWS sweeps exactly (thin=1: fit_gibbs's default thin
#: would multiply the kept sweeps), compared with myFM at the same number of sweeps
GIBBS_OPTIONS = {
    "draws": GIBBS_DRAWS, "tune": GIBBS_TUNE, "thin": 1, "chains": 1, "random_seed": 0, "progressbar": False
}

_FIXED = {"priors": "fixed", "biases": True}
_HIER = {"priors": "hierarchical", "biases": True}
#: BPMF's hyperprior with diagonal precisions: each side's own factor means and per-factor variances
_BPMF = {**_HIER, "per_factor_scales": True, "factor_prior": "per_side"}
#: NUTS: 2 chains x (200 + 200), the length measured to fit the run's budget
_NUTS_OPTIONS = {"draws": 200, "tune": 200, "chains": 2, "random_seed": 0, "progressbar": False}

BAYESMF_ROUTES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # name: (method, spec, fit options)
    "bayesmf.sgd": ("sgd", _FIXED, {"random_seed": 0, "progressbar": False}),
    "bayesmf.als": ("als", _FIXED, {"random_seed": 0, "progressbar": False}),
    "bayesmf.map": ("map", _FIXED, {"random_seed": 0, "progressbar": False}),
    "bayesmf.gibbs": (
        "gibbs",
        _HIER,
        dict(GIBBS_OPTIONS),
    ),
    # one prior scale per factor: the closest bayesmf spec to myFM's per-factor precisions
    "bayesmf.gibbs-ard": (
        "gibbs",
        {**_HIER, "per_factor_scales": True},
        dict(GIBBS_OPTIONS),
    ),
    # BPMF's hyperprior with diagonal precisions: each side's own factor means and per-factor
    # variances, as myFM's per-group normal-gamma priors
    "bayesmf.gibbs-bpmf": (
        "gibbs",
        _BPMF,
        dict(GIBBS_OPTIONS),
    ),
    "bayesmf.nuts": (
        "nuts",
        _HIER,
        dict(_NUTS_OPTIONS),
    ),
    "bayesmf.advi": ("advi", _HIER, {"random_seed": 0, "progressbar": False}),
    # the BPMF-like prior of bayesmf.gibbs-bpmf, by NUTS and ADVI: the same posterior
    # (NUTS) or its approximation (ADVI), so their RMSE can be set beside Gibbs's
    "bayesmf.nuts-bpmf": (
        "nuts",
        _BPMF,
        dict(_NUTS_OPTIONS),
    ),
    "bayesmf.advi-bpmf": (
        "advi",
        _BPMF,
        {"random_seed": 0, "progressbar": False},
    ),
    "bayesmf.map-ordinal": (
        "map", {**_FIXED, "likelihood": "ordinal"}, {"random_seed": 0, "progressbar": False}
    ),
    "bayesmf.nuts-ordinal": (
        "nuts",
        {**_HIER, "likelihood": "ordinal"},
        dict(_NUTS_OPTIONS),
    ),
    "bayesmf.advi-ordinal": (
        "advi", {**_HIER, "likelihood": "ordinal"}, {"random_seed": 0, "progressbar": False}
    ),
}

PEERS: dict[str, type[Adapter]] = {
    "global_mean": GlobalMean,
    "mean_of_means": MeanOfMeans,
    "surprise.baselineonly": SurpriseBaselineOnly,
    "surprise.svd": SurpriseSVD,
    "surprise.svdpp": SurpriseSVDpp,
    "myfm.gibbs": MyFMGibbs,
    "myfm.ordinal": MyFMOrdinal,
    "cornac.pmf": CornacPMF,
}

ALL_SYSTEMS: tuple[str, ...] = (*PEERS, *BAYESMF_ROUTES)


def make(name: str, rank: int = 10, seed: int = 0, **overrides: Any) -> Adapter:
    """Build the adapter of a system by name; ``overrides`` replace its default options."""
    if name in PEERS:
        cls = PEERS[name]
        if issubclass(cls, _MyFMBase):
            overrides = {"sweeps": GIBBS_TUNE + GIBBS_DRAWS, "kept": GIBBS_DRAWS, **overrides}
        return cls(rank=rank, seed=seed, **overrides)
    if name in BAYESMF_ROUTES:
        method, spec, fit_options = BAYESMF_ROUTES[name]
        spec_over = overrides.pop("spec", {})
        return BayesMF(name, method, {**spec, **spec_over}, {**fit_options, **overrides}, rank=rank, seed=seed)
    raise ValueError(f"unknown system {name!r}; known: {', '.join(ALL_SYSTEMS)}")


def finite(x: float) -> float | None:
    """JSON-safe float (None for NaN/inf)."""
    return float(x) if x is not None and math.isfinite(x) else None


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``fn`` and return its value and wall seconds."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start
