"""Command-line entry point: ``bayesmf demo`` (and ``bayesmf info``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesmf",
        description="Bayesian probabilistic matrix factorization on PyMC.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="fit MAP and the full posterior, write a report (Markdown + PNG figures)",
        description=(
            "Fit the classic PMF by MAP (ALS) and the hierarchical PMF by Gibbs sampling on a "
            "train/test split, then write a report: comparison table, calibration plot, a "
            "sample user's recommendations with intervals, and the diagnostics verdict."
        ),
    )
    demo.add_argument("--out", default="demo-report", help="folder for report.md and figures (default: %(default)s)")
    demo.add_argument(
        "--dataset",
        default="ml-latest-small",
        choices=("ml-latest-small", "ml-100k"),
        help="ratings to use; ml-100k needs $BAYESMF_DATA_DIR or --data-dir, or network (default: %(default)s)",
    )
    demo.add_argument("--data-dir", default=None, help="folder holding ml-100k/ (optional)")
    demo.add_argument("--n-factors", type=int, default=10, help="rank (default: %(default)s)")
    demo.add_argument("--draws", type=int, default=None, help="Gibbs draws per chain (default: the sampler's)")
    demo.add_argument("--tune", type=int, default=None, help="Gibbs burn-in sweeps (default: the sampler's)")
    demo.add_argument("--chains", type=int, default=None, help="Gibbs chains (default: the sampler's)")
    demo.add_argument(
        "--thin", type=int, default=None, help="keep every thin-th Gibbs sweep: longer chains (default: the sampler's)"
    )
    demo.add_argument(
        "--report-draws",
        type=_draws_or_all,
        default=250,
        help="Gibbs draws per chain, evenly spaced, behind the report's intervals and lists; 'all' for every "
        "draw (the verdict always judges all of them; default: %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=2026, help="random seed (default: %(default)s)")
    demo.add_argument("--user", default=None, help="raw id of the user whose recommendations are shown")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("-q", "--quiet", action="store_true", help="log warnings only")

    sub.add_parser("info", help="print versions of bayesmf and its numerical stack")
    return parser


def _draws_or_all(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "info":
        from bayesmf.report import versions

        for name, ver in versions().items():
            sys.stdout.write(f"{name:12s} {ver}\n")
        return 0

    # the package's progress at INFO; other libraries' (arviz's backend choice, ...) only
    # when they warn
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("bayesmf").setLevel(logging.WARNING if args.quiet else logging.INFO)
    from bayesmf.report import run_demo

    try:
        path = run_demo(
            out=args.out,
            dataset=args.dataset,
            data_dir=args.data_dir,
            n_factors=args.n_factors,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            thin=args.thin,
            seed=args.seed,
            user=args.user,
            overwrite=args.overwrite,
            progressbar=not args.no_progress,
            report_draws=args.report_draws,
        )
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"bayesmf demo: error: {exc}\n")
        return 2
    sys.stdout.write(f"report written to {path}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
