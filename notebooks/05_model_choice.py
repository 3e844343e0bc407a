# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Model choice: rank and variants
#
# **For:** anyone choosing the rank and the flavour of PMF for their data, and wondering how to
# compare models honestly.
#
# We compare, on held-out ratings,
#
# 1. the rank (`n_factors`);
# 2. model variants at a fixed rank: with or without user/item offsets (`biases`), fixed or
#    learned prior scales (`priors`), one scale per factor (`per_factor_scales`), each side
#    with its own factor means and scales as in Bayesian PMF (`factor_prior="per_side"`), a logistic
#    link that keeps the mean rating inside the scale (`link="logistic"`), and an ordered
#    logistic likelihood over the star levels (`likelihood="ordinal"`);
#
# and then ask whether leave-one-out cross-validation (PSIS-LOO, ArviZ) could have told us the
# same without a held-out set. Short version: look at the Pareto $\hat k$ diagnostics first; on
# PMF a share of the ratings (printed below) have $\hat k$ above the reliability threshold, so
# plain PSIS-LOO is not reliable and held-out data (or K-fold) is the yardstick.
#
# Metrics: RMSE and MAE of the posterior-predictive mean; CRPS (continuous ranked probability
# score, in stars, lower is better: a proper score of the whole predictive distribution that is
# comparable between continuous and discrete likelihoods); coverage and width of 90% intervals;
# and, for the normal likelihood, the log predictive density per rating.

# %%
import os

# The test suite sets BAYESMF_FAST=1: a random subset of the data, fewer and shorter runs.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
RANKS = (2, 5) if FAST else (1, 2, 5, 10, 20)
K = 5 if FAST else 10  # rank of the variants
GIBBS = dict(chains=2, tune=100, draws=100, thin=1) if FAST else dict(chains=2, tune=300, draws=400, thin=2)
NUTS = dict(chains=2, tune=100, draws=100) if FAST else dict(chains=2, tune=200, draws=200)
N_PRED = 200 if FAST else 1000  # predictive draws per pair for the CRPS

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

import bayesmf
from bayesmf import metrics
from bayesmf.diagnostics import ConvergenceWarning

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)
logging.getLogger("pymc").setLevel(logging.WARNING)  # keep PyMC's info messages out of the outputs
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets

# %%
try:
    # fast mode never downloads; a full run downloads ML-100K once if it is not on disk
    train, test = bayesmf.load_movielens("ml-100k", split="u1", download=not FAST)
    DATASET = "ML-100K, split u1"
except (FileNotFoundError, OSError) as err:
    print(f"ML-100K is not available ({err.__class__.__name__}); using the bundled ml-latest-small")
    train, test = bayesmf.train_test_split(bayesmf.load_movielens("ml-latest-small"), test_size=0.2, seed=SEED)
    DATASET = "ml-latest-small, random 80/20 split"


# %%
def shrink(train, test, n_users, n_items, seed):
    """Keep the ratings among random subsets of users and items (fast mode only), re-encoded."""
    rng = np.random.default_rng(seed)
    users = rng.choice(train.users.classes, size=min(n_users, train.n_users), replace=False)
    items = rng.choice(train.items.classes, size=min(n_items, train.n_items), replace=False)

    def keep(data):
        df = data.to_dataframe()
        return df[df["user"].isin(users) & df["item"].isin(items)]

    small = keep(train)
    new_train = bayesmf.RatingsData.from_dataframe(small, user="user", item="item", scale=train.scale)
    held = keep(test)
    held = held[held["user"].isin(small["user"]) & held["item"].isin(small["item"])]
    new_test = bayesmf.RatingsData.from_dataframe(
        held, user="user", item="item", scale=train.scale, users=new_train.users, items=new_train.items
    )
    return new_train, new_test


if FAST:
    train, test = shrink(train, test, n_users=300, n_items=600, seed=SEED)
print(DATASET + (" (fast mode: random subset)" if FAST else ""))
print("train:", train)
print("test: ", test)


# %% [markdown]
# The scoring function, used for every model below. The log predictive density is exact for
# the normal likelihood: an average over posterior draws of the normal density of the
# held-out rating (`metrics.log_predictive_density`). It is left out for the ordinal model,
# whose predictive is a probability *mass* over star levels: a mass and a density are not on
# the same scale, which is why CRPS is the score to compare across likelihoods.

# %%
def noise_sd(fit):
    """Noise sd in stars per posterior draw (the logistic link's sigma is on the 0-1 scale)."""
    sigma = fit.arrays().sigma
    sigma = np.full(fit.n_chains * fit.n_draws, fit.spec.noise_sd(fit.train.scale)) if sigma is None else sigma
    low, high = fit.train.scale
    return sigma * (high - low) if fit.spec.link == "logistic" else sigma


