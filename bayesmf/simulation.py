"""Ratings simulated from the PMF generative model, with the truth kept (`simulate`).

Fits can be checked against the truth that generated the ratings (`Simulation.truth`,
`Simulation.true_mean`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bayesmf._validate import (
    validate_choice,
    validate_positive,
    validate_positive_int,
    validate_scale,
)
from bayesmf.data import IdEncoder, RatingsData

__all__ = ["Simulation", "simulate"]

_LINKS = ("identity", "logistic")


@dataclass(frozen=True, eq=False)
class Simulation:
    """Ratings simulated from the PMF model, with the truth that generated them.

    Attributes
    ----------
    data : RatingsData
        The observed ratings (raw ids are the integers ``0..n-1``, so index == raw id).
    truth : dict of numpy.ndarray
        ``U`` (n_users, n_factors), ``V`` (n_items, n_factors), ``mu`` (scalar, on the
        latent scale), ``user_bias`` (n_users,), ``item_bias`` (n_items,) and ``sigma``
        (the noise sd; on the [0, 1] scale when ``link="logistic"``). Arrays are read-only.
    n_factors : int
        Number of latent factors.
    link : {"identity", "logistic"}
        How the latent score maps to the mean rating.
    """

    data: RatingsData
    truth: dict[str, np.ndarray]
    n_factors: int
    link: str = "identity"

    def latent(self, user_idx: Any, item_idx: Any) -> np.ndarray:
        r"""Return the latent score :math:`\eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j`."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        item_idx = np.asarray(item_idx, dtype=np.int64)
        truth = self.truth
        dot = np.einsum("...k,...k->...", truth["U"][user_idx], truth["V"][item_idx])
        return (
            float(truth["mu"]) + truth["user_bias"][user_idx] + truth["item_bias"][item_idx] + dot
        )

    def true_mean(self, user_idx: Any, item_idx: Any) -> np.ndarray:
        r"""Return the noiseless mean rating, on the rating scale, for index pairs.

        Parameters
        ----------
        user_idx, item_idx : array_like of int
            User and item indices (broadcast against each other).

        Returns
        -------
        numpy.ndarray
            :math:`\eta_{ij}` for ``link="identity"``; for ``link="logistic"``,
            :math:`\text{low} + (\text{high} - \text{low})\,\mathrm{logistic}(\eta_{ij})`
            with ``(low, high)`` the scale the latent model was drawn on.
        """
        eta = self.latent(user_idx, item_idx)
        if self.link == "logistic":
            low, high = self.truth["link_scale"].tolist()
            return low + (high - low) * _sigmoid(eta)
        return eta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def simulate(
    n_users: int = 200,
    n_items: int = 150,
    n_factors: int = 3,
    density: float = 0.1,
    noise: float = 0.5,
    seed: int = 0,
    *,
    biases: bool = True,
    mu: float = 3.5,
    factor_sd: float | None = None,
    bias_sd: float = 0.3,
    popularity_skew: float = 0.0,
    link: Literal["identity", "logistic"] = "identity",
    scale: tuple[float, float] | None = None,
) -> Simulation:
    r"""Draw ratings from the PMF generative model.

    .. math::

        U_i, V_j \sim \mathcal N(0, s^2 I_K), \quad b_i, c_j \sim \mathcal N(0, s_b^2),
        \quad \eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j

    and, for the observed pairs, :math:`r_{ij} = \eta_{ij} + \varepsilon_{ij}` with
    :math:`\varepsilon_{ij} \sim \mathcal N(0, \text{noise}^2)` (``link="identity"``),
    or :math:`r_{ij} = \text{low} + (\text{high}-\text{low})(\mathrm{logistic}(\eta_{ij})
    + \varepsilon_{ij})` (``link="logistic"``: noise on the [0, 1] scale as in
    Salakhutdinov & Mnih's PMF). Ratings are continuous, not rounded.

    Parameters
    ----------
    n_users, n_items, n_factors : int
        Sizes.
    density : float
        Fraction of the ``n_users * n_items`` cells observed, in (0, 1]. At least
        ``max(n_users, n_items)`` pairs are drawn so every user and every item has a rating.
    noise : float
        Noise sd (rating units for the identity link, [0, 1] units for logistic).
    seed : int
        Seed of `numpy.random.default_rng`; the result is a function of the arguments.
    biases : bool
        Include :math:`\mu + b_i + c_j`; when False, :math:`\mu = 0` and no offsets.
    mu : float
        Global mean rating, in rating units. For ``link="logistic"`` the latent
        :math:`\mu` is its logit on the [0, 1] scale, so a typical rating is still ``mu``.
    factor_sd : float, optional
        Sd :math:`s` of each factor entry. Default :math:`\sqrt{0.75/\sqrt{K}}`, which
        makes :math:`U_i \cdot V_j` have sd 0.75 whatever :math:`K`.
    bias_sd : float
        Sd of the user and item offsets.
    popularity_skew : float
        0: items are chosen uniformly. > 0: item :math:`j` (in a random order) is chosen
        with weight :math:`\propto (\text{rank}+1)^{-\text{skew}}` (Zipf-like), as in
        real ratings where a few items get most of them.
    link : {"identity", "logistic"}
        Mean function.
    scale : tuple of float, optional
        The declared rating scale of the data. None: ``(floor(min), ceil(max))`` of the
        draws for identity, ``(1, 5)`` for logistic. A given scale must contain every
        identity-link draw; logistic draws are clipped to it.

    Returns
    -------
    Simulation

    Raises
    ------
    ValueError
        On a non-positive size, density outside (0, 1], a negative noise or sd, or a
        given scale that does not contain the identity-link draws.

    Examples
    --------
    >>> sim = simulate(n_users=50, n_items=40, n_factors=2, density=0.2, seed=1)
    >>> sim.data.n_users, sim.data.n_items
    (50, 40)
    """
    n_users = validate_positive_int("n_users", n_users)
    n_items = validate_positive_int("n_items", n_items)
    n_factors = validate_positive_int("n_factors", n_factors)
    density = _validate_density(density)
    noise = _validate_nonnegative("noise", noise)
    bias_sd = _validate_nonnegative("bias_sd", bias_sd)
    popularity_skew = _validate_nonnegative("popularity_skew", popularity_skew)
    entry_sd = float(
        math.sqrt(0.75 / math.sqrt(n_factors))
        if factor_sd is None
        else validate_positive("factor_sd", factor_sd)  # type: ignore[arg-type]
    )
    validate_choice("link", link, _LINKS)
    if (
        isinstance(mu, bool)
        or not isinstance(mu, (int, float, np.integer, np.floating))
        or not math.isfinite(float(mu))
    ):
        raise TypeError(f"mu must be a finite number, got {mu!r}")
    declared = validate_scale(scale) if scale is not None else None

    rng = np.random.default_rng(seed)
    U = rng.normal(0.0, entry_sd, size=(n_users, n_factors))
    V = rng.normal(0.0, entry_sd, size=(n_items, n_factors))
    if biases:
        user_bias = rng.normal(0.0, bias_sd, size=n_users)
        item_bias = rng.normal(0.0, bias_sd, size=n_items)
    else:
        user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
    user_idx, item_idx = _sample_pairs(rng, n_users, n_items, density, popularity_skew)
    eps = rng.normal(0.0, noise, size=len(user_idx)) if noise > 0 else np.zeros(len(user_idx))

    dot = np.einsum("nk,nk->n", U[user_idx], V[item_idx])
    truth: dict[str, np.ndarray] = {}
    if link == "identity":
        latent_mu = float(mu) if biases else 0.0
        rating = latent_mu + user_bias[user_idx] + item_bias[item_idx] + dot + eps
        if declared is None:
            data_scale = (float(np.floor(rating.min())), float(np.ceil(rating.max())))
            if data_scale[0] == data_scale[1]:  # every draw the same integer
                data_scale = (data_scale[0], data_scale[0] + 1.0)
        else:
            data_scale = declared
            outside = (rating < declared[0]) | (rating > declared[1])
            if outside.any():
                raise ValueError(
                    f"scale={scale!r} does not contain the simulated ratings (they span "
                    f"{rating.min():.3f} to {rating.max():.3f}); widen it or pass scale=None"
                )
    else:
        data_scale = declared if declared is not None else (1.0, 5.0)
        low, high = data_scale
        if biases:
            unit_mu = (float(mu) - low) / (high - low)
            if not 0.0 < unit_mu < 1.0:
                raise ValueError(
                    f"mu={mu!r} must lie strictly inside the scale {data_scale!r} for link='logistic'"
                )
            latent_mu = math.log(unit_mu / (1.0 - unit_mu))
        else:
            latent_mu = 0.0
        eta = latent_mu + user_bias[user_idx] + item_bias[item_idx] + dot
        rating = low + (high - low) * np.clip(_sigmoid(eta) + eps, 0.0, 1.0)
        truth["link_scale"] = np.array([low, high])

    truth.update(
        U=U,
        V=V,
        mu=np.asarray(latent_mu),
        user_bias=user_bias,
        item_bias=item_bias,
        sigma=np.asarray(float(noise)),
    )
    for array in truth.values():
        array.setflags(write=False)
    data = RatingsData(
        user_idx=user_idx,
        item_idx=item_idx,
        rating=rating,
        scale=data_scale,
        users=IdEncoder("user", np.arange(n_users, dtype=np.int64)),
        items=IdEncoder("item", np.arange(n_items, dtype=np.int64)),
    )
    return Simulation(data=data, truth=truth, n_factors=n_factors, link=link)


