"""The entry checks every inference route shares, in one place.

`bayesmf.inference.fit` and each public ``fit_<method>`` call `check_inputs` first, so a
route called directly rejects bad input with the same message as one reached through
`bayesmf.spec.PMF.fit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bayesmf._validate import validate_choice

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["FEATURE_METHODS", "INFO_KEYS", "METHODS", "SUPPORT", "check_features", "check_inputs", "check_supported"]

METHODS = ("gibbs", "nuts", "advi", "map", "als", "sgd")

#: keys every route's ``FitResult.info`` has: the wall time of the fit and an int seed that
#: repeats the run (the int given, or the one drawn from a Generator or fresh entropy)
INFO_KEYS = ("fit_seconds", "random_seed")

#: method -> (predicate on the spec, description of what it supports)
SUPPORT = {
    "map": (
        lambda s: s.priors == "fixed",
        "priors='fixed' (any link and likelihood; implicit: the dense PyMC model, up to 2e6 pairs)",
    ),
    "als": (
        lambda s: s.priors == "fixed" and s.link == "identity" and s.likelihood == "normal",
        "priors='fixed', link='identity', likelihood='normal'",
    ),
    "sgd": (
        lambda s: s.priors == "fixed" and s.likelihood == "normal",
        "priors='fixed', likelihood='normal' (identity or logistic link)",
    ),
    "gibbs": (
        lambda s: (s.link == "identity" and s.likelihood in ("normal", "implicit")) or s.link == "probit",
        "link='identity' with likelihood 'normal' or 'implicit', or link='probit' with likelihood "
        "'bernoulli' or 'ordinal' (ordered probit); fixed or hierarchical priors",
    ),
    "nuts": (lambda s: s.likelihood != "implicit", "likelihood 'normal', 'ordinal' or 'bernoulli'"),
    "advi": (lambda s: s.likelihood != "implicit", "likelihood 'normal', 'ordinal' or 'bernoulli'"),
}


def check_supported(spec: PMF, method: str) -> None:
    """Raise ``ValueError`` naming the supported combinations if ``method`` cannot fit ``spec``."""
    validate_choice("method", method, METHODS)
    sets = getattr(spec, "implicit_sets", "none")
    if sets != "none" and method != "gibbs":
        raise ValueError(
            f"method={method!r} does not fit implicit_sets={sets!r} (Bayesian SVD++); only "
            "method='gibbs' does: pass method='gibbs', or implicit_sets='none'"
        )
    supported, description = SUPPORT[method]
    if not supported(spec):
        raise ValueError(
            f"method={method!r} does not support this model (priors={spec.priors!r}, "
            f"link={spec.link!r}, likelihood={spec.likelihood!r}); it supports {description}"
        )


def check_inputs(spec: Any, data: Any, method: str) -> None:
    """Check the spec's type, that ``method`` supports it, and the data's type, size and values.

    Values: 0/1 for the Bernoulli likelihood, on a regular grid of levels for the ordinal one.
    Features (`check_features`): the per-side prior of Gibbs, NUTS and ADVI uses them.
    """
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

    if not isinstance(spec, PMF):
        raise TypeError(f"spec must be a PMF, got {type(spec).__name__}")
    check_supported(spec, method)
    if not isinstance(data, RatingsData):
        raise TypeError(
            "data must be a RatingsData (RatingsData.from_dataframe(df, ...)), got "
            f"{type(data).__name__}"
        )
    if data.n_ratings == 0:
        raise ValueError("cannot fit on an empty dataset (0 ratings)")
    check_features(spec, data, method)
    if spec.likelihood == "bernoulli":
        from bayesmf.binary import check_binary

        check_binary(data)
    if spec.likelihood == "ordinal":
        from bayesmf.link import ordinal_levels

        ordinal_levels(data)


#: the routes that fit the feature prior (the Gibbs sampler's block and the PyMC model's)
FEATURE_METHODS = ("gibbs", "nuts", "advi")


def check_features(spec: PMF, data: RatingsData, method: str) -> None:
    """Refuse data with features (before anything is fitted) unless the route and spec use them.

    The feature prior extends the per-side hierarchical prior: ``method="gibbs"`` fits it
    by its conjugate block (`bayesmf.inference.gibbs.priors.FeatureFactors`), ``"nuts"``
    and ``"advi"`` on the same PyMC model (`bayesmf.model.build_model`). The other routes
    (MAP, ALS, SGD: fixed priors only) would silently ignore the features, and the shared
    prior has no mean to extend, so these raise ``ValueError`` naming the method or prior.
    """
    sides = [side for side in ("user", "item") if getattr(data, f"{side}_features", None) is not None]
    if not sides:
        return
    which = " and ".join(sides)
    if method not in FEATURE_METHODS:
        raise ValueError(
            f"method={method!r} does not use features, and this data has {which} features: it fits fixed "
            "priors only, and the feature prior extends the per-side hierarchical prior, which method='gibbs', "
            "'nuts' or 'advi' fit with PMF(priors='hierarchical', factor_prior='per_side'); or fit without them "
            "with data.without_features()"
        )
    if spec.priors != "hierarchical" or spec.factor_prior != "per_side":
        raise ValueError(
            f"this data has {which} features, which need the per-side prior they extend: "
            f"PMF(priors='hierarchical', factor_prior='per_side') (got priors={spec.priors!r}, "
            f"factor_prior={spec.factor_prior!r}); or fit without them with data.without_features()"
        )