def expected_draws(fit, data):
    """Mean rating per posterior draw and pair, shape (draws, pairs), unclipped."""
    n_samples = fit.n_chains * fit.n_draws
    return fit.predict_draws(data, kind="expected", n_draws=n_samples, clip=False)[:n_samples]


pointwise_crps = {}  # per held-out rating, for paired comparisons


def score(fit, name):
    p = fit.predict(test, prob=0.9, progressbar=False)
    draws = fit.predict_draws(test, kind="predictive", n_draws=N_PRED, random_seed=SEED)
    pointwise_crps[name] = metrics.crps(test.rating, draws, pointwise=True)
    row = {
        "model": name,
        "method": fit.method,
        "RMSE": metrics.rmse(test.rating, p["mean"]),
        "MAE": metrics.mae(test.rating, p["mean"]),
        "CRPS": float(np.mean(pointwise_crps[name])),
        "coverage 90%": metrics.coverage(test.rating, p["lower"], p["upper"]),
        "width 90%": metrics.interval_width(p["lower"], p["upper"]),
        "log pred. density": np.nan,
        "fit seconds": fit.info["fit_seconds"],
    }
    if fit.spec.likelihood == "normal":
        row["log pred. density"] = metrics.log_predictive_density(
            test.rating, mean=expected_draws(fit, test), sd=noise_sd(fit)
        )
    return row


# %% [markdown]
# ## 1. The rank
#
# Hierarchical priors learn the factor scale, which shrinks superfluous factors; the held-out
# scores show how much each extra factor buys. (Gibbs sampling, biases on.)

# %%
rank_fits, rank_rows = {}, []
with warnings.catch_warnings():
    warnings.simplefilter("ignore" if FAST else "default", ConvergenceWarning)
    for k in RANKS:
        rank_fits[k] = bayesmf.PMF(n_factors=k).fit(train, method="gibbs", random_seed=SEED, progressbar=False,
                                                     **GIBBS)
        rank_rows.append(score(rank_fits[k], f"rank {k}") | {"rank": k})
by_rank = pd.DataFrame(rank_rows).set_index("rank").drop(columns=["model", "method"])
by_rank

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
for ax, column, label in zip(axes, ["RMSE", "CRPS", "log pred. density"],
                             ["RMSE (stars, lower is better)", "CRPS (stars, lower is better)",
                              "log predictive density per rating\n(higher is better)"], strict=True):
    ax.plot(by_rank.index, by_rank[column], marker="o")
    ax.set_xscale("log")
    ax.set_xticks(list(RANKS))
    ax.set_xticklabels([str(k) for k in RANKS])
    ax.set_xlabel("rank (n_factors)")
    ax.set_ylabel(label)
fig.suptitle("Held-out scores by rank")
fig.tight_layout()
plt.show()
best_rank = int(by_rank["CRPS"].idxmin())
print(f"Best held-out CRPS at rank {best_rank} ({by_rank.loc[best_rank, 'CRPS']:.4f}); "
      f"by RMSE: rank {int(by_rank['RMSE'].idxmin())}; by log predictive density: "
      f"rank {int(by_rank['log pred. density'].idxmax())}.")
print(f"CRPS of each rank minus rank {best_rank}'s, with paired standard errors over the held-out ratings:")
for k in RANKS:
    d = pointwise_crps[f"rank {k}"] - pointwise_crps[f"rank {best_rank}"]
    se = d.std(ddof=1) / np.sqrt(len(d))
    note = "" if k == best_rank else ("  worse by > 2 se" if d.mean() > 2 * se else "  within 2 se: not distinguishable")
    print(f"  rank {k:3d}: {d.mean():+.4f} +- {se:.4f}{note}")

# %% [markdown]
# ## 2. Variants at a fixed rank
#
# The normal-likelihood variants are sampled by Gibbs; the logistic link and the ordinal
# likelihood are not conjugate, so they are sampled by NUTS. (Notebook `02` fits the default
# model both ways and prints how closely Gibbs and NUTS agree on held-out scores.)

# %%
variants = {
    "default (hierarchical, biases)": (bayesmf.PMF(n_factors=K), "gibbs"),
    "no biases": (bayesmf.PMF(n_factors=K, biases=False), "gibbs"),
    "fixed prior scales": (bayesmf.PMF(n_factors=K, priors="fixed"), "gibbs"),
    "per-factor scales": (bayesmf.PMF(n_factors=K, per_factor_scales=True), "gibbs"),
    "per-side means and scales (BPMF)": (
        bayesmf.PMF(n_factors=K, per_factor_scales=True, factor_prior="per_side"), "gibbs"
    ),
    "logistic link": (bayesmf.PMF(n_factors=K, link="logistic"), "nuts"),
    "ordinal": (bayesmf.PMF(n_factors=K, likelihood="ordinal"), "nuts"),
}
variant_fits, rows = {}, []
with warnings.catch_warnings():
    warnings.simplefilter("ignore" if FAST else "default", ConvergenceWarning)
    for name, (spec, method) in variants.items():
        options = GIBBS if method == "gibbs" else NUTS
        variant_fits[name] = spec.fit(train, method=method, random_seed=SEED, progressbar=False, **options)
        rows.append(score(variant_fits[name], name))
