"""Execute every notebook top to bottom in a fresh kernel (fast mode); any cell error fails.

The default tier also checks the committed copies: they carry the outputs of a full run
(no errors, figures present), stay small, and have the fast-mode switch the slow tier uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


#: hard cap on a committed notebook (the aim is < 300 KB: PNG figures at 80 dpi, short tables)
MAX_BYTES = 400_000


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, f"expected the five notebooks in {NOTEBOOK_DIR}, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_executed_small_and_has_fast_mode(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    assert any('os.environ.get("BAYESMF_FAST") == "1"' in cell.source for cell in code[:3]), (
        f"{path.name}: the parameters cell near the top must read BAYESMF_FAST"
    )
    not_run = [k for k, cell in enumerate(code) if cell.get("execution_count") is None]
    assert not not_run, f"{path.name}: code cells {not_run} were not executed; run it in full and commit"
    counts = [cell["execution_count"] for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: not run top to bottom in one kernel: {counts}"
    errors = [o for cell in code for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: committed with an error output: {errors[0].get('ename')}"
    images = [o for cell in code for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no figure in the outputs (executed with a non-inline backend?)"
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size / 1024:.0f} KB; shrink its outputs (notebooks/_build.py --shrink-images)"


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    env_before = os.environ.get("BAYESMF_FAST")
    os.environ["BAYESMF_FAST"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("BAYESMF_FAST", None)
        else:
            os.environ["BAYESMF_FAST"] = env_before
