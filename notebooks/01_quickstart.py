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
# # Quickstart: from ratings to a top 10 with error bars
#
# **For:** data scientists who want to see what bayesmf does before reading about how.
#
# In about a dozen cells this notebook loads the MovieLens ratings bundled with the package,
# fits a Bayesian probabilistic matrix factorization (PMF) by Gibbs sampling, checks that the
# sampler converged, predicts held-out ratings with 90% intervals, and lists one user's top 10
# movies, by title, with error bars. The other notebooks explain the choices made here:
# `02` MAP versus the full posterior, `03` ranking rules under uncertainty and new users,
# `04` convergence diagnostics, `05` choosing the rank and the model variant.

# %%
import os
import time

# The test suite sets BAYESMF_FAST=1: short fixed-length chains, so the notebook runs in about a minute.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
# full mode: the package's default Gibbs run (until converged, within the default budget)
GIBBS = dict(chains=2, tune=100, draws=100, thin=1) if FAST else {}
PROB = 0.9  # probability of the intervals
STEPS: dict[str, float] = {}  # wall seconds of each step, printed at the end

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesmf
from bayesmf import metrics

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)
pd.set_option("display.max_colwidth", None)  # full movie titles in the tables
logging.getLogger("pymc").setLevel(logging.WARNING)  # keep PyMC's info messages out of the outputs
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
print(f"bayesmf {bayesmf.__version__}, fast mode: {FAST}")
if FAST:
    print("FAST mode: short fixed-length chains (2 x 100 draws): every number below is a smoke test, not a result.")

# %% [markdown]
# ## The data
#
# `load_movielens()` returns the bundled *ml-latest-small* set (ratings from 0.5 to 5 stars in
# half stars) as a `RatingsData`: integer codes for users and items plus the encoders that map
# them back to the raw MovieLens ids. We hold out a fifth of each user's ratings (seeded; the
# split `make demo` uses) to check the predictions against, so every user has ratings to learn
# from and ratings to be judged on.

# %%
t0 = time.perf_counter()
data = bayesmf.load_movielens()
train, test = bayesmf.train_test_split(data, test_size=0.2, seed=SEED, by="user")
STEPS["load data"] = time.perf_counter() - t0
print(data)
print("train:", train)
print("test: ", test)
data.summary()

# %% [markdown]
# ## Fit the model, and check it
#
# `PMF(n_factors=10)` describes the model: rating = global mean + user offset + item offset +
# the dot product of a 10-dimensional user vector and item vector, plus normal noise, with
# priors whose scales are learned from the data (`priors="hierarchical"`, the default). As in
# Bayesian PMF, the users' vectors share a learned mean and one learned scale per dimension,
# and so do the items' (`factor_prior="per_side"`, `per_factor_scales=True`: the default for
# star ratings, the prior that predicts best on held-out MovieLens ratings).
# `.fit(train, method="gibbs")` draws from the posterior of all of those parameters with a
# blocked Gibbs sampler; every other route (`"map"`, `"als"`, `"nuts"`, `"advi"`...) returns the
# same kind of `FitResult`.
#
# With no `draws` or `tune`, the sampler runs **until it has converged**: every so often it
# checks R-hat and the effective sample sizes of what the model identifies (the noise level,
# the mean level, the prior scales and predicted ratings) and stops when all pass, or when its
# default budget runs out (then it warns, and `info["stopped_by"]` says so: the verdict below
# then says what did not pass). Raw factors are
# not identified (rotations and sign flips leave the fit unchanged), so they are not checked
# (notebook `04`). `fit.diagnose()` gives the verdict, printed beside the fit.

# %%
model = bayesmf.PMF(n_factors=10)
t0 = time.perf_counter()
with warnings.catch_warnings():  # a budget stop warns; its verdict is printed below instead
    warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
    fit = model.fit(train, method="gibbs", random_seed=SEED, progressbar=False, **GIBBS)
STEPS["fit (Gibbs)"] = time.perf_counter() - t0
diagnosis = fit.diagnose(warn=False)
info = fit.info
print(fit)
print(f"{info['chains']} chains x {info['kept_draws']} draws kept after burn-in (stopped by: {info['stopped_by']}; "
      f"the posterior holds one in {info['draw_spacing']}: {info['draws']} per chain), {STEPS['fit (Gibbs)']:.0f} s")
print(f"verdict: {'PASSES' if diagnosis.ok else 'FAILS'}. {diagnosis.verdict}")
if FAST:
    print("(fast mode: short chains, so the verdict is not expected to pass; run the notebook in full.)")

