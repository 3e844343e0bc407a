r"""The quantities of a PMF posterior that the data identify, as draws (`identified_quantities`).

The factors of a PMF are not identified: :math:`U R` and :math:`V R` with any orthogonal
:math:`R` (rotations, sign flips, permutations of the factors) give the same likelihood, and
so does :math:`U \to cU, V \to V / c`. Chains that agree on every prediction may sit at
different rotations, so R-hat of the raw factors is large by construction and says nothing
about convergence. The diagnostics (`bayesmf.diagnostics.diagnose`, and the plots of
`bayesmf.convergence_plots.plot_diagnostics`) monitor what *is* identified instead:

=====================  =========================================================================
quantity               definition
=====================  =========================================================================
``sigma``              noise sd (normal likelihood)
``mean_level``         :math:`\mu + \bar b + \bar c` (biases, normal): a constant shared by
                       :math:`\mu` and the offsets cancels in it, so it is identified while
                       :math:`\mu` and each offset alone are only identified up to that shift;
                       the offsets themselves are monitored through the predictions; with
                       ``factor_prior="per_side"`` plus :math:`\bar U \cdot \bar V`, i.e. the
                       mean of the whole predicted matrix (the side means trade with the offsets)
``sigma_user_bias``,   prior sds of the offsets (hierarchical priors with biases); with
``sigma_item_bias``    ``factor_prior="per_side"`` not monitored: the side means trade with the
                       offsets (:math:`U_i \to U_i + \delta`, :math:`c_j \to c_j - \delta \cdot V_j`
                       leaves every prediction unchanged), so the offsets' spread is identified
                       only through the priors; the next two take their place
``sd_user_effect``,    per-side prior with biases: the sd over users of the row effects of the
``sd_item_effect``     predicted matrix, :math:`b_i + U_i \cdot \bar V` (over items of
                       :math:`c_j + \bar U \cdot V_j`), which that shift leaves unchanged
``sigma_factor``       prior sd of the factors (hierarchical); with ``per_factor_scales`` the
                       sds are *sorted* in each draw (factor labels can permute between chains);
                       with ``factor_prior="per_side"`` not monitored: each side's scale and
                       mean are identified only through their priors (U -> cU, V -> V/c)
``cutpoints_rel``      ordinal cutpoints minus :math:`\bar b + \bar c` (a shift of both cancels)
``norm_UVt``           :math:`\lVert U V^\top \rVert_F = \sqrt{\operatorname{tr}((U^\top U)(V^\top V))}`,
                       rotation invariant, computed without forming :math:`U V^\top`; per-side
                       prior with biases: of the centred factors,
                       :math:`\lVert (U - \bar U)(V - \bar V)^\top \rVert_F`, the interaction
                       left when the row and column effects are taken out (the raw norm moves
                       with the shift above)
``pred_train``         mean rating :math:`E[r_{ij}]` of a seeded random sample of training pairs
``pred_test``,         the same on held-out pairs (when ``test`` is given), else on pairs
``pred_unrated``       that are not in the training data, drawn in proportion to the activity
                       of their user and item (`bayesmf.monitored_pairs`)
=====================  =========================================================================

The mean rating is :math:`\eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j` for the identity
link, :math:`\text{low} + (\text{high} - \text{low})\,\mathrm{logistic}(\eta_{ij})` for the
logistic link, and :math:`\sum_k \ell_k P(r_{ij} = \ell_k)` for the ordinal likelihood (where
:math:`\eta` alone is not identified). All are invariant under the symmetries above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmf.data import RatingsData
from bayesmf.latent import latent_scores_per_draw
from bayesmf.link import mean_rating
from bayesmf.monitored_pairs import DEFAULT_N_PAIRS, MonitoredPairs, monitored_pairs

if TYPE_CHECKING:
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = [
    "SCALAR_QUANTITIES",
    "MonitoredPairs",
    "identified_draws",
    "identified_quantities",
    "monitored_pairs",
]

#: quantities that are one number per draw, in display order
SCALAR_QUANTITIES = (
    "sigma",
    "mean_level",
    "sigma_user_bias",
    "sigma_item_bias",
    "sd_user_effect",
    "sd_item_effect",
    "norm_UVt",
)
#: draws per block when reducing the factors (bounds the K x K Gram temporaries)
_SAMPLE_CHUNK = 256


def identified_quantities(
    result: FitResult,
    n_pairs: int = DEFAULT_N_PAIRS,
    test: RatingsData | None = None,
    seed: int = 0,
) -> xr.DataTree:
    """Draws of the identified quantities of a fit, as a posterior-like ``DataTree``.

    Parameters
    ----------
    result : FitResult
        A fitted model (any method).
    n_pairs : int
        How many training pairs, and how many held-out (or unrated) pairs, to monitor.
        Fewer are used when fewer exist.
    test : RatingsData, optional
        Held-out ratings sharing the training encoders; their pairs are monitored as
        ``pred_test``. Without it, ``pred_unrated`` monitors pairs absent from the training
        data, drawn with probability proportional to (the user's training ratings) x (the
        item's), the pairs a recommender is asked about (`bayesmf.monitored_pairs`).
    seed : int
        Seed of the pair sample (the same seed gives the same pairs).

    Returns
    -------
    xarray.DataTree
        Group ``posterior`` with dims ``(chain, draw, ...)`` holding the quantities listed in
        the module docstring (those the spec has), and ``sample_stats`` copied from the fit
        when present, so ArviZ functions (``az.summary``, ``arviz_plots.plot_rank``) apply.
        The pair variables have a dim ``train_pair`` / ``test_pair`` / ``unrated_pair``
        whose coordinate is ``"<user id>:<item id>"``.

    Raises
    ------
    TypeError
        If ``test`` is not a `RatingsData`.
    ValueError
        If ``test`` does not share the training encoders.
    """
    train = result.train
    post = result.idata["posterior"].to_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    drawn = [str(name) for name in post.data_vars if post[name].dims[:2] == ("chain", "draw")]
    pairs = monitored_pairs(train, n_pairs=n_pairs, test=test, seed=seed)
    # a block of draws of one chain at a time: a lazy (zarr-backed) posterior is read a
    # block at a time, never whole
    blocks = []
    for chain in range(chains):
        for start in range(0, draws, _SAMPLE_CHUNK):
            part = post[drawn].isel(chain=chain, draw=slice(start, start + _SAMPLE_CHUNK))
            blocks.append(
                identified_draws(result.spec, train, {k: part[k].values for k in drawn}, pairs)
            )
    out = {
        name: (dims, np.concatenate([b[name][1] for b in blocks]))
        for name, (dims, _) in blocks[0].items()
    }
    data_vars = {
        name: (
            ("chain", "draw", *dims),
            np.asarray(values, dtype=np.float64).reshape(chains, draws, *np.shape(values)[1:]),
        )
        for name, (dims, values) in out.items()
    }
    groups = {
        "posterior": xr.Dataset(
            data_vars,
            coords=quantity_coords(out, pairs, chains, draws),
            attrs={"method": result.method},
        )
    }
    if "sample_stats" in result.idata.children:
        groups["sample_stats"] = result.idata["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def identified_draws(
    spec: PMF, train: RatingsData, draws: Mapping[str, np.ndarray], pairs: MonitoredPairs
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Compute the identified quantities of posterior draws, ``{name: (dims, values)}``.

    ``draws``: the posterior variables of `bayesmf.posterior`'s layout, each with one leading
    sample axis (any number of draws, e.g. one draw of a running chain); ``values`` have
    that sample axis first, then ``dims``. `identified_quantities` and the Gibbs sampler's
    stopping rule (`bayesmf.inference.gibbs.monitor`) both compute their quantities here.
    """
    U, V = draws.get("U"), draws.get("V")
    if U is None or V is None:
        raise ValueError("not a bayesmf posterior: the posterior group lacks U or V")
    mu, user_bias, item_bias = draws.get("mu"), draws.get("user_bias"), draws.get("item_bias")
    cutpoints = draws.get("cutpoints")
    n = U.shape[0]

    out: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    if "sigma" in draws:
        out["sigma"] = ((), draws["sigma"])
    # a constant moved between mu, the user offsets and the item offsets (and, for the
    # ordinal likelihood, the cutpoints) leaves the likelihood unchanged
    level = np.zeros(n) if mu is None else mu.astype(np.float64)
    # per-side factor means with offsets: U_i . m_V acts as a user offset (and m_U . V_j as
    # an item offset), so only the row and column effects of the predicted matrix are
    # identified, not how they split between the offsets and the factors
    side_offsets = user_bias is not None and item_bias is not None and "factor_mean_user" in draws
    if user_bias is not None and item_bias is not None:
        level = level + user_bias.mean(axis=1) + item_bias.mean(axis=1)
        if side_offsets:
            u_bar, v_bar = U.mean(axis=1, dtype=np.float64), V.mean(axis=1, dtype=np.float64)
            level = level + np.einsum("sk,sk->s", u_bar, v_bar)
        if cutpoints is None:
            out["mean_level"] = ((), level)
    if side_offsets:
        out["sd_user_effect"] = ((), (user_bias + np.einsum("sik,sk->si", U, v_bar)).std(axis=1))
        out["sd_item_effect"] = ((), (item_bias + np.einsum("sjk,sk->sj", V, u_bar)).std(axis=1))
    else:
        for name in ("sigma_user_bias", "sigma_item_bias"):
            if name in draws:
                out[name] = ((), draws[name])
    if "sigma_factor" in draws:
        scales = draws["sigma_factor"]
        if scales.ndim == 2:
            # factor labels are exchangeable: only the sorted set of scales is identified
            out["sigma_factor"] = (("rank",), np.sort(scales, axis=1)[:, ::-1])
        else:
            out["sigma_factor"] = ((), scales)
    if cutpoints is not None:
        out["cutpoints_rel"] = (("cutpoint",), cutpoints - level[:, None])
    out["norm_UVt"] = ((), _frobenius_norm(U, V, centre=side_offsets))
    for name, (dim, users, items, _) in pairs.pairs.items():
        mean = _mean_rating(spec, train, U, V, mu, user_bias, item_bias, cutpoints, users, items)
        out[name] = ((dim,), mean)
    return out


def quantity_coords(
    out: Mapping[str, tuple[tuple[str, ...], np.ndarray]],
    pairs: MonitoredPairs,
    chains: int,
    draws: int,
) -> dict[str, Any]:
    """Coordinates of a dataset of `identified_draws` output with ``chains`` x ``draws`` draws."""
    coords: dict[str, Any] = {"chain": np.arange(chains), "draw": np.arange(draws)}
    coords |= {dim: labels for name, (dim, _, _, labels) in pairs.pairs.items() if name in out}
    if "sigma_factor" in out and out["sigma_factor"][0]:
        coords["rank"] = np.arange(out["sigma_factor"][1].shape[1])
    if "cutpoints_rel" in out:
        coords["cutpoint"] = np.arange(out["cutpoints_rel"][1].shape[1])
    return coords


def _frobenius_norm(U: np.ndarray, V: np.ndarray, centre: bool = False) -> np.ndarray:
    r""":math:`\lVert U_s V_s^\top\rVert_F` per sample, via the K x K Gram matrices.

    ``centre``: of the factors less their means over the rows.
    """
    out = np.empty(U.shape[0])
    for start in range(0, U.shape[0], _SAMPLE_CHUNK):
        u = U[start : start + _SAMPLE_CHUNK].astype(np.float64)
        v = V[start : start + _SAMPLE_CHUNK].astype(np.float64)
        if centre:
            u -= u.mean(axis=1, keepdims=True)
            v -= v.mean(axis=1, keepdims=True)
        gram_u = np.matmul(u.transpose(0, 2, 1), u)
        gram_v = np.matmul(v.transpose(0, 2, 1), v)
        # tr(A B) = sum(A * B^T); both Gram matrices are symmetric
        out[start : start + _SAMPLE_CHUNK] = np.einsum("skl,skl->s", gram_u, gram_v)
    return np.sqrt(np.maximum(out, 0.0))


def _mean_rating(
    spec: PMF,
    train: RatingsData,
    U: np.ndarray,
    V: np.ndarray,
    mu: np.ndarray | None,
    user_bias: np.ndarray | None,
    item_bias: np.ndarray | None,
    cutpoints: np.ndarray | None,
    users: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    r"""Mean rating :math:`E[r_{ij} \mid \theta]` per sample for index pairs, (sample, pair)."""
    eta = latent_scores_per_draw(
        U, V, users, items, mu=mu, user_bias=user_bias, item_bias=item_bias
    )
    cut = None if cutpoints is None else cutpoints[:, None, :]
    return np.asarray(mean_rating(eta, spec, train.scale, cutpoints=cut, levels=train.levels))
