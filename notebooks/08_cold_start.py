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
# # Cold start: recommending a film nobody has rated yet, with and without its features
#
# **For:** anyone who has to place new items (or new users) in a recommendation list before
# the first rating arrives, and wants to know what knowing the item's genres and year buys.
#
# A model without side information knows nothing about an item without ratings: it predicts
# it from the **population prior**, the spread of all items around their common mean. With
# features, each item's factors and bias have a prior mean that depends on them,
# $V_j \sim \mathcal N(m_V + W_V^\top z_j, \Lambda_V^{-1})$ (and $U_i$ likewise with the
# user's features $x_i$); $W$ is learned from the items that do have ratings, and a new item
# is predicted from its **feature prior**. Its interval says how much the features know.
#
# Two fits of the same training ratings, by Gibbs run until the verdict passes, with the
# package's defaults except the budget: `max_sweeps=20_000` per chain, twice the default.
# At the default 10,000 the fit with features stopped at its budget just short of passing
# (on 2026-12-03: 2 of 405 monitored quantities at R-hat 1.011, one training pair's bulk ESS
# 315), and a failing verdict would make its numbers provisional; the fit without features
# converges long before either budget.
#
# 1. **with features**: `PMF(n_factors=10)`, the default prior (each side's factor means and
#    one scale per factor, which the features' regression extends), on
#    `train.with_features(users, items)`: users' age, gender and occupation, items' genres
#    and release year (`bayesmf.movielens_features`);
# 2. **without features**: the same spec on the same ratings.
#
# A share of the items is held out whole: all their ratings go to the test set, so the fits
# have never seen them ("cold items"). We ask: how well are the cold items' held-out ratings
# predicted from their features vs from the population prior (RMSE, 90 % interval
# coverage), and what does that change in one user's recommendation list?
#
# Data: MovieLens 100K, fold u1. The same cold-start comparison beside myFM:
# `benchmarks/bench_features.py` (whose cold split this notebook repeats).

# %%
import os
import time

# The test suite sets BAYESMF_FAST=1: a small subset and short fixed-length chains.
FAST = os.environ.get("BAYESMF_FAST") == "1"
SEED = 2026
SPLIT_SEED = 0  # the cold split of benchmarks/bench_features.py (its default --seed)
COLD_FRACTION = 0.1  # share of the rated items held out whole (its default --cold-fraction)
# full mode: run until converged, within twice the default budget (why: the markdown above)
GIBBS = dict(chains=2, tune=40, draws=40) if FAST else dict(max_sweeps=20_000)
K = 10
PROB = 0.9
N_BOOT = 200 if FAST else 2000  # bootstrap over cold items, for standard errors
STEPS: dict[str, float] = {}  # wall seconds of each step, printed at the end

# %%
# %config InlineBackend.figure_format = "png"
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesmf

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", None)
logging.getLogger("pymc").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
if FAST:
    print("FAST mode: 300 users, short chains (2 x 40 draws): every number below is a smoke test, not a result.")

# %% [markdown]
# ## Data: the cold split
#
# As in `benchmarks/bench_features.py` (both call `bayesmf.cold_split`): the u1 training and test ratings are pooled, a
# random tenth of the rated items is drawn (seed 0), and every rating of those items goes
# to the cold test set; the fits train on all the other ratings. The cold items are then
# unknown to both fits. `with_features` keeps the feature rows of ids without ratings, so the
# featured fit can predict them from their feature prior (`bayesmf.predictive.cold`); the
# fit without features predicts them from the population prior.

# %%
t0 = time.perf_counter()
try:
    # fast mode never downloads; a full run downloads ML-100K once if it is not on disk
    train, test = bayesmf.load_movielens("ml-100k", "u1", download=not FAST)
    user_features, item_features = bayesmf.movielens_features("ml-100k", download=not FAST)
    titles = bayesmf.movielens_items("ml-100k").set_index("item")["title"]
