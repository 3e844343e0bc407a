"""Simulation-based calibration of the Gibbs sampler with every block at once (issue 19's headline model).

``PMF(likelihood="ordinal", link="probit", factor_prior="per_side", per_factor_scales=True,
implicit_sets="both")`` on ratings with user and item features: the ordered probit
(`bayesmf.inference.gibbs.ordinal`), the feature prior and the implicit sets
(`bayesmf.inference.gibbs.implicit_sets`, whose `ImplicitShift` must regress on the
ordered probit's latent responses, not on the star labels) in one sweep. Each block has
its own SBC (tests/test_gibbs_ordinal.py, tests/test_gibbs_features.py,
tests/test_gibbs_implicit_sets.py); this file checks them together, and the Gaussian
likelihood with the same prior. The prior draw and the uniformity test are those of the
blocks' own SBCs (imported), with the feature term and the cutpoints added.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.features import Features
from bayesmf.implicit_sets import implicit_design
from bayesmf.inference.gibbs.sweep import build_sweep, problem_for
from bayesmf.link import CUTPOINT_PRIOR_SD, ordinal_probs
from bayesmf.spec import FEATURE_PRECISION_PRIOR, PMF
from tests.sbc_chain import sbc_draws
from tests.test_gibbs_implicit_sets import SBC_SPEC as SETS_SBC_SPEC
from tests.test_gibbs_implicit_sets import prior_draw as sets_prior_draw
from tests.test_gibbs_ordinal import N_LEVELS, uniformity_pvalues
from tests.test_gibbs_ordinal import _break as break_ordinal

#: the headline model of issue 19, default hyperpriors. With factor_var IG(2, 1) (the implicit-set
#: SBC's) the feature and implicit terms (weights' precisions Gamma(1, 1): heavy-tailed variances)
#: put sd(eta) near 5-15 against the latent noise's 1: nearly every rating is determined (separation)
#: and chains of a few hundred sweeps do not mix (seed 1, 60 replicates: p = 9e-16 on the
#: log-likelihood, 0.016 with 3.5 times longer chains), so that prior tests mixing, not calibration
ORDINAL = PMF(n_factors=2, likelihood="ordinal", link="probit", factor_prior="per_side", per_factor_scales=True,
              implicit_sets="both")
#: the same prior under the Gaussian likelihood (the implicit-set SBC's hyperpriors: noise sd near 0.2)
GAUSSIAN = dataclasses.replace(ORDINAL, likelihood="normal", link="identity", hyperpriors=SETS_SBC_SPEC.hyperpriors)
N_USERS, N_ITEMS = 12, 10
#: family-wise false-alarm rate of each SBC test of a correct sampler (Bonferroni over its columns)
FAMILY_ALPHA = 1e-4


@dataclasses.dataclass(frozen=True)
class Design:
    """What stays fixed across the replicates: the observed pairs, the features, the implicit sets."""

    user_idx: np.ndarray
    item_idx: np.ndarray
    features: tuple[Features, Features]
    X: dict[str, np.ndarray]  # the implicit-set designs |N(i)|^(-1/2) 1[j in N(i)] (strict: the rated pairs)
    F: dict[str, np.ndarray]  # the encoded features, in index order
    pairs: tuple[tuple[int, int], ...]  # the pairs whose eta is monitored

    def data(self, rating: np.ndarray, scale: tuple[float, float]) -> RatingsData:
        users = IdEncoder("user", np.arange(N_USERS, dtype=np.int64))
        items = IdEncoder("item", np.arange(N_ITEMS, dtype=np.int64))
        plain = RatingsData(self.user_idx, self.item_idx, rating, scale, users, items)
        return plain.with_features(*self.features)


def make_design(rng: np.random.Generator) -> Design:
    """12 x 10 pairs, about half observed (sets of 1-2 to nearly all, user 0 and item 0 the largest);
    two numeric user features, one numeric item feature."""
    density = np.sqrt(np.linspace(0.95, 0.15, N_USERS)[:, None] * np.linspace(0.95, 0.15, N_ITEMS)[None, :])
    observed = rng.random((N_USERS, N_ITEMS)) < density
    observed[np.arange(N_USERS), np.arange(N_USERS) % N_ITEMS] = True
    observed[0, 0] = True
    user_idx, item_idx = np.nonzero(observed)
    ids = {"user": np.arange(N_USERS), "item": np.arange(N_ITEMS)}
    frames = (pd.DataFrame({"a": rng.normal(size=N_USERS), "b": rng.normal(size=N_USERS)}, index=ids["user"]),
              pd.DataFrame({"y": rng.normal(size=N_ITEMS)}, index=ids["item"]))
    features = (Features.from_frame(frames[0], "user"), Features.from_frame(frames[1], "item"))
    shell = Design(user_idx, item_idx, features, {}, {}, ()).data(np.ones(user_idx.size), (1.0, 5.0))
    row, col = np.argwhere(~observed)[0]
    unrated = (int(row), int(col))
    last = (N_USERS - 1, int(item_idx[user_idx == N_USERS - 1][0]))  # a pair of the user with the fewest ratings
    return Design(
        user_idx, item_idx, features,
        X={side: implicit_design(shell, side).toarray() for side in ("user", "item")},
        F={side: np.asarray(shell.feature_matrix(side)) for side in ("user", "item")},
        pairs=((0, 0), unrated, last),
    )


def prior_draw(rng: np.random.Generator, spec: PMF, design: Design, scale: tuple[float, float]) -> dict:
    """The implicit-set SBC's prior draw, plus the feature term F W (W ~ N(0, v/beta), beta ~ Gamma) and the cutpoints.

    U = m + X Y + e is the implicit-set block's; adding F W with W drawn given that side's
    v gives U ~ N(m + F W + X Y, v), the prior of the two blocks together. Cutpoints: the
    ordered N(0, tau^2) prior (sorted iid draws), as the ordinal SBC's.
    """
    out = sets_prior_draw(rng, spec, design.X, scale)
    shape, rate = FEATURE_PRECISION_PRIOR
    for side, name in (("user", "U"), ("item", "V")):
        v = np.asarray(out[f"sigma_factor_{side}"]) ** 2
        beta = rng.gamma(shape) / rate
        W = rng.normal(0, np.sqrt(v / beta), (design.F[side].shape[1], spec.n_factors))
        out[name] = out[name] + design.F[side] @ W
        out |= {f"feature_precision_{side}": beta, f"feature_weight_{side}": W}
    return out | {"cutpoints": np.sort(rng.normal(0, CUTPOINT_PRIOR_SD, N_LEVELS - 1))}


def monitored_names(spec: PMF) -> list[str]:
    """The columns `monitored` returns, in order."""
    head = ["c_0", "c_last", "level", "gap c_1 - c_0"] if spec.likelihood == "ordinal" else ["sigma"]
    return [*head, "eta (0, 0)", "eta unrated", "eta last user", "sigma_factor_user[0]", "sigma_factor_item[1]",
            "gamma_user", "gamma_item", "beta_user", "beta_item", "user implicit effect", "item implicit effect",
            "user feature effect", "item feature effect", "log-likelihood"]


def monitored(spec: PMF, d: dict, design: Design, data: RatingsData) -> np.ndarray:
    """Scalars, scales, effects, predictions and the training log-likelihood at one point ``d``.

    Effects: the implicit and feature parts of the score of the pair (0, 0),
    (X_0 Y_U) . V_0, U_0 . (X_0 Y_V), (F_0 W_U) . V_0, U_0 . (F_0 W_V). The log-likelihood
    depends on the data: a sampler that ignores them fails it.
    """
    ordinal = spec.likelihood == "ordinal"
    U, V, X, F = d["U"], d["V"], design.X, design.F
    eta = d["user_bias"][:, None] + d["item_bias"][None, :] + U @ V.T + (0.0 if ordinal else d["mu"])
    rated = eta[data.user_idx, data.item_idx]
    if ordinal:
        cut = d["cutpoints"]
        p = ordinal_probs(rated, cut, "probit")
        log_lik = np.log(p[np.arange(data.n_ratings), (data.rating - 1).astype(int)]).sum()
        level = cut.mean() - d["user_bias"].mean() - d["item_bias"].mean()
        head = [cut[0], cut[-1], level, cut[1] - cut[0]]
    else:
        log_lik = stats.norm.logpdf(data.rating, rated, d["sigma"]).sum()
        head = [d["sigma"]]
    return np.array([
        *head, *(eta[i, j] for i, j in design.pairs),
        np.ravel(d["sigma_factor_user"])[0], np.ravel(d["sigma_factor_item"])[-1],
        d["implicit_precision_user"], d["implicit_precision_item"],
        d["feature_precision_user"], d["feature_precision_item"],
        (X["user"][0] @ d["implicit_weight_user"]) @ V[0], U[0] @ (X["item"][0] @ d["implicit_weight_item"]),
        (F["user"][0] @ d["feature_weight_user"]) @ V[0], U[0] @ (F["item"][0] @ d["feature_weight_item"]),
        log_lik,
    ])


def simulate(rng: np.random.Generator, spec: PMF, design: Design) -> tuple[dict, RatingsData]:
    """A truth from the prior and its ratings: ordered-probit levels 1..N_LEVELS, or Gaussian on (1, 5)."""
    scale = (1.0, float(N_LEVELS)) if spec.likelihood == "ordinal" else (1.0, 5.0)
    truth = prior_draw(rng, spec, design, scale)
    eta = truth["user_bias"][:, None] + truth["item_bias"][None, :] + truth["U"] @ truth["V"].T
    eta = eta[design.user_idx, design.item_idx]
    if spec.likelihood == "ordinal":
        rating = 1.0 + np.searchsorted(truth["cutpoints"], eta + rng.standard_normal(eta.size))
    else:
        rating = truth["mu"] + eta + rng.normal(0, truth["sigma"], eta.size)
    return truth, design.data(rating, scale)


def combined_sbc_ranks(spec: PMF, n_reps: int, seed: int, *, tune: int = 60, draws: int = 39, thin: int = 4,
                       broken: str | None = None) -> tuple[np.ndarray, int]:
    """Ranks of the monitored truths (`monitored_names`) among ``draws`` draws of one chain per replicate.

    One fixed design (`make_design`); per replicate a truth from the prior and its ratings
    (`simulate`), then the sampler as `fit_gibbs` runs it ("map" start, ``tune`` sweeps,
    ``draws`` kept every ``thin``-th sweep, overrelaxation -0.8). ``broken``: see
    tests/test_gibbs_ordinal.py's ``_break`` (``"frozen_cutpoints"``, ``"untruncated"``).
    """
    rng = np.random.default_rng(seed)
    design = make_design(rng)
    ranks = np.empty((n_reps, len(monitored_names(spec))), dtype=np.int64)
    for rep in range(n_reps):
        truth, data = simulate(rng, spec, design)
        problem = problem_for(spec, data)
        sweep = build_sweep(problem, -0.8)
        break_ordinal(sweep, broken)
        chain = np.random.default_rng(int(rng.integers(2**31)))
        kept = sbc_draws(sweep, problem, spec, data, chain, tune, draws, thin, ranks.shape[1],
                         lambda values, data=data: monitored(spec, values, design, data))
        ranks[rep] = np.sum(kept < monitored(spec, truth, design, data), axis=0)
    return ranks, draws + 1


def _assert_calibrated(spec: PMF, ranks: np.ndarray, n_ranks: int) -> None:
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > FAMILY_ALPHA / ranks.shape[1]).all(), dict(zip(monitored_names(spec), pvalues.round(8), strict=True))


@pytest.mark.slow
def test_sbc_ordinal_with_implicit_sets_and_features():
    """Talts et al. (2018) SBC of the headline model: 100 replicates, 39 draws thinned by 4 after 60 sweeps.

    18 columns (`monitored_names`), each chi-square p-value (10 bins) above FAMILY_ALPHA / 18:
    family-wise false alarm <= 1e-4 (Bonferroni). Seed 1: smallest p 0.035 (sigma_factor_item[1]).
    """
    ranks, n_ranks = combined_sbc_ranks(ORDINAL, 100, seed=1)
    _assert_calibrated(ORDINAL, ranks, n_ranks)


@pytest.mark.slow
def test_sbc_ordinal_combined_rejects_frozen_cutpoints():
    """The same SBC, 40 replicates, rejects the sampler whose cutpoints never move (some p < FAMILY_ALPHA / 18).

    Seed 1: p = 7e-68 on the gap c_1 - c_0.
    """
    ranks, n_ranks = combined_sbc_ranks(ORDINAL, 40, seed=1, broken="frozen_cutpoints")
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues < FAMILY_ALPHA / ranks.shape[1]).any(), dict(zip(monitored_names(ORDINAL), pvalues, strict=True))


@pytest.mark.slow
def test_sbc_gaussian_with_implicit_sets_and_features():
    """The same SBC under the Gaussian likelihood (15 columns, sigma for the cutpoints), 60 replicates.

    Family-wise false alarm <= 1e-4 (Bonferroni). Seed 1: smallest p 0.054 (gamma_user).
    """
    ranks, n_ranks = combined_sbc_ranks(GAUSSIAN, 60, seed=1)
    _assert_calibrated(GAUSSIAN, ranks, n_ranks)
