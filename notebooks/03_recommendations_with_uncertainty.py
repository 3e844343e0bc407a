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
# # Recommendations with uncertainty
#
# **For:** people who build recommendation lists and want to use the posterior for more than
# a point score.
#
# A posterior gives every (user, movie) pair a distribution of ratings, not one number, so
# "the top 10" depends on what we want to be sure of. This notebook
#
# 1. ranks one user's movies under the four rules of `recommend(rank_by=...)`: the posterior mean,
#    the lower end of the 90% interval (cautious), the probability of a rating of at least 4
#    stars, and Thompson sampling (one posterior draw: explores);
# 2. measures, over many users, how the rules differ in the popularity and the uncertainty of
#    what they recommend, and how much Thompson sampling varies from one call to the next;
# 3. folds a *new* user into the fitted model with 1, 5 and 20 ratings (no refit) and shows how
#    their intervals shrink.
#
# Data: the bundled ml-latest-small (titles included), Gibbs sampling.

# %%
import os

# The test suite sets BAYESMF_FAST=1: short chains and fewer users.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
CHAINS, TUNE, DRAWS, THIN = (2, 100, 100, 1) if FAST else (4, 300, 250, 2)
N_NEW_USERS = 4 if FAST else 12   # users held out entirely, to be folded in later
N_PANEL = 10 if FAST else 60      # users over which the ranking rules are compared
RULES = ("mean", "lower", "prob", "thompson")

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
logging.getLogger("pymc").setLevel(logging.WARNING)  # keep PyMC's info messages out of the outputs
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets

# %% [markdown]
# ## Data and fit
#
# We set aside every rating of a few users with at least 60 ratings (they play the new users of
# section 3) and fit on the rest.

# %%
data = bayesmf.load_movielens()
titles = bayesmf.movielens_items().set_index("item")["title"]
ratings = data.to_dataframe()

rng = np.random.default_rng(SEED)
active = data.users.classes[data.user_counts() >= 60]
new_users = rng.choice(active, size=N_NEW_USERS, replace=False)
held = ratings["user"].isin(new_users)
train = bayesmf.RatingsData.from_dataframe(ratings[~held], user="user", item="item", scale=data.scale)
newcomers = ratings[held & ratings["item"].isin(train.items.classes)]
print("fit on:", train)
print(f"{len(new_users)} new users with {len(newcomers):,} ratings set aside")

fit = bayesmf.PMF(n_factors=10).fit(
    train, method="gibbs", chains=CHAINS, tune=TUNE, draws=DRAWS, thin=THIN, random_seed=SEED, progressbar=False
)
print(fit)

# %% [markdown]
# ## 1. One user, four ranking rules
#
# | `rank_by` | score | behaviour |
# |---|---|---|
# | `"mean"` | posterior-predictive mean rating | best guess; ignores how sure it is |
# | `"lower"` | lower end of the 90% interval | cautious: prefers movies the model is sure about |
# | `"prob"` | $P(r \ge 4)$ | "will they like it?"; rewards both a high mean and a narrow spread |
# | `"thompson"` | mean rating under one random posterior draw | explores: uncertain movies sometimes win |

# %%
item_count = pd.Series(train.item_counts(), index=train.items.classes)
counts = pd.Series(train.user_counts(), index=train.users.classes)
user = counts.index[int(np.argmin(np.abs(counts.to_numpy() - 100)))]
print(f"user {user}: {counts[user]} training ratings")

recs = {}
for rule in RULES:
    rec = fit.recommend(user, n=10, rank_by=rule, prob=0.9, threshold=4.0, random_seed=SEED)
    rec["title"] = titles.reindex(rec["item"]).to_numpy()
    rec["ratings of item"] = item_count.reindex(rec["item"]).to_numpy()
    recs[rule] = rec

side_by_side = pd.DataFrame({rule: [t[:32] for t in rec["title"]] for rule, rec in recs.items()})
side_by_side.index = pd.RangeIndex(1, 11, name="rank")
side_by_side

# %%
recs["mean"][["rank", "title", "mean", "lower", "upper", "p_at_least", "ratings of item"]]

# %%
recs["lower"][["rank", "title", "mean", "lower", "upper", "p_at_least", "ratings of item"]]