def _validate_density(density: Any) -> float:
    if isinstance(density, bool) or not isinstance(density, (int, float, np.integer, np.floating)):
        raise TypeError(f"density must be a number in (0, 1], got {density!r}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    return float(density)


def _validate_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _sample_pairs(
    rng: np.random.Generator, n_users: int, n_items: int, density: float, skew: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs covering every user and item, sorted by user then item.

    A covering set of ``max(n_users, n_items)`` pairs comes first (each user and each item
    appears in it); the rest are drawn without replacement with item weights
    ``(rank + 1) ** -skew`` over a random item order, uniform over users.
    """
    n_cells = n_users * n_items
    n_cover = max(n_users, n_items)
    n_obs = min(n_cells, max(n_cover, round(density * n_cells)))

    # covering set: tile a permutation of the smaller side against one of the larger side
    users = np.resize(rng.permutation(n_users), n_cover)
    items = np.resize(rng.permutation(n_items), n_cover)
    chosen = np.unique(users * n_items + items)

    item_weight = np.empty(n_items)
    item_weight[rng.permutation(n_items)] = (np.arange(n_items) + 1.0) ** (-skew)
    item_weight /= item_weight.sum()

    n_more = n_obs - len(chosen)
    if n_more > 0:
        if n_cells <= 4_000_000:
            # exact weighted sampling without replacement by Gumbel top-k over free cells
            keys = np.log(np.tile(item_weight, n_users)) + rng.gumbel(size=n_cells)
            keys[chosen] = -np.inf
            extra = np.argpartition(-keys, n_more - 1)[:n_more]
        else:
            # large grids: draw in batches with replacement and drop repeats
            taken = set(chosen.tolist())
            extra_list: list[int] = []
            while len(extra_list) < n_more:
                batch = 2 * (n_more - len(extra_list)) + 16
                cells = rng.integers(0, n_users, batch) * n_items + rng.choice(
                    n_items, size=batch, p=item_weight
                )
                for cell in cells.tolist():
                    if cell not in taken:
                        taken.add(cell)
                        extra_list.append(cell)
                        if len(extra_list) == n_more:
                            break
            extra = np.asarray(extra_list, dtype=np.int64)
        chosen = np.sort(np.concatenate([chosen, extra]))
    return chosen // n_items, chosen % n_items