by_variant = pd.DataFrame(rows).set_index("model")
by_variant

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
order = by_variant["CRPS"].sort_values(ascending=False)
ax.barh(np.arange(len(order)), order.to_numpy(), color=["C1" if by_variant.loc[m, "method"] == "nuts" else "C0"
                                                        for m in order.index])
ax.set_yticks(np.arange(len(order)))
ax.set_yticklabels(order.index)
lo = order.min()
ax.set_xlim(lo - 0.05 * (order.max() - lo) - 1e-3, order.max() + 0.05 * (order.max() - lo) + 1e-3)
ax.set_xlabel("held-out CRPS (stars, lower is better; axis does not start at 0)")
ax.set_title(f"Variants at rank {K} (blue: Gibbs, orange: NUTS)")
plt.show()
ranked = by_variant["CRPS"].sort_values()
best = ranked.index[0]
print(f"By held-out CRPS, best first; differences to {best!r} with their paired standard errors:")
for name, value in ranked.items():
    d = pointwise_crps[name] - pointwise_crps[best]
    se = d.std(ddof=1) / np.sqrt(len(d)) if name != best else 0.0
    verdict = "" if name == best else ("  worse by > 2 se" if d.mean() > 2 * se else "  within 2 se: not distinguishable here")
    print(f"  {name:32s} {value:.4f}  {d.mean():+.4f} +- {se:.4f}{verdict}")


# %% [markdown]
# Two caveats for the ordinal model. Its predictive puts all its mass on the star levels the
# ratings can take, while the normal models spread theirs between the levels: CRPS, a proper
# score of the forecast distribution, credits that. And its intervals are sets of whole levels,
# so their coverage is at least nominal by construction and their width is not comparable
# with a continuous interval's.
#
# The paired standard errors (over held-out ratings) say which differences this test set can
# resolve. A margin within about two of them is not evidence for either variant: repeat the
# comparison on other folds before choosing on it (ML-100K ships five: `split="u1"` ...
# `"u5"`).
#
# ## 3. Could LOO have told us? Pareto $\hat k$ first
#
# PSIS-LOO estimates the leave-one-out predictive density from a single fit by importance
# sampling, with one weight per posterior draw and training rating. It is reliable only when
# the Pareto shape $\hat k$ of each rating's weights is below a threshold: 0.7 for large
# samples, $1 - 1/\log_{10} S$ for $S < 2200$ draws (ArviZ's `good_k`). In PMF each rating is one of
# a handful that inform its user's and its item's factors, so leaving it out moves the
# posterior a lot, and many $\hat k$ are large.
#
# The pointwise log-likelihood of the normal model is computed here in numpy from the posterior
# draws, $\log \mathcal N(r_{ij} \mid \eta^{(s)}_{ij}, \sigma^{(s)2})$, and handed to ArviZ
# (`pm.compute_log_likelihood` on `spec.build(train)` gives the same for any variant, more
# slowly and with far more memory). The relative efficiency `reff` is taken from the ESS of
# the predicted ratings (`diagnose`), because ArviZ's default averages the ESS of every
# parameter, including the unidentified raw factors.

