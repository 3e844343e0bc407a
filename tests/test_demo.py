"""The demo: command line, report contents, and report numbers against direct computation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesmf import PMF, load_movielens, train_test_split
from bayesmf.cli import main
from bayesmf.report import run_demo


def test_cli_help_lists_demo_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bayesmf.cli", "demo", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--out", "--dataset", "--draws", "--thin", "--seed", "--overwrite", "--report-draws"):
        assert option in out.stdout


@pytest.mark.parametrize("bad", ["0", "-5", "2.5", "most"])
def test_cli_rejects_bad_report_draws(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--report-draws", bad])
    assert excinfo.value.code == 2
    assert repr(bad) in capsys.readouterr().err


@pytest.mark.parametrize("bad", [0, -1, 2.5, "all"])
def test_demo_names_bad_report_draws_before_fitting(tmp_path: Path, bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="report_draws"):
        run_demo(out=tmp_path / "r", report_draws=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()


def test_cli_rejects_unknown_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--dataset", "ml-1b"])
    assert excinfo.value.code == 2
    assert "ml-1b" in capsys.readouterr().err


def test_demo_refuses_to_overwrite_a_report(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        run_demo(out=tmp_path)
    assert (tmp_path / "report.md").read_text() == "mine"


def test_demo_checks_its_folder_before_fitting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file in the way fails before any fit; a folder whose parent is missing is made first
    (the rename at the end once failed on it, after minutes of fitting)."""
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(FileExistsError, match="is a file"):
        run_demo(out=tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "mine"
    with pytest.raises((FileExistsError, NotADirectoryError)):
        run_demo(out=tmp_path / "taken" / "report")  # its parent cannot be made: fails before fitting

    class Stop(Exception):
        pass

    def stop(*args: object, **kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr("bayesmf.datasets.load_movielens", stop)  # the first step after the checks
    with pytest.raises(Stop):
        run_demo(out=tmp_path / "new" / "deeper" / "report")
    assert (tmp_path / "new" / "deeper").is_dir()


@pytest.mark.slow
def test_demo_report_numbers_match_direct_computation(tmp_path: Path) -> None:
    out = tmp_path / "report"
    seed = 7
    # thin=2 (not the sampler's default): the Gibbs numbers below match only if it is passed on;
    # report_draws=20: the report's Gibbs numbers come from every second draw
    path = run_demo(out=out, draws=40, tune=40, chains=2, thin=2, seed=seed, progressbar=False, report_draws=20)
    assert path == out / "report.md"
    for name in ("report.md", "report.json", "calibration.png", "recommendations.png"):
        assert (out / name).stat().st_size > 0
    facts = json.loads((out / "report.json").read_text())
    rows = {row["fit"]: row for row in facts["comparison"]}

    # the same split and fits, computed directly through the public API and numpy
    train, test = train_test_split(load_movielens("ml-latest-small"), test_size=0.2, seed=seed, by="user")
    y = np.asarray(test.rating)
    assert rows["global mean"]["RMSE"] == pytest.approx(np.sqrt(np.mean((y - train.rating.mean()) ** 2)), rel=1e-9)

    als = PMF(priors="fixed").fit(train, method="als", random_seed=seed, progressbar=False)
    pred = als.predict(test, prob=0.9)
    assert rows["MAP (ALS)"]["RMSE"] == pytest.approx(np.sqrt(np.mean((y - pred["mean"].to_numpy()) ** 2)), rel=1e-6)
    inside = (pred["lower"].to_numpy() <= y) & (y <= pred["upper"].to_numpy())
    assert rows["MAP (ALS)"]["coverage 90%"] == pytest.approx(inside.mean(), abs=1e-12)

    gibbs = PMF().fit(train, method="gibbs", draws=40, tune=40, chains=2, thin=2, random_seed=seed, progressbar=False)
    pred = gibbs.thin(draws=20).predict(test, prob=0.9)
    assert rows["posterior (Gibbs)"]["RMSE"] == pytest.approx(np.sqrt(np.mean((y - pred["mean"].to_numpy()) ** 2)), rel=1e-6)
    assert facts["report_draws_per_chain"] == 20 and facts["gibbs"]["draws"] == 40
    text = path.read_text()
    assert "use 20 of its 40 draws per chain, evenly spaced; the verdict below judges all of them" in text
    assert f"{rows['posterior (Gibbs)']['RMSE']:.3f}" in text


def test_run_info_says_how_a_run_was_made(monkeypatch):
    """The notebooks' closing cell: versions, CPU and load, then each step's seconds in order."""
    from bayesmf.report import run_info, versions

    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    text = run_info({"load data": 0.04, "fit: Gibbs": 123.456})
    lines = text.split("\n")
    assert lines[0] == ", ".join(f"{k} {v}" for k, v in versions().items()) and "bayesmf " in lines[0]
    assert lines[1].startswith("CPU: ") and "load average at the end " in lines[1] and lines[1].endswith("NUMBA_NUM_THREADS=3")
    assert [line.split()[-1] for line in lines[2:]] == ["0.0", "123.5"]
    assert lines[2].startswith("load data") and lines[3].startswith("fit: Gibbs")
    assert len(run_info().split("\n")) == 2  # no steps: no table
