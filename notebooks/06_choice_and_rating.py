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
# # What will they choose, and will they like it? A choice model joined to a rating model
#
# **For:** people who build top-N lists from ratings or from views, clicks and plays, and
# want to know what a model of *choice* adds to a model of *ratings*.
#
# A rating model answers "how much would this user like movie X *if* they watched it".
# A top-10 list also needs "which movies will this user pick at all": a user rates what they
# chose to watch, and most movies they never choose. This notebook fits both on the same
# training data and combines them:
#
# 1. the **rating model**: `PMF(n_factors=10)` by Gibbs on the star ratings (hierarchical
#    priors, the package default);
# 2. the **choice model**: `PMF(n_factors=10, likelihood="implicit")` by Gibbs on the same
#    pairs read as choices (`bayesmf.as_implicit`: every rated pair is a choice, every other
#    pair a weak "not chosen"). Its score, clipped to [0, 1], is P(chosen);
# 3. the **joint**: P(chosen) x P(r >= 4 | chosen), the probability that the user picks the
#    movie *and* rates it 4 or more, computed per pair of posterior draws
#    (`bayesmf.joint.recommend_joint`, `bayesmf.joint.joint_scores`), so it has an interval.
#
# Then: three users' three lists side by side, with intervals; held-out NDCG@10 of every
# list against "most popular"; whether P(chosen) means what it says (a reliability
# curve on held-out choices); and, in section 4, the probability that the user picks a
# movie among their next n choices, from P(chosen) calibrated on a held-out share of the
# training choices (`bayesmf.learn_choice_calibration`, `bayesmf.p_chosen_within`). Every
# fit is diagnosed and its verdict printed beside it; a closing cell sums up the answer and
# records how the run was made.
#
# Data: MovieLens 100K, canonical fold u1 (its training and held-out ratings). The
# same comparison on all five folds and on ml-latest-small, with the `implicit` ALS and BPR
# peers, is `benchmarks/bench_topn.py` (`benchmarks/RESULTS.md`, "Top-N lists").

# %%
import os
import time

# The test suite sets BAYESMF_FAST=1: a random subset of users and items, short chains, fewer users shown.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
# full mode: the package default, fit(method="gibbs") run until converged within the default budget
GIBBS = dict(chains=2, tune=60, draws=60) if FAST else {}
N_USERS_SHOWN = 2 if FAST else 3
K = 10
THRESHOLD = 4.0  # "likes it": a rating of 4 or 5 stars
STEPS: dict[str, float] = {}  # wall seconds of each step, printed at the end

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesmf
from bayesmf.choice_calibration import plot_choice_reliability
from bayesmf.joint import joint_scores, recommend_joint
from bayesmf.topn import evaluate_scores, evaluate_topn, popularity_scores

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", None)
pd.set_option("display.max_colwidth", 40)
logging.getLogger("pymc").setLevel(logging.WARNING)  # keep PyMC's info messages out of the outputs
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
if FAST:
    print("FAST mode: 300 users, 600 items, short chains (2 x 60 draws): every number below is a smoke test, "
          "not a result.")

# %% [markdown]
# ## Data and the two fits
#
# `as_implicit(train, value="one")` keeps the training pairs and the id encoders and drops
# the stars: the choice model sees *that* a user rated a movie, not how. Both fits see the
# same training pairs; the held-out fold is used only to score them. Both run by Gibbs at
# the package defaults (until converged, within the default budget); each verdict
# (`diagnose()`: R-hat and ESS of the scales, the level and monitored predictions) is
# printed beside its fit.

# %%
t0 = time.perf_counter()
try:
    # fast mode never downloads; a full run downloads ML-100K once if it is not on disk
    train, test = bayesmf.load_movielens("ml-100k", "u1", download=not FAST)
    titles = bayesmf.movielens_items("ml-100k").set_index("item")["title"]
    DATASET = "ML-100K u1"
except (FileNotFoundError, OSError) as err:
    print(f"ML-100K is not available ({err.__class__.__name__}); using the bundled ml-latest-small")
    train, test = bayesmf.train_test_split(bayesmf.load_movielens("ml-latest-small"), test_size=0.2, seed=SEED)
    titles = bayesmf.movielens_items().set_index("item")["title"]
    DATASET = "ml-latest-small"