except (FileNotFoundError, OSError) as err:
    print(f"ML-100K is not available ({err.__class__.__name__}); using the bundled ml-latest-small (no user features)")
    train, test = bayesmf.train_test_split(bayesmf.load_movielens("ml-latest-small"), test_size=0.2, seed=SEED)
    user_features, item_features = bayesmf.movielens_features("ml-latest-small")
    titles = bayesmf.movielens_items().set_index("item")["title"]
if FAST:  # the ratings of 300 users: a smoke test that runs in seconds
    train, test = (d.subset(np.flatnonzero(np.asarray(d.user_idx) < 300)) for d in (train, test))

# every rating of a seeded tenth of the rated items goes to the cold test set; the rest is
# re-encoded, so the fits never see the cold items (`bayesmf.cold_split`)
plain, cold, held = bayesmf.cold_split((train, test), side="item", fraction=COLD_FRACTION, seed=SPLIT_SEED)
warm = plain.to_dataframe()  # the training ratings, raw ids
featured = plain.with_features(user_features, item_features)
print("training ratings, without features:", plain)
print("training ratings, with features:   ", featured)
print(f"cold items: {len(held)} of {plain.n_items + len(held)} rated items, {len(cold)} held-out ratings "
      f"(per item: median {cold.groupby('item').size().median():.0f}, max {cold.groupby('item').size().max()})")
STEPS["load data, cold split"] = time.perf_counter() - t0

# %% [markdown]
# ## The two fits, each with its verdict
#
# Each fit is diagnosed on what it identifies (R-hat and ESS of the scales, the level and
# monitored predictions); its verdict is printed beside it.

# %%
spec = bayesmf.PMF(n_factors=K)
fits, verdicts = {}, {}
for name, data in (("with features", featured), ("without features", plain)):
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a budget stop warns; its verdict is printed below instead
        warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
        fits[name] = spec.fit(data, method="gibbs", random_seed=SEED, progressbar=False, **GIBBS)
    STEPS[f"fit: {name}"] = time.perf_counter() - t0
    diagnosis = fits[name].diagnose(warn=False)
    verdicts[name] = diagnosis.ok
    info = fits[name].info
    print(f"{name}: {info['chains']} chains x {info['kept_draws']} draws ({info['stopped_by']}; the posterior "
          f"holds one in {info['draw_spacing']}: {info['draws']} per chain), {STEPS[f'fit: {name}']:.0f} s")
    print(f"  verdict: {diagnosis.verdict}")
if FAST:
    print("(fast mode: short chains, so the verdicts are not expected to pass; run the notebook in full.)")

# %% [markdown]
# ## 1. The cold items' held-out ratings: feature prior vs population prior
#
# `predict` on pairs whose item the fit does not know (`unknown="prior"`, the default): with
# item features, from the item's feature prior; without, from the population prior. Two
# kinds of interval:
#
# - **predictive** (`kind="predictive"`, the default): the rating the user would give,
#   censored to the 1-5 scale; its 90 % interval should hold about 90 % of the held-out
#   ratings (coverage);
# - **expected** (`kind="expected"`): the mean rating the user would give, epistemic only;
#   its width is what the model does not know about the item (and the user), so this is the
#   interval that says how much the features know.
#
# Standard errors come from a bootstrap over the cold items (their ratings are resampled
# together: the errors of one item's ratings are correlated). The last row is the difference
# with features minus without, paired, on the same bootstrap samples.

# %%
t0 = time.perf_counter()
preds, expected = {}, {}
for name, fit in fits.items():
    preds[name] = fit.predict(cold, prob=PROB, random_seed=SEED, progressbar=False)
    expected[name] = fit.predict(cold, prob=PROB, kind="expected", random_seed=SEED, progressbar=False)
