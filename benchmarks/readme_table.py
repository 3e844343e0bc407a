#!/usr/bin/env python
"""Render the README's results table from ``benchmarks/results.json``.

    .venv/bin/python benchmarks/readme_table.py                 # print the table
    .venv/bin/python benchmarks/readme_table.py --readme README.md
        # replace the text between <!-- bench-table:begin --> and <!-- bench-table:end -->

The table is ML-100K, mean over the canonical folds each system ran (u1-u5 unless the
run limited it: the folds column says which), one row per system, best RMSE first.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"


def _f(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def _folds(folds: list[str]) -> str:
    if folds == [f"u{k}" for k in range(1, 6)]:
        return "u1-u5"
    return ",".join(folds) or "-"


def render(payload: dict[str, Any], dataset: str = "ml-100k") -> str:
    """Markdown table of one dataset's summary, with the run's date and machine under it."""
    rows = [s for s in payload["summary"] if s["dataset"] == dataset and s.get("rmse") is not None]
    rows.sort(key=lambda s: s["rmse"])
    missing = [s for s in payload["summary"] if s["dataset"] == dataset and s.get("rmse") is None]
    lines = [
        "| system | folds | RMSE | RMSE first fold | MAE | 90% interval coverage | 90% width | fit (s) | ESS/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        lines.append(
            f"| {s['system']} | {_folds(s['folds_run'])} | {_f(s.get('rmse'), '.4f')} | "
            f"{_f(s.get('rmse_first_fold'), '.4f')} | {_f(s.get('mae'), '.4f')} | "
            f"{_f(s.get('cov90'), '.3f')} | {_f(s.get('width90'), '.2f')} | {_f(s.get('fit_s'), '.2f')} | "
            f"{_f(s.get('ess_per_s'), '.1f')} |"
        )
    meta = payload["meta"]
    machine = meta["machine"]
    note = (
        f"\n{dataset}, rank 10 where it applies; {meta['date'][:10]}, {machine['cpu']} "
        f"({machine['nproc']} cores); command `{meta['command']}`. "
        "Systems run on fewer folds (slow routes) compare through the first-fold column, not the mean. "
        "Full table, memory, scaling and targets: benchmarks/RESULTS.md."
    )
    earlier = meta.get("earlier_runs") or []
    if earlier:
        note += (
            f" Records of systems that run did not redo come from {len(earlier)} earlier run(s) "
            f"({', '.join(run['date'][:16].replace('T', ' ') for run in earlier)} UTC; 1-minute load "
            f"average at their start {', '.join(_f(run['load_before'][0], '.1f') for run in earlier)} "
            f"on {machine['nproc']} cores; above the core count, other jobs shared the cores and "
            "wall times are inflated)."
        )
    if missing:
        note += " Not run: " + "; ".join(f"{s['system']} ({s['status'][:60]})" for s in missing) + "."
    targets = payload.get("targets") or []
    if targets:
        note += "\n\nTargets of the benchmark issue, as measured:\n\n"
        for t in targets:
            measured = _f(t.get("measured"), ".4g")
            peer = f" vs {_f(t.get('peer'), '.4g')}" if t.get("peer") is not None else ""
            verdict = "met" if t.get("met") else "**missed**"
            system = f" ({t['system']})" if t.get("system") else ""
            note += f"- {t['target']}: {measured}{peer}{system}: {verdict}\n"
    return "\n".join(lines) + "\n" + note + ("" if note.endswith("\n") else "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(HERE / "results.json"))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--readme", help="file whose bench-table markers to fill in")
    args = parser.parse_args(argv)
    table = render(json.loads(Path(args.results).read_text()), args.dataset)
    if not args.readme:
        sys.stdout.write(table)
        return 0
    path = Path(args.readme)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
