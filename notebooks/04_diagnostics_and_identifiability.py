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
# # Diagnostics and identifiability
#
# **For:** anyone who has to decide whether a PMF posterior has converged, and what to do when
# it has not.
#
# The usual MCMC checks (R-hat near 1, enough effective draws) assume the parameters are
# *identified*. PMF's factors are not: rotating every user vector and every item vector by
# the same orthogonal matrix, or flipping the sign of one factor in both, changes nothing the
# data can see. This notebook
#
# 1. shows that symmetry numerically, and what it does to R-hat of the raw factors across chains;
# 2. diagnoses the quantities that *are* identified (`fit.diagnose()`): noise level, mean
#    level, prior scales, $\lVert UV^\top\rVert_F$ and predicted ratings; rank and trace plots;
# 3. looks at NUTS's own warnings (divergent transitions, tree depth);
# 4. runs a deliberately too-short chain and shows the verdict failing, with what to do about it.

# %%
import os

# The test suite sets BAYESMF_FAST=1: a random subset of the data and short runs.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
K = 10
LONG = dict(chains=2, tune=100, draws=150, thin=1) if FAST else dict(chains=4, tune=500, draws=500, thin=16)
NUTS = dict(chains=2, tune=100, draws=100) if FAST else dict(chains=2, tune=300, draws=300)
SHORT = dict(chains=4, tune=5, draws=25, thin=1, init="prior")  # deliberately far too short

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesmf
from bayesmf.diagnostics import ConvergenceWarning, plot_diagnostics

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

# %% [markdown]
# ## 1. The symmetry
#
# Take one posterior draw $(U, V)$ and any orthogonal $K \times K$ matrix $R$:
# $(UR)(VR)^\top = U R R^\top V^\top = UV^\top$, so the likelihood and the (isotropic) priors are
# unchanged, while every single factor value moves.

# %%
model = bayesmf.PMF(n_factors=K)
fit = model.fit(train, method="gibbs", random_seed=SEED, progressbar=False, **LONG)
print(fit)

draws = fit.arrays()
U, V = draws.U[0].astype(np.float64), draws.V[0].astype(np.float64)
R, _ = np.linalg.qr(np.random.default_rng(SEED).normal(size=(K, K)))  # a random rotation
before = U @ V.T
after = (U @ R) @ (V @ R).T
print(f"largest change of a factor value:        {np.max(np.abs(U @ R - U)):.2f}")
print(f"largest change of a predicted U_i . V_j: {np.max(np.abs(after - before)):.1e} (rounding)")

# %% [markdown]
# ### What it does to R-hat
#
# Independent chains start from different random points, so they settle at different
# rotations. R-hat compares chains, so on the raw
# factors it reports disagreement even when every prediction agrees. Below: R-hat of every raw
# factor value against R-hat of the identified quantities `diagnose` monitors (including 50
# predicted training ratings and 50 predicted held-out ratings).

# %%
raw = az.rhat(fit.idata, var_names=["U", "V"])
raw_rhat = np.concatenate([np.ravel(raw[name].values) for name in ("U", "V")])
raw_rhat = raw_rhat[np.isfinite(raw_rhat)]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    diagnosis = fit.diagnose(test=test)
ident_rhat = diagnosis.table["r_hat"].to_numpy()
compare = pd.DataFrame({
    "raw factors U, V": pd.Series(raw_rhat).describe(percentiles=[0.5, 0.9]),
    "identified quantities": pd.Series(ident_rhat).describe(percentiles=[0.5, 0.9]),
}).T[["count", "50%", "90%", "max"]]
compare["share > 1.01"] = [np.mean(raw_rhat > 1.01), np.mean(ident_rhat > 1.01)]
compare

# %%
fig, ax = plt.subplots(figsize=(7, 4))
bins = np.linspace(1.0, max(1.1, float(np.quantile(raw_rhat, 0.995))), 50)
ax.hist(np.clip(raw_rhat, None, bins[-1]), bins=bins, density=True, alpha=0.6, label=f"raw factors ({len(raw_rhat):,})")
ax.hist(np.clip(ident_rhat, None, bins[-1]), bins=bins, density=True, alpha=0.6,
        label=f"identified quantities ({len(ident_rhat)})")