if FAST:  # the ratings among 300 random users and 600 random items: a smoke test that runs in seconds
    rng = np.random.default_rng(SEED)
    keep_users = rng.choice(train.users.classes, size=min(300, train.n_users), replace=False)
    keep_items = rng.choice(train.items.classes, size=min(600, train.n_items), replace=False)
    frames = [d.to_dataframe() for d in (train, test)]
    frames = [f[f["user"].isin(keep_users) & f["item"].isin(keep_items)] for f in frames]
    train = bayesmf.RatingsData.from_dataframe(frames[0], "user", "item", "rating", scale=train.scale)
    frames[1] = frames[1][frames[1]["user"].isin(train.users.classes) & frames[1]["item"].isin(train.items.classes)]
    test = bayesmf.RatingsData.from_dataframe(frames[1], "user", "item", "rating", scale=train.scale,
                                              users=train.users, items=train.items)
    DATASET += " (FAST subset)"
choices = bayesmf.as_implicit(train, value="one")
print("train: ", train)
print("test:  ", test)
print("choices:", choices)
STEPS["load data"] = time.perf_counter() - t0

fits, verdicts = {}, {}
for name, spec, data in (("rating model", bayesmf.PMF(n_factors=K), train),
                         ("choice model", bayesmf.PMF(n_factors=K, likelihood="implicit"), choices)):
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a budget stop warns; its verdict is printed below instead
        warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
        fits[name] = spec.fit(data, method="gibbs", random_seed=SEED, progressbar=False, **GIBBS)
    STEPS[f"fit: {name}"] = time.perf_counter() - t0
    diagnosis = fits[name].diagnose(warn=False)
    verdicts[name] = diagnosis.ok
    info = fits[name].info
    print(f"{name}: {info['chains']} chains x {info['kept_draws']} draws ({info['stopped_by']}; the posterior "
          f"holds {info['draws']} per chain), {STEPS[f'fit: {name}']:.0f} s")
    print(f"  verdict: {'passed' if diagnosis.ok else 'FAILED'}: {diagnosis.verdict}")
rating_fit, choice_fit = fits["rating model"], fits["choice model"]
if FAST:
    print("(fast mode: short chains, so the verdicts are not expected to pass; run the notebook in full.)")

# %% [markdown]
# ## 1. Three users, three lists
#
# For each user (a light, a typical and a heavy rater, among those with a held-out rating of
# 4 or more), the top 10 of
#
# - the **rating model** by posterior-mean rating (`rating_fit.recommend`),
# - the **choice model** by posterior-mean P(chosen) (`choice_fit.recommend`),
# - the **joint** by the posterior mean of P(chosen) x P(r >= 4) (`recommend_joint`),
#
# each over the movies the user did not rate in training. Every movie of every list gets
# the same three numbers with their 90 % intervals (`recommend_joint(..., items=...)`):
# P(chosen), P(r >= 4) and the joint. `held out` is the user's test rating of that movie
# (blank: not in their test fold). A list is good here when it holds movies with a held-out
# rating of 4 or 5.

# %%
test_frame = test.to_dataframe()
n_train = pd.Series(train.user_counts(), index=train.users.classes)
liked = test_frame[test_frame["rating"] >= THRESHOLD]["user"].unique()
eligible = n_train[n_train.index.isin(liked)]
targets = [0.1, 0.5, 0.9] if N_USERS_SHOWN == 3 else [0.1, 0.9]
shown = [eligible.index[int(np.argmin(np.abs(eligible.to_numpy() - eligible.quantile(q))))] for q in targets]


def interval(mean, lower, upper):
    return [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in zip(mean, lower, upper, strict=True)]


def lists_of(user):
    """The user's three top-K lists, each movie with P(chosen), P(r >= 4) and the joint."""
    tops = {
        "rating model": rating_fit.recommend(user, n=K, threshold=THRESHOLD)["item"].tolist(),
        "choice model": choice_fit.recommend(user, n=K, threshold=None)["item"].tolist(),
        "joint": recommend_joint(choice_fit, rating_fit, user, n=K, threshold=THRESHOLD, random_seed=SEED)["item"].tolist(),
    }
    held = test_frame[test_frame["user"] == user].set_index("item")["rating"]
    frames = {}
    for name, items in tops.items():
        q = recommend_joint(choice_fit, rating_fit, user, n=K, threshold=THRESHOLD, items=items, random_seed=SEED)
        q = q.set_index("item").loc[items]
        frames[name] = pd.DataFrame({
            "title": titles.reindex(items).str.slice(0, 32).to_numpy(),
            "P(chosen)": interval(q["p_chosen"], q["p_chosen_lower"], q["p_chosen_upper"]),
            "P(r>=4)": interval(q["p_at_least"], q["p_at_least_lower"], q["p_at_least_upper"]),
            "joint": interval(q["mean"], q["lower"], q["upper"]),
            "held out": held.reindex(items).to_numpy(),  # NaN: not in the user's test fold
        }, index=pd.RangeIndex(1, len(items) + 1, name="rank"))
    return tops, frames


