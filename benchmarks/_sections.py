"""The one writer of ``RESULTS.md`` sections, shared by the benchmark scripts.

Each script owns the text between its ``<!-- name:begin -->`` and ``<!-- name:end -->``
markers; a run replaces that text and keeps the rest of the file.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["provenance", "publish", "write_section"]


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


def provenance(script: str, argv: Sequence[str] | None, load_before: tuple[float, ...], start: float) -> list[str]:
    """The lines every section opens with: date, machine, command, commit, versions, load, total time.

    ``script``: the benchmark's file name; ``argv``: its arguments (None: ``sys.argv``);
    ``load_before``: `os.getloadavg` at its start; ``start``: `time.perf_counter` at its start.
    """
    from bench_topn import cpu_model, git_commit, versions

    args = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join(shlex.quote(a) for a in [f"benchmarks/{script}", *args])
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: `{platform.node()}`, {cpu_model()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}",
        f"- command: `{command}`",
        f"- commit: {git_commit()}; versions: {versions()}",
        f"- load average before {tuple(round(x, 2) for x in load_before)}, after "
        f"{tuple(round(x, 2) for x in os.getloadavg())}; total {(time.perf_counter() - start) / 60:.1f} min",
    ]
