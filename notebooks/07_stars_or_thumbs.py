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
# # Stars or thumbs? Gaussian, ordered-probit and thumbs-up likelihoods, each by Gibbs
#
# **For:** anyone whose feedback is a thumbs up / thumbs down, or star levels, and who wants
# to know whether to model stars as numbers, as ordered levels, or to keep only "liked it".
#
# Three models of the same training ratings, all sampled by the conjugate Gibbs sampler with
# the package's defaults: each runs until its verdict passes, within the default budget,
# except the ordered probit, which gets twice the default budget (`max_sweeps=20_000` per
# chain): at the default 10,000 it stopped just short of passing (on 2026-12-03: 2 of 408
# monitored quantities at R-hat 1.017, one training pair's bulk ESS 391), and a failing
# verdict would make its numbers provisional. A sweep of the ordered probit costs about four
# times the Gaussian's (each cutpoint is redrawn with the latent responses integrated out,
# and every rating's latent response is redrawn), and both probit models need more draws
# than the Gaussian to pass. A fit stopped by its budget would say so, with its failing
# verdict:
#
# 1. **stars as numbers**: `PMF(n_factors=10)`, ratings ~ N(U_i . V_j + biases, sigma^2);
# 2. **stars as ordered levels**: `PMF(n_factors=10, likelihood="ordinal", link="probit")`,
#    P(r <= k) = Phi(c_k - eta), with cutpoints c drawn by the sampler;
# 3. **thumbs up / down**: `PMF(n_factors=10, likelihood="bernoulli")` on
#    `bayesmf.binarize(train, threshold=4)`: y = 1 when the rating is 4 or more, y ~
#    Bernoulli(Phi(eta)). It never sees the stars, only "liked it" or not.
#
# Each gives P(like) = P(r >= 4) for a held-out pair, with an interval. We ask: does P(like)
# mean what it says (reliability on held-out ratings), which model ranks likes best (AUC),
# and what the ordered levels add when the stars themselves are predicted (ranked probability
# score, log-loss, RMSE of the expected rating).
#
# Data: MovieLens 100K, fold u1. The same comparison on all five folds beside myFM:
# `benchmarks/bench_binary.py` and `benchmarks/bench_ordinal.py`.

# %%
import os
import time

# The test suite sets BAYESMF_FAST=1: short fixed-length chains.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
# full mode: the default run until converged, within the default budget (the ordered probit:
# twice the default budget, for the reason the markdown below gives)
GIBBS = dict(chains=2, tune=40, draws=40) if FAST else {}
ORDINAL_GIBBS = GIBBS if FAST else dict(max_sweeps=20_000)
K = 10
THRESHOLD = 4.0  # "likes it": a rating of 4 or more
STEPS: dict[str, float] = {}  # wall seconds of each step, printed at the end

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesmf
from bayesmf.binary_metrics import binary_scores, plot_reliability, reliability
from bayesmf.ordinal_metrics import level_columns, ordinal_scores

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", None)
logging.getLogger("pymc").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
if FAST:
    print("FAST mode: 300 users, short chains (2 x 40 draws): every number below is a smoke test, not a result.")

# %% [markdown]
# ## Data and the three fits
#
# `binarize(train, threshold=4)` keeps the pairs and the id encoders and replaces each rating
# by 1 (4 or more) or 0. Every fit is diagnosed on what it identifies (R-hat and ESS of the
# scales, the level and 100 monitored predictions); its verdict is printed beside it.

# %%
t0 = time.perf_counter()
try:
    # fast mode never downloads; a full run downloads ML-100K once if it is not on disk
    train, test = bayesmf.load_movielens("ml-100k", "u1", download=not FAST)
    titles = bayesmf.movielens_items("ml-100k").set_index("item")["title"]
except (FileNotFoundError, OSError) as err:
    print(f"ML-100K is not available ({err.__class__.__name__}); using the bundled ml-latest-small")
    train, test = bayesmf.train_test_split(bayesmf.load_movielens("ml-latest-small"), test_size=0.2, seed=SEED)
    titles = bayesmf.movielens_items().set_index("item")["title"]
