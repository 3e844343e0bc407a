"""Tests of bayesmf.predict on fake posteriors (no sampler needed) and on exact posteriors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import exact_user_posterior, fake_result, fake_train, known_truth_result
from scipy import stats
from scipy.optimize import brentq
from scipy.special import expit, ndtr, ndtri

from bayesmf.data import RatingsData
from bayesmf.datasets import simulate
from bayesmf.model import ordinal_probs
from bayesmf.predict import predict, predict_draws, predict_proba
from bayesmf.spec import PMF

COLUMNS = ["user", "item", "rating", "mean", "sd", "median", "lower", "upper", "new_user", "new_item"]


@pytest.fixture(scope="module")
def post():
    return fake_result(PMF(n_factors=3), n_users=25, n_items=15, n_draws=40, seed=1)


@pytest.fixture(scope="module")
def fixed_map():
    return fake_result(PMF(n_factors=3, priors="fixed"), n_users=25, n_items=15, method="map", seed=2)


def _eta(result, uidx, iidx):
    """Latent scores (S, P) computed directly from the posterior group (independent of the kernels)."""
    p = result.posterior
    U = p["U"].values.reshape(-1, *p["U"].shape[2:])[:, uidx].astype(float)
    V = p["V"].values.reshape(-1, *p["V"].shape[2:])[:, iidx].astype(float)
    eta = np.einsum("spk,spk->sp", U, V)
    if result.spec.biases:
        eta = eta + p["user_bias"].values.reshape(-1, p["user_bias"].shape[-1])[:, uidx]
        eta = eta + p["item_bias"].values.reshape(-1, p["item_bias"].shape[-1])[:, iidx]
        if "mu" in p:
            eta = eta + p["mu"].values.reshape(-1, 1)
    return eta


# -- structure ------------------------------------------------------------------------------
def test_columns_dtypes_and_order(post):
    test = post.train.subset(np.arange(12))
    out = predict(post, test, threshold=4)
    assert list(out.columns) == [*COLUMNS[:8], "p_at_least", *COLUMNS[8:]]
    assert len(out) == 12
    for col in ("mean", "sd", "median", "lower", "upper", "p_at_least"):
        assert out[col].dtype == np.float64
    assert out["new_user"].dtype == bool and out["new_item"].dtype == bool
    np.testing.assert_array_equal(out["user"], test.users.to_raw(test.user_idx))
    np.testing.assert_array_equal(out["rating"], test.rating)
    assert (out["lower"] <= out["median"]).all() and (out["median"] <= out["upper"]).all()
    assert ((out["p_at_least"] >= 0) & (out["p_at_least"] <= 1)).all()
    assert out.attrs["prob"] == 0.9 and out.attrs["kind"] == "predictive"
    assert not out["new_user"].any()


def test_dataframe_input_custom_columns_and_no_rating(post):
    df = post.train.to_dataframe().head(6).rename(columns={"user": "uid", "item": "iid"})
    before = df.copy()
    out = predict(post, df.drop(columns="rating"), user_col="uid", item_col="iid")
    assert "rating" not in out.columns and list(out["user"]) == list(df["uid"])
    pd.testing.assert_frame_equal(df, before)  # caller's frame untouched
    same = predict(post, post.train.subset(np.arange(6)))
    np.testing.assert_allclose(out["mean"], same["mean"])


def test_other_encoders_are_reencoded_through_raw_ids(post):
    df = post.train.to_dataframe().iloc[[3, 1, 7]]
    other = RatingsData.from_dataframe(df, user="user", item="item", rating="rating", scale=(1, 5))
    assert not other.users.equals(post.train.users)
    a = predict(post, other)
    b = predict(post, df)
    np.testing.assert_allclose(a["mean"].to_numpy(), b.set_index(["user", "item"]).loc[list(zip(a["user"], a["item"], strict=True)), "mean"].to_numpy())


def test_expected_matches_draw_summaries(post):
    test = post.train.subset(np.arange(10))
    out = predict(post, test, kind="expected", prob=0.8, clip=False)
    eta = _eta(post, test.user_idx, test.item_idx)
    np.testing.assert_allclose(out["mean"], eta.mean(0), rtol=1e-6)
    np.testing.assert_allclose(out["sd"], eta.std(0, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(out["lower"], np.quantile(eta, 0.1, axis=0), rtol=1e-6)
    np.testing.assert_allclose(out["upper"], np.quantile(eta, 0.9, axis=0), rtol=1e-6)
    draws = predict_draws(post, test, kind="expected", clip=False)
    assert draws.shape[1] == 10
    np.testing.assert_allclose(np.sort(draws[: eta.shape[0]], 0), np.sort(eta, 0), rtol=1e-6)


def test_predictive_normal_mixture_is_exact(post):
    test = post.train.subset(np.arange(8))
    out = predict(post, test, prob=0.9, clip=False, threshold=3.5)
    eta = _eta(post, test.user_idx, test.item_idx)
    sigma = post.posterior["sigma"].values.reshape(-1)
    np.testing.assert_allclose(out["mean"], eta.mean(0), rtol=1e-9)
    np.testing.assert_allclose(out["sd"], np.sqrt((sigma**2).mean() + eta.var(0)), rtol=1e-6)
    for p in range(8):

        def cdf(x, p=p):
            return ndtr((x - eta[:, p]) / sigma).mean()

        for col, q in (("lower", 0.05), ("median", 0.5), ("upper", 0.95)):
            root = brentq(lambda x, q=q, cdf=cdf: cdf(x) - q, -20, 30, xtol=1e-13)
            assert out[col].iloc[p] == pytest.approx(root, abs=1e-7)
        assert out["p_at_least"].iloc[p] == pytest.approx(1 - cdf(3.5), abs=1e-10)


@pytest.mark.parametrize("shape", ["skewed", "bimodal", "heavy"])
def test_mixture_quantiles_are_exact_far_from_normal(shape):
    """The kernel's quantiles are the roots of the mixture CDF also where its Cornish-Fisher
    starting point is poor (strong skew, two modes, a heavy tail)."""
    from bayesmf import _kernels_predict as kern

    rng = np.random.default_rng(3)
    n_comp = 400
    if shape == "skewed":
        means = 3.0 + rng.standard_exponential(n_comp) ** 2
    elif shape == "bimodal":
        means = np.where(rng.random(n_comp) < 0.3, 1.0, 6.0) + 0.05 * rng.standard_normal(n_comp)
    else:
        means = 3.0 + 0.5 * rng.standard_t(1.5, n_comp)
    sds = 0.2 + 0.05 * rng.random(n_comp)
    qs = np.array([0.005, 0.05, 0.25, 0.5, 0.75, 0.95, 0.995])
    out = [np.empty(1), np.empty(1), np.empty((1, len(qs))), np.empty(1)]
    kern.mixture_summary(means[None, :], sds, qs, ndtri(qs), 0.0, 10.0, False, np.nan, 1e-12, 1e-3, *out)

    def cdf(x):
        return ndtr((x - means) / sds).mean()

    lo, hi = means.min() - 10.0, means.max() + 10.0
    sd = np.sqrt((means**2 + sds**2).mean() - means.mean() ** 2)
    for j, q in enumerate(qs):
        root = brentq(lambda x, q=q: cdf(x) - q, lo, hi, xtol=1e-13)
        # the iteration stops at a correction below 1e-3 sd; Halley's step then leaves far less
        assert out[2][0, j] == pytest.approx(root, abs=1e-6 * sd), (shape, q)


def test_clipped_predictive_is_the_censored_mixture(post):
    test = post.train.subset(np.arange(5))
    out = predict(post, test, prob=0.95, clip=True, threshold=1.0)
    eta = _eta(post, test.user_idx, test.item_idx)
    sigma = post.posterior["sigma"].values.reshape(-1)[:, None]
    # censored moments by numerical integration over each component, averaged
    from scipy.integrate import simpson

    z = np.linspace(-10, 10, 20001)
    w = stats.norm.pdf(z)
    y = np.clip(eta[..., None] + sigma[..., None] * z, 1, 5)
    mean = simpson(y * w, x=z, axis=-1).mean(0)
    second = simpson(y**2 * w, x=z, axis=-1).mean(0)
    np.testing.assert_allclose(out["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(out["sd"], np.sqrt(second - mean**2), rtol=1e-5)
    raw = predict(post, test, prob=0.95, clip=False)
    np.testing.assert_allclose(out["lower"], np.clip(raw["lower"], 1, 5))
    np.testing.assert_allclose(out["upper"], np.clip(raw["upper"], 1, 5))
    assert (out["p_at_least"] == 1.0).all()  # P(r >= low) under censoring


def test_clip_keeps_everything_on_the_scale():
    # mean near the top of the scale, so unclipped draws leave it
    spec = PMF(n_factors=2)
    r = fake_result(spec, n_users=10, n_items=8, seed=3)
    shifted = r.posterior.copy()
    shifted["mu"] = shifted["mu"] + 1.8
    from bayesmf.posterior import make_posterior
    from bayesmf.results import FitResult

    draws = {k: shifted[k].values for k in shifted.data_vars}
    high = FitResult(spec, make_posterior(spec, r.train, draws), "gibbs", r.train)
    test = high.train
    for kind in ("predictive", "expected"):
        out = predict(high, test, kind=kind, clip=True, interval="hdi", random_seed=0)
        for col in ("mean", "median", "lower", "upper"):
            assert out[col].between(1, 5).all(), (kind, col)
    draws_c = predict_draws(high, test, clip=True, random_seed=0)
    assert draws_c.min() >= 1 and draws_c.max() <= 5
    draws_u = predict_draws(high, test, clip=False, random_seed=0)
    assert draws_u.max() > 5  # the check above is not vacuous
    assert predict(high, test, clip=False)["upper"].max() > 5


# -- chunking, seeds --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["predictive", "expected"])
@pytest.mark.parametrize("interval", ["eti", "hdi"])
def test_chunk_size_does_not_change_results(post, kind, interval):
    df = post.train.to_dataframe().head(20)
    df = pd.concat([df, pd.DataFrame({"user": [999, 100, 999], "item": [500, 888, 888], "rating": [3.0, 4.0, 2.0]})])
    outs = [
        predict(post, df, kind=kind, interval=interval, threshold=4, chunk_size=c, random_seed=5)
        for c in (None, 1, 7)
    ]
    for other in outs[1:]:
        pd.testing.assert_frame_equal(outs[0], other)
    d = [predict_draws(post, df, chunk_size=c, random_seed=5) for c in (None, 3)]
    np.testing.assert_array_equal(d[0], d[1])


def test_pair_results_do_not_depend_on_the_other_pairs(post):
    df = post.train.to_dataframe().head(10)
    full = predict(post, df, interval="hdi", random_seed=3)
    part = predict(post, df.iloc[[7, 2]], interval="hdi", random_seed=3)
    np.testing.assert_array_equal(full.iloc[[7, 2]][["lower", "upper"]].to_numpy(), part[["lower", "upper"]].to_numpy())


def test_seeded_draws_reproducible(post):
    df = post.train.to_dataframe().head(4)
    a = predict_draws(post, df, random_seed=11)
    b = predict_draws(post, df, random_seed=11)
    c = predict_draws(post, df, random_seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (80 * 13, 4)  # 80 posterior draws x ceil(1000 / 80)


# -- MAP plug-in ----------------------------------------------------------------------------
def test_map_plugin_intervals_are_analytic_normal_quantiles(fixed_map):
    test = fixed_map.train.subset(np.arange(15))
    out = predict(fixed_map, test, prob=0.8, clip=False, threshold=4.0)
    eta = _eta(fixed_map, test.user_idx, test.item_idx)[0]
    sigma = float(fixed_map.posterior["sigma"].values.reshape(-1)[0])
    z = stats.norm.ppf(0.9)
    np.testing.assert_allclose(out["mean"], eta, rtol=1e-12)
    np.testing.assert_allclose(out["sd"], sigma, rtol=1e-10)
    np.testing.assert_allclose(out["lower"], eta - z * sigma, atol=1e-9)
    np.testing.assert_allclose(out["upper"], eta + z * sigma, atol=1e-9)
    np.testing.assert_allclose(out["median"], eta, atol=1e-9)
    # whole stars: at least 4 typed stars is y >= 3.5 (tests/test_threshold_cut.py)
    np.testing.assert_allclose(out["p_at_least"], stats.norm.sf(3.5, eta, sigma), atol=1e-12)
    hdi = predict(fixed_map, test, prob=0.8, clip=False, interval="hdi")
    np.testing.assert_allclose(hdi[["lower", "upper"]], out[["lower", "upper"]], atol=1e-9)


def test_map_plugin_covers_normal_ratings_at_nominal_rate(fixed_map):
    # ratings drawn from the plug-in normal itself: coverage is binomial(n, prob)
    rng = np.random.default_rng(0)
    base = fixed_map.train.to_dataframe()
    df = base.sample(4000, replace=True, random_state=1).reset_index(drop=True)
    out = predict(fixed_map, df, prob=0.9, clip=False)
    sigma = float(fixed_map.posterior["sigma"].values.reshape(-1)[0])
    y = out["mean"].to_numpy() + sigma * rng.standard_normal(len(df))
    cover = np.mean((out["lower"] <= y) & (y <= out["upper"]))
    assert abs(cover - 0.9) < 4 * np.sqrt(0.9 * 0.1 / len(df))


def test_map_expected_is_zero_width(fixed_map):
    out = predict(fixed_map, fixed_map.train.subset(np.arange(5)), kind="expected", clip=False)
    assert (out["sd"] == 0).all()
    np.testing.assert_array_equal(out["lower"], out["mean"])
    np.testing.assert_array_equal(out["upper"], out["mean"])


def test_logistic_link_scales_mean_and_noise():
    spec = PMF(n_factors=2, priors="fixed", link="logistic")
    r = fake_result(spec, n_users=8, n_items=6, method="map", seed=4)
    test = r.train.subset(np.arange(6))
    out = predict(r, test, prob=0.9, clip=False)
    eta = _eta(r, test.user_idx, test.item_idx)[0]
    sigma_unit = float(r.posterior["sigma"].values.reshape(-1)[0])
    mean = 1 + 4 * expit(eta)
    np.testing.assert_allclose(out["mean"], mean, rtol=1e-9)
    np.testing.assert_allclose(out["upper"] - out["lower"], 2 * stats.norm.ppf(0.95) * 4 * sigma_unit, rtol=1e-8)


# -- ordinal ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ordinal():
    return fake_result(PMF(n_factors=2, likelihood="ordinal"), n_users=12, n_items=9, seed=5)


def test_ordinal_probabilities_sum_to_one_and_match_the_model(ordinal):
    test = ordinal.train.subset(np.arange(10))
    proba = predict_proba(ordinal, test)
    cols = [f"p_{k}" for k in (1, 2, 3, 4, 5)]
    assert list(proba.columns) == ["user", "item", "rating", *cols, "new_user", "new_item"]
    P = proba[cols].to_numpy()
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-12)
    assert (P >= 0).all()
    eta = _eta(ordinal, test.user_idx, test.item_idx)
    cut = ordinal.posterior["cutpoints"].values.reshape(-1, 4)
    expected = ordinal_probs(eta.T, cut[None]).mean(1)
    np.testing.assert_allclose(P, expected, atol=1e-12)
    out = predict(ordinal, test, threshold=4, prob=0.8)
    levels = np.arange(1, 6)
    np.testing.assert_allclose(out["mean"], P @ levels, atol=1e-12)
    np.testing.assert_allclose(out["p_at_least"], P[:, 3:].sum(1), atol=1e-12)
    cdf = np.cumsum(P, 1)
    np.testing.assert_array_equal(out["lower"], levels[np.argmax(cdf >= 0.1 - 1e-12, axis=1)])
    assert set(np.unique(out[["lower", "median", "upper"]])) <= set(levels.tolist())


def test_ordinal_draws_follow_the_probabilities(ordinal):
    test = ordinal.train.subset(np.arange(3))
    P = predict_proba(ordinal, test)[[f"p_{k}" for k in range(1, 6)]].to_numpy()
    draws = predict_draws(ordinal, test, n_draws=20000, random_seed=1)
    for p in range(3):
        counts = np.array([(draws[:, p] == k).sum() for k in range(1, 6)])
        chi2 = stats.chisquare(counts, P[p] * counts.sum())
        assert chi2.pvalue > 1e-4


def test_ordinal_hdi_holds_prob_mass(ordinal):
    test = ordinal.train.subset(np.arange(10))
    P = predict_proba(ordinal, test)[[f"p_{k}" for k in range(1, 6)]].to_numpy()
    out = predict(ordinal, test, prob=0.7, interval="hdi")
    for p in range(10):
        lo, hi = int(out["lower"].iloc[p]), int(out["upper"].iloc[p])
        assert P[p, lo - 1 : hi].sum() >= 0.7 - 1e-12


def test_normal_predict_proba_bins_the_mixture(post):
    test = post.train.subset(np.arange(4))
    P = predict_proba(post, test)[[f"p_{k}" for k in range(1, 6)]].to_numpy()
    np.testing.assert_allclose(P.sum(1), 1, atol=1e-12)
    draws = predict_draws(post, test, n_draws=40000, random_seed=0, clip=True)
    freq = np.stack([(np.round(draws) == k).mean(0) for k in range(1, 6)], axis=1)
    np.testing.assert_allclose(P, freq, atol=0.015)


# -- unknown ids ----------------------------------------------------------------------------
def test_unknown_ids_prior_flags_and_raise(post):
    df = pd.DataFrame({"user": [100, 4242, 100], "item": [500, 500, 7777]})
    out = predict(post, df, random_seed=0)
    assert out["new_user"].tolist() == [False, True, False]
    assert out["new_item"].tolist() == [False, False, True]
    assert np.isfinite(out[["mean", "sd", "lower", "upper"]].to_numpy()).all()
    with pytest.raises(KeyError, match="4242"):
        predict(post, df, unknown="raise")
    with pytest.raises(KeyError, match="7777"):
        predict(post, df.iloc[[0, 2]], unknown="raise")


def test_prior_predictive_of_unknown_user_matches_closed_form():
    # fixed priors, MAP: eta of an unknown user on item j is N(mu + c_j, sb^2 + su^2 |V_j|^2)
    spec = PMF(n_factors=3, priors="fixed", sigma_u=0.4, sigma_bias=0.3, sigma=0.7)
    r = fake_result(spec, n_users=6, n_items=5, method="map", seed=6, sigma=0.7)
    df = pd.DataFrame({"user": ["new"] * 5, "item": r.train.items.classes})
    p = r.posterior
    V = p["V"].values[0, 0].astype(float)
    mean = float(p["mu"].values.ravel()[0]) + p["item_bias"].values[0, 0]
    sd_eta = np.sqrt(0.3**2 + 0.4**2 * (V**2).sum(1))
    exp = predict(r, df, kind="expected", clip=False, random_seed=1)
    pred = predict(r, df, clip=False, random_seed=1)
    n = 1000
    assert np.all(np.abs(exp["mean"] - mean) < 4 * sd_eta / np.sqrt(n))
    np.testing.assert_allclose(exp["sd"], sd_eta, rtol=0.12)
    np.testing.assert_allclose(pred["sd"], np.sqrt(sd_eta**2 + 0.7**2), rtol=0.08)
    assert exp["new_user"].all()


def test_no_training_rating_is_flagged():
    train = fake_train(6, 5, seed=0)
    keep = train.user_idx != 2
    sparse = train.subset(keep)
    r = fake_result(PMF(n_factors=2), train=sparse)
    out = predict(r, pd.DataFrame({"user": [102, 101], "item": [500, 500]}))
    assert out["new_user"].tolist() == [True, False]


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("prob", [0.0, 1.0, 1.5, -0.1])
def test_bad_prob(post, prob):
    with pytest.raises(ValueError, match=str(prob)):
        predict(post, post.train, prob=prob)


def test_bad_arguments_name_the_value(post):
    df = post.train.to_dataframe().head(3)
    with pytest.raises(ValueError, match="6"):
        predict(post, df, threshold=6)
    with pytest.raises(ValueError, match=r"0\.5"):
        predict(post, df, threshold=0.5)
    with pytest.raises(ValueError, match="'posterior'"):
        predict(post, df, kind="posterior")
    with pytest.raises(ValueError, match="'hpd'"):
        predict(post, df, interval="hpd")
    with pytest.raises(ValueError, match="'ignore'"):
        predict(post, df, unknown="ignore")
    with pytest.raises(ValueError, match="userId"):
        predict(post, df, user_col="userId")
    with pytest.raises(TypeError, match="list"):
        predict(post, [(100, 500)])
    with pytest.raises(ValueError, match="chunk_size"):
        predict(post, df, chunk_size=0)
    with pytest.raises(TypeError, match="threshold"):
        predict(post, df, threshold="4")
    with pytest.raises(ValueError, match="max_elements"):
        predict_draws(post, df, max_elements=100)


def test_options_object_and_its_checks(post):
    from bayesmf.options import PredictOptions

    df = post.train.to_dataframe().head(6)
    opts = PredictOptions(prob=0.8, kind="expected", interval="hdi", threshold=3, clip=False, random_seed=4)
    a = predict(post, df, options=opts)
    b = predict(post, df, prob=0.8, kind="expected", interval="hdi", threshold=3, clip=False, random_seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs
    # a keyword equal to its default or to the object's value is fine; another is an error
    pd.testing.assert_frame_equal(predict(post, df, prob=0.8, clip=True, options=opts), a)
    with pytest.raises(TypeError, match="kind='expected'"):
        predict(post, df, kind="expected", options=opts.replace(kind="predictive", prob=0.5))
    with pytest.raises(TypeError, match="PredictOptions"):
        predict(post, df, options={"prob": 0.8})
    d = predict_draws(post, df, options=PredictOptions(random_seed=3, clip=False))
    np.testing.assert_array_equal(d, predict_draws(post, df, random_seed=3, clip=False))
    np.testing.assert_array_equal(
        predict_proba(post, df, options=PredictOptions(chunk_size=2)).filter(like="p_"),
        predict_proba(post, df).filter(like="p_"),
    )
    for bad, match, error in (
        ({"prob": 1.0}, "prob", ValueError),
        ({"kind": "posterior"}, "'posterior'", ValueError),
        ({"interval": "hpd"}, "'hpd'", ValueError),
        ({"threshold": "4"}, "threshold", TypeError),
        ({"clip": "yes"}, "clip", TypeError),
        ({"unknown": "ignore"}, "'ignore'", ValueError),
        ({"chunk_size": 0}, "chunk_size", ValueError),
        ({"random_seed": -1}, "random_seed", ValueError),
        ({"random_seed": 1.5}, "random_seed", TypeError),
    ):
        with pytest.raises(error, match=match):
            PredictOptions(**bad)
    with pytest.raises(ValueError, match="threshold=9"):
        predict(post, df, options=PredictOptions(threshold=9))


def test_latent_scores_per_draw_match_the_definition(post):
    from bayesmf.latent import latent_scores_per_draw

    arr = post.arrays()
    uidx, iidx = post.train.user_idx[:9], post.train.item_idx[:9]
    got = latent_scores_per_draw(
        arr.U, arr.V, uidx, iidx, mu=arr.mu, user_bias=arr.user_bias, item_bias=arr.item_bias
    )
    np.testing.assert_allclose(got, _eta(post, uidx, iidx), rtol=1e-12, atol=1e-12)
    plain = latent_scores_per_draw(arr.U[:1], arr.V[:1], uidx, iidx, mu=2.0)
    dots = np.einsum("pk,pk->p", arr.U[0, uidx].astype(float), arr.V[0, iidx].astype(float))
    np.testing.assert_allclose(plain[0], 2.0 + dots, rtol=1e-12)
    with pytest.raises(ValueError, match="U and V"):
        latent_scores_per_draw(arr.U[0], arr.V[0], uidx, iidx)
    with pytest.raises(IndexError, match="item_idx"):
        latent_scores_per_draw(arr.U, arr.V, uidx[:1], [post.train.n_items])
    with pytest.raises(ValueError, match="user_bias"):
        latent_scores_per_draw(arr.U, arr.V, uidx, iidx, user_bias=arr.item_bias)


# -- exact posteriors on simulated data -----------------------------------------------------
def _split_per_user(data: RatingsData, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test = np.zeros(data.n_ratings, dtype=bool)
    for u in range(data.n_users):
        rows = np.flatnonzero(data.user_idx == u)
        k = int(np.floor(frac * len(rows)))
        if len(rows) - k >= 1 and k >= 1:
            test[rng.choice(rows, k, replace=False)] = True
    return ~test, test


@pytest.fixture(scope="module")
def exact_setup():
    sim = simulate(n_users=300, n_items=60, n_factors=2, density=0.2, noise=0.5, seed=7, factor_sd=0.6, bias_sd=0.3)
    train_mask, test_mask = _split_per_user(sim.data, 0.4, seed=1)
    train, test = sim.data.subset(train_mask), sim.data.subset(test_mask)
    spec = PMF(n_factors=2, priors="fixed", sigma=0.5, sigma_u=0.6, sigma_v=0.6, sigma_bias=0.3)
    return sim, train, test, spec


def _cluster_tolerance(inside: np.ndarray, groups: np.ndarray, prob: float) -> tuple[float, float]:
    """Coverage and a cluster-robust standard error (pairs of one user are dependent)."""
    c = inside.mean()
    sums = np.bincount(groups, weights=inside - prob)
    se = np.sqrt((sums**2).sum()) / len(inside)
    return c, se


def test_exact_posterior_intervals_are_calibrated(exact_setup):
    sim, train, test, spec = exact_setup
    S = 800
    draws = exact_user_posterior(train, sim.truth, 0.6, 0.3, S, seed=3)
    result = known_truth_result(spec, train, sim.truth, S, draws)
    truth = sim.true_mean(test.user_idx, test.item_idx)
    for prob in (0.5, 0.9):
        exp = predict(result, test, prob=prob, kind="expected", clip=False)
        inside = ((exp["lower"] <= truth) & (truth <= exp["upper"])).to_numpy()
        c, se = _cluster_tolerance(inside, test.user_idx, prob)
        assert abs(c - prob) < 4 * se + 0.005, (prob, c, se)
        pred = predict(result, test, prob=prob, clip=False)
        y = test.rating
        inside = ((pred["lower"] <= y) & (y <= pred["upper"])).to_numpy()
        c, se = _cluster_tolerance(inside, test.user_idx, prob)
        assert abs(c - prob) < 4 * se + 0.005, (prob, c, se)

    # the check has power: a posterior twice too narrow fails it
    mean_u = draws["U"].mean(0)
    narrow = {"U": mean_u + 0.4 * (draws["U"] - mean_u), "user_bias": draws["user_bias"].mean(0) + 0.4 * (draws["user_bias"] - draws["user_bias"].mean(0))}
    bad = known_truth_result(spec, train, sim.truth, S, narrow)
    exp = predict(bad, test, prob=0.9, kind="expected", clip=False)
    inside = ((exp["lower"] <= truth) & (truth <= exp["upper"])).to_numpy()
    c, se = _cluster_tolerance(inside, test.user_idx, 0.9)
    assert abs(c - 0.9) > 4 * se + 0.005


def test_thread_count_does_not_change_results(post):
    import numba

    df = post.train.to_dataframe().head(30)
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = predict(post, df, interval="hdi", threshold=4, random_seed=2)
        d1 = predict_draws(post, df, random_seed=2)
    finally:
        numba.set_num_threads(n)
    many = predict(post, df, interval="hdi", threshold=4, random_seed=2)
    pd.testing.assert_frame_equal(one, many)
    np.testing.assert_array_equal(d1, predict_draws(post, df, random_seed=2))


@pytest.mark.slow
def test_gibbs_posterior_intervals_are_calibrated_on_simulated_data():
    """Integration with the real sampler: held-out coverage of a Gibbs fit is near nominal."""
    sim = simulate(n_users=300, n_items=200, n_factors=3, density=0.08, noise=0.6, seed=3)
    train_mask, test_mask = _split_per_user(sim.data, 0.25, seed=0)
    train, test = sim.data.subset(train_mask), sim.data.subset(test_mask)
    fit = PMF(n_factors=3).fit(train, "gibbs", draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    truth = sim.true_mean(test.user_idx, test.item_idx)
    for prob in (0.5, 0.9):
        for kind, target in (("predictive", test.rating), ("expected", truth)):
            out = predict(fit, test, prob=prob, kind=kind, clip=False)
            inside = ((out["lower"] <= target) & (target <= out["upper"])).to_numpy()
            c, se = _cluster_tolerance(inside, test.user_idx, prob)
            # posterior of hierarchical scales is not the simulation's truth: allow 2 points more
            assert abs(c - prob) < 4 * se + 0.02, (kind, prob, c, se)
