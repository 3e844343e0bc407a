"""Write the notebooks' cells (sources only, no outputs) from the definitions in ``_cells``.

Usage::

    .venv/bin/python notebooks/_build.py 01 03     # rebuild some (by number prefix)
    .venv/bin/python notebooks/_build.py           # rebuild all

Rebuilding drops the outputs, so execute the notebook afterwards (full mode, from the repo
root, so ML-100K is found), then shrink its figures (a 256-colour palette, losslessly
compressed: a third of the size for line plots)::

    BAYESMF_DATA_DIR=/path/to/data .venv/bin/jupyter execute --inplace notebooks/01_quickstart.ipynb
    .venv/bin/python notebooks/_build.py --shrink-images 01

The cells live in ``notebooks/_cells/nbXX.py`` as a list ``CELLS`` of ``("md" | "code", text)``.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOKS = {
    "01": "01_quickstart.ipynb",
    "02": "02_map_vs_posterior.ipynb",
    "03": "03_recommendations_with_uncertainty.ipynb",
    "04": "04_diagnostics_and_identifiability.ipynb",
    "05": "05_model_choice.ipynb",
}


def load_cells(number: str) -> list[tuple[str, str]]:
    """Import ``_cells/nb<number>.py`` and return its ``CELLS``."""
    path = HERE / "_cells" / f"nb{number}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # for ``from _common import ...``
    spec = importlib.util.spec_from_file_location(f"_cells_nb{number}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.CELLS)


def build(number: str) -> Path:
    """Write notebook ``number`` from its cells; returns its path."""
    cells = []
    for kind, text in load_cells(number):
        text = text.strip("\n")
        if kind == "md":
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code":
            cells.append(nbformat.v4.new_code_cell(text))
        else:
            raise ValueError(f"cell kind must be 'md' or 'code', got {kind!r}")
    for k, cell in enumerate(cells):
        cell.id = f"cell-{k:02d}"  # stable ids: rebuilding gives the same file
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    path = HERE / NOTEBOOKS[number]
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


def _palette_png(payload: str) -> str:
    """Re-encode a base64 PNG with a 256-colour palette when that is smaller."""
    from PIL import Image

    raw = base64.b64decode(payload)
    image = Image.open(io.BytesIO(raw))
    if image.mode == "P":
        return payload
    out = io.BytesIO()
    image.convert("RGB").quantize(256).save(out, format="png", optimize=True)
    smaller = out.getvalue()
    return base64.b64encode(smaller).decode("ascii") if len(smaller) < len(raw) else payload


def shrink_images(number: str) -> Path:
    """Re-encode the PNG outputs of executed notebook ``number`` in place; returns its path."""
    path = HERE / NOTEBOOKS[number]
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                data["image/png"] = _palette_png(data["image/png"])
    nbformat.write(nb, path)
    return path


def main(argv: list[str]) -> None:
    """Rebuild the notebooks named by number (all when none is named), or shrink their images."""
    action = build
    if argv and argv[0] == "--shrink-images":
        action, argv = shrink_images, argv[1:]
    numbers = argv or sorted(NOTEBOOKS)
    for number in numbers:
        if number not in NOTEBOOKS:
            raise SystemExit(f"unknown notebook {number!r}; known: {sorted(NOTEBOOKS)}")
        print(action(number), f"{(HERE / NOTEBOOKS[number]).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(sys.argv[1:])