ax.axvline(1.01, color="k", linestyle="--", linewidth=1, label="1.01 threshold")
ax.set_xlabel("R-hat (rank-normalized, split; values beyond the axis are piled at its end)")
ax.set_ylabel("density")
ax.set_title(f"R-hat across {fit.n_chains} Gibbs chains")
ax.legend(frameon=False)
plt.show()

# %%
print(f"{np.mean(raw_rhat > 1.01):.0%} of the raw factor values have R-hat > 1.01 "
      f"(median {np.median(raw_rhat):.3f}); of the identified quantities, {np.mean(ident_rhat > 1.01):.0%} "
      f"(median {np.median(ident_rhat):.3f}).")
if np.median(raw_rhat) > np.median(ident_rhat):
    print("The raw factors look worse than the quantities the data identify: their R-hat measures the "
          "symmetry, not convergence.")

# %% [markdown]
# A raw-factor R-hat is therefore not a convergence check for PMF, whichever way it comes out:
# large values are expected from the symmetry even after convergence, and small values can
# simply mean the chains have not left the rotation they started in. PyMC's own convergence
# warnings on `U` and `V` say nothing either (bayesmf turns them off for NUTS).
#
# ## 2. Diagnostics on identified quantities
#
# `fit.diagnose(test=test)` runs rank-normalized split R-hat, bulk and tail ESS and MCSE
# (ArviZ) on the quantities listed in `bayesmf.diagnostics`, and returns a `Diagnosis` with a
# verdict, one row per monitored scalar (`.table`) and one per kind of quantity (`.summary`).
# The thresholds are those of Vehtari et al. (2021): R-hat $\le 1.01$, bulk and tail ESS
# $\ge 400$.

# %%
diagnosis

# %%
diagnosis.table.sort_values("r_hat", ascending=False).head(8)

# %% [markdown]
# Rank plots: each chain's draws are replaced by their ranks among all chains; if the chains
# sample the same distribution every chain's ranks are uniform, and the Δ-ECDF curves stay
# inside the band. Trace plots show the chains' paths and densities.

# %%
pc = plot_diagnostics(fit, kind="rank", var_names=["sigma", "mean_level", "sigma_factor", "norm_UVt"],
                      figure_kwargs={"figsize": (10, 5)})
plt.show()

# %%
pc = plot_diagnostics(fit, kind="trace", var_names=["sigma", "norm_UVt", "pred_test"], n_pairs=1, test=test,
                      figure_kwargs={"figsize": (9, 5.5)})
plt.show()

# %% [markdown]
# ## 3. NUTS: divergences and tree depth
#
# NUTS reports problems of its own. A *divergent transition* means the integrator's error
# exploded somewhere: the sampler could not follow the posterior's geometry there, and the draws
# can be biased (hierarchical scales with weakly informed groups are the classic cause).
# Hitting the maximum tree depth only costs efficiency. Both are in `Diagnosis.sampler`.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # we print the diagnosis instead
    nuts = model.fit(train, method="nuts", random_seed=SEED, progressbar=False, **NUTS)
    nuts_diagnosis = nuts.diagnose(test=test)
print(nuts)
print("sampler statistics:", nuts_diagnosis.sampler)
print(nuts_diagnosis.verdict)

# %%
stats = nuts.idata["sample_stats"].to_dataset()
depth = np.asarray((stats["depth"] if "depth" in stats else stats["tree_depth"]).values, dtype=int)
div = np.asarray(stats["diverging"].values, dtype=bool)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
levels = np.arange(depth.min(), depth.max() + 1)
width = 0.8 / nuts.n_chains
for c in range(nuts.n_chains):
    share = [np.mean(depth[c] == d) for d in levels]
    axes[0].bar(levels + (c - (nuts.n_chains - 1) / 2) * width, share, width=width, label=f"chain {c}")