t0 = time.perf_counter()
user_lists = {}
for user in shown:
    tops, frames = lists_of(user)
    user_lists[user] = tops
    n_liked = int((test_frame[test_frame["user"] == user]["rating"] >= THRESHOLD).sum())
    print(f"\n=== user {user}: {n_train[user]} training ratings, {n_liked} held-out ratings >= {THRESHOLD:g} ===")
    side = pd.concat({name: f[["title", "held out"]] for name, f in frames.items()}, axis=1)
    print(side.to_string(na_rep=""))
    for name, f in frames.items():
        hits = int((f["held out"] >= THRESHOLD).sum())
        print(f"\n{name} (user {user}): {hits} of {K} held-out likes")
        print(f[["title", "P(chosen)", "P(r>=4)", "joint"]].to_string())
STEPS["three users' lists"] = time.perf_counter() - t0

# %% [markdown]
# Where the lists sit: every movie the user did not rate, placed by its posterior-mean
# P(chosen) and P(r >= 4); the grey curves are constant values of their product. The choice
# model ranks by the horizontal axis alone (it never asks whether the movie would be liked).
# The rating model ranks by its posterior-mean rating, a different summary of the same
# posterior as the vertical axis, so its list sits high on that axis, though not always at
# the very top (it never asks whether the movie would be chosen). The joint ranks by the
# posterior mean of the product; the two fits are independent, so that is close to the
# product of the two means plotted, and its list is the movies furthest out across the grey
# curves.

# %%
fig, axes = plt.subplots(1, len(shown), figsize=(5.0 * len(shown), 4.2), sharey=True)
markers = {"rating model": ("s", "tab:blue"), "choice model": ("^", "tab:orange"), "joint": ("o", "tab:green")}
for ax, user in zip(np.atleast_1d(axes), shown, strict=True):
    every = recommend_joint(choice_fit, rating_fit, user, n=train.n_items, threshold=THRESHOLD, random_seed=SEED)
    every = every.set_index("item")
    ax.scatter(every["p_chosen"], every["p_at_least"], s=4, color="lightgrey", label="unrated movies")
    grid = np.linspace(0.01, 1, 200)
    for level in (0.05, 0.1, 0.2, 0.4):
        ax.plot(grid, np.clip(level / grid, 0, 1.0), color="grey", linewidth=0.6)
    for name, items in user_lists[user].items():
        marker, colour = markers[name]
        ax.scatter(every.loc[items, "p_chosen"], every.loc[items, "p_at_least"], marker=marker,
                   facecolor="none", edgecolor=colour, s=40, label=f"{name} top {K}")
    ax.set_xlim(0, max(0.05, float(every["p_chosen"].max()) * 1.05))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("posterior-mean P(chosen)")
    ax.set_title(f"user {user} ({n_train[user]} training ratings)")
np.atleast_1d(axes)[0].set_ylabel(f"posterior-mean P(r >= {THRESHOLD:g})")
np.atleast_1d(axes)[0].legend(loc="lower right", fontsize=8)
fig.suptitle("Three lists in the (P(chosen), P(r >= 4)) plane; grey: joint = 0.05, 0.1, 0.2, 0.4")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Held-out top-10 quality
#
# The protocol of `bayesmf.topn`: for every test user, rank all the movies they did not
# rate in training; a movie is relevant when its held-out rating is at least 4; NDCG@10,
# precision@10 and recall@10, mean over users ± standard error (sd / sqrt(users)). The
# choice model is evaluated on the held-out *ratings* like the rest (its own training data
# are choices on (0, 1); the threshold is checked against the test ratings' 1-5 scale). Its
# three rules: the posterior mean of P(chosen), the lower end of its 90 % interval
# (cautious) and Thompson (one posterior draw per user: explores). The joint is scored with
# `joint_scores` and `evaluate_scores`.
#
# Ranking every unrated movie of every test user works draw by draw, so it uses
# `fit.thin(draws=250)` of both fits: at most 250 evenly spaced draws of each chain. On this
# split, lists from about 100 draws per chain match the whole posterior's within a standard
# error of NDCG (`benchmarks/RESULTS.md`, "Top-N from a thinned posterior").