assert all(p["new_item"].all() for p in preds.values()), "every cold pair is predicted as a new item"
rating = cold["rating"].to_numpy()
item_codes, item_of_pair = np.unique(cold["item"].to_numpy(), return_inverse=True)
n_items = len(item_codes)


def per_item_sums(name: str) -> np.ndarray:
    """Per cold item: number of ratings, sum of squared errors, ratings inside the interval, sum of widths."""
    p, e = preds[name], expected[name]
    cols = [np.ones_like(rating), (p["mean"].to_numpy() - rating) ** 2,
            ((rating >= p["lower"].to_numpy()) & (rating <= p["upper"].to_numpy())).astype(float),
            (e["upper"] - e["lower"]).to_numpy()]
    return np.stack([np.bincount(item_of_pair, weights=c, minlength=n_items) for c in cols], axis=1)


def scores_of(sums: np.ndarray) -> np.ndarray:
    """RMSE, coverage and mean expected-interval width from summed per-item columns (last axis)."""
    n = sums[..., 0]
    return np.stack([np.sqrt(sums[..., 1] / n), sums[..., 2] / n, sums[..., 3] / n], axis=-1)


sums = {name: per_item_sums(name) for name in fits}
boot_idx = np.random.default_rng(SEED).integers(0, n_items, size=(N_BOOT, n_items))
boot = {name: scores_of(s[boot_idx].sum(axis=1)) for name, s in sums.items()}  # (N_BOOT, 3)
point = {name: scores_of(s.sum(axis=0)) for name, s in sums.items()}
metrics = ["RMSE", f"{PROB:.0%} coverage", "expected-interval width"]
rows = {}
for name in fits:
    rows[name] = {"verdict": "passes" if verdicts[name] else "FAILS"}
    for j, m in enumerate(metrics):
        rows[name] |= {m: point[name][j], f"se {m}": boot[name][:, j].std(ddof=1)}
diff = boot["with features"] - boot["without features"]
rows["with - without"] = {"verdict": ""}
for j, m in enumerate(metrics):
    rows["with - without"] |= {m: point["with features"][j] - point["without features"][j],
                               f"se {m}": diff[:, j].std(ddof=1)}
cold_table = pd.DataFrame(rows).T
STEPS["predict the cold items"] = time.perf_counter() - t0
print(f"{len(cold)} held-out ratings of {n_items} cold items; standard errors: {N_BOOT} bootstrap samples of items")
cold_table

# %% [markdown]
# ## 2. One cold film in one user's list
#
# The cold film with the most held-out ratings (a well-known one), and among its raters in
# the held-out set the user with a median number of training ratings. `recommend` ranks the
# user's unrated items, warm and cold together (`items=`: every item of the training data
# and the cold ones; the cold ones are flagged `new_item`), by the posterior mean of the
# predicted rating, with its 90 % interval.

# %%
t0 = time.perf_counter()
film = cold["item"].value_counts().idxmax()
raters = cold.loc[cold["item"] == film, ["user", "rating"]].set_index("user")["rating"]
train_counts = warm.groupby("user").size().reindex(raters.index).dropna()
user = train_counts.index[int(np.argmin(np.abs(train_counts.to_numpy() - train_counts.median())))]
candidates = list(plain.items.classes) + sorted(held)
print(f"cold film: {titles.get(film, film)} (item {film}), {len(raters)} held-out ratings, "
      f"mean {raters.mean():.2f}")
print(f"user {user}: {int(train_counts[user])} training ratings; rated this film {raters[user]:.0f} (held out)")
print(f"genres and year: {item_features.loc[film, 'genres']}, {item_features.loc[film, 'year']:.0f}")
full_lists = {}
for name, fit in fits.items():
    rec = fit.recommend(user, n=len(candidates), items=candidates, random_seed=SEED)
    rec.insert(2, "title", rec["item"].map(titles).str.slice(0, 45))
    full_lists[name] = rec
