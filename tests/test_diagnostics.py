"""Diagnostics on identified quantities, tested on fake posteriors built from random arrays."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from scipy.stats import special_ortho_group

from bayesmf import PMF, RatingsData, simulate
from bayesmf.data import IdEncoder
from bayesmf.diagnostics import (
    ConvergenceWarning,
    Diagnosis,
    diagnose,
    elbo_convergence,
    identified_quantities,
    plot_diagnostics,
)
from bayesmf.posterior import dims_of, make_posterior, param_names
from bayesmf.results import FitResult

N_FACTORS = 3


@pytest.fixture(scope="module")
def data() -> RatingsData:
    return simulate(n_users=40, n_items=30, n_factors=N_FACTORS, density=0.2, seed=3).data


def fake_draws(spec: PMF, data: RatingsData, chains: int, draws: int, seed: int, noise: float = 0.05):
    """Independent draws scattered around one fixed parameter value (a well-mixed posterior)."""
    rng = np.random.default_rng(seed)
    sizes = {"user": data.n_users, "item": data.n_items, "factor": spec.n_factors}
    levels = data.levels
    if levels is not None:
        sizes["cutpoint"] = len(levels) - 1
    center_rng = np.random.default_rng(1234)
    out = {}
    for name in param_names(spec):
        shape = tuple(sizes[d] for d in dims_of(spec, name))
        center = center_rng.normal(size=shape)
        if name.startswith("sigma"):
            center = 0.5 + np.abs(center)
        if name == "mu":
            center = np.asarray(3.0)
        if name == "cutpoints":
            center = np.linspace(-2, 2, shape[0])
        out[name] = center + noise * rng.normal(size=(chains, draws, *shape))
    return out


def fake_result(spec, data, draws, method="gibbs", sample_stats=None, info=None) -> FitResult:
    tree = make_posterior(spec, data, draws, sample_stats=sample_stats)
    return FitResult(spec, tree, method, data, dict(info or {}))


def test_identified_quantities_layout(data):
    spec = PMF(n_factors=N_FACTORS, factor_prior="shared")
    result = fake_result(spec, data, fake_draws(spec, data, 2, 30, seed=0))
    tree = identified_quantities(result, n_pairs=7)
    post = tree["posterior"].to_dataset()
    assert set(post.data_vars) == {
        "sigma", "mean_level", "sigma_user_bias", "sigma_item_bias", "sigma_factor",
        "norm_UVt", "pred_train", "pred_unrated",
    }
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 30
    assert post.sizes["train_pair"] == 7 and post.sizes["unrated_pair"] == 7
    # the unrated pairs really are absent from the training data, the train pairs present
    rated = set(zip(data.user_idx.tolist(), data.item_idx.tolist(), strict=True))
    for coord, should_be_rated in (("train_pair", True), ("unrated_pair", False)):
        for label in post[coord].values.tolist():
            u, i = label.split(":")
            pair = (int(data.users.to_index([int(u)])[0]), int(data.items.to_index([int(i)])[0]))
            assert (pair in rated) is should_be_rated
    # same seed, same pairs; another seed, other pairs
    again = identified_quantities(result, n_pairs=7)["posterior"]
    assert list(again["train_pair"].values) == list(post["train_pair"].values)
    other = identified_quantities(result, n_pairs=7, seed=1)["posterior"]
    assert list(other["train_pair"].values) != list(post["train_pair"].values)


def test_per_side_mean_level_is_the_mean_of_the_predicted_matrix(data):
    """With per-side factor means, mean_level = mu + mean b + mean c + mean(U) . mean(V)."""
    spec = PMF(n_factors=N_FACTORS, factor_prior="per_side")
    draws = fake_draws(spec, data, 2, 10, seed=2)
    post = identified_quantities(fake_result(spec, data, draws), n_pairs=5)["posterior"]
    U = draws["U"].astype(np.float32).astype(np.float64)
    V = draws["V"].astype(np.float32).astype(np.float64)
    eta = (
        draws["mu"][:, :, None, None]
        + draws["user_bias"][:, :, :, None]
        + draws["item_bias"][:, :, None, :]
        + np.einsum("cdik,cdjk->cdij", U, V)
    )
    np.testing.assert_allclose(post["mean_level"].values, eta.mean(axis=(2, 3)), rtol=1e-10)
    assert "sigma_factor" not in post  # the per-side scales are not identified


def test_per_side_offsets_quantities_are_the_two_way_decomposition_and_ignore_the_side_shift(data):
    """Per-side with offsets: the row/column-effect sds and the centred norm are those of the
    predicted matrix's two-way decomposition, and a side shift (U_i + d, c_j - d . V_j, which
    leaves every prediction unchanged) leaves them unchanged, where it moves the bias sds."""
    spec = PMF(n_factors=N_FACTORS, factor_prior="per_side")
    draws = fake_draws(spec, data, 2, 10, seed=4)
    draws["U"] = draws["U"].astype(np.float32).astype(np.float64)
    draws["V"] = draws["V"].astype(np.float32).astype(np.float64)

    def quantities(d):
        return identified_quantities(fake_result(spec, data, d), n_pairs=5)["posterior"].to_dataset()

    post = quantities(draws)
    assert not {"sigma_user_bias", "sigma_item_bias"} & set(post.data_vars)
    eta = (
        draws["mu"][:, :, None, None]
        + draws["user_bias"][:, :, :, None]
        + draws["item_bias"][:, :, None, :]
        + np.einsum("cdik,cdjk->cdij", draws["U"], draws["V"])
    )
    rows, cols = eta.mean(axis=3), eta.mean(axis=2)
    np.testing.assert_allclose(post["sd_user_effect"].values, rows.std(axis=2), rtol=1e-10)
    np.testing.assert_allclose(post["sd_item_effect"].values, cols.std(axis=2), rtol=1e-10)
    interaction = eta - rows[..., None] - cols[:, :, None, :] + eta.mean(axis=(2, 3))[..., None, None]
    np.testing.assert_allclose(
        post["norm_UVt"].values, np.sqrt((interaction**2).sum(axis=(2, 3))), rtol=1e-8
    )
    # the side shifts: U_i + d with c_j - d . V_j, then V_j + e with b_i - U_i . e
    shifted = dict(draws)
    rng = np.random.default_rng(5)
    d, e = rng.normal(size=(2, N_FACTORS))
    # float32-exact shifts (the posterior stores the factors in float32)
    d, e = d.astype(np.float32).astype(np.float64), e.astype(np.float32).astype(np.float64)
    shifted["U"] = draws["U"] + d
    shifted["item_bias"] = draws["item_bias"] - np.einsum("cdjk,k->cdj", draws["V"], d)
    shifted["V"] = draws["V"] + e
    shifted["user_bias"] = draws["user_bias"] - np.einsum("cdik,k->cdi", shifted["U"], e)
    moved = quantities(shifted)
    for name in ("mean_level", "sd_user_effect", "sd_item_effect", "norm_UVt", "pred_train", "pred_unrated"):
        # (the shifted factors are stored in float32 again: agreement to its rounding)
        np.testing.assert_allclose(moved[name].values, post[name].values, rtol=1e-5, atol=1e-5, err_msg=name)
    assert not np.allclose(shifted["item_bias"].std(axis=2), draws["item_bias"].std(axis=2), rtol=1e-3)


def test_identified_values_match_definitions(data):
    spec = PMF(n_factors=N_FACTORS, factor_prior="shared")
    draws = fake_draws(spec, data, 2, 10, seed=1)
    result = fake_result(spec, data, draws)
    post = identified_quantities(result, n_pairs=5)["posterior"].to_dataset()
    U = draws["U"].astype(np.float32).astype(np.float64)
    V = draws["V"].astype(np.float32).astype(np.float64)
    # Frobenius norm against the materialized matrix
    full = np.einsum("cdik,cdjk->cdij", U, V)
    np.testing.assert_allclose(post["norm_UVt"].values, np.sqrt((full**2).sum(axis=(2, 3))), rtol=1e-10)
    level = draws["mu"] + draws["user_bias"].mean(axis=2) + draws["item_bias"].mean(axis=2)
    np.testing.assert_allclose(post["mean_level"].values, level)
    label = str(post["train_pair"].values[0])
    u, i = (int(x) for x in label.split(":"))
    ui, ii = data.users.to_index([u])[0], data.items.to_index([i])[0]
    eta = draws["mu"] + draws["user_bias"][:, :, ui] + draws["item_bias"][:, :, ii] + (U[:, :, ui] * V[:, :, ii]).sum(-1)
    np.testing.assert_allclose(post["pred_train"].values[:, :, 0], eta, rtol=1e-10)


def test_test_pairs_and_encoder_check(data):
    spec = PMF(n_factors=N_FACTORS)
    result = fake_result(spec, data, fake_draws(spec, data, 2, 10, seed=1))
    test = data.subset(np.arange(10))
    post = identified_quantities(result, n_pairs=50, test=test)["posterior"]
    assert "pred_test" in post and "pred_unrated" not in post
    assert post.sizes["test_pair"] == 10  # fewer exist than asked for
    other = RatingsData(
        test.user_idx, test.item_idx, test.rating, test.scale,
        IdEncoder("user", np.arange(data.n_users) + 1000), test.items,
    )
    with pytest.raises(ValueError, match="encoders"):
        identified_quantities(result, test=other)
    with pytest.raises(TypeError, match="RatingsData"):
        identified_quantities(result, test=test.to_dataframe())
    with pytest.raises(ValueError, match="n_pairs"):
        identified_quantities(result, n_pairs=0)


def test_well_mixed_passes(data):
    spec = PMF(n_factors=N_FACTORS)
    result = fake_result(spec, data, fake_draws(spec, data, 4, 1000, seed=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diagnosis = diagnose(result, n_pairs=20)
    assert isinstance(diagnosis, Diagnosis)
    assert diagnosis.ok is True and bool(diagnosis)
    assert "All checks passed" in diagnosis.verdict
    assert diagnosis.table["r_hat"].max() < 1.01
    assert diagnosis.table["ess_bulk"].min() > 400
    assert set(diagnosis.summary.index) >= {"sigma", "pred_train", "norm_UVt"}
    assert diagnosis.summary["ok"].all()
    assert "OK" in repr(diagnosis) and "OK" in diagnosis._repr_html_()


def test_stuck_chains_fail_with_rhat(data):
    spec = PMF(n_factors=N_FACTORS)
    draws = fake_draws(spec, data, 4, 500, seed=3)
    # each chain stuck in its own mode of sigma and of the global level
    offsets = np.arange(4)[:, None] * 0.3
    draws["sigma"] = draws["sigma"] + offsets
    draws["mu"] = draws["mu"] + offsets
    result = fake_result(spec, data, draws)
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        diagnosis = diagnose(result, n_pairs=10)
    assert diagnosis.ok is False
    assert "R-hat > 1.01" in diagnosis.verdict
    assert diagnosis.table.loc["sigma", "r_hat"] > 1.5
    assert diagnosis.table.loc["mean_level", "r_hat"] > 1.5
    assert not diagnosis.summary.loc["sigma", "ok"]
    assert "PROBLEMS" in repr(diagnosis)
    # a laxer threshold does not rescue chains this far apart; warn=False silences
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert diagnose(result, n_pairs=10, rhat_max=1.1, warn=False).ok is False


def test_low_ess_fails(data):
    spec = PMF(n_factors=N_FACTORS)
    # 2 chains x 100 iid draws: ESS ~ 200 < 400
    result = fake_result(spec, data, fake_draws(spec, data, 2, 100, seed=4))
    with pytest.warns(ConvergenceWarning, match="ESS"):
        diagnosis = diagnose(result, n_pairs=5)
    assert diagnosis.ok is False and "bulk ESS < 400" in diagnosis.verdict
    # R-hat of 200 iid draws scatters past 1.01 by chance, so relax both thresholds
    assert diagnose(result, n_pairs=5, ess_min=50, rhat_max=1.1, warn=False).ok is True


def test_rotation_leaves_identified_diagnosis_unchanged(data):
    """Chains at different rotations: raw-factor R-hat is huge, predictions are unaffected."""
    spec = PMF(n_factors=N_FACTORS)
    draws = fake_draws(spec, data, 4, 500, seed=5)
    plain = fake_result(spec, data, draws)
    rotations = special_ortho_group.rvs(N_FACTORS, size=4, random_state=7)
    rotated_draws = dict(draws)
    rotated_draws["U"] = np.einsum("cdik,ckl->cdil", draws["U"], rotations)
    rotated_draws["V"] = np.einsum("cdik,ckl->cdil", draws["V"], rotations)
    rotated = fake_result(spec, data, rotated_draws)

    raw_rhat = az.rhat(rotated.idata, var_names=["U"])["U"].values
    assert np.median(raw_rhat) > 1.5  # a raw-factor diagnosis would call this a disaster

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = diagnose(plain, n_pairs=20)
        after = diagnose(rotated, n_pairs=20)
    assert before.ok is True and after.ok is True
    np.testing.assert_allclose(after.table["mean"], before.table["mean"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(after.table["r_hat"], before.table["r_hat"], atol=2e-3)
    np.testing.assert_allclose(after.table["ess_bulk"], before.table["ess_bulk"], rtol=0.05)


def test_map_has_nothing_to_diagnose(data):
    spec = PMF(n_factors=N_FACTORS, priors="fixed")
    result = fake_result(spec, data, fake_draws(spec, data, 1, 1, seed=6), method="als")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diagnosis = diagnose(result)
    assert diagnosis.ok is None
    assert "nothing to diagnose" in diagnosis.verdict or "no posterior sample" in diagnosis.verdict
    assert "NOT APPLICABLE" in repr(diagnosis)
    with pytest.raises(ValueError, match="point estimate"):
        plot_diagnostics(result)


def test_single_chain_says_rhat_not_computable(data):
    spec = PMF(n_factors=N_FACTORS)
    result = fake_result(spec, data, fake_draws(spec, data, 1, 1000, seed=7), method="nuts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diagnosis = diagnose(result, n_pairs=5)
    assert "R-hat needs two chains" in diagnosis.verdict
    assert diagnosis.table["r_hat"].isna().all()
    assert diagnosis.ok is True  # ESS alone passes for iid draws


def test_nuts_divergences_fail(data):
    spec = PMF(n_factors=N_FACTORS)
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[1, [3, 50, 700]] = True
    stats = {"diverging": diverging, "depth": np.full((4, 1000), 5), "maxdepth_reached": np.zeros((4, 1000), bool)}
    result = fake_result(spec, data, fake_draws(spec, data, 4, 1000, seed=8), method="nuts", sample_stats=stats)
    with pytest.warns(ConvergenceWarning, match="divergent"):
        diagnosis = diagnose(result, n_pairs=5)
    assert diagnosis.sampler["divergences"] == 3
    assert diagnosis.sampler["max_tree_depth"] == 5
    assert diagnosis.sampler["max_depth_hits"] == 0
    assert diagnosis.ok is False and "3 divergent" in diagnosis.verdict


def test_advi_checked_by_elbo(data):
    spec = PMF(n_factors=N_FACTORS)
    draws = fake_draws(spec, data, 1, 200, seed=9)
    rng = np.random.default_rng(0)
    iterations = np.arange(5000)
    flat = -1000 - 500 * np.exp(-iterations / 300) + rng.normal(0, 5, 5000)
    rising = -1000 - 500 * np.exp(-iterations / 30000) + rng.normal(0, 5, 5000)
    good = fake_result(spec, data, draws, method="advi", info={"elbo": flat})
    bad = fake_result(spec, data, draws, method="advi", info={"elbo": rising})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diagnosis = diagnose(good, n_pairs=5)  # 200 draws < ess_min, but ESS is not the check
    assert diagnosis.ok is True and diagnosis.elbo["flat"]
    assert "ELBO" in diagnosis.verdict
    with pytest.warns(ConvergenceWarning, match="ELBO"):
        assert diagnose(bad, n_pairs=5).ok is False


def test_elbo_convergence_direct():
    rng = np.random.default_rng(1)
    assert elbo_convergence(rng.normal(0, 1, 1000) - 50.0)["flat"]
    assert not elbo_convergence(np.linspace(-200, -100, 1000))["flat"]
    assert not elbo_convergence(np.arange(5.0))["flat"]


def test_per_factor_scales_sorted(data):
    spec = PMF(n_factors=N_FACTORS, factor_prior="shared", per_factor_scales=True)
    draws = fake_draws(spec, data, 4, 300, seed=10)
    # permute the factor labels differently in each chain: only the sorted scales agree
    permuted = dict(draws)
    for key in ("U", "V", "sigma_factor"):
        permuted[key] = draws[key].copy()
    for chain, perm in enumerate([[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]]):
        for key in ("U", "V", "sigma_factor"):
            permuted[key][chain] = draws[key][chain][..., perm]
    result = fake_result(spec, data, permuted)
    assert az.rhat(result.idata, var_names=["sigma_factor"])["sigma_factor"].values.max() > 1.5
    post = identified_quantities(result, n_pairs=5)["posterior"]
    assert post["sigma_factor"].dims == ("chain", "draw", "rank")
    assert (np.diff(post["sigma_factor"].values, axis=-1) <= 0).all()
    table = diagnose(result, n_pairs=5, warn=False).table
    assert table[table["quantity"] == "sigma_factor"]["r_hat"].max() < 1.02


def test_ordinal_quantities(data):
    levels_data = RatingsData(
        data.user_idx, data.item_idx, np.clip(np.round(data.rating), 1, 7), (1.0, 7.0), data.users, data.items
    )
    spec = PMF(n_factors=N_FACTORS, likelihood="ordinal")
    result = fake_result(spec, levels_data, fake_draws(spec, levels_data, 2, 50, seed=11))
    post = identified_quantities(result, n_pairs=5)["posterior"]
    assert "cutpoints_rel" in post and "sigma" not in post and "mean_level" not in post
    pred = post["pred_train"].values
    assert pred.min() >= 1.0 and pred.max() <= 7.0


def test_logistic_link_prediction_on_scale(data):
    spec = PMF(n_factors=N_FACTORS, link="logistic")
    result = fake_result(spec, data, fake_draws(spec, data, 2, 50, seed=12))
    pred = identified_quantities(result, n_pairs=5)["posterior"]["pred_train"].values
    low, high = data.scale
    assert pred.min() > low and pred.max() < high


def test_invalid_thresholds(data):
    spec = PMF(n_factors=N_FACTORS)
    result = fake_result(spec, data, fake_draws(spec, data, 2, 20, seed=13))
    with pytest.raises(ValueError, match="rhat_max"):
        diagnose(result, rhat_max=0.9)
    with pytest.raises(TypeError, match="ess_min"):
        diagnose(result, ess_min="many")


@pytest.mark.parametrize("kind", ["trace", "rank"])
def test_plot_diagnostics(data, kind, tmp_path):
    from arviz_plots import PlotCollection

    spec = PMF(n_factors=N_FACTORS)
    result = fake_result(spec, data, fake_draws(spec, data, 2, 50, seed=14))
    pc = plot_diagnostics(result, kind=kind, n_pairs=2, var_names=["sigma", "pred_train"])
    assert isinstance(pc, PlotCollection)
    legend = pc.viz["legend"]["chain"].item()  # which colour is which chain
    assert [t.get_text() for t in legend.get_texts()] == ["0", "1"]
    pc.savefig(tmp_path / f"{kind}.png")
    assert (tmp_path / f"{kind}.png").stat().st_size > 0
    with pytest.raises(ValueError, match="unknown quantities"):
        plot_diagnostics(result, var_names=["U"])
    with pytest.raises(ValueError, match="kind"):
        plot_diagnostics(result, kind="pair")


def test_fit_result_diagnose_wrapper(data):
    spec = PMF(n_factors=N_FACTORS)
    result = fake_result(spec, data, fake_draws(spec, data, 4, 1000, seed=2))
    assert result.diagnose(n_pairs=5).ok is True


def test_diagnostics_reexports_its_parts():
    """The old import paths keep working: one object each, defined by its own module."""
    from bayesmf import convergence_plots, diagnostics, elbo, exceptions, identified, plots

    assert diagnostics.identified_quantities is identified.identified_quantities
    assert diagnostics.SCALAR_QUANTITIES is identified.SCALAR_QUANTITIES
    assert diagnostics.elbo_convergence is elbo.elbo_convergence
    assert diagnostics.plot_diagnostics is plots.plot_diagnostics is convergence_plots.plot_diagnostics
    assert diagnostics.ConvergenceWarning is exceptions.ConvergenceWarning


@pytest.mark.parametrize(("chains", "draws", "stuck"), [(3, 101, False), (1, 80, False), (4, 60, True)])
def test_summary_table_is_az_summary(data, chains, draws, stuck):
    """The table `diagnose` judges by is ``az.summary``'s, number for number, label for label
    (computed for all scalars at once instead; one chain: R-hat NaN in both)."""
    from bayesmf.diagnostics import summary_table

    spec = PMF(n_factors=N_FACTORS, factor_prior="per_side", per_factor_scales=True)
    draws_ = fake_draws(spec, data, chains, draws, seed=5)
    if stuck:
        draws_["sigma"][1] += 3.0  # one chain elsewhere: R-hat far above 1
        draws_["mu"][:, :, ...] = 3.0  # a constant scalar: R-hat NaN, ESS the number of split draws
    tree = identified_quantities(fake_result(spec, data, draws_), n_pairs=10)
    ours = summary_table(tree)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = az.summary(tree, round_to="none")
    assert list(ours.index) == [str(label) for label in ref.index]
    assert list(ours.columns) == ["quantity", "mean", "sd", "r_hat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"]
    for column in ours.columns[1:]:
        np.testing.assert_allclose(
            ours[column].to_numpy(), np.asarray(ref[column], dtype=float), rtol=1e-10, atol=1e-14, equal_nan=True,
            err_msg=column,
        )  # fmt: skip
    if chains == 1:
        assert ours["r_hat"].isna().all()
    if stuck:
        assert ours.loc["sigma", "r_hat"] > 1.5
