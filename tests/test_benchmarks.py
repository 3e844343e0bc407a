"""Smoke test of the benchmark runner (benchmarks/run.py) on a tiny simulated set.

Timings are not asserted (they belong to benchmarks/RESULTS.md); this checks that the
runner runs every system it is given, records a status for each (fold) instead of
dropping it, computes intervals correctly, and writes its outputs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
import readme_table  # noqa: E402
import run  # noqa: E402


def test_mixture_quantiles_solve_the_mixture_cdf() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(3.0, 0.4, size=(60, 25))
    sds = rng.uniform(0.5, 1.0, size=60)
    lower, upper = peers.mixture_normal_quantiles(means, sds, (0.05, 0.95))
    cdf = lambda x: ndtr((x[None, :] - means) / sds[:, None]).mean(axis=0)  # noqa: E731
    np.testing.assert_allclose(cdf(lower), 0.05, atol=1e-8)
    np.testing.assert_allclose(cdf(upper), 0.95, atol=1e-8)
    # and against brute force: draws of the mixture cover [lower, upper] 90 % of the time
    draws = means[None] + sds[None, :, None] * rng.normal(size=(400, 60, 25))
    inside = ((draws >= lower) & (draws <= upper)).mean()
    assert abs(inside - 0.9) < 0.01


def test_discrete_quantiles_pick_the_first_level_reaching_q() -> None:
    probs = np.array([[0.1, 0.2, 0.4, 0.2, 0.1], [0.0, 0.0, 0.0, 0.0, 1.0]])
    levels = np.arange(1.0, 6.0)
    q05, q30, q50, q95 = peers.discrete_quantiles(probs, levels, (0.05, 0.3, 0.5, 0.95))
    np.testing.assert_array_equal(q05, [1, 5])
    np.testing.assert_array_equal(q30, [2, 5])
    np.testing.assert_array_equal(q50, [3, 5])
    np.testing.assert_array_equal(q95, [5, 5])


def test_metrics_coverage_and_width() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = peers.Prediction(mean=np.array([1.0, 2.0, 3.0, 5.0]), intervals={0.9: (y - 1, y + 1), 0.5: (y + 0.5, y + 1)})
    out = run.metrics(y, pred)
    assert out["rmse"] == pytest.approx(0.5)
    assert out["mae"] == pytest.approx(0.25)
    assert out["cov90"] == 1.0 and out["width90"] == pytest.approx(2.0)
    assert out["cov50"] == 0.0 and out["width50"] == pytest.approx(0.5)


class _Unimplemented(peers.Adapter):
    name, family = "fake.unimplemented", "fake"

    def fit(self, train: object) -> None:
        raise NotImplementedError("this route is a stub")


def test_missing_and_unimplemented_routes_are_recorded_not_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = peers.BayesMF("bayesmf.nope", "no_such_route", {}, {})
    status = missing.available()
    assert status is not None and status.startswith("not available")

    for adapter, expected in ((missing, "not available: route"), (_Unimplemented(), "not available: NotImplementedError")):
        monkeypatch.setattr(peers, "make", lambda *a, _ad=adapter, **k: _ad)
        out = tmp_path / f"{adapter.name}.json"
        run.run_cell({"dataset": "tiny", "system": adapter.name, "folds": [1, 2], "rank": 2, "seed": 0, "out": str(out)})
        records = json.loads(out.read_text())
        assert [r["fold"] for r in records] == ["k1", "k2"]
        assert all(r["status"].startswith(expected) for r in records), records


def test_runner_smoke_on_tiny_data(tmp_path: Path) -> None:
    systems = ["global_mean", "mean_of_means", "surprise.svd", "myfm.gibbs", "bayesmf.als"]
    (tmp_path / "RESULTS.md").write_text("# Benchmark results\n\n## someone else's section\n\nkeep me\n")
    code = run.main(["--datasets", "tiny", "--folds", "1-2", "--systems", ",".join(systems),
                     "--out", str(tmp_path), "--timeout", "300"])
    assert code == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    by = {(r["system"], r["fold"]): r for r in payload["records"]}
    installed = {"surprise.svd": "surprise", "myfm.gibbs": "myfm"}
    for system in systems:
        for fold in ("k1", "k2"):
            record = by[(system, fold)]  # every cell has a record, whatever happened
            module = installed.get(system)
            if module and importlib.util.find_spec(module) is None:
                assert record["status"].startswith("not installed"), record
                continue
            assert record["status"] == "ok", record.get("traceback", record["status"])
            assert np.isfinite(record["rmse"]) and 0 < record["rmse"] < 4
            assert record["fit_s"] >= 0 and record["peak_fit_rss_mb"] > 10
    if importlib.util.find_spec("myfm") is not None:
        r = by[("myfm.gibbs", "k1")]
        assert 0 <= r["cov50"] <= r["cov90"] <= 1 and 0 < r["width50"] < r["width90"]
        assert r["ess_per_s"] > 0
    summary = {s["system"]: s for s in payload["summary"]}
    assert summary["global_mean"]["folds_run"] == ["k1", "k2"]
    assert payload["meta"]["machine"]["nproc"] >= 1 and payload["meta"]["versions"]["numpy"]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "keep me" in text and text.count(run.BEGIN) == 1 and "| global_mean | k1,k2 |" in text
    # a second run replaces its own section only
    run.write_markdown(payload, tmp_path / "RESULTS.md")
    again = (tmp_path / "RESULTS.md").read_text()
    assert again.count(run.BEGIN) == 1 and "keep me" in again
    table = readme_table.render(payload, dataset="tiny")
    assert "| global_mean | k1,k2 |" in table


def test_targets_say_when_missed() -> None:
    records = [
        {"dataset": "ml-100k", "system": s, "fold": f"u{k}", "status": "ok", "rmse": rmse, "fit_s": fit}
        for s, rmse, fit in (("bayesmf.gibbs", 0.95, 50.0), ("myfm.gibbs", 0.90, 10.0), ("bayesmf.als", 0.97, 1.0),
                             ("surprise.svd", 0.94, 0.5))
        for k in range(1, 6)
    ]
    payload = {"records": records, "summary": run.summarize(records), "scaling": []}
    got = {t["target"]: t for t in run.targets(payload)}
    rmse_target = next(t for name, t in got.items() if "<= 0.890" in name)
    assert rmse_target["met"] is False and rmse_target["system"] == "bayesmf.gibbs"
    assert next(t for name, t in got.items() if "myfm.gibbs on the same folds" in name)["met"] is False
    assert next(t for name, t in got.items() if "ALS" in name)["met"] is False
    gibbs = next(t for name, t in got.items() if "2x" in name)
    assert gibbs["measured"] == pytest.approx(5.0) and gibbs["met"] is False
    assert next(t for name, t in got.items() if "10 min" in name)["met"] is None


def test_readme_table_is_generated_from_results_json() -> None:
    """The README's results table is what readme_table renders from the committed JSON."""
    root = Path(__file__).resolve().parents[1]
    payload = json.loads((root / "benchmarks" / "results.json").read_text())
    readme = (root / "README.md").read_text()
    begin, end = readme_table.BEGIN, readme_table.END
    assert begin in readme and end in readme, "README.md lacks the bench-table markers"
    shown = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert shown == readme_table.render(payload).strip(), (
        "README's table is stale: run benchmarks/readme_table.py --readme README.md"
    )


