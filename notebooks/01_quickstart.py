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
# fits a Bayesian probabilistic matrix factorization (PMF) by Gibbs sampling, predicts
# held-out ratings with 90% intervals, and lists one user's top 10 movies, by title, with
# error bars. The other notebooks explain the choices made here:
# `02` MAP versus the full posterior, `03` ranking rules under uncertainty and new users,
# `04` convergence diagnostics, `05` choosing the rank and the model variant.

# %%
import os

# The test suite sets BAYESMF_FAST=1: shorter chains, so the notebook runs in about a minute.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
CHAINS, TUNE, DRAWS, THIN = (2, 100, 100, 1) if FAST else (4, 300, 250, 2)

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesmf
from bayesmf import metrics
from bayesmf.plots import plot_recommendations

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)
logging.getLogger("pymc").setLevel(logging.WARNING)  # keep PyMC's info messages out of the outputs
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
print(f"bayesmf {bayesmf.__version__}, fast mode: {FAST}")

# %% [markdown]
# ## The data
#
# `load_movielens()` returns the bundled *ml-latest-small* set (ratings from 0.5 to 5 stars in
# half stars) as a `RatingsData`: integer codes for users and items plus the encoders that map
# them back to the raw MovieLens ids. We hold out 10% of the ratings at random to check the
# predictions against.

# %%
data = bayesmf.load_movielens()
train, test = bayesmf.train_test_split(data, test_size=0.1, seed=SEED)
print(data)
print("train:", train)
print("test: ", test)
data.summary()

# %% [markdown]
# ## Fit the model
#
# `PMF(n_factors=10)` describes the model: rating = global mean + user offset + item offset +
# the dot product of a 10-dimensional user vector and item vector, plus normal noise, with
# priors whose scales are learned from the data (`priors="hierarchical"`, the default).
# `.fit(train, method="gibbs")` draws from the posterior of all of those parameters with a
# blocked Gibbs sampler; every other route (`"map"`, `"als"`, `"nuts"`, `"advi"`...) returns the
# same kind of `FitResult`.

# %%
model = bayesmf.PMF(n_factors=10)
fit = model.fit(
    train, method="gibbs", chains=CHAINS, tune=TUNE, draws=DRAWS, thin=THIN,
    random_seed=SEED, progressbar=False,
)
print(fit)
print(f"sampling took {fit.info['fit_seconds']:.0f} s for {fit.n_chains * fit.n_draws} kept draws")

# %% [markdown]
# ## Predict held-out ratings, with intervals
#
# `fit.predict(pairs)` returns one row per (user, item) pair: the posterior-predictive mean,
# sd and median of the rating the user would give, the bounds of the central `prob` interval
# and, with `threshold=4`, the probability that the rating is at least 4 stars.

# %%
pred = fit.predict(test, prob=0.9, threshold=4.0, progressbar=False)
pred.head()

# %%
baseline = metrics.mean_of_means_baseline(train, test)
rmse, mae = metrics.rmse(pred["rating"], pred["mean"]), metrics.mae(pred["rating"], pred["mean"])
cov = metrics.coverage(pred["rating"], pred["lower"], pred["upper"])
width = metrics.interval_width(pred["lower"], pred["upper"])
print(f"Held-out RMSE {rmse:.3f} and MAE {mae:.3f} over {len(pred):,} ratings "
      f"(global + user + item mean baseline: RMSE {metrics.rmse(pred['rating'], baseline):.3f}).")
print(f"The 90% predictive intervals cover {cov:.1%} of the held-out ratings; "
      f"they are {width:.2f} stars wide on average.")

# %% [markdown]
# A 90% interval that covers close to 90% of new ratings is *calibrated*: its width can be taken
# at face value. Notebook `02` compares this with the MAP point estimate, whose plug-in
# intervals ignore the uncertainty about the parameters.
#
# ## One user's top 10, with titles
#
# `fit.recommend(user, n=10)` scores every movie the user has not rated and returns the best
# ten with their intervals (`rank_by="mean"` here; notebook `03` compares the other rules).
# We pick a user with about 50 training ratings and join the titles from `movielens_items()`.

# %%
counts = train.user_counts()
user = train.users.classes[int(np.argmin(np.abs(counts - 50)))]
titles = bayesmf.movielens_items()[["item", "title"]]

rec = fit.recommend(user, n=10, prob=0.9, threshold=4.0, random_seed=SEED)
rec = rec.merge(titles, on="item", how="left")
print(f"user {user} has {counts[train.users.to_index([user])[0]]} training ratings")
rec[["rank", "title", "mean", "lower", "upper", "p_at_least"]]

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.5))
plot_recommendations(rec, ax=ax)
ax.set_yticklabels([t if len(t) <= 40 else t[:37] + "..." for t in rec.sort_values("rank")["title"]])
ax.set_ylabel("")
ax.set_xlabel("predicted rating (stars): mean and 90% predictive interval")
ax.set_title(f"Top 10 movies for user {user}")
plt.show()

# %% [markdown]
# The intervals are wide because they describe the rating the user would actually give,
# noise included: even a movie the model is sure the user will like can get 3 stars on a given
# evening. `kind="expected"` gives the narrower interval of the *mean* rating (notebook `03`).
#
# ## Did the sampler converge?
#
# Raw factors are not identified (rotations and sign flips leave the fit unchanged), so
# `fit.diagnose()` checks R-hat and effective sample sizes on what is identified: the noise
# level, the mean level, the prior scales and predicted ratings (notebook `04`).

# %%
diagnosis = fit.diagnose(test=test, warn=False)
print(diagnosis.verdict)
diagnosis.summary

# %%
if diagnosis.ok:
    print("The chains agree on every monitored quantity: the intervals above can be trusted.")
else:
    failed = ", ".join(diagnosis.summary.index[~diagnosis.summary["ok"].astype(bool)])
    print(f"Checks failed for: {failed}. Run longer chains (more `tune`, `draws`, `thin`) before "
          "trusting the intervals; notebook 04 explains the checks and what to do.")