# %%
t0 = time.perf_counter()
choice_light, rating_light = choice_fit.thin(draws=250), rating_fit.thin(draws=250)
for name, whole, light in (("choice", choice_fit, choice_light), ("rating", rating_fit, rating_light)):
    print(f"{name} model: {light.n_chains} chains x {light.n_draws} draws of {whole.n_draws} per chain")
results = {
    "most popular": evaluate_scores(popularity_scores(train), train, test, K, THRESHOLD, random_seed=SEED, name="popularity"),
    "rating model (mean)": evaluate_topn(rating_light, test, K, rank_by="mean", threshold=THRESHOLD, random_seed=SEED, progressbar=False),
}
for rule in ("mean", "lower", "thompson"):
    results[f"choice model ({rule})"] = evaluate_topn(
        choice_light, test, K, rank_by=rule, threshold=THRESHOLD, random_seed=SEED, progressbar=False
    )
scores = joint_scores(choice_light, rating_light, threshold=THRESHOLD, random_seed=SEED)
results["joint (mean)"] = evaluate_scores(scores, train, test, K, THRESHOLD, random_seed=SEED, name="joint")

STEPS["held-out top-N evaluation"] = time.perf_counter() - t0


def fit_verdict(name):
    """The verdict of the fit(s) a list comes from."""
    used = [m for m in ("rating model", "choice model") if name.startswith(m.split()[0]) or name.startswith("joint")]
    if not used:
        return "no fit"
    return "passed" if all(verdicts[m] for m in used) else "FAILED"


rows = {}
for name, res in results.items():
    s = res.summary
    rows[name] = {f"{m}@{K}": s.loc[f"{m}@{K}", "mean"] for m in ("ndcg", "precision", "recall")}
    rows[name]["NDCG se"] = s.loc[f"ndcg@{K}", "se"]
    rows[name]["coverage"] = s.loc[f"coverage@{K}", "mean"]
    rows[name]["users"] = int(s.attrs["n_users_evaluated"])
table = pd.DataFrame(rows).T.astype(float).astype({"users": int})
table["fit verdict"] = [fit_verdict(name) for name in table.index]
print(table.to_string())

colours = {"most popular": "grey", "rating": "tab:blue", "choice": "tab:orange", "joint": "tab:green"}
fig, ax = plt.subplots(figsize=(7.5, 3.8))
for y, (name, row) in enumerate(table.iterrows()):
    colour = colours[name] if name in colours else colours[name.split()[0]]
    ax.errorbar(row[f"ndcg@{K}"], y, xerr=2 * row["NDCG se"], fmt="o", color=colour, capsize=4, markersize=6)
ax.set_yticks(np.arange(len(table)), table.index)
ax.set_ylim(len(table) - 0.5, -0.5)
ax.set_xlabel(f"NDCG@{K} on held-out ratings (dot: mean over users; bar: ± 2 se)")
ax.set_title(f"{DATASET}: top-{K} lists of every model")
fig.tight_layout()
plt.show()

# %% [markdown]
# The same users are scored by every system, so differences are paired: per user, NDCG of
# one list minus NDCG of the other, mean ± standard error.

# %%
def paired(a, b):
    pa, pb = results[a].per_user.set_index("user"), results[b].per_user.set_index("user")
    d = (pa["ndcg"] - pb["ndcg"]).dropna()
    return d.mean(), d.std(ddof=1) / np.sqrt(len(d))


comparisons = [("joint (mean)", "choice model (mean)"), ("joint (mean)", "rating model (mean)"),
               ("choice model (mean)", "most popular"), ("choice model (lower)", "choice model (mean)"),
               ("choice model (thompson)", "choice model (mean)")]
diffs = pd.DataFrame([(a, b, *paired(a, b)) for a, b in comparisons],
                     columns=["system", "minus", f"mean ΔNDCG@{K}", "se"])