axes[0].set_xticks(levels)
axes[0].set_xlabel("tree depth (up to 2^depth leapfrog steps per draw)")
axes[0].set_ylabel("share of draws")
axes[0].set_title("NUTS tree depth")
axes[0].legend(frameon=False, fontsize=8)
axes[1].bar(np.arange(nuts.n_chains), div.sum(axis=1))
axes[1].set_xticks(np.arange(nuts.n_chains))
axes[1].set_ylim(0, max(1, int(div.sum(axis=1).max())) * 1.2)
axes[1].yaxis.get_major_locator().set_params(integer=True)
axes[1].set_xlabel("chain")
axes[1].set_ylabel("divergent transitions")
axes[1].set_title(f"Divergences per chain ({nuts.n_draws} draws each)")
fig.tight_layout()
plt.show()
n_div = int(div.sum())
if n_div:
    print(f"{n_div} divergent transitions: refit with target_accept=0.9 or 0.95 (smaller steps), and if they "
          "persist, simplify the model (fixed scales) or use more informative hyperpriors.")
else:
    print("No divergent transitions in this run.")

# %% [markdown]
# ## 4. When the checks fail
#
# The same model with four chains of 5 warm-up and 25 kept sweeps, each started from a draw of
# the prior: far too short. The verdict says which checks failed and why.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    short = model.fit(train, method="gibbs", random_seed=SEED, progressbar=False, **SHORT)
    short_diagnosis = short.diagnose(test=test)
print("ok:", short_diagnosis.ok)
for problem in short_diagnosis.problems:
    print("-", problem)
short_diagnosis.summary

# %%
pc = plot_diagnostics(short, kind="trace", var_names=["sigma", "norm_UVt"], figure_kwargs={"figsize": (10, 4)})
plt.show()

# %%
rows = {"short run": (short, short_diagnosis), "longer run (section 2)": (fit, diagnosis),
        "NUTS (section 3)": (nuts, nuts_diagnosis)}
pd.DataFrame({
    name: {
        "method": f.method,
        "chains x draws": f"{f.n_chains} x {f.n_draws}",
        "passed": d.ok,
        "worst R-hat": d.summary["max_r_hat"].max(),
        "smallest bulk ESS": d.summary["min_ess_bulk"].min(),
        "smallest tail ESS": d.summary["min_ess_tail"].min(),
        # ESS of a run that has not converged is not meaningful
        "smallest bulk ESS per second": (d.summary["min_ess_bulk"].min() / f.info["fit_seconds"]
                                         if f is not short else np.nan),
    }
    for name, (f, d) in rows.items()
}).T

# %% [markdown]
# ### What to do when the verdict fails
#
# * **R-hat too high** (chains disagree): run longer (`tune` and `draws`); if it persists, look
#   at which quantity fails. A scale parameter (`sigma_item_bias`, `sigma_factor`) failing alone
#   points at a weakly identified hierarchical level: fix it (`priors="fixed"`) or give it a more
#   informative hyperprior (`hyperpriors=`).
# * **ESS too low** (chains agree but are sticky): more draws, or `thin=` to keep the stored
#   posterior small while running longer. The last column of the table above compares the
#   samplers' effective draws per second of sampling on this machine.
# * **Divergences** (NUTS): `target_accept=0.9` or `0.95`; persistent divergences mean the
#   posterior has a funnel the sampler cannot follow: simplify or reparametrize.
# * **ADVI**: R-hat and ESS do not apply (its draws are independent draws from an
#   approximation); `diagnose` checks that the ELBO has flattened instead, and the held-out
#   coverage (notebook `02`) tells whether the approximation is good enough.
# * Never "fix" a failing verdict by checking fewer quantities: the predicted ratings are what
#   recommendations are made of.

# %%
print("Verdicts of this run:")
for name, (_, d) in rows.items():
    print(f"  {name}: {'passed' if d.ok else 'FAILED'}")
if diagnosis.ok:
    print("The longer Gibbs run passes: its intervals can be used.")
else:
    print("The longer Gibbs run does not pass every check either: run it longer before relying on its intervals "
          "(see the list above).")