N_TOP = 10
for name, rec in full_lists.items():
    print(f"\n{name} ({'passes' if verdicts[name] else 'FAILS'} its verdict): top {N_TOP} of "
          f"{len(rec)} unrated items, warm and cold")
    print(rec.head(N_TOP)[["rank", "title", "mean", "lower", "upper", "new_item"]].to_string(index=False))

# %% [markdown]
# Where the film stands in each list, and the best-placed cold items (the user's "new
# releases" shelf, with intervals): without features, every cold item gets the same prior for
# its factors and bias, so their order says nothing about the items (their means differ by
# Monte Carlo noise only); with features, the items' genres and year order them. Below the
# shelves: how this user rated, in training, the warm films that share the cold film's genres.
# That is one clue, not the whole story: the feature prior adds the genres' and the year's
# effect on every user (through the item's bias) to how this user's factors line up with the
# factors such films have.

# %%
where = {}
for name, rec in full_lists.items():
    row = rec.loc[rec["item"] == film].iloc[0]
    where[name] = row
    n_cold_top = int(rec.head(N_TOP)["new_item"].sum())
    print(f"{name}: {row['title']} ranks {row['rank']} of {len(rec)}, predicted {row['mean']:.2f} "
          f"(90% interval {row['lower']:.2f}-{row['upper']:.2f}); held-out rating {raters[user]:.0f}; "
          f"cold items in the top {N_TOP}: {n_cold_top}")
    print("  the 5 best-placed cold items:")
    print(rec.loc[rec["new_item"]].head(5)[["rank", "title", "mean", "lower", "upper"]].to_string(index=False))
user_rated = warm.loc[warm["user"] == user].join(item_features["genres"], on="item")
genre_rows = []
for genre in item_features.loc[film, "genres"]:
    r = user_rated.loc[user_rated["genres"].map(lambda g, genre=genre: genre in g), "rating"]
    genre_rows.append({"genre": genre, "films the user rated": len(r), "their mean rating": r.mean()})
genre_table = pd.DataFrame(genre_rows)
print(f"\nuser {user}'s training ratings: {len(user_rated)} films, mean {user_rated['rating'].mean():.2f}; "
      "by the cold film's genres:")
print(genre_table.to_string(index=False))
STEPS["one user's lists"] = time.perf_counter() - t0

# %% [markdown]
# ## 3. Do the features sort the cold items?
#
# For each cold item with at least 5 held-out ratings: the mean of its predicted ratings
# (over its held-out pairs) against the mean rating it actually got, without features (left)
# and with (right), on shared axes. On the diagonal, the prediction knows how well liked the
# item is; a flat cloud means it does not. Without features the points still spread a little:
# every cold item gets the same prior, so the spread comes only from who rated it (their own
# biases and tastes). Dot size: the item's number of held-out ratings.

# %%
per_item = cold.assign(**{name: p["mean"].to_numpy() for name, p in preds.items()})
per_item = per_item.groupby("item").agg(n=("rating", "size"), observed=("rating", "mean"),
                                        **{name: (name, "mean") for name in fits})
shown = per_item[per_item["n"] >= 5]
fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.5), sharex=True, sharey=True)
corr = {}
for ax, name in zip(axes, ["without features", "with features"], strict=True):
    corr[name] = float(np.corrcoef(shown[name], shown["observed"])[0, 1])
    ax.scatter(shown["observed"], shown[name], s=8 + shown["n"], alpha=0.5)
    ax.plot([1, 5], [1, 5], color="grey", lw=1, ls="--", label="predicted = observed")
    if film in shown.index:
        ax.scatter([shown.loc[film, "observed"]], [shown.loc[film, name]], s=60, facecolors="none",
                   edgecolors="red", label=str(titles.get(film, film))[:30])
    ax.set_title(f"{name}: correlation {corr[name]:.2f}")
    ax.set_xlabel("observed mean rating of the cold item")
    ax.legend(loc="upper left", fontsize=8)