# %% [markdown]
# `diagnosis.summary` shows each monitored quantity: the number of scalars it stands for, the
# worst R-hat and the smallest bulk and tail effective sample sizes among them. A quantity
# fails when its R-hat is above 1.01 or an ESS below 400 (`pred_train` and `pred_unrated` are
# 200 predicted ratings each: of rated pairs, and of unrated pairs drawn in proportion to the
# user's and the movie's activity).
# A pass is not guaranteed: on another split of these ratings (a tenth held out at random)
# the same rank-10 fit stops at its 10,000-sweep budget with two pairs of chains in two
# modes of the posterior, and this verdict then says FAILS (`notebooks/README.md`).

# %%
diagnosis.summary

# %%
bad = diagnosis.summary[~diagnosis.summary["ok"].astype(bool)]
if diagnosis.ok:
    print("Every monitored quantity passes: the intervals below come from chains that agree.")
else:
    passing = ", ".join(diagnosis.summary.index.difference(bad.index, sort=False)) or "none"
    print(f"FAILING: {', '.join(bad.index)} (worst R-hat {bad['max_r_hat'].max():.3f}, smallest bulk ESS "
          f"{bad['min_ess_bulk'].min():.0f}, smallest tail ESS {bad['min_ess_tail'].min():.0f}); passing: {passing}.")
    print("The numbers below come from a posterior that has not converged on every monitored quantity: read them "
          "as provisional. " + ("(fast mode: short chains.)" if FAST else
                                "To go further, give the sampler a larger budget (`max_sweeps=` or `max_seconds=`)."))

# %% [markdown]
# ## Predict held-out ratings, with intervals
#
# `fit.predict(pairs)` returns one row per (user, item) pair: the posterior-predictive mean,
# sd and median of the rating the user would give, the bounds of the central `prob` interval
# and, with `threshold=4`, the probability that the rating is at least 4 stars.
#
# Two kinds of prediction, used below:
#
# * `kind="predictive"` (the default for ratings) describes **the rating the user would give**:
#   posterior uncertainty plus the rating noise, with each draw censored to the rating scale
#   (a draw of 5.7 stars counts as 5). Its mean is the mean of that censored rating, and the
#   upper end of a good movie's interval sits at the top of the scale.
# * `kind="expected"` describes **the model's mean rating** for the pair (global mean + offsets
#   + factor product), without noise and without censoring: only what the model does not know.
#   This is the quantity to compare when asking how sure the model is about one movie or another.

# %%
t0 = time.perf_counter()
pred = fit.predict(test, prob=PROB, threshold=4.0, progressbar=False)
STEPS["predict held-out ratings"] = time.perf_counter() - t0
pred.head()

# %%
baseline = metrics.mean_of_means_baseline(train, test)
rmse, mae = metrics.rmse(pred["rating"], pred["mean"]), metrics.mae(pred["rating"], pred["mean"])
rmse_base = metrics.rmse(pred["rating"], baseline)
cov = metrics.coverage(pred["rating"], pred["lower"], pred["upper"])
cov_se = np.sqrt(PROB * (1 - PROB) / len(pred))  # binomial se of the coverage of a calibrated interval
width = metrics.interval_width(pred["lower"], pred["upper"])
print(f"Held-out RMSE {rmse:.3f} and MAE {mae:.3f} over {len(pred):,} ratings "
      f"(global + user + item mean baseline: RMSE {rmse_base:.3f}).")
print(f"The {PROB:.0%} predictive intervals cover {cov:.1%} of the held-out ratings "
      f"({'within' if abs(cov - PROB) <= 2 * cov_se else 'more than'} 2 se of {PROB:.0%}, se {cov_se:.1%}); "
      f"they are {width:.2f} stars wide on average.")

# %% [markdown]
# A 90% interval that covers about 90% of new ratings is *calibrated*: its width can then be
# taken at face value, provided the verdict above passes (a sampler that has not converged
# can be calibrated on average and wrong for single pairs). Notebook `02` compares this with the
# MAP point estimate, whose plug-in intervals ignore the uncertainty about the parameters.
#
# ## One user's top 10, with titles
#
# `fit.recommend(user, n=10)` scores every movie the user has not rated and returns the best
# ten with their intervals (`rank_by="mean"` here; notebook `03` compares the other rules).
# We pick the user whose number of training ratings is closest to 50 and join the titles from
# `movielens_items()`.

# %%
counts = train.user_counts()
user = train.users.classes[int(np.argmin(np.abs(counts - 50)))]
titles = bayesmf.movielens_items()[["item", "title"]]

