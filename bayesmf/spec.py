r"""`PMF`: the description of a probabilistic matrix factorization model.

A `PMF` is a frozen, JSON-serializable description (priors as data). It builds the PyMC
model (`PMF.build`, delegated to `bayesmf.model`) and fits it (`PMF.fit`, delegated to
`bayesmf.inference`), returning a `bayesmf.results.FitResult`. It holds no fitted state,
so one spec can be fitted several ways and the results compared side by side.

The model, for a rating :math:`r_{ij}` of user :math:`i` on item :math:`j`:

.. math::

    \eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j, \qquad
    r_{ij} \sim \mathcal N(g(\eta_{ij}), \sigma^2)

with :math:`g` the identity or (``link="logistic"``) the logistic function on ratings
rescaled to [0, 1], or an ordered-logistic or (``link="probit"``) ordered-probit likelihood
over the rating levels (``likelihood="ordinal"``), or for 0/1 data :math:`y_{ij} \sim
\mathrm{Bernoulli}(\Phi(\eta_{ij}))` (``likelihood="bernoulli"``, probit link). Priors: :math:`U_i \sim \mathcal N(0, \sigma_U^2 I)`,
:math:`V_j \sim \mathcal N(0, \sigma_V^2 I)`, biases :math:`\mathcal N(0, \sigma_b^2)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bayesmf._validate import validate_choice, validate_positive, validate_positive_int

if TYPE_CHECKING:
    import pymc as pm

    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult

__all__ = ["DEFAULT_HYPERPRIORS", "PMF"]

PRIORS = ("fixed", "hierarchical")
FACTOR_PRIORS = ("shared", "per_side")
#: with ``factor_prior="per_side"``, the prior of each side's factor mean is
#: N(0, s^2 / FACTOR_MEAN_KAPPA) given that side's factor variance s^2 (normal-inverse-gamma)
FACTOR_MEAN_KAPPA = 1.0
#: with features (`bayesmf.RatingsData.with_features`), (shape, rate) of the Gamma prior of
#: each side's feature-weight precision beta (Gibbs and the PyMC model alike)
FEATURE_PRECISION_PRIOR = (1.0, 1.0)
LINKS = ("identity", "logistic", "probit")
LIKELIHOODS = ("normal", "ordinal", "implicit", "bernoulli")
#: the links each likelihood takes, the first its default (``link=None``)
VALID_LINKS: dict[str, tuple[str, ...]] = {
    "normal": ("identity", "logistic"),
    # "identity": ordered logistic (the default, named before the probit existed: eta enters
    # the logistic CDF unchanged); "probit": ordered probit
    "ordinal": ("identity", "probit"),
    "implicit": ("identity",),
    "bernoulli": ("probit",),
}
CONFIDENCES = ("linear", "log")
#: ``implicit_sets``: which sides' factors gain the implicit-feedback term (SVD++, "flipped")
IMPLICIT_SETS = ("none", "user", "item", "both")

#: Hyperpriors of ``priors="hierarchical"`` (shape, scale of inverse-gamma variances), merged
#: under the user's ``hyperpriors``. Conjugate, so the Gibbs sampler and PyMC share them.
DEFAULT_HYPERPRIORS: dict[str, tuple[float, float]] = {
    # noise variance sigma^2 ~ InvGamma(a, b), on the (possibly rescaled) rating scale
    "sigma2": (2.0, 1.0),
    # shared factor variance s^2 ~ InvGamma(a, b); U_i, V_j ~ N(0, s^2 I)
    "factor_var": (2.0, 0.1),
    # bias variances s_b^2 ~ InvGamma(a, b) (user and item separately)
    "bias_var": (2.0, 0.1),
}


@dataclass(frozen=True)
class PMF:
    r"""Probabilistic matrix factorization (Salakhutdinov & Mnih 2008), with options.

    Parameters
    ----------
    n_factors : int
        Rank of the factorization (length of :math:`U_i`, :math:`V_j`).
    priors : {"hierarchical", "fixed"}
        ``"fixed"``: :math:`\sigma, \sigma_U, \sigma_V, \sigma_b` are the given numbers
        (the classic PMF; MAP then minimizes the regularized squared error with
        :math:`\lambda_U = \sigma^2/\sigma_U^2`). ``"hierarchical"``: :math:`\sigma` and the
        scales are learned under conjugate inverse-gamma priors (`DEFAULT_HYPERPRIORS`).
        U and V share one scale (or one per factor): separate scales are not identified,
        only their product is (U -> cU, V -> V/c leaves the likelihood unchanged).
        MAP methods need ``"fixed"`` (the joint mode of a hierarchical model is degenerate).
    biases : bool
        Global mean and user/item offsets; ``False`` is the seeds' model exactly.
    link : {"identity", "logistic", "probit"}, optional
        ``"logistic"``: ratings rescaled to [0, 1] by ``(r - low) / (high - low)`` and
        mean :math:`g(\eta)` with :math:`g` the logistic function (PMF paper, sec. 2).
        ``"probit"``: :math:`P(y = 1) = \Phi(\eta)`, the link of ``likelihood="bernoulli"``
        (its only one), or with ``likelihood="ordinal"`` the ordered probit. For
        ``likelihood="ordinal"``, ``"identity"`` (its default) is the ordered logistic: the
        name dates from before the probit and is kept so saved specs still load. Default
        None: the likelihood's default link (``"identity"``, or ``"probit"`` for
        ``"bernoulli"``); `VALID_LINKS` lists the combinations, and any other is an error
        that lists them.
    likelihood : {"normal", "ordinal", "implicit", "bernoulli"}
        ``"ordinal"``: over the discrete rating levels :math:`\ell_0 < \dots < \ell_{L-1}`,
        :math:`P(r_{ij} \le \ell_k) = F(c_k - \eta_{ij})` with ordered cutpoints :math:`c`
        (each :math:`\mathcal N(0, 3^2)`, restricted to the ordered set) and no global mean
        (the cutpoints absorb it); :math:`F` the logistic function (``link="identity"``,
        ordered logistic; NUTS, ADVI, MAP) or :math:`\Phi` (``link="probit"``, ordered
        probit: :math:`r_{ij} = \ell_k \iff c_{k-1} < z_{ij} \le c_k`, :math:`z_{ij} \sim
        \mathcal N(\eta_{ij}, 1)`; also by Gibbs, with latent :math:`z`). ``"implicit"``:
        implicit feedback (Hu, Koren & Volinsky 2008, in Bayesian form). Every (user, item)
        pair counts: the preference :math:`p_{ij}` is 1 for a pair in the data and 0 for every
        other pair, :math:`p_{ij} \sim \mathcal N(\eta_{ij}, \sigma^2 / c_{ij})`, with the
        confidence :math:`c_{ij}` given by ``confidence`` from the pair's value in the data
        (a count, a rating, or 1) and 1 for pairs not in the data.
    per_factor_scales : bool, optional
        Hierarchical only: one scale per factor (ARD-like) instead of one shared scale.
        Default (None): True where ``factor_prior="auto"`` chooses ``"per_side"`` and the rank
        is above 1, else False.
    factor_prior : {"auto", "shared", "per_side"}
        Hierarchical only. ``"auto"`` (the default): ``"per_side"`` with one scale per factor
        for ratings under the normal likelihood with the identity link and hierarchical priors
        (and for ``implicit_sets``, which need it), ``"shared"`` otherwise. The per-side prior
        with per-factor scales is the one that predicts best on held-out ratings: on all seven
        ML-100K splits (u1-u5, ua, ub) it beats myFM (rank 10, 200 sweeps) and the shared
        prior in test RMSE, converges within the default budget, and passes the held-out
        convergence check as often as the shared prior (5 of 7), at about 1.6 times its time
        to a passing verdict (`benchmarks/RESULTS.md`, "The per-side prior as the default").
        The likelihoods for stars as levels, thumbs and implicit feedback keep the shared
        prior their results were measured with.
        ``"shared"``: :math:`U_{ik}, V_{jk} \sim \mathcal N(0, s^2)` with
        one variance for both sides (one per factor with ``per_factor_scales``).
        ``"per_side"``: the hyperprior of Bayesian PMF (Salakhutdinov & Mnih 2008, "Bayesian
        probabilistic matrix factorization using MCMC") with diagonal precisions, as in
        myFM: each side has its own mean vector and variance(s),
        :math:`U_{ik} \sim \mathcal N(m^U_k, s^2_{U,k})`,
        :math:`m^U_k \sim \mathcal N(0, s^2_{U,k} / \kappa_0)` (:math:`\kappa_0` =
        ``FACTOR_MEAN_KAPPA``), :math:`s^2_{U,k} \sim \mathrm{InvGamma}` (one per factor
        with ``per_factor_scales``, else one per side), and the same for V. The two sides'
        scales are identified only through these priors (U -> cU, V -> V/c leaves the
        likelihood unchanged), so diagnostics skip them. The side means trade with the
        offsets (:math:`m_U \cdot V_j` acts as an item offset). The Gibbs sampler shifts
        along that ridge exactly, yet with its defaults the item-offset sd and mu mix more
        slowly than under the shared prior, while the monitored predictions pass as with it; run longer chains (``thin``) when
        those scales matter. Its test RMSE against the shared prior and myFM, and the
        R-hat/ESS of its scales: `benchmarks/RESULTS.md`, "Gibbs sampler
        (``bench_gibbs.py``), ML-100K u1" and "bayesmf vs peers".
    confidence : {"linear", "log"}
        ``likelihood="implicit"`` only: :math:`c_{ij} = 1 + \alpha r_{ij}` (``"linear"``) or
        :math:`1 + \alpha \log(1 + r_{ij} / \epsilon)` (``"log"``) for a pair with value
        :math:`r_{ij} > 0` (`bayesmf.confidence.confidence_weights`).

        ``"bernoulli"``: binary feedback (thumbs up / down), every value in the data 0 or 1
        (`bayesmf.binary.binarize` turns ratings into that at a threshold),
        :math:`y_{ij} \sim \mathrm{Bernoulli}(\Phi(\eta_{ij}))` on the observed pairs
        only; equivalently :math:`y_{ij} = [z_{ij} > 0]`, :math:`z_{ij} \sim \mathcal
        N(\eta_{ij}, 1)` (Albert & Chib 1993), so there is no noise sd to learn. The hierarchical
        prior of :math:`\mu` is :math:`\mathcal N(0, 1)` (:math:`\Phi(\mu)` uniform on (0, 1)).
    confidence_scale : float
        :math:`\alpha > 0` of ``confidence``.
    confidence_eps : float
        :math:`\epsilon > 0` of ``confidence="log"``.
    sigma : float, optional
        Fixed noise sd. Under ``priors="fixed"`` the default (None) is (high - low) / 4.5 for
        the identity link (0.89 on 1-5 stars), 1 / 4.5 for the logistic link (ratings
        rescaled to [0, 1]) and for implicit feedback (0/1 preferences). Under
        ``priors="hierarchical"``, None learns :math:`\sigma` (``hyperpriors["sigma2"]``) and a
        number fixes it there while the scales are still learned: training residuals
        underestimate the noise of a model that fits them with many factors, and a fixed,
        plausible noise sd regularizes more (its effect on held-out RMSE and on mixing:
        ``benchmarks/RESULTS.md``, "Where the Gibbs sampler mixes slowly").
    sigma_u, sigma_v, sigma_bias : float
        Fixed prior sds of the user factors, item factors and biases. Defaults 0.3, 0.3,
        0.5: chosen by held-out RMSE on ML-100K's ``ua`` split (rank 10, ALS), in rating
        units on 1-5 stars; the test RMSE is flat near them.
    hyperpriors : mapping, optional
        Overrides of `DEFAULT_HYPERPRIORS` (``{"sigma2": (a, b), ...}``).
    implicit_sets : {"none", "user", "item", "both"}
        Implicit feedback from which pairs exist (Bayesian SVD++, as in libFM and myFM's
        relation blocks). ``"user"``: :math:`U_i = P_i + |N(i)|^{-1/2} \sum_{j \in N(i)} y_j`
        with :math:`N(i)` the items user i rated (the fact, not the value); ``"item"`` (the
        "flipped" form): each item's factor gains the same sum over its raters; ``"both"``.
        :math:`N(i)` comes from the training ratings (protocol *strict*), or also from pairs
        attached by `bayesmf.implicit_sets.with_implicit_pairs` (*transductive*, e.g. the
        test pairs without their ratings); the posterior's attribute ``implicit_protocol``
        says which. Gibbs sampler only, with ``factor_prior="per_side"`` (the weights' prior
        scales with each side's factor variance: `bayesmf.inference.gibbs.implicit_sets`),
        not with ``likelihood="implicit"``.
    """

    n_factors: int = 10
    priors: Literal["hierarchical", "fixed"] = "hierarchical"
    biases: bool = True
    # None (the likelihood's default link) is resolved in __post_init__: never None after it
    link: Literal["identity", "logistic", "probit"] = None  # type: ignore[assignment]
    likelihood: Literal["normal", "ordinal", "implicit", "bernoulli"] = "normal"
    # None and "auto" are resolved in __post_init__: a bool and "shared" / "per_side" after it
    per_factor_scales: bool = None  # type: ignore[assignment]
    factor_prior: Literal["shared", "per_side"] = "auto"  # type: ignore[assignment]
    confidence: Literal["linear", "log"] = "linear"
    confidence_scale: float = 1.0
    confidence_eps: float = 1.0
    sigma: float | None = None
    sigma_u: float = 0.3
    sigma_v: float = 0.3
    sigma_bias: float = 0.5
    hyperpriors: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    implicit_sets: Literal["none", "user", "item", "both"] = "none"

    def __post_init__(self) -> None:
        validate_positive_int("n_factors", self.n_factors)
        validate_choice("priors", self.priors, PRIORS)
        validate_choice("likelihood", self.likelihood, LIKELIHOODS)
        if self.link is None:
            object.__setattr__(self, "link", VALID_LINKS[self.likelihood][0])
        validate_choice("link", self.link, LINKS)
        validate_choice("factor_prior", self.factor_prior, ("auto", *FACTOR_PRIORS))
        self._resolve_factor_prior()
        validate_choice("confidence", self.confidence, CONFIDENCES)
        for name in ("confidence_scale", "confidence_eps"):
            validate_positive(name, getattr(self, name))
        if self.factor_prior == "per_side" and self.priors != "hierarchical":
            raise ValueError(
                "factor_prior='per_side' learns each side's factor mean and scale, so it needs "
                f"priors='hierarchical', got priors={self.priors!r}"
            )
        validate_choice("implicit_sets", self.implicit_sets, IMPLICIT_SETS)
        if self.implicit_sets != "none" and (self.factor_prior != "per_side" or self.likelihood == "implicit"):
            raise ValueError(
                f"implicit_sets={self.implicit_sets!r} extends the per-side prior of explicit ratings: it needs "
                "priors='hierarchical', factor_prior='per_side' and a likelihood other than 'implicit', got "
                f"priors={self.priors!r}, factor_prior={self.factor_prior!r}, likelihood={self.likelihood!r}"
            )
        if not isinstance(self.biases, bool):
            raise TypeError(f"biases must be True or False, got {self.biases!r}")
        validate_positive("sigma", self.sigma, allow_none=True)
        for name in ("sigma_u", "sigma_v", "sigma_bias"):
            validate_positive(name, getattr(self, name))
        if self.link not in VALID_LINKS[self.likelihood]:
            combos = "; ".join(f"likelihood={k!r}: link {' or '.join(map(repr, v))}" for k, v in VALID_LINKS.items())
            raise ValueError(
                f"link={self.link!r} has no meaning with likelihood={self.likelihood!r}; "
                f"valid combinations: {combos}"
            )
        if self.link == "probit" and self.sigma is not None:
            raise ValueError(
                f"sigma={self.sigma!r} has no meaning with likelihood={self.likelihood!r}, link='probit': "
                "the probit's latent noise sd is 1 (its scale is that of eta); leave sigma=None"
            )
        hyper = dict(self.hyperpriors)
        for key, value in hyper.items():
            validate_choice("hyperpriors key", key, DEFAULT_HYPERPRIORS)
            try:
                a, b = value
            except (TypeError, ValueError) as exc:
                raise TypeError(f"hyperpriors[{key!r}] must be a pair (a, b), got {value!r}") from exc
            validate_positive(f"hyperpriors[{key!r}][0]", a)
            validate_positive(f"hyperpriors[{key!r}][1]", b)
            hyper[key] = (float(a), float(b))
        object.__setattr__(self, "hyperpriors", hyper)

    def _resolve_factor_prior(self) -> None:
        """Turn ``factor_prior="auto"`` and ``per_factor_scales=None`` into what they stand for."""
        if self.per_factor_scales is not None and not isinstance(self.per_factor_scales, bool):
            raise TypeError(f"per_factor_scales must be True, False or None, got {self.per_factor_scales!r}")
        if self.factor_prior == "auto":
            rated = self.likelihood == "normal" and self.link == "identity"
            best = self.priors == "hierarchical" and (rated or (self.implicit_sets != "none" and self.likelihood != "implicit"))
            object.__setattr__(self, "factor_prior", "per_side" if best else "shared")
            if self.per_factor_scales is None:  # at rank 1 one scale per factor is one scale
                object.__setattr__(self, "per_factor_scales", best and self.n_factors > 1)
        elif self.per_factor_scales is None:
            object.__setattr__(self, "per_factor_scales", False)

    # -- derived ------------------------------------------------------------------------
    @property
    def implicit_sides(self) -> tuple[str, ...]:
        """The sides whose factors gain the implicit-feedback term (``implicit_sets``), in order."""
        return {"none": (), "user": ("user",), "item": ("item",), "both": ("user", "item")}[self.implicit_sets]

    @property
    def hyper(self) -> dict[str, tuple[float, float]]:
        """The hyperpriors in force: defaults updated by the user's."""
        return DEFAULT_HYPERPRIORS | dict(self.hyperpriors)

    def noise_sd(self, scale: tuple[float, float]) -> float:
        """Return the fixed noise sd (``sigma``, or the default for the response scale).

        The default is (high - low) / 4.5 on the scale of the likelihood's response: the
        rating scale (identity link), [0, 1] (logistic link: ratings rescaled) or the 0/1
        preference of implicit feedback, whatever ``scale`` the data carry. The probit link
        (Bernoulli or ordinal likelihood) has latent noise sd 1.
        """
        if self.link == "probit":
            return 1.0  # the probit's (and ordered probit's) latent z ~ N(eta, 1)
        if self.sigma is not None:
            return float(self.sigma)
        if self.likelihood == "implicit":
            return 1.0 / 4.5
        low, high = scale
        return 1.0 / 4.5 if self.link == "logistic" else (high - low) / 4.5

    def lambdas(self, scale: tuple[float, float]) -> dict[str, float]:
        """Regularization weights of the fixed-prior objective, lambda = sigma^2 / sd^2."""
        s2 = self.noise_sd(scale) ** 2
        return {
            "lambda_u": s2 / self.sigma_u**2,
            "lambda_v": s2 / self.sigma_v**2,
            "lambda_bias": s2 / self.sigma_bias**2,
        }

    # -- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        out = asdict(self)
        out["hyperpriors"] = {k: list(v) for k, v in self.hyperpriors.items()}
        return out

    def to_json(self) -> str:
        """JSON text of `to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> PMF:
        """Inverse of `to_dict`; unknown keys raise ``ValueError``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown PMF option(s) {sorted(unknown)}; known: {sorted(known)}")
        kwargs = dict(payload)
        # a spec saved before the per-side prior became the default named neither option
        # and meant the shared prior with one scale
        kwargs.setdefault("factor_prior", "shared")
        kwargs.setdefault("per_factor_scales", False)
        kwargs["hyperpriors"] = {k: tuple(v) for k, v in dict(payload.get("hyperpriors", {})).items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> PMF:
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))

    # -- the two verbs ------------------------------------------------------------------
    def build(self, data: RatingsData) -> pm.Model:
        """Build the PyMC model of this spec on ``data`` (coords ``user``, ``item``, ``factor``)."""
        from bayesmf.model import build_model

        self._gibbs_only("PyMC model")
        return build_model(self, data)

    def _gibbs_only(self, what: str) -> None:
        if self.implicit_sets != "none":
            raise ValueError(
                f"implicit_sets={self.implicit_sets!r} is fitted by the Gibbs sampler only (method='gibbs'), "
                f"not by the {what}"
            )

    def fit(self, data: RatingsData, method: str = "gibbs", **kwargs: Any) -> FitResult:
        """Fit on ``data`` by ``method`` and return a `bayesmf.results.FitResult`.

        Parameters
        ----------
        data : RatingsData
            Training ratings.
        method : {"gibbs", "nuts", "advi", "map", "als", "sgd"}
            Inference route; every route returns the same result type (MAP routes as a
            posterior of one chain and one draw).
        **kwargs
            Options of the route (``draws``, ``tune``, ``chains``, ``random_seed``,
            ``progressbar``, ``approximation="fullrank"`` for ADVI, ...); see
            `bayesmf.inference.fit` and the route's ``fit_<method>``.
        """
        from bayesmf.inference import fit

        if method != "gibbs":
            self._gibbs_only(f"method={method!r}")
        return fit(self, data, method=method, **kwargs)
