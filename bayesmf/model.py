"""Build the PyMC model of a `bayesmf.PMF` spec on `bayesmf.RatingsData`.

This module does one thing: turn a spec and ratings into a ``pymc.Model`` whose variable
names and dims are those of the bayesmf posterior layout (`bayesmf.posterior`), so that
``pm.sample`` / ``pm.find_MAP`` output is already in that layout. The mean function of each
link and the other numpy-side maths it uses live in `bayesmf.link` (shared with prediction
and the inference routes) and are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtri

from bayesmf._model_priors import latent_variables, noise_sd

# re-exported: prediction and the inference routes import the link maths from here too
from bayesmf.link import CUTPOINT_PRIOR_SD as CUTPOINT_PRIOR_SD
from bayesmf.link import initial_cutpoints as initial_cutpoints
from bayesmf.link import level_codes as level_codes
from bayesmf.link import mean_rating as mean_rating
from bayesmf.link import mu_prior as mu_prior
from bayesmf.link import ordinal_levels, to_unit, unit_mean
from bayesmf.link import ordinal_probs as ordinal_probs
from bayesmf.model_binary import probit_rating
from bayesmf.model_ordinal import ordinal_rating
from bayesmf.posterior import coords_for, feature_sides

if TYPE_CHECKING:
    import pymc as pm

    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["CUTPOINT_PRIOR_SD", "build_model"]


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
def build_model(spec: PMF, data: RatingsData) -> pm.Model:
    r"""Build the PyMC model of ``spec`` on ``data``, in the bayesmf posterior layout.

    Latent score and likelihood, for rating :math:`n` of user :math:`i = u_n` on item
    :math:`j = v_n`:

    .. math::

        \eta_n = \mu + b_i + c_j + U_i \cdot V_j, \qquad
        r_n \sim \mathcal N(g(\eta_n), \sigma^2)

    - ``link="identity"``: :math:`g(\eta) = \eta`, ratings in their own units.
    - ``link="logistic"``: the likelihood sees :math:`(r - \text{low})/(\text{high} - \text{low})`
      and :math:`g` is the logistic function; :math:`\sigma` is on that [0, 1] scale.
    - ``likelihood="ordinal"``: :math:`r_n \sim \mathrm{OrderedLogistic}(\eta_n, c)`
      (``link="identity"``) or the ordered probit (``link="probit"``,
      :math:`P(r_n \le \ell_k) = \Phi(c_k - \eta_n)`) over ``data.levels`` (the observed
      variable holds the level index 0..K-1; `bayesmf.model_ordinal`); there is
      no :math:`\mu` (the cutpoints absorb it: :math:`\mu` and a shift of every cutpoint
      are not separately identified), no :math:`\sigma`. Cutpoints
      :math:`c \sim \mathcal N(0, 3^2)` ordered (PyMC's ``ordered`` transform), for both
      prior kinds and both links. Factor and bias scales are then on the logit or probit scale.
    - ``biases=False``: :math:`\eta_n = U_i \cdot V_j` (the seeds' model).
    - ``likelihood="implicit"``: every (user, item) pair is in the likelihood, the
      dense model of `bayesmf.model_implicit.build_implicit_model` (same priors).
    - ``likelihood="bernoulli"`` (probit link): :math:`y_n \in \{0, 1\}`,
      :math:`\log p(y_n \mid \eta_n) = \log\Phi(s_n \eta_n)` with :math:`s_n = 2 y_n - 1`
      (`bayesmf.model_binary.probit_rating`), no :math:`\sigma`;
      :math:`\mu \sim \mathcal N(0, 1)` under hierarchical priors. The posterior the Gibbs
      sampler draws by data augmentation (`bayesmf.inference.gibbs.probit`).

    Priors, ``priors="fixed"`` (the classic PMF; MAP = the regularized least squares
    `bayesmf.objective.objective` with :math:`\lambda = \sigma^2 / \text{sd}^2`):

    - :math:`U_{ik} \sim \mathcal N(0, \sigma_U^2)`, :math:`V_{jk} \sim \mathcal N(0, \sigma_V^2)`,
      :math:`b_i, c_j \sim \mathcal N(0, \sigma_b^2)` with ``spec.sigma_u``, ``sigma_v``,
      ``sigma_bias``;
    - :math:`\mu` flat (``pm.Flat``: no penalty on the global mean);
    - :math:`\sigma` = ``spec.noise_sd(data.scale)``, a constant, stored as the
      ``pm.Deterministic`` ``sigma`` so it appears in the posterior.

    Priors, ``priors="hierarchical"`` (conjugate; the Gibbs sampler uses exactly these).
    :math:`\mathrm{InvGamma}(a, b)` has density
    :math:`\propto x^{-a-1} e^{-b/x}` (PyMC ``InverseGamma(alpha=a, beta=b)``), and it is
    put on the VARIANCES, with ``(a, b) = spec.hyper[key]``:

    - noise: :math:`\sigma^2 \sim \mathrm{InvGamma}(\text{hyper["sigma2"]})`, variable
      ``sigma2``; ``sigma = sqrt(sigma2)`` deterministic (rating units, or [0, 1] units
      with the logistic link);
    - factors: ONE variance :math:`s^2 \sim \mathrm{InvGamma}(\text{hyper["factor_var"]})`
      shared by U and V, :math:`U_{ik}, V_{jk} \sim \mathcal N(0, s^2)`; with
      ``per_factor_scales`` one independent :math:`s_k^2` per factor ``k`` (same prior),
      :math:`U_{ik}, V_{jk} \sim \mathcal N(0, s_k^2)`. Variable ``factor_var``,
      ``sigma_factor = sqrt(factor_var)``. (Separate scales for U and V are not
      identified: only their product is.) With ``factor_prior="per_side"`` each side has
      its own variance(s) and mean (BPMF's hyperprior, diagonal): ``factor_var_user``
      :math:`\sim \mathrm{InvGamma}(\text{hyper["factor_var"]})` (per factor with
      ``per_factor_scales``), ``factor_mean_user`` :math:`\sim \mathcal N(0,
      \text{factor\_var\_user} / \kappa_0)` per factor, :math:`U_{ik} \sim \mathcal
      N(\text{factor\_mean\_user}_k, \text{factor\_var\_user}_k)`; ``sigma_factor_user``
      its square root; the same for items (``_item``). With side information
      (``data.user_features``, per-side prior only) the mean is per row, the Gibbs
      sampler's `bayesmf.inference.gibbs.priors.FeatureFactors`:
      :math:`U_{ik} \sim \mathcal N(m_k + x_i^\top W_k, v_k)`,
      :math:`W_k \mid v_k, \beta \sim \mathcal N(0, (v_k/\beta) I_F)`,
      :math:`\beta \sim \mathrm{Gamma}` (``feature_weight_user``, dims ``user_feature``,
      ``factor``; ``feature_precision_user``); items alike;
    - biases: :math:`s_b^2, s_c^2 \sim \mathrm{InvGamma}(\text{hyper["bias_var"]})`
      independently, :math:`b_i \sim \mathcal N(0, s_b^2)`, :math:`c_j \sim \mathcal N(0, s_c^2)`.
      Variables ``user_bias_var``, ``item_bias_var``; ``sigma_user_bias``,
      ``sigma_item_bias`` their square roots;
    - :math:`\mu \sim \mathcal N((\text{low}+\text{high})/2, ((\text{high}-\text{low})/2)^2)`
      (identity link, rating units) or :math:`\mathcal N(0, 2^2)` (logistic link, logit
      scale); see `bayesmf.link.mu_prior`.

    Parameterization: centred (``U ~ N(0, s)``, not ``U = s * z``). Each user factor
    vector is informed by that user's ratings (>= 20 per user in MovieLens) and the factor
    scale is shared by all users and items, so it is sharply determined: the likelihood
    dominates and the funnel geometry that calls for non-centring does not arise; a
    non-centred U would couple every U entry with ``s`` instead. A nutpie comparison of the
    two on a small simulated set favoured the centred form for the variances, with the
    predicted means mixing alike (figures: ``benchmarks/RESULTS.md``, "Centred vs
    non-centred PyMC model").

    Data: ``user_idx``, ``item_idx`` are ``pm.Data`` (dim ``obs``) and the likelihood
    ``rating`` has ``shape=user_idx.shape``, so predictions for new pairs come from
    ``pm.set_data({"user_idx": u, "item_idx": i}, coords={"obs": range(len(u))})`` and
    ``pm.sample_posterior_predictive(..., predictions=True)``. Coordinates ``user``,
    ``item`` (raw ids), ``factor`` (and ``cutpoint``) come from `bayesmf.posterior.coords_for`.

    Parameters
    ----------
    spec : PMF
        The model description.
    data : RatingsData
        Training ratings.

    Returns
    -------
    pymc.Model

    Raises
    ------
    ValueError
        If ``data`` is empty, or ``likelihood="ordinal"`` and the ratings have no
        discrete levels (`bayesmf.link.ordinal_levels` names a rating off every grid).
    """
    import pymc as pm

    from bayesmf._pytensor_ops import pair_dot

    if spec.likelihood == "implicit":
        from bayesmf.model_implicit import build_implicit_model

        return build_implicit_model(spec, data)
    if data.n_ratings == 0:
        raise ValueError("cannot build a model on an empty dataset (0 ratings)")
    levels = ordinal_levels(data) if spec.likelihood == "ordinal" else None
    coords: dict[str, Any] = dict(
        coords_for(spec, data.users, data.items, None if levels is None else len(levels))
    )
    coords["obs"] = np.arange(data.n_ratings)
    features = {side: data.feature_matrix(side) for side in feature_sides(data)}
    coords |= {f"{side}_feature": np.asarray(getattr(data, f"{side}_features").names, dtype=str) for side in features}
    normal = spec.likelihood == "normal"
    binary = spec.likelihood == "bernoulli"

    with pm.Model(coords=coords) as model:
        user_idx = _index_data(model, "user_idx", data.user_idx)
        item_idx = _index_data(model, "item_idx", data.item_idx)
        mu_start = _mu_start(spec, data) if normal or binary else 0.0
        latent = latent_variables(spec, data.scale, mu_start, features)
        eta = pair_dot(latent.U, latent.V, user_idx, item_idx)
        if spec.biases:
            eta = eta + latent.user_bias[user_idx] + latent.item_bias[item_idx]
        if latent.mu is not None:
            eta = latent.mu + eta

        # -- likelihood ---------------------------------------------------------------
        if binary:
            probit_rating(eta, data, user_idx.shape)
        elif normal:
            sigma = noise_sd(spec, data.scale)
            observed = to_unit(np.asarray(data.rating), data.scale, spec.link)
            pm.Normal(
                "rating",
                mu=unit_mean(eta, spec.link),
                sigma=sigma,
                observed=observed,
                shape=user_idx.shape,
                dims="obs",
            )
        else:
            if levels is None:  # unreachable (checked above); narrows the type for mypy
                raise AssertionError("ordinal model without levels")
            ordinal_rating(eta, data, levels, user_idx.shape, spec.link)
    return model


def _index_data(model: pm.Model, name: str, values: np.ndarray) -> Any:
    """``pm.Data`` for int64 indices, dim ``obs``.

    ``pm.Data`` would store them as int32, and then ``pm.sample_posterior_predictive``
    refuses a posterior whose ``constant_data`` holds the int64 indices of
    `bayesmf.posterior.make_posterior` (it compares them without casting).
    """
    import pytensor

    shared = pytensor.shared(np.asarray(values, dtype=np.int64), name)
    model.register_data_var(shared, dims=("obs",))
    return shared


def _mu_start(spec: PMF, data: RatingsData) -> float:
    """Start value of a flat ``mu``: the mean rating on the latent scale."""
    mean = float(np.mean(to_unit(np.asarray(data.rating), data.scale, spec.link)))
    if spec.link == "probit":
        return float(ndtri(min(max(mean, 1e-3), 1 - 1e-3)))
    if spec.link == "logistic":
        mean = min(max(mean, 1e-3), 1 - 1e-3)
        return float(np.log(mean / (1.0 - mean)))
    return mean
