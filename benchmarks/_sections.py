"""The one writer of ``RESULTS.md`` sections, shared by the benchmark scripts.

Each script owns the text between its ``<!-- name:begin -->`` and ``<!-- name:end -->``
markers; a run replaces that text and keeps the rest of the file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

__all__ = ["publish", "write_section"]


def write_section(path: Path, text: str, begin: str, end: str) -> None:
    """Replace the section ``begin`` ... ``end`` of ``path`` by ``text`` (which holds both markers).

    A file without the section gets it appended; a missing file is created with a title.
    """
    if not (text.lstrip().startswith(begin) and text.rstrip().endswith(end)):
        raise ValueError(f"a section must start with {begin!r} and end with {end!r}")
    text = text.strip("\n")
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        _, tail = rest.split(end, 1)
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def publish(results: Path, script: str, lines: list[str], write: bool = True) -> str:
    """Wrap ``lines`` in ``script``'s markers, print the section and (``write``) store it in ``results``.

    ``script`` is the benchmark's file name (``bench_x.py``); its markers are
    ``<!-- bench_x.py:begin -->`` and ``<!-- bench_x.py:end -->``. Returns the section.
    """
    begin, end = f"<!-- {script}:begin -->", f"<!-- {script}:end -->"
    text = "\n".join([begin, *lines, end])
    print(text)
    if write:
        write_section(results, text, begin, end)
    return text


def log(message: str) -> None:
    """Print a progress line with the wall-clock time to stderr (benchmarks log, the library does not)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
