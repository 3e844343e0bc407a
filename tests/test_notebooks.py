"""Execute every notebook top to bottom in a fresh kernel (fast mode); any cell error fails.

The default tier also checks the committed copies: they carry the outputs of a full run
(no errors, figures present), stay small, have the fast-mode switch the slow tier uses, and
have exactly the cells of their source, the paired percent-format script ``NN_name.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


#: the notebooks' sources: one jupytext percent-format script beside each notebook
SCRIPTS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))

#: hard cap on a committed notebook (the aim is < 300 KB: PNG figures at 80 dpi, short tables)
MAX_BYTES = 400_000


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, f"expected the five notebooks in {NOTEBOOK_DIR}, found {NOTEBOOKS}"


def test_every_notebook_has_a_script_and_every_script_a_notebook() -> None:
    notebooks = [p.stem for p in NOTEBOOKS]
    scripts = [p.stem for p in SCRIPTS]
    assert notebooks == scripts, (
        f"notebooks {notebooks} and their scripts {scripts} in {NOTEBOOK_DIR} do not pair up"
    )


def _first_difference(a: str, b: str) -> str:
    """Where two cell sources first differ: line number and both lines."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    for k in range(max(len(lines_a), len(lines_b))):
        line_a = lines_a[k] if k < len(lines_a) else "<end of cell>"
        line_b = lines_b[k] if k < len(lines_b) else "<end of cell>"
        if line_a != line_b:
            return f"line {k + 1}: script {line_a!r} vs notebook {line_b!r}"
    return f"trailing whitespace: script {a[-20:]!r} vs notebook {b[-20:]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_matches_its_script(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    import jupytext  # a dev dependency: no skip, a missing jupytext must not pass silently

    script_path = path.with_suffix(".py")
    assert script_path.exists(), f"{path.name} has no source script {script_path.name}"
    script = jupytext.read(script_path, fmt="py:percent")
    assert script.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", (
        f"{script_path.name}: its header must pair it with the notebook (formats: ipynb,py:percent)"
    )
    notebook = nbformat.read(path, as_version=4)
    want = [(cell.cell_type, cell.source) for cell in script.cells]
    have = [(cell.cell_type, cell.source) for cell in notebook.cells]
    hint = f"edit {script_path.name}, then sync and re-execute (see notebooks/README.md)"
    pairs = zip(want, have, strict=False)  # unequal lengths: reported after the common cells
    for k, ((want_type, want_source), (have_type, have_source)) in enumerate(pairs):
        assert want_type == have_type, (
            f"{path.name}: cell {k} is {have_type} in the notebook, {want_type} in "
            f"{script_path.name}; {hint}"
        )
        assert want_source == have_source, (
            f"{path.name}: cell {k} ({want_type}) differs from {script_path.name}, "
            f"{_first_difference(want_source, have_source)}; {hint}"
        )
    assert len(want) == len(have), (
        f"{path.name} has {len(have)} cells, {script_path.name} {len(want)}: they differ "
        f"from cell {min(len(want), len(have))} on; {hint}"
    )


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