if FAST:  # the ratings of 300 users: a smoke test that runs in seconds
    train, test = (d.subset(np.flatnonzero(np.asarray(d.user_idx) < 300)) for d in (train, test))
thumbs_train, thumbs_test = bayesmf.binarize(train, THRESHOLD), bayesmf.binarize(test, THRESHOLD)
print("train:", train)
print("test: ", test)
print(f"share of liked ratings: train {np.mean(thumbs_train.rating):.3f}, test {np.mean(thumbs_test.rating):.3f}")
STEPS["load data"] = time.perf_counter() - t0

specs = {
    "stars as numbers": (bayesmf.PMF(n_factors=K), train, GIBBS),
    "stars as ordered levels": (bayesmf.PMF(n_factors=K, likelihood="ordinal", link="probit"), train, ORDINAL_GIBBS),
    "thumbs up / down": (bayesmf.PMF(n_factors=K, likelihood="bernoulli"), thumbs_train, GIBBS),
}
fits, verdicts = {}, {}
for name, (spec, data, options) in specs.items():
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a budget stop warns; its verdict is printed below instead
        warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
        fits[name] = spec.fit(data, method="gibbs", random_seed=SEED, progressbar=False, **options)
    STEPS[f"fit: {name}"] = time.perf_counter() - t0
    diagnosis = fits[name].diagnose(warn=False)
    verdicts[name] = diagnosis.ok
    info = fits[name].info
    print(f"{name}: {info['chains']} chains x {info['kept_draws']} draws kept ({info['stopped_by']}), "
          f"{STEPS[f'fit: {name}']:.0f} s")
    print(f"  verdict: {diagnosis.verdict}")
if FAST:
    print("(fast mode: short chains, so the verdicts are not expected to pass; run the notebook in full.)")

# %% [markdown]
# ## 1. P(like) on held-out ratings
#
# For the two star models P(like) is the predictive probability of a rating of 4 or more
# (`predict_proba`: the probability of each star level; the Gaussian model's is the mass of
# the normal between the levels' midpoints). For the thumbs model it is the posterior mean of
# Phi(eta) (`predict(...)["mean"]`). Scores, on the 20 000 held-out ratings:
#
# - **AUC**: the chance that a liked pair gets a higher P(like) than a disliked one (pooled,
#   and the mean of each user's AUC: "grouped", as myFM reports it);
# - **log-loss** and **Brier score**: proper scores of the probabilities (lower is better);
# - **ECE**: the mean gap between predicted and observed frequency over ten bins of P(like).

# %%
t0 = time.perf_counter()
p_like = {}
star_probs = {}
for name in ("stars as numbers", "stars as ordered levels"):
    probs = fits[name].predict_proba(test)
    star_probs[name] = probs
    cols, levels = level_columns(probs)
    p_like[name] = probs[[c for c, lvl in zip(cols, levels, strict=True) if lvl >= THRESHOLD]].sum(axis=1).to_numpy()
thumbs_pred = fits["thumbs up / down"].predict(thumbs_test, progressbar=False)
p_like["thumbs up / down"] = thumbs_pred["mean"].to_numpy()
liked = (test.to_dataframe()["rating"].to_numpy() >= THRESHOLD).astype(int)
frame = thumbs_pred[["user", "item"]].assign(liked=liked)
scores = pd.DataFrame(
    {name: binary_scores(frame.assign(p=p), outcome_col="liked", prob_col="p") for name, p in p_like.items()}
).T[["auc", "auc_grouped", "log_loss", "brier", "ece"]]
STEPS["predict and score"] = time.perf_counter() - t0
scores

