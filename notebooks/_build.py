"""Sync the notebooks from their percent-format scripts, execute them in full, shrink figures.

Each notebook ``NN_name.ipynb`` is paired (jupytext, ``py:percent``) with ``NN_name.py``, its
source: edit the script, never the ``.ipynb``. Usage, from the repository root::

    .venv/bin/python notebooks/_build.py 01 03               # script -> .ipynb sources only
    BAYESMF_DATA_DIR=/path/to/data .venv/bin/python notebooks/_build.py --execute 01
    .venv/bin/python notebooks/_build.py --shrink-images 01  # figures only

No number means all notebooks. Syncing (``jupytext --to ipynb --update``) keeps the outputs
of the cells whose source did not change; ``--execute`` syncs, runs the notebook top to
bottom in a fresh kernel (full mode unless ``BAYESMF_FAST=1`` is set, inline figures), then
re-encodes its PNG figures with a 256-colour palette (a third of the size for line plots)
and writes it in place.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def notebooks(numbers: list[str]) -> list[Path]:
    """The ``.ipynb`` paths of the notebooks named by number prefix (all when none is named)."""
    known = {path.name[:2]: path for path in sorted(HERE.glob("[0-9][0-9]_*.ipynb"))}
    unknown = [number for number in numbers if number not in known]
    if unknown:
        raise SystemExit(f"unknown notebook(s) {unknown}; known: {sorted(known)}")
    return [known[number] for number in numbers or sorted(known)]


def sync(path: Path) -> Path:
    """Update the cell sources of ``path`` from its paired script, keeping matching outputs."""
    from jupytext.cli import jupytext

    jupytext(["--quiet", "--to", "ipynb", "--update", "--output", str(path), str(path.with_suffix(".py"))])
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


def shrink_images(path: Path) -> Path:
    """Re-encode the PNG outputs of the executed notebook ``path`` in place."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                data["image/png"] = _palette_png(data["image/png"])
    nbformat.write(nb, path)
    return path


def execute(path: Path) -> Path:
    """Run ``path`` top to bottom in a fresh kernel (working directory: its folder), in place."""
    from nbclient import NotebookClient

    os.environ.pop("MPLBACKEND", None)  # a non-inline backend loses the figures
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    return path


def main(argv: list[str]) -> None:
    """Sync the notebooks named by number; ``--execute`` also runs them, ``--shrink-images`` only shrinks."""
    if argv and argv[0] == "--shrink-images":
        actions, argv = [shrink_images], argv[1:]
    elif argv and argv[0] == "--execute":
        actions, argv = [sync, execute, shrink_images], argv[1:]
    else:
        actions = [sync]
    for path in notebooks(argv):
        for action in actions:
            action(path)
        print(path, f"{path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(sys.argv[1:])
