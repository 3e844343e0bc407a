"""bench_topn's choice-model systems: the joint reuses the two fits, the calibration table is written."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_topn  # noqa: E402

from bayesmf.joint import joint_scores  # noqa: E402
from bayesmf.topn import evaluate_scores, evaluate_topn  # noqa: E402


def test_joint_reuses_the_choice_and_rating_fits_and_scores_as_joint_scores(monkeypatch, tmp_path):
    fits: list[tuple[str, object]] = []
    real = bench_topn.fit_bayesmf

    def counting(group, train, seed, quick):
        fit, seconds = real(group, train, seed, quick)
        fits.append((group, fit))
        return fit, seconds

    monkeypatch.setattr(bench_topn, "fit_bayesmf", counting)
    monkeypatch.setattr(bench_topn, "warm_up", lambda log: None)
    systems = "joint,gibbs-implicit,gibbs-implicit-lower,gibbs-mean"  # joint first: still fitted after its parts
    argv = ["--datasets", "tiny", "--folds", "u1", "--quick", "--no-write", "--threads", "1", "--systems", systems,
            "--json", str(tmp_path / "t.json")]
    args = bench_topn.parse(argv)
    _, train, test = next(bench_topn.load_folds("tiny", [1], ""))
    rows, _, _ = bench_topn.run_fold("tiny", "k1", train, test, args.system_list, args, lambda m: None)
    assert sorted(g for g, _ in fits) == ["gibbs", "gibbs-implicit"]  # each fitted once
    by = {r.system: r for r in rows}
    assert all(r.status == "ok" for r in rows), [r.status for r in rows]
    fit_of = dict(fits)
    ref = evaluate_scores(joint_scores(fit_of["gibbs-implicit"], fit_of["gibbs"], threshold=4.0, random_seed=0),
                          train, test, 10, 4.0, random_seed=0, name="joint")
    assert by["joint"].per_user is not None
    pd.testing.assert_frame_equal(by["joint"].per_user, ref.per_user)
    assert by["joint"].fit_s == by["gibbs-implicit"].fit_s + by["gibbs-mean"].fit_s
    assert by["joint"].diagnose == bench_topn.both([by["gibbs-implicit"].diagnose, by["gibbs-mean"].diagnose])
    choice = evaluate_topn(fit_of["gibbs-implicit"], test, 10, rank_by="lower", threshold=4.0, random_seed=0,
                           progressbar=False)
    pd.testing.assert_frame_equal(by["gibbs-implicit-lower"].per_user, choice.per_user)
    cal = by["gibbs-implicit"].calibration
    assert 0 <= cal["ece"] <= 1 and 0 <= cal["brier"] <= 1 and cal["n_positive"] > 0
    # main() end to end (its JSON and the calibration table in its section): test_benchmarks's
    # test_topn_bench_smoke_on_tiny_data, which runs every system on the same tiny data
    assert "### Calibration of P(chosen)" in "\n".join(bench_topn.calibration_tables(rows))


def test_verdict_of_two_fits():
    assert bench_topn.both(["pass", "pass"]) == "pass"
    assert bench_topn.both(["pass", "FAIL"]) == "FAIL" and bench_topn.both(["n/a", "FAIL"]) == "FAIL"
    assert bench_topn.both(["pass", "n/a"]) == "n/a"