# %% [markdown]
# The reliability curves: in each bin of predicted P(like), the observed share of liked pairs
# (dots, with ± 2 standard errors) against the mean prediction. On the diagonal, P(like) means
# what it says. One panel per model, on shared axes, so that the curves can be told apart.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12.0, 4.0), sharex=True, sharey=True)
tables = {name: reliability(liked, p) for name, p in p_like.items()}
for ax, (name, table) in zip(axes, tables.items(), strict=True):
    plot_reliability(table, ax=ax, label="P(like)")
    ax.set_title(name)
    ax.set_xlabel("mean predicted P(like) in bin")
    ax.legend(loc="upper left")
axes[0].set_ylabel("observed share liked")
for ax in axes[1:]:
    ax.set_ylabel("")
fig.tight_layout()

# %% [markdown]
# ## 2. Predicting the stars
#
# The two star models also predict the level itself. The **ranked probability score** (RPS)
# compares the predicted and observed cumulative distributions over the levels (lower is
# better, 0 for a certain and correct forecast); the multiclass log-loss scores the
# probability given to the observed level; RMSE and MAE are those of the expected rating.

# %%
star_scores = pd.DataFrame(
    {name: ordinal_scores(probs.assign(rating=test.to_dataframe()["rating"].to_numpy())) for name, probs in star_probs.items()}
).T[["rps", "log_loss", "rmse", "mae", "ece"]]
star_scores

# %% [markdown]
# ## 3. A user's top 5 by P(like)
#
# A user's unrated movies ranked by P(like), with intervals: for the ordered-probit model
# `recommend(..., rank_by="prob", threshold=4)` ranks by P(r >= 4) (its `score`; `mean` and
# the interval are those of the star rating); for the thumbs model the posterior mean of
# P(y = 1) is P(like) itself, so the default `rank_by="mean"` ranks by it, with the 90 %
# interval of that probability. A user with a median number of training ratings:

# %%
counts = pd.Series(train.user_counts(), index=train.users.classes)
user = counts.index[int(np.argmin(np.abs(counts.to_numpy() - counts.median())))]
print(f"user {user}: {counts[user]} training ratings")
lists = {}
for name, how in (("stars as ordered levels", {"rank_by": "prob", "threshold": THRESHOLD}), ("thumbs up / down", {})):
    rec = fits[name].recommend(user, n=5, **how)
    rec.insert(2, "title", rec["item"].map(titles))
    lists[name] = rec
    print(f"\n{name}:")
    print(rec[["rank", "title", "score", "mean", "lower", "upper"]].to_string(index=False))

# %% [markdown]
# ## Take-aways
#
# Computed from the numbers above (re-run the notebook and they follow).

# %%
best_auc = scores["auc"].idxmax()
best_ece = scores["ece"].idxmin()
print(f"- best AUC of P(like): {best_auc} ({scores.loc[best_auc, 'auc']:.3f}); "
      f"range {scores['auc'].min():.3f}-{scores['auc'].max():.3f}.")
print(f"- best calibrated P(like): {best_ece} (ECE {scores.loc[best_ece, 'ece']:.3f}); "
      f"worst ECE {scores['ece'].max():.3f} ({scores['ece'].idxmax()}).")
print("- log-loss of P(like): " + ", ".join(f"{n} {v:.4f}" for n, v in scores["log_loss"].items()) + ".")
better = star_scores["rps"].idxmin()
print(f"- stars: lower RPS for {better} ({star_scores['rps'].min():.4f} vs {star_scores['rps'].max():.4f}); "
      f"RMSE of the expected rating {star_scores['rmse'].round(4).to_dict()}.")
if not all(verdicts.values()):
    failed = [name for name, ok in verdicts.items() if not ok]
    print(f"- diagnose() did not pass for: {', '.join(failed)}; the numbers above are not results"
          + (" (FAST mode: short chains)." if FAST else "; run longer chains."))
else:
    print("- every fit passed diagnose(): the numbers above come from converged posteriors.")

# %% [markdown]
# ## How this run was made

# %%
from bayesmf.report import run_info

print(run_info(STEPS))