diffs["z"] = diffs[f"mean ΔNDCG@{K}"] / diffs["se"]
print(diffs.to_string())

# %% [markdown]
# ## 3. Is P(chosen) calibrated?
#
# `bayesmf.choice_reliability` takes every held-out pair of the test users as a choice and
# every other pair they did not choose in training as a non-choice, bins the posterior-mean
# P(chosen) into 10 equal-width bins and compares each bin's mean prediction with the share
# actually chosen (± 2 binomial standard errors). On the diagonal, P(chosen) means what it
# says. ECE is the pair-weighted mean gap; the Brier score the mean squared error.
#
# What "chosen" means here: the held-out fold holds only part of each user's ratings (its
# share is printed below), so a pair that the model gives P(chosen) = p (as a share of *all*
# the user's choices) is chosen *in the test fold* with a smaller probability. A curve below
# the diagonal by a roughly constant factor says the ranking is right and the scale is that
# of the training choices.

# %%
t0 = time.perf_counter()
test_share = test.n_ratings / (train.n_ratings + test.n_ratings)
print(f"the held-out fold holds {test_share:.0%} of the ratings")
reliability = bayesmf.choice_reliability(choice_fit, test, n_bins=10)
STEPS["reliability of P(chosen)"] = time.perf_counter() - t0
print(reliability.table.to_string())
print(f"ECE {reliability.ece:.4f}, Brier {reliability.brier:.4f}, over {reliability.table.attrs['n_pairs']:,} pairs "
      f"({reliability.table.attrs['n_positive']:,} held-out choices, {reliability.table.attrs['n_users']} users)")
base_rate = reliability.table.attrs["n_positive"] / reliability.table.attrs["n_pairs"]
fig, ax = plt.subplots(figsize=(5.0, 5.0))
plot_choice_reliability(reliability, ax=ax, label="choice model")
ax.axhline(base_rate, color="tab:red", linewidth=0.8, linestyle=":", label=f"base rate {base_rate:.3f}")
ax.legend(loc="upper left", fontsize=8)
ax.set_title(f"Reliability of P(chosen) on held-out choices\n{DATASET}", fontsize=11)
plt.show()

# %% [markdown]
# ## 4. P(chosen) with a horizon: "will they pick it among their next n?"
#
# A probability of a *future* choice needs a horizon: the more a user will choose, the more
# likely any one movie is among their picks. `bayesmf.p_chosen_within(fit, n_next)` spreads
# the user's next `n_next` choices over the movies they have not chosen, in proportion to
# P(chosen), or to a calibrated P(chosen) whose *shape* `bayesmf.learn_choice_calibration`
# learns: it holds out 20 % of the training choices, fits the same choice model on the rest
# (a second Gibbs fit, its verdict printed) and maps P(chosen) to the share of held-out
# choices by isotonic regression.
#
# To check it on the test fold, the horizon of each test user is their number of held-out
# choices (`choice_reliability(..., horizon="held-out")`): that count is what the split
# holds out, stated here rather than predicted.

# %%
t0 = time.perf_counter()
with warnings.catch_warnings():  # a budget stop warns; its verdict is printed below instead
    warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
    calibrator = bayesmf.learn_choice_calibration(bayesmf.PMF(n_factors=K, likelihood="implicit"), choices,
                                                  holdout=0.2, random_seed=SEED, progressbar=False, **GIBBS)
STEPS["fit: calibration (second choice fit)"] = time.perf_counter() - t0
calibration_ok = "All checks passed" in str(calibrator.info["verdict"])
verdicts["calibration fit"] = calibration_ok
print(f"calibration fit: {'passed' if calibration_ok else 'FAILED'}: {calibrator.info['verdict']}")
print(f"learned on {calibrator.info['n_pairs']:,} held-out pairs ({calibrator.info['n_choices']:,} choices), "
      f"{len(calibrator.knots)} knots")
t0 = time.perf_counter()
horizon = {
    "P(among next n) from P(chosen)": bayesmf.choice_reliability(choice_fit, test, horizon="held-out"),
    "P(among next n), calibrated shape": bayesmf.choice_reliability(choice_fit, test, horizon="held-out",
                                                                    calibration=calibrator),
}
STEPS["reliability with a horizon"] = time.perf_counter() - t0
summary = pd.DataFrame({"ECE": [reliability.ece] + [r.ece for r in horizon.values()],
                        "Brier": [reliability.brier] + [r.brier for r in horizon.values()]},
                       index=["P(chosen) as fitted", *horizon])