def test_rhat_floor_draws_reach_their_target_ess() -> None:
    """`bench_rhat_floor` labels its rows by a target bulk ESS; its AR(1) draws must hit it.

    The measured ESS of 200 quantities is averaged, so its Monte Carlo error is about 1 %;
    a wrong autocorrelation formula (rho = 1 - ESS / N, say) is off by tens of percent.
    """
    import bench_rhat_floor

    rng = np.random.default_rng(3)
    for target in (600.0, 1300.0):
        result = bench_rhat_floor.run_profile(rng, np.full(200, target), reps=1)
        assert abs(result["median_ess"] / target - 1.0) < 0.05, (target, result)


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    from _sections import write_section

    path = tmp_path / "RESULTS.md"
    write_section(path, "<!-- a:begin -->\nold a\n<!-- a:end -->", "<!-- a:begin -->", "<!-- a:end -->")
    write_section(path, "<!-- b:begin -->\nb\n<!-- b:end -->\n", "<!-- b:begin -->", "<!-- b:end -->")
    write_section(path, "<!-- a:begin -->\nnew a\n<!-- a:end -->", "<!-- a:begin -->", "<!-- a:end -->")
    text = path.read_text()
    assert text.startswith("# Benchmark results\n")
    assert "new a" in text and "old a" not in text
    assert text.index("new a") < text.index("\nb\n")  # kept in place, not appended again
    with pytest.raises(ValueError, match="a:end"):
        write_section(path, "<!-- a:begin -->\nno end", "<!-- a:begin -->", "<!-- a:end -->")
    assert "new a" in path.read_text()