# %%
def loo_of(fit):
    mean = expected_draws(fit, train)
    sd = noise_sd(fit)
    loglik = norm.logpdf(np.asarray(train.rating)[None, :], loc=mean, scale=sd[:, None])
    loglik = loglik.reshape(fit.n_chains, fit.n_draws, -1)
    tree = xr.DataTree.from_dict({
        "posterior": fit.posterior[["mu", "sigma"]] if "mu" in fit.posterior else fit.posterior[["sigma"]],
        "log_likelihood": xr.Dataset({"rating": (("chain", "draw", "obs"), loglik)}),
    })
    table = fit.diagnose(warn=False).table
    ess = table.loc[table["quantity"] == "pred_train", "ess_bulk"].to_numpy()
    reff = float(np.clip(np.nanmedian(ess) / (fit.n_chains * fit.n_draws), 0.05, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's k-hat warning: the table below shows them
        result = az.loo(tree, pointwise=True, reff=reff)
    return result, tree, reff


loo_models = [m for m, (_, method) in variants.items() if method == "gibbs"]
loos, trees, reffs, loo_rows = {}, {}, {}, []
for name in loo_models:
    loos[name], trees[name], reffs[name] = loo_of(variant_fits[name])
    k, good = np.asarray(loos[name].pareto_k), loos[name].good_k
    loo_rows.append({
        "model": name,
        "elpd_loo per rating": loos[name].elpd / train.n_ratings,
        "p_loo": loos[name].p,
        "threshold (good_k)": good,
        "k <= threshold": int(np.sum(k <= good)),
        "threshold < k <= 1": int(np.sum((k > good) & (k <= 1))),
        "k > 1": int(np.sum(k > 1)),
        "share above threshold": float(np.mean(k > good)),
        "held-out log pred. density": by_variant.loc[name, "log pred. density"],
    })
loo_table = pd.DataFrame(loo_rows).set_index("model")
loo_table

# %%
name = loo_models[0]
k, good = np.asarray(loos[name].pareto_k), loos[name].good_k
counts = train.user_counts()[train.user_idx]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].hist(k, bins=60, color="C0")
axes[0].axvline(good, color="C3", linestyle="--", label=f"{good:.2f}: PSIS unreliable above")
axes[0].set_xlabel("Pareto k-hat of a training rating")
axes[0].set_ylabel("ratings")
axes[0].set_title(f"k-hat, {name}")
axes[0].legend(frameon=False)
bins = np.array([0, 20, 50, 100, 200, np.inf])
which = np.digitize(counts, bins) - 1
share = [np.mean(k[which == b] > good) if np.any(which == b) else np.nan for b in range(len(bins) - 1)]
labels = [f"{bins[b]:g}-{bins[b + 1] - 1:g}" if np.isfinite(bins[b + 1]) else f"{bins[b]:g}+"
          for b in range(len(bins) - 1)]
axes[1].bar(labels, share)
axes[1].set_xlabel("training ratings of the rating's user")
axes[1].set_ylabel(f"share of ratings with k-hat > {good:.2f}")
axes[1].set_title("Where PSIS-LOO breaks down")
fig.tight_layout()
plt.show()
print(f"{np.mean(k > good):.1%} of the {len(k):,} training ratings have k-hat > {good:.2f} and "
      f"{np.mean(k > 1):.1%} have k-hat > 1.")

# %% [markdown]
# ### Sub-sampled LOO
#
# `az.loo_subsample` computes the PSIS estimate on a random subset of the ratings and corrects
# it with a cheap approximation for the rest: it makes LOO affordable on large data, but it
# inherits the $\hat k$ problem of the ratings it does compute (its `warning` flag says so).

# %%
name = loo_models[0]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    sub = az.loo_subsample(trees[name], observations=min(2000, train.n_ratings), seed=SEED, reff=reffs[name])
print(sub)
print(f"full PSIS-LOO: elpd {loos[name].elpd:.1f} (se {loos[name].se:.1f}); "
      f"sub-sampled: elpd {sub.elpd:.1f} (se {sub.se:.1f}) from {min(2000, train.n_ratings)} ratings")

# %%
loo_rank = loo_table["elpd_loo per rating"].rank(ascending=False)
held_rank = loo_table["held-out log pred. density"].rank(ascending=False)
share = loo_table["share above threshold"].max()
n_bad = int((loo_table["threshold < k <= 1"] + loo_table["k > 1"]).max())
print(f"Up to {n_bad:,} training ratings ({share:.1%}) have k-hat above the threshold in these models, and "
      f"p_loo (effective number of parameters) is up to {loo_table['p_loo'].max() / train.n_ratings:.0%} of the "
      "number of ratings.")
if n_bad > 0:
    print("So the PSIS-LOO estimates above are not reliable, whatever order they put the models in: "
          "use the held-out scores (or K-fold cross-validation, e.g. ML-100K's folds u1-u5).")
agree = bool((loo_rank == held_rank).all())
print("PSIS-LOO and the held-out log predictive density " + ("rank these models the same way."
      if agree else "rank these models differently."))

# %% [markdown]
# ## Summary
#
# * Choose the rank by held-out scores (section 1 prints which rank each score prefers), and
#   check that the margin is larger than the noise of the split before paying for a larger rank.
# * Compare likelihoods (normal vs ordinal) with a proper score defined for both, such as CRPS;
#   log densities of a continuous and a discrete predictive are not comparable, and the
#   coverage of an interval made of whole star levels is conservative by construction.
# * Show the Pareto $\hat k$ before quoting a PSIS-LOO number (section 3 prints the share above
#   the threshold here). Where many are above it, plain LOO (and sub-sampled LOO, which shares
#   its weights) is unreliable, and a held-out split or K-fold cross-validation is the honest
#   yardstick.