t0 = time.perf_counter()
rec = fit.recommend(user, n=10, prob=PROB, threshold=4.0, random_seed=SEED)
rec = rec.merge(titles, on="item", how="left")
exp = fit.predict(rec[["user", "item"]], kind="expected", clip=False, prob=PROB, progressbar=False)
STEPS["recommend"] = time.perf_counter() - t0
rec[["expected", "expected lower", "expected upper"]] = exp[["mean", "lower", "upper"]].to_numpy()
rec["item ratings"] = train.item_counts()[train.items.to_index(rec["item"].tolist())]  # the movie's training ratings
print(f"user {user} has {counts[train.users.to_index([user])[0]]} training ratings")
rec[["rank", "title", "item ratings", "mean", "lower", "upper", "p_at_least", "expected", "expected lower", "expected upper"]]

# %%
at_top = int((rec["upper"] >= train.scale[1]).sum())
w_pred = (rec["upper"] - rec["lower"]).mean()
w_exp = rec["expected upper"] - rec["expected lower"]
below = int((rec["mean"] < rec["expected"]).sum())
print(f"{at_top} of the {len(rec)} predictive intervals reach the top of the scale ({train.scale[1]:g} stars); "
      f"they are {w_pred:.2f} stars wide on average.")
print(f"The {PROB:.0%} intervals of the expected rating are {w_exp.mean():.2f} stars wide on average "
      f"(from {w_exp.min():.2f} to {w_exp.max():.2f}).")
print(f"For {below} of the {len(rec)} movies the mean of the censored rating is below the expected rating.")

# %%
fig, ax = plt.subplots(figsize=(9.5, 4.8))
table = rec.sort_values("rank")
pos = np.arange(len(table))[::-1]
err = [table["expected"] - table["expected lower"], table["expected upper"] - table["expected"]]
ax.errorbar(table["expected"], pos, xerr=err, fmt="o", capsize=3, label=f"expected rating: mean and {PROB:.0%} interval")
ax.scatter(table["mean"], pos, marker="x", color="C3", zorder=3, label="mean of the predictive (censored) rating")
ax.set_yticks(pos)
ax.set_yticklabels([f"{r}. {t}" for r, t in zip(table["rank"], table["title"], strict=True)], fontsize=9)
ax.set_xlabel("stars")
ax.set_title(f"Top 10 movies for user {user}, in the order of the list (rank_by='mean')")
ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# The predictive intervals of the table describe the rating the user would actually give:
# rating noise included, and censored to the scale, so their upper ends stop at the top of the
# scale and the ten look alike (the first line printed above counts them). The figure leaves
# the noise and the censoring out: the interval of the expected rating shows only what the
# model does not know about each movie, and its width differs from movie to movie (the
# second line gives the range; "item ratings" in the table is how many training ratings the
# movie has). Where intervals of neighbouring ranks overlap, the order between them is not
# settled. The crosses are the means of the censored rating, the `mean` column of the table;
# censoring pulls draws above the top of the scale down to it, which moves the mean of a
# well-liked movie below its expected rating (the third line counts where this happens).
# Notebook `03` ranks by other rules that use these intervals.
#
# ## What this run says

# %%
print(f"- Gibbs fit, {info['chains']} chains x {info['kept_draws']} draws, stopped by {info['stopped_by']}: verdict "
      + ("passes (R-hat and ESS of every monitored quantity within bounds)." if diagnosis.ok else
         f"FAILS on {', '.join(bad.index)} (worst R-hat {bad['max_r_hat'].max():.3f}, smallest bulk ESS "
         f"{bad['min_ess_bulk'].min():.0f}): the numbers below are provisional"
         + (" (fast mode: short chains)." if FAST else "; whether a larger budget (max_sweeps=, max_seconds=) settles them was not tried here.")))
print(f"- held-out RMSE {rmse:.3f} against {rmse_base:.3f} for the mean-of-means baseline "
      f"({rmse - rmse_base:+.3f}); {PROB:.0%} predictive intervals cover {cov:.1%} (nominal {PROB:.0%}, se {cov_se:.1%}).")
print(f"- user {user}'s top 10: expected ratings from {rec['expected'].min():.2f} to {rec['expected'].max():.2f} stars, "
      f"with {PROB:.0%} intervals {(rec['expected upper'] - rec['expected lower']).mean():.2f} stars "
      f"wide on average; {at_top} of the 10 predictive intervals reach {train.scale[1]:g} stars, the top of the scale.")

# %% [markdown]
# ## How this run was made

# %%
from bayesmf.report import run_info

print(run_info(STEPS))