def test_topn_bench_lists_give_evaluate_topn_numbers() -> None:
    """bench_topn ranks the rules of its second table itself (to keep the lists): same numbers."""
    import bench_topn
    import pandas as pd

    from bayesmf import PMF
    from bayesmf.topn import evaluate_topn

    _, train, test = next(bench_topn.load_folds("tiny", [1], ""))
    plan = bench_topn.make_plan(train, test, 4.0)
    als = PMF(n_factors=2, priors="fixed").fit(train, method="als", random_seed=0, progressbar=False)
    gibbs = PMF(n_factors=2, priors="fixed").fit(train, method="gibbs", draws=20, tune=10, chains=2,
                                                 random_seed=0, progressbar=False)
    for fit, rule in ((als, "mean"), (gibbs, "mean"), (gibbs, "lower")):
        lists = bench_topn.bayesmf_lists(fit, plan, 5, rule, 4.0, seed=7)
        assert all(len(top) == 5 for top in lists.values())
        mine = bench_topn.evaluate_lists(lists, train, test, 5, 4.0, seed=7, name=rule)
        ref = evaluate_topn(fit, test, 5, rank_by=rule, threshold=4.0, random_seed=7)
        pd.testing.assert_frame_equal(mine.per_user, ref.per_user)
        pd.testing.assert_frame_equal(mine.summary, ref.summary, check_like=True)


def test_topn_bench_smoke_on_tiny_data(tmp_path: Path) -> None:
    import bench_topn

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## someone else's section\n\nkeep me\n")
    argv = ["--datasets", "tiny", "--folds", "u1,u2", "--quick", "--results", str(results),
            "--json", str(tmp_path / "topn.json"), "--threads", "1"]
    assert bench_topn.main(argv) == 0
    text = results.read_text()
    assert "keep me" in text and text.count(bench_topn.BEGIN) == 1 and text.count(bench_topn.END) == 1
    section = text.split(bench_topn.BEGIN, 1)[1]
    for system, (group, _, _) in bench_topn.SYSTEMS.items():
        rows = [line for line in section.splitlines() if line.startswith(f"| {system} |")]
        assert len(rows) == 3, (system, rows)  # the mean over folds and one row per fold
        package = bench_topn.PACKAGES.get(group)
        if package and importlib.util.find_spec(package) is None:
            assert all("skipped: " in row for row in rows)
        else:
            assert all("skipped" not in row and "failed" not in row for row in rows), rows
    assert "| gibbs-fixed-mean | k1 |" in section and "FAIL" in section  # quick chains do not pass
    assert "| mean | **mean** |" in section and "| lower | low | **mean** |" in section
    assert "### Calibration of P(chosen)" in section
    payload = json.loads((tmp_path / "topn.json").read_text())
    assert {r["system"] for r in payload["rows"]} == set(bench_topn.SYSTEMS)
    rows = [bench_topn.Row(**r) for r in payload["rows"]]  # the saved numbers rebuild the calibration table
    assert "\n".join(bench_topn.calibration_tables(rows)) in section
    assert {d["pair"] for d in payload["differences"]} == {"mean", "lower"}
    for d in payload["differences"]:
        assert 0 <= d["differ"] <= 1
    assert bench_topn.main([*argv, "--systems", "popularity,als"]) == 0  # replaces its own section only
    again = results.read_text()
    assert again.count(bench_topn.BEGIN) == 1 and "keep me" in again and "| myfm |" not in again