print(summary.to_string())
fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.8))
calibrator.plot(ax=axes[0])
axes[0].set_title("The learned map (second fit, 20 % held out)", fontsize=10)
plot_choice_reliability(reliability, ax=axes[1], label="as fitted")
for label, rel in horizon.items():
    plot_choice_reliability(rel, ax=axes[1], label=label)
handles = dict(zip(*reversed(axes[1].get_legend_handles_labels()), strict=True))  # each diagonal once
axes[1].legend(handles.values(), handles.keys(), loc="upper left", fontsize=7)
axes[1].set_title(f"Reliability on held-out choices, {DATASET}", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# For the first user shown above: the ten movies most likely among their next 10 picks, with
# the fitted P(chosen) beside the calibrated P(among the next 10).

# %%
first_user = next(iter(user_lists))
within = bayesmf.p_chosen_within(choice_fit, n_next=10, users=[first_user], calibration=calibrator).head(10)
within["title"] = titles.reindex(within["item"]).to_numpy()
print(within.to_string(index=False))

# %% [markdown]
# ## Take-aways
#
# Computed from the numbers above (re-run the notebook and they follow). How the text was
# checked: every sentence of the markdown was read against the outputs of the full run; the
# claims that depend on the run (verdicts, which list is best, calibration) are printed from
# the computed values.

# %%
for name, ok in verdicts.items():
    print(f"- {name}: diagnose() {'passed' if ok else 'FAILED'}"
          + ("." if ok else ": the numbers built on it below are not results."))
ndcg = table[f"ndcg@{K}"]
se = table["NDCG se"]
best = ndcg.idxmax()
pop = ndcg["most popular"]
print(f"- best list by NDCG@{K}: {best}, {ndcg[best]:.3f} ± {se[best]:.3f} (most popular: {pop:.3f} ± {se['most popular']:.3f}).")
for name in table.index.drop("most popular"):
    side = "above" if ndcg[name] > pop else "below"
    print(f"- {name}: {ndcg[name]:.3f}, {side} most popular by {ndcg[name] - pop:+.3f}.")
for _, r in diffs.iterrows():
    verdict = "better" if r["z"] > 2 else "worse" if r["z"] < -2 else "not distinguishable (|z| <= 2)"
    print(f"- {r['system']} vs {r['minus']}: ΔNDCG {r[f'mean ΔNDCG@{K}']:+.3f} ± {r['se']:.3f} per user: {verdict}.")
overlap = np.mean([len(set(t["joint"]) & set(t["choice model"])) / K for t in user_lists.values()])
print(f"- the joint list shares {overlap:.0%} of its movies with the choice model's list for the users shown.")
below = (reliability.table["observed"] < reliability.table["mean_predicted"]).mean()
print(f"- P(chosen): ECE {reliability.ece:.3f}, Brier {reliability.brier:.3f}; the observed test-fold frequency is "
      f"below the prediction in {below:.0%} of the bins"
      + (f" (P(chosen) is read on the scale of all of a user's choices; the test fold holds {test_share:.0%} of them)."
         if below > 0.5 else "."))
best_h = min(horizon, key=lambda k: horizon[k].ece)
print(f"- with a horizon (each test user's number of held-out choices): ECE {horizon[best_h].ece:.4f} for "
      f"{best_h}, against {reliability.ece:.4f} for P(chosen) as fitted.")
gaps = horizon[best_h].table.assign(gap=lambda t: t["observed"] - t["mean_predicted"])
worst = gaps.loc[(gaps["gap"].abs() / gaps["se"].where(gaps["se"] > 0)).idxmax()]
print(f"  Its largest gap in standard errors: predicted {worst['mean_predicted']:.3f}, observed "
      f"{worst['observed']:.3f} ± {2 * worst['se']:.3f} (2 se, {int(worst['n']):,} pairs); ECE weighs bins by their "
      "pairs, and most pairs sit in the lowest bin.")
order = reliability.table["observed"].is_monotonic_increasing
print(f"- the observed frequency {'rises' if order else 'does not rise'} monotonically with P(chosen) over the bins: "
      f"{'the ranking by P(chosen) is consistent with held-out choices' if order else 'check the curve'}.")
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