# %% [markdown]
# The intervals above are *predictive* (the rating the user would give, noise included), so they
# are wide for every movie. The uncertainty that differs between movies is the uncertainty about
# the user's *mean* rating, `kind="expected"`. The plot shows it for the two lists.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
for ax, rule in zip(axes, ("mean", "lower"), strict=True):
    pairs = pd.DataFrame({"user": user, "item": recs[rule]["item"]})
    exp = fit.predict(pairs, kind="expected", prob=0.9, progressbar=False)
    pos = np.arange(len(exp))[::-1]
    ax.errorbar(exp["mean"], pos, xerr=[exp["mean"] - exp["lower"], exp["upper"] - exp["mean"]], fmt="o", capsize=3)
    labels = [f"{t[:30]} ({n})" for t, n in zip(recs[rule]["title"], recs[rule]["ratings of item"], strict=True)]
    ax.set_yticks(pos)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("mean rating (stars): posterior mean and 90% credible interval")
    ax.set_title(f'top 10 by rank_by="{rule}"')
fig.suptitle(f"User {user}: uncertainty about the mean rating (in brackets: the movie's training ratings)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. How the rules differ, over many users
#
# For a panel of users we record, for each rule's top 10: how many training ratings the
# recommended movies have (popularity), how uncertain their mean rating is (sd of
# `kind="expected"`), and the overlap with the `"mean"` list.

# %%
panel = rng.choice(train.users.classes, size=min(N_PANEL, train.n_users), replace=False)
rows = []
for u in panel:
    lists = {rule: fit.recommend(u, n=10, rank_by=rule, threshold=4.0, random_seed=SEED) for rule in RULES}
    for rule, rec in lists.items():
        pairs = pd.DataFrame({"user": u, "item": rec["item"]})
        exp = fit.predict(pairs, kind="expected", progressbar=False)
        rows.append({
            "rule": rule,
            "median ratings of the items": float(np.median(item_count.reindex(rec["item"]))),
            "sd of the mean rating": float(exp["sd"].mean()),
            "P(r >= 4)": float(rec["p_at_least"].mean()),
            "overlap with mean list": len(set(rec["item"]) & set(lists["mean"]["item"])) / 10,
        })
by_rule = pd.DataFrame(rows).groupby("rule", sort=False).mean()
by_rule

# %%
print(f"Averaged over {len(panel)} users' top-10 lists:")
for rule in RULES:
    r = by_rule.loc[rule]
    print(f"  {rule:8s}: items with a median of {r['median ratings of the items']:.0f} training ratings, "
          f"sd of the mean rating {r['sd of the mean rating']:.2f}, mean P(r >= 4) {r['P(r >= 4)']:.2f}, "
          f"{r['overlap with mean list']:.0%} shared with the mean list")
most_sure = by_rule["sd of the mean rating"].idxmin()
least_sure = by_rule["sd of the mean rating"].idxmax()
print(f"Most certain lists: {most_sure!r}; least certain: {least_sure!r}.")

# %% [markdown]
# ### Thompson sampling varies from call to call
#
# Each call with a new seed ranks by a different posterior draw, so movies the model is unsure
# about get a turn in proportion to their chance of being best: exploration that the other three
# (deterministic) rules never do.

# %%
n_calls = 10 if FAST else 40
seen = pd.Series(
    [item for s in range(n_calls) for item in fit.recommend(user, n=10, rank_by="thompson", random_seed=s)["item"]]
).value_counts()
print(f"{n_calls} Thompson calls for user {user} recommended {len(seen)} different movies "
      f"(the other rules: 10 each, every call).")
top = seen.head(15)
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.barh(np.arange(len(top))[::-1], top.to_numpy() / n_calls)
ax.set_yticks(np.arange(len(top))[::-1])
ax.set_yticklabels([f"{titles.get(i, i)}"[:38] for i in top.index], fontsize=8)
ax.set_xlabel(f"fraction of {n_calls} Thompson calls with the movie in the top 10")
ax.set_title(f"Thompson sampling for user {user}: the 15 most frequent movies")
plt.show()

# %% [markdown]
# ## 3. A new user, folded in with 1, 5 and 20 ratings
#
# `fit.fold_in(ratings)` adds users the model has never seen without refitting: for each
# posterior draw it draws the new user's factors and offset from their conditional posterior
# given that draw's item factors (exact for the normal model; the new ratings are assumed not to
# move the other parameters). With no ratings at all, `predict` falls back on the prior (a
# "cold start", flagged `new_user`).
#
# For each held-out user we reveal 1, 5 or 20 of their ratings (in a random order) and predict
# the ratings they gave after the first 20, so every number of revealed ratings is scored on the
# same pairs.

# %%
REVEAL = (0, 1, 5, 20)
shuffled = newcomers.sample(frac=1.0, random_state=SEED)
order = shuffled.groupby("user").cumcount()
pool, target = shuffled[order < max(REVEAL)], shuffled[order >= max(REVEAL)]

results = []
for n in REVEAL:
    if n == 0:
        model_n = fit  # the users are unknown: prior predictive
    else:
        given = pool[pool.groupby("user").cumcount() < n]
        model_n = fit.fold_in(given, random_seed=SEED)
    exp = model_n.predict(target, kind="expected", prob=0.9, random_seed=SEED, progressbar=False)
    pred = model_n.predict(target, prob=0.9, random_seed=SEED, progressbar=False)
    results.append({
        "revealed ratings": n,
        "width of 90% interval, mean rating": metrics.interval_width(exp["lower"], exp["upper"]),
        "width of 90% interval, rating": metrics.interval_width(pred["lower"], pred["upper"]),
        "coverage of 90% interval, rating": metrics.coverage(pred["rating"], pred["lower"], pred["upper"]),
        "RMSE": metrics.rmse(pred["rating"], pred["mean"]),
    })
shrinkage = pd.DataFrame(results).set_index("revealed ratings")
print(f"{len(target):,} held-out ratings of {target['user'].nunique()} new users")
shrinkage

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
x = np.arange(len(REVEAL))
axes[0].plot(x, shrinkage["width of 90% interval, mean rating"], marker="o", label="mean rating (epistemic)")
axes[0].plot(x, shrinkage["width of 90% interval, rating"], marker="o", label="rating (noise included)")
axes[0].set_ylabel("mean width of the 90% interval (stars)")
axes[0].set_title("Intervals shrink as the new user rates")
axes[0].legend(frameon=False)
axes[1].plot(x, shrinkage["RMSE"], marker="o", color="C2")
axes[1].set_ylabel("RMSE on the later ratings (stars)")
axes[1].set_title("Accuracy on the user's later ratings")
for ax in axes:
    ax.set_xticks(x)
    ax.set_xticklabels([str(n) for n in REVEAL])
    ax.set_xlabel("ratings revealed before predicting")
fig.tight_layout()
plt.show()

# %%
one = new_users[0]
items = target[target["user"] == one]["item"].head(6).to_numpy()
fig, ax = plt.subplots(figsize=(8, 4.5))
for k, n in enumerate(REVEAL):
    model_n = fit if n == 0 else fit.fold_in(pool[(pool["user"] == one) & (pool.groupby("user").cumcount() < n)],
                                             random_seed=SEED)
    exp = model_n.predict(pd.DataFrame({"user": one, "item": items}), kind="expected", prob=0.9,
                          random_seed=SEED, progressbar=False)
    pos = np.arange(len(items)) + (k - 1.5) * 0.18
    ax.errorbar(exp["mean"], pos, xerr=[exp["mean"] - exp["lower"], exp["upper"] - exp["mean"]], fmt="o",
                capsize=2, label=f"{n} ratings revealed")
truth = target[(target["user"] == one) & target["item"].isin(items)].set_index("item").loc[items, "rating"]
ax.scatter(truth, np.arange(len(items)), marker="x", color="k", zorder=3, label="actual rating")
ax.set_yticks(np.arange(len(items)))
ax.set_yticklabels([f"{titles.get(i, i)}"[:35] for i in items], fontsize=8)
ax.set_xlabel("mean rating (stars): posterior mean and 90% credible interval")
ax.set_title(f"New user {one}: the same six movies as more ratings are revealed")
ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
plt.show()

# %%
w = shrinkage["width of 90% interval, mean rating"]
print(f"Width of the 90% interval of the mean rating: {w.loc[0]:.2f} stars with no ratings (prior), "
      + ", ".join(f"{w.loc[n]:.2f} after {n}" for n in REVEAL[1:]) + ".")
print("The width shrinks at every step." if bool(np.all(np.diff(w.to_numpy()) < 0))
      else "The width does not shrink at every step here (see the table).")

# %% [markdown]
# ## Take-aways
#
# * The ranking rule is a decision about risk, not a detail: the tables above show how far the
#   lists differ for the same posterior, and in which direction (popularity and uncertainty of
#   the recommended movies, per rule).
# * `P(r >= 4)` answers the question most products ask ("will they like it?") and needs the
#   predictive distribution, which a point estimate does not have.
# * Thompson sampling is the rule for exploration: its list changes from call to call, so
#   uncertain movies get shown and rated, which is how the model learns about them.
# * `fold_in` makes use of a new user's first ratings immediately, without a refit; the printed
#   widths show how much each rating narrows the intervals.