# -- the benchmarks beside myFM (benchmarks/_myfm_bench.py) --------------------------------------
def test_ratio_table_divides_by_the_peer_of_the_same_fold() -> None:
    import _myfm_bench as bench

    records = [
        {"fold": f, "protocol": p, "system": s, "rmse": 0.9, "s_per_sweep": t, "fit_s": 1.0}
        for f, p, s, t in (("u1", "a", "bayesmf-gibbs", 0.3), ("u1", "a", "bayesmf-gibbs-myfm-prior", 0.6),
                           ("u1", "a", "myfm-gibbs", 0.2), ("u2", "b", "bayesmf-gibbs", 0.8),
                           ("u2", "b", "myfm-gibbs", 0.1), ("u3", "a", "bayesmf-gibbs", 0.5))
    ]
    lines = bench.table(records, bench.peer_columns("RMSE=rmse"))
    assert lines[0] == "| fold | system | RMSE | s / sweep | ratio to myFM | fit s |"
    assert lines[1] == "|---" * 6 + "|"
    ratios = [line.split(" | ")[4] for line in lines[2:]]
    assert ratios == ["1.50", "3.00", "1.00", "8.00", "1.00", "nan"]  # u3 has no myFM row
    # matched on the fold and the protocol: u1's protocol "a" pairs, u3's protocol "a" still has no peer
    by_protocol = bench.table(records, bench.peer_columns("RMSE=rmse"), match=("fold", "protocol"))
    assert [line.split(" | ")[4] for line in by_protocol[2:]] == ratios
    records[2]["protocol"] = "b"
    by_protocol = bench.table(records, bench.peer_columns("RMSE=rmse"), match=("fold", "protocol"))
    assert [line.split(" | ")[4] for line in by_protocol[2:]][:2] == ["nan", "nan"]


@pytest.mark.parametrize("script", ["bench_binary", "bench_ordinal"])
def test_variants_are_the_documented_specs(script: str) -> None:
    import _myfm_bench as bench

    from bayesmf import PMF

    module = importlib.import_module(script)
    args = module.parse([])
    assert list(args.specs) == ["bayesmf-gibbs", "bayesmf-gibbs-myfm-prior"]
    default, prior = (PMF(n_factors=args.rank, **spec) for spec in args.specs.values())
    assert (default.factor_prior, default.per_factor_scales) == ("shared", False)
    assert (prior.factor_prior, prior.per_factor_scales) == ("per_side", True)
    assert {k: v for k, v in vars(prior).items() if k not in ("factor_prior", "per_factor_scales")} == {
        k: v for k, v in vars(default).items() if k not in ("factor_prior", "per_factor_scales")}
    text = bench.variants_text(args.specs)
    assert "bayesmf-gibbs `PMF(" in text and "factor_prior='per_side', per_factor_scales=True)`" in text
    assert list(module.parse(["--variants", "myfm-prior"]).specs) == ["bayesmf-gibbs-myfm-prior"]
    assert list(module.parse(["--priors", "fixed", "--variants", "default"]).specs) == ["bayesmf-gibbs"]
    for bad in (["--variants", "nope"], ["--variants", ","], ["--priors", "fixed"]):  # the per-side prior needs hierarchical
        with pytest.raises(SystemExit):
            module.parse(bad)


def test_shared_options_quick_and_all_folds() -> None:
    import bench_features
    import bench_implicit
    import bench_svdpp

    quick = bench_svdpp.parse(["--quick", "--all-folds"])
    assert (quick.rank, quick.draws, quick.tune, quick.no_write, quick.folds) == (2, 20, 10, True, "u1,u2,u3,u4,u5")
    full = bench_features.parse([])
    assert (full.rank, full.draws, full.tune, full.no_write, full.folds) == (10, 412, 100, False, "u1")
    assert bench_implicit.parse(["--quick"]).rank_list == [2, 4]
    for bad in (["--tune", "-1"], ["--draws", "0"], ["--rank", "0"]):
        with pytest.raises(SystemExit):
            bench_svdpp.parse(bad)


@pytest.mark.parametrize("script", [
    "bench_binary", pytest.param("bench_ordinal", marks=pytest.mark.slow),  # ordinal: ~3 s of fits, as binary's path
    "bench_features", "bench_svdpp", "bench_implicit"])