axes[0].set_ylabel("mean predicted rating")
fig.tight_layout()
print(f"{len(shown)} cold items with at least 5 held-out ratings; spread (sd) of their mean predictions: "
      + ", ".join(f"{name} {shown[name].std():.3f}" for name in fits) + f"; of the observed means {shown['observed'].std():.3f}")

# %% [markdown]
# ## Take-aways
#
# Computed from the numbers above (re-run the notebook and they follow). The one film of
# section 2 is an example, one user and one rating; the evidence is the table of section 1
# (every cold item, its ratings resampled together for the standard errors).

# %%
t = cold_table
d_rmse, se_rmse = t.loc["with - without", "RMSE"], t.loc["with - without", "se RMSE"]
print(f"- RMSE on the cold items' held-out ratings: with features {t.loc['with features', 'RMSE']:.3f}, without "
      f"{t.loc['without features', 'RMSE']:.3f}; difference {d_rmse:+.3f} (se {se_rmse:.3f}), "
      + ("the features help by more than 2 se." if d_rmse < -2 * se_rmse else
         "the features hurt by more than 2 se." if d_rmse > 2 * se_rmse else "within 2 se of no difference."))
cov = f"{PROB:.0%} coverage"
print(f"- {cov} of the predictive intervals: with features {t.loc['with features', cov]:.3f} "
      f"(se {t.loc['with features', 'se ' + cov]:.3f}), without {t.loc['without features', cov]:.3f} "
      f"(se {t.loc['without features', 'se ' + cov]:.3f}); nominal {PROB:.2f}.")
w = "expected-interval width"
print(f"- the expected rating's {PROB:.0%} interval is {t.loc['with features', w]:.2f} wide with features and "
      f"{t.loc['without features', w]:.2f} without: the features "
      + ("narrow" if t.loc["with - without", w] < 0 else "widen") + " what the model does not know about a new item.")
print(f"- per cold item, the correlation of mean prediction with observed mean rating is {corr['with features']:.2f} "
      f"with features and {corr['without features']:.2f} without.")
r_with, r_without = where["with features"], where["without features"]
move = int(r_without["rank"]) - int(r_with["rank"])
err = {name: abs(row["mean"] - raters[user]) for name, row in where.items()}
closer = min(err, key=err.get)
narrower = (r_without["upper"] - r_without["lower"]) - (r_with["upper"] - r_with["lower"])
genre_gap = genre_table["their mean rating"].mean() - user_rated["rating"].mean()
print(f"- {r_with['title']} for user {user}: rank {r_with['rank']} with features (predicted {r_with['mean']:.2f}, "
      f"interval {r_with['lower']:.2f}-{r_with['upper']:.2f}) vs {r_without['rank']} without ({r_without['mean']:.2f}, "
      f"{r_without['lower']:.2f}-{r_without['upper']:.2f}), of the user's {len(full_lists['with features'])} unrated "
      f"items: its features move it {'up' if move > 0 else 'down'} {abs(move)} places. The user's own ratings of "
      f"films of its genres average (mean over its genres) {genre_gap:+.2f} against the user's mean. The held-out rating "
      f"{raters[user]:.0f} is closer to the prediction {closer} (errors: with {err['with features']:.2f}, "
      f"without {err['without features']:.2f}); its interval with features is {abs(narrower):.2f} "
      + ("narrower." if narrower > 0 else "wider."))
if not all(verdicts.values()):
    failed = [name for name, ok in verdicts.items() if not ok]
    print(f"- diagnose() did not pass for: {', '.join(failed)}; the numbers above are not results"
          + (" (FAST mode: short chains)." if FAST else "; run longer chains."))
else:
    print("- both fits passed diagnose(): the numbers above come from converged posteriors.")

# %% [markdown]
# ## How this run was made

# %%
from bayesmf.report import run_info

print(run_info(STEPS))