def test_myfm_bench_scripts_quick(script: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each script's ``--quick`` run prints its section with one row per system and writes nothing."""
    if script == "bench_implicit":  # its peer is required, not optional: the `bench` extra
        pytest.importorskip("implicit")
    module = importlib.import_module(script)
    results = tmp_path / "RESULTS.md"
    extra = ["--scales", "1,5"] if script == "bench_implicit" else []  # two scales: one ratio and the rest
    assert module.main(["--quick", "--results", str(results), "--json", str(tmp_path / "out.json"), *extra]) == 0
    assert not results.exists()  # --quick never writes
    out = capsys.readouterr().out
    section = out.split(f"<!-- {script}.py:begin -->", 1)[1].split(f"<!-- {script}.py:end -->", 1)[0]
    assert "QUICK (tiny simulated set" in section
    records = json.loads((tmp_path / "out.json").read_text())
    records = records["records"] if isinstance(records, dict) else records
    rows = [line for line in section.splitlines() if line.startswith("| k1 |") or line.startswith("| all test")
            or line.startswith("| cold")]
    assert len(rows) == len(records) > 0
    peer = importlib.util.find_spec("implicit" if script == "bench_implicit" else "myfm") is not None
    systems = {r["system"] for r in records}
    assert any(s.startswith(("myfm", "implicit")) for s in systems) == peer
    if script == "bench_implicit":  # both of implicit's solvers, each row's ratio to the conjugate-gradient one
        assert {"implicit-als", "implicit-als-exact", "bayesmf-gibbs"} <= systems
        assert all(line.split(" | ")[-3] != "nan" for line in rows)
    if script in ("bench_binary", "bench_ordinal"):
        assert {"bayesmf-gibbs", "bayesmf-gibbs-myfm-prior"} <= systems
        assert "factor_prior='per_side', per_factor_scales=True" in section
        if peer:  # every bayesmf row has its ratio to myFM on the fold
            assert all(line.split(" | ")[-2] != "nan" for line in rows)


# -- bench_extended.py: features and implicit sets beside myFM's extended example ----------------
def test_mean_rows_average_each_system_and_protocol_over_the_folds() -> None:
    import _myfm_bench as bench

    records = [{"fold": f, "protocol": p, "system": s, "likelihood": "normal", "rmse": r, "s_per_sweep": t,
                "fit_s": 10 * t}
               for f, p, s, r, t in (("u1", "strict", "bayesmf-gibbs", 0.90, 0.2), ("u1", "strict", "myfm", 0.88, 0.1),
                                     ("u2", "strict", "bayesmf-gibbs", 0.80, 0.4), ("u2", "strict", "myfm", 0.86, 0.3),
                                     ("u1", "transductive", "bayesmf-gibbs", 0.70, 0.6))]
    means = bench.mean_rows(records, ("protocol", "system"))
    assert [(m["fold"], m["protocol"], m["system"]) for m in means] == [
        ("mean", "strict", "bayesmf-gibbs"), ("mean", "strict", "myfm"), ("mean", "transductive", "bayesmf-gibbs")]
    assert means[0]["rmse"] == pytest.approx(0.85) and means[0]["s_per_sweep"] == pytest.approx(0.3)
    assert means[1]["fit_s"] == pytest.approx(2.0) and means[2]["rmse"] == pytest.approx(0.70)
    assert means[0]["likelihood"] == "normal" and records[0]["fold"] == "u1"  # the records are not modified
    lines = bench.table([*records, *means], bench.peer_columns("RMSE=rmse", lead=("fold", "protocol", "system")),
                        match=("fold", "protocol"))
    assert lines[-3].startswith("| mean | strict | bayesmf-gibbs | 0.8500 | 0.3000 | 1.50 |")


def test_extended_bench_options_and_ratio_by_likelihood() -> None:
    import bench_extended

    args = bench_extended.parse([])
    assert (args.rank, args.tune, args.draws, args.folds, args.protocols) == (10, 100, 412, "u1", ["strict", "transductive"])
    assert bench_extended.parse(["--all-folds"]).folds == "u1,u2,u3,u4,u5"
    assert {k: v for k, v in bench_extended.SPECS["bayesmf-gibbs-ordinal"].items()
            if k not in ("likelihood", "link")} == bench_extended.SPECS["bayesmf-gibbs"]
    assert bench_extended.parse(["--protocols", " transductive,transductive"]).protocols == ["transductive"]
    for bad in ("inductive", ",", "strict,inductive"):
        with pytest.raises(SystemExit):
            bench_extended.parse(["--protocols", bad])
    records = [{"fold": "u1", "protocol": "strict", "system": s, "likelihood": lik, "rmse": 0.9, "mae": 0.7,
                "s_per_sweep": t, "fit_s": 1.0}
               for s, lik, t in (("bayesmf-gibbs", "normal", 0.3), ("bayesmf-gibbs-ordinal", "ordinal", 0.8),
                                 ("myfm-regression", "normal", 0.1), ("myfm-ordered-probit", "ordinal", 0.4))]
    ratios = [line.split(" | ")[6] for line in bench_extended.table(records)[2:]]
    assert ratios == ["3.00", "2.00", "1.00", "1.00"]  # each over myFM's system of its likelihood


@pytest.mark.slow  # ~8 s alone (first compiles; 2.5 s after the other scripts): 4 systems x 2 protocols + warm-up
def test_extended_bench_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--quick`` prints every system under both protocols, the anchors above the table, and writes nothing."""
    import bench_extended

    results = tmp_path / "RESULTS.md"
    assert bench_extended.main(["--quick", "--results", str(results), "--json", str(tmp_path / "out.json")]) == 0
    assert not results.exists()
    out = capsys.readouterr().out
    section = out.split("<!-- bench_extended.py:begin -->", 1)[1].split("<!-- bench_extended.py:end -->", 1)[0]
    assert "QUICK (tiny simulated set" in section and "**no date**" in section
    anchors = section.index("0.8833 by regression, 0.8808 by ordered probit; GLocal-K 0.8889")
    assert anchors < section.index("| fold | protocol | system | RMSE | MAE |")
    records = json.loads((tmp_path / "out.json").read_text())["records"]
    peer = importlib.util.find_spec("myfm") is not None
    systems = ["bayesmf-gibbs", "bayesmf-gibbs-ordinal"] + (["myfm-regression", "myfm-ordered-probit"] if peer else [])
    assert [(r["protocol"], r["system"]) for r in records] == [(p, s) for p in ("strict", "transductive") for s in systems]
    assert all(0 < r["mae"] <= r["rmse"] < 2 for r in records)
    rows = [line for line in section.splitlines() if line.startswith("| k1 |")]
    assert len(rows) == len(records)
    if peer:  # every row has its ratio to the myFM system of its likelihood
        assert all(line.split(" | ")[6] != "nan" for line in rows)


def test_mixing_bench_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench_mixing --quick`` prints one row per variant with per-draw ESS in (0, 2] and writes nothing."""
    import bench_mixing

    results = tmp_path / "RESULTS.md"
    assert bench_mixing.main(["--quick", "--results", str(results), "--variants", "default,fixed"]) == 0
    assert not results.exists()
    section = capsys.readouterr().out.split("<!-- bench_mixing.py:begin -->", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| sim |")]
    assert [row.split(" | ")[1] for row in rows] == ["default", "fixed"]
    for row in rows:
        q01, q05, median = (float(x) for x in row.split(" | ")[3:6])
        assert 0 < q01 <= q05 <= median <= 2.0, row
    assert "| fixed | fixed |" in rows[1]  # no learned noise sd or scale under the fixed prior
    assert rows[0].split(" | ")[9] != "fixed"  # the default's per-side scales are learned and reported
    with pytest.raises(SystemExit):
        bench_mixing.main(["--quick", "--variants", "nonsense"])


def test_converge_bench_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench_converge``: the fixed-noise variant fixes sigma at the scale's default; unknown variants are refused."""
    import os

    before = os.environ.get("TQDM_DISABLE")
    import bench_converge  # sets TQDM_DISABLE for its own runs: undone below for the other tests

    if before is None:
        os.environ.pop("TQDM_DISABLE", None)
    from bayesmf import PMF
    from bayesmf.datasets import simulate

    data = simulate(n_users=20, n_items=15, n_factors=2, density=0.4, seed=0).data
    spec = bench_converge.spec_for("fixed-noise", 3, data)
    assert spec.sigma == PMF(priors="fixed").noise_sd(data.scale) and spec.priors == "hierarchical"
    assert bench_converge.spec_for("default", 3, data) == PMF(n_factors=3) == bench_converge.spec_for("per-side", 3, data)
    assert bench_converge.spec_for("shared", 3, data).factor_prior == "shared"
    with pytest.raises(SystemExit):
        bench_converge.main(["--quick", "--no-write", "--seed-variants", "nonsense"])


def test_calibration_bench_rows_compare_typed_and_continuous_probabilities() -> None:
    """bench_calibration's P(r >= t) rows: the package's (as typed) and the uncorrected
    P(y >= t) differ on whole stars, and the patch that gives the latter is undone after."""
    import bench_calibration
    from helpers import fake_result, fake_train

    from bayesmf.predictive.view import model_view
    from bayesmf.spec import PMF

    train = fake_train(20, 12, seed=3)
    fit = fake_result(PMF(n_factors=3), n_draws=20, train=train, seed=4)
    rows = pd.DataFrame(bench_calibration.p_at_least_rows({"fit": fit}, train))
    typed = rows[rows["P(r >= t)"] == "as typed"].set_index("t")
    continuous = rows[rows["P(r >= t)"] == "continuous"].set_index("t")
    assert list(typed.index) == list(bench_calibration.THRESHOLDS)
    assert (typed["mean predicted"] > continuous["mean predicted"]).all()
    np.testing.assert_allclose(typed["observed share"], continuous["observed share"])
    assert model_view(fit).threshold_cut(4.0, "predictive") == 3.5  # unpatched again


def test_thin_bench_smoke_on_tiny_data(tmp_path: Path) -> None:
    """bench_thin writes its own section: a row per ranking and draw count, the whole posterior first."""
    import bench_thin

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nkeep me\n")
    argv = ["--dataset", "tiny", "--folds", "1", "--quick", "--draws", "20,5", "--results", str(results)]
    assert bench_thin.main(argv) == 0
    text = results.read_text()
    assert "keep me" in text and text.count("<!-- bench_thin.py:begin -->") == 1
    rows = [line for line in text.splitlines() if line.startswith("| k1 | ")]
    assert len(rows) == 2 * 3 + 1  # two rankings x (whole, 20, 5 draws per chain), then the verdicts
    cells = [row.split(" | ") for row in rows]  # "| k1", ranking, draws, NDCG, difference, ...
    assert cells[0][2] == "100 / 100" and cells[0][4] == "-"  # the whole posterior
    assert cells[2][2] == "20 / 20" and cells[4][2] == "5 / 5" and cells[2][4] != "-"


def test_thin_bench_paired_difference() -> None:
    import bench_thin

    class Run:
        def __init__(self, users: list[int], ndcg: list[float]) -> None:
            self.per_user = pd.DataFrame({"user": users, "ndcg": ndcg})

    mean, se = bench_thin.paired(Run([1, 2, 3], [0.5, 0.2, 0.9]), Run([1, 2, 3], [0.4, 0.2, 0.6]))
    assert mean == pytest.approx(0.4 / 3) and se == pytest.approx(np.std([0.1, 0.0, 0.3], ddof=1) / np.sqrt(3))
    with pytest.raises(RuntimeError, match="same users"):
        bench_thin.paired(Run([1, 2], [0.5, 0.2]), Run([2, 1], [0.5, 0.2]))


def test_row_batch_bench_smoke(tmp_path: Path) -> None:
    """bench_row_batch times old and new kernels side by side and finds them drawing the same rows."""
    import bench_row_batch

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nkeep me\n")
    assert bench_row_batch.main(["--quick", "--before", "HEAD", "--results", str(results)]) == 0
    text = results.read_text()
    assert "keep me" in text and text.count("<!-- bench_row_batch.py:begin -->") == 1
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| sim | ")]
    assert len(rows) == 2 * 2 + 2  # rating kernel at two ranks, implicit at one; user and item passes
    assert all(row[-1] == "yes |" for row in rows)


def test_stop_spread_bench_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench_stop_spread --quick``: one row per (variant, burn-in, seed), a summary per variant, nothing written."""
    import os

    pytest.importorskip("myfm")  # its peer, timed in the same run: the `bench` extra

    before = os.environ.get("TQDM_DISABLE")
    import bench_stop_spread

    if before is None:
        os.environ.pop("TQDM_DISABLE", None)
    results = tmp_path / "RESULTS.md"
    argv = ["--quick", "--seeds", "1", "--tunes", "10,20", "--variants", "default", "--results", str(results), "--no-write"]
    assert bench_stop_spread.main(argv) == 0
    assert not results.exists()
    out = capsys.readouterr().out
    assert out.count("| default | 10 | 0 |") == 1 and out.count("| default | 20 | 0 |") == 1
    assert "| default | 2 |" in out  # the summary row counts both runs
    with pytest.raises(SystemExit):
        bench_stop_spread.main(["--quick", "--no-write", "--variants", "nonsense"])


@pytest.mark.slow  # ~11 s: a 40-draw fit of ml-latest-small and three calibration tables
def test_report_draws_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_report_draws --quick: the whole posterior's row, then one per thinned count."""
    import bench_report_draws

    assert bench_report_draws.main(["--quick", "--draws", "20,10"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1].startswith("| 40 (all) |") and rows[2].startswith("| 20 |") and rows[3].startswith("| 10 |")


@pytest.mark.slow
def test_diagnose_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_diagnose --quick: a row per fit, az.summary and summary_table agreeing (checked inside)."""
    import bench_diagnose

    assert bench_diagnose.main(["--quick", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1].startswith("| u1-shaped (simulated) | 4 x 40 |") and rows[2].startswith("| sbc | 1 x 99 |")


def test_sweep_steps_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_sweep_steps --quick: a row per step of the default sweep, shares that add up to the sweep."""
    import bench_sweep_steps

    assert bench_sweep_steps.main(["--quick"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    names = [row.split(" | ")[0].lstrip("| ") for row in rows[1:]]
    assert names[:3] == ["variates (and augment)", "RowUpdate (user)", "RowUpdate (item)"]
    assert "CollapsedBiasScale" in names and "refresh" in names and names[-1] == "**sweep**"
    shares = [float(row.split(" | ")[2].rstrip(" |%")) for row in rows[1:-1]]
    assert 90.0 <= sum(shares) <= 100.5  # the steps are the sweep, up to the clock calls between them


def test_small_fits_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_small_fits --quick: a row per prior (the sweep's and the fit's cost), and the threads table."""
    import bench_small_fits

    assert bench_small_fits.main(["--quick"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    fits = rows[1:3]
    assert [row.split(" | ")[0].lstrip("| ") for row in fits] == ["shared", "per-side"]
    for row in fits:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[1].split()[0]) > 0 and int(cells[5]) > 0 and float(cells[7]) > 0
    threads = [[c.strip() for c in row.strip("|").split("|")] for row in rows[4:]]  # after the threads table's header
    assert [(t[0], t[2]) for t in threads] == [("15 x 12", "2"), ("15 x 12", "10"), ("60 x 40", "2"), ("60 x 40", "10")]
    assert all(t[7] == "1" for t in threads)  # small sweeps: one thread by default


def test_slowest_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_slowest --quick: a row per checkpoint of the rule, and the parts of the users' effect spread."""
    import bench_slowest

    assert bench_slowest.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    checkpoints = [int(r.split(" | ")[0].lstrip("| ")) for r in rows if r.split(" | ")[0].lstrip("| ").isdigit()]
    assert checkpoints == [100, 150, 160]  # the rule's looks, the last one the run's length
    spread = next(r for r in rows if r.startswith("| `sd_user_effect`"))
    assert spread.rstrip(" |").endswith("+1.00")  # its own block means correlate perfectly
    assert any(r.startswith("| each user's own effect") for r in rows)


def test_overrelax_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_overrelax --quick: a row per coefficient, each with its seed and ESS cells."""
    import bench_overrelax

    assert bench_overrelax.main(["--quick"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| -")]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == ["-0.8", "-0.7"]
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[1] == "0" and all(float(c) > 0 for c in cells[3:8])


def test_choice_horizon_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_choice_horizon --quick: one row per probability judged, each with an ECE in [0, 1]."""
    import bench_choice_horizon

    assert bench_choice_horizon.main(["--quick"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| simulated")]
    assert [r.split(" | ")[1] for r in rows] == [v[0] for v in bench_choice_horizon.VARIANTS]
    for r in rows:
        assert 0 <= float(r.split(" | ")[2]) <= 1
