"""What the benchmarks beside a peer share: command line, warm-up, fold loop, ratio table, report.

``bench_binary.py``, ``bench_ordinal.py``, ``bench_features.py``, ``bench_svdpp.py``,
``bench_extended.py`` (beside myFM) and ``bench_implicit.py`` (beside implicit's ALS) each
fit bayesmf by Gibbs on one chain and one thread next to a peer, fold by fold on ML-100K's
canonical folds (``--quick``: the tiny simulated set, a smoke run that never writes), and
publish one section of ``RESULTS.md`` through `_sections.publish`. Each script keeps its
systems, scores and protocol text; the rest is here:

- `parser` / `parse`: the shared options (``--folds``, ``--rank``, ``--draws``, ``--tune``,
  ``--seed``, ``--data-dir``, ``--results``, ``--no-write``, ``--json``, ``--quick``) and
  what ``--quick`` and ``--all-folds`` set; `protocol_list`, the type of a ``--protocols`` option;
- `add_variants` / `variant_specs` / `variants_text`: ``--variants``, bayesmf's specs by
  name (``default``; ``myfm-prior``: myFM's per-group normal-gamma prior), one row each;
- `warm_up`, `Clock`, `run_folds`: numba compiles outside the clock, then one fold at a time;
- `fit_gibbs`, `fit_myfm`, `one_hot`: the two systems' fits with their seconds per sweep;
- `table` with `RATIO`: the results table, each row's time ratio to the peer on its fold;
  `mean_rows`: a mean row per system (and protocol) over the folds;
- `finish`: provenance, the section, ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # the peers draw a bar per fit; a benchmark logs

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sections import log, provenance, publish  # noqa: E402
from bench_topn import fold_numbers, load_folds  # noqa: E402

from bayesmf import PMF  # noqa: E402
from bayesmf.data import RatingsData  # noqa: E402
from bayesmf.implicit_sets import PROTOCOLS  # noqa: E402
from bayesmf.results import FitResult  # noqa: E402

__all__ = ["QUICK", "RATIO", "TIMES", "VARIANTS", "Clock", "add_variants", "columns", "finish", "fit_gibbs", "fit_myfm",
           "gibbs_times", "load", "mean_rows", "one_hot", "parse", "parser", "peer_columns", "peer_installed",
           "protocol_list", "ratio_to_peer", "run_folds", "spec_text", "table", "variant_runs", "variant_specs", "variants_text", "warm_up"]

ALL_FOLDS = "u1,u2,u3,u4,u5"
#: What ``--quick`` sets (rank 2, short chains) unless a script says otherwise.
QUICK: dict[str, Any] = {"rank": 2, "draws": 20, "tune": 10}
QUICK_NOTE = "QUICK (tiny simulated set): a smoke run, not a measurement"
Record = dict[str, Any]
Fold = tuple[str, RatingsData, RatingsData]
#: ``(dataset, fold numbers, args)`` -> ``(fold name, train, test)``; the default is `load`.
FoldSource = Callable[[str, list[int], argparse.Namespace], Iterator[Fold]]


# -- the command line ----------------------------------------------------------------------------
def parser(doc: str | None, *, folds: str = ALL_FOLDS, draws: int = 200, tune: int = 100, all_folds: bool = False,
           rank: bool = True, draws_help: str | None = None) -> argparse.ArgumentParser:
    """The shared options; the script adds its own, then calls `parse`.

    ``all_folds``: also ``--all-folds`` (u1-u5, overriding ``--folds``); ``rank``: also
    ``--rank`` (default 10; `bench_implicit.py` has ``--ranks`` instead).
    """
    out = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    out.add_argument("--folds", default=folds)
    if all_folds:
        out.add_argument("--all-folds", action="store_true", help="u1-u5 (overrides --folds)")
    if rank:
        out.add_argument("--rank", type=int, default=10)
    out.add_argument("--draws", type=int, default=draws, help=draws_help)
    out.add_argument("--tune", type=int, default=tune)
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--data-dir", default=os.environ.get("BAYESMF_DATA_DIR", str(HERE.parent.parent / "shared" / "data")))
    out.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    out.add_argument("--no-write", action="store_true")
    out.add_argument("--json", type=Path, default=None, help="also save every number here")
    out.add_argument("--quick", action="store_true", help="tiny simulated set, short runs: a smoke run")
    return out


def parse(options: argparse.ArgumentParser, argv: Sequence[str] | None,
          quick: Mapping[str, Any] = QUICK) -> argparse.Namespace:
    """Parse ``argv``; ``--all-folds`` sets ``folds``, ``--quick`` sets ``quick``'s values and ``no_write``.

    Checks the shared numbers (``--rank`` and ``--draws`` >= 1, ``--tune`` >= 0).
    """
    args = options.parse_args(argv)
    if getattr(args, "all_folds", False):
        args.folds = ALL_FOLDS
    if args.quick:
        for key, value in quick.items():
            setattr(args, key, value)
        args.no_write = True
    if min(getattr(args, "rank", 1), args.draws) < 1 or args.tune < 0:
        options.error("--rank and --draws must be >= 1, --tune >= 0")
    return args


def protocol_list(text: str) -> list[str]:
    """``--protocols``' value: comma-separated names among `bayesmf.implicit_sets.PROTOCOLS`, in order.

    For ``add_argument(type=protocol_list)``: an empty list or another name is a usage error.
    """
    names = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names or not set(names) <= set(PROTOCOLS):
        raise argparse.ArgumentTypeError(f"choose among {', '.join(PROTOCOLS)}, got {text!r}")
    return names


# -- bayesmf's variants --------------------------------------------------------------------------
#: What each ``--variants`` name adds to the script's base spec. ``myfm-prior``: myFM's prior,
#: per group (users, items) a mean and a precision per factor, normal-gamma.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "myfm-prior": {"factor_prior": "per_side", "per_factor_scales": True},
}


def add_variants(options: argparse.ArgumentParser) -> None:
    """``--priors`` (of every variant) and ``--variants`` (default: all of `VARIANTS`), one row each."""
    options.add_argument("--priors", choices=("hierarchical", "fixed"), default="hierarchical")
    options.add_argument("--variants", default=",".join(VARIANTS),
                         help=f"bayesmf specs, comma-separated, among {', '.join(VARIANTS)}")


def variant_specs(options: argparse.ArgumentParser, args: argparse.Namespace, **base: Any) -> dict[str, dict[str, Any]]:
    """System name -> `PMF` keywords (without ``n_factors``) of each ``--variants`` entry over ``base``.

    ``base`` takes ``priors=--priors``. ``default`` is ``bayesmf-gibbs``, any other
    ``bayesmf-gibbs-<name>``. A name not in `VARIANTS`, or a spec `PMF` refuses
    (``myfm-prior`` with ``--priors fixed``), is a usage error.
    """
    base = base | {"priors": args.priors}
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        options.error(f"--variants: choose among {', '.join(VARIANTS)}, got {bad or args.variants!r}")
    specs = {"bayesmf-gibbs" + ("" if v == "default" else f"-{v}"): base | VARIANTS[v] for v in dict.fromkeys(names)}
    for system, spec in specs.items():
        try:
            PMF(n_factors=args.rank, **spec)
        except ValueError as err:
            options.error(f"--variants: {system} is not a valid spec with these options (leave it out): {err}")
    return specs


def variant_runs(run: Callable[..., Record], specs: Mapping[str, Mapping[str, Any]],
                 peer: Callable[..., Record] | None) -> list[Callable[..., Record]]:
    """``run(train, test, args, system=, spec=)`` once per spec, then ``peer(train, test, args)`` if any."""
    mine: list[Callable[..., Record]] = [partial(run, system=system, spec=spec) for system, spec in specs.items()]
    return [*mine, peer] if peer is not None else mine


def spec_text(spec: Mapping[str, Any]) -> str:
    """``PMF(key=value, ...)`` as the protocol line shows a spec."""
    return "PMF(" + ", ".join(f"{key}={value!r}" for key, value in spec.items()) + ")"


def variants_text(specs: Mapping[str, Mapping[str, Any]]) -> str:
    """The specs of a protocol line: each system with its `PMF` call."""
    return "; ".join(f"{system} `{spec_text(spec)}`" for system, spec in specs.items())


# -- the two systems ---------------------------------------------------------------------------
def fit_gibbs(spec: PMF, data: RatingsData, args: argparse.Namespace) -> FitResult:
    """One chain on one thread, ``--tune`` + ``--draws`` sweeps, thin 1, no bar."""
    return spec.fit(data, method="gibbs", chains=1, cores=1, draws=args.draws, tune=args.tune, thin=1,
                    random_seed=args.seed, progressbar=False)


def gibbs_times(fit: FitResult, args: argparse.Namespace) -> Record:
    """``fit_s`` and ``s_per_sweep`` (sampling seconds / sweeps) of a `fit_gibbs` fit."""
    return {"fit_s": fit.info["fit_seconds"], "s_per_sweep": fit.info["sampling_seconds"] / (args.tune + args.draws)}


def fit_myfm(model: Any, X: Any, y: np.ndarray, args: argparse.Namespace, **options: Any) -> Record:
    """Fit a myFM model, ``--tune`` + ``--draws`` sweeps, the last ``--draws`` kept; its seconds.

    ``options`` go to ``model.fit`` (``group_shapes``, ``X_rel``, ``grouping``). Returns
    ``fit_s`` and ``s_per_sweep`` (fit seconds / ``n_iter``).
    """
    sweeps = args.tune + args.draws
    start = time.perf_counter()
    model.fit(X, y, n_iter=sweeps, n_kept_samples=args.draws, callback=lambda *a: (False, None), **options)
    seconds = time.perf_counter() - start
    return {"fit_s": seconds, "s_per_sweep": seconds / sweeps}


def one_hot(user_idx: np.ndarray, item_idx: np.ndarray, n_users: int, n_items: int) -> Any:
    """The (user, item) one-hot design of myFM's MovieLens examples: one row per pair, CSR."""
    import scipy.sparse as sps

    n = len(user_idx)
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([np.asarray(user_idx), n_users + np.asarray(item_idx)], axis=1).ravel()
    return sps.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + n_items))


def peer_installed(module: str = "myfm", wanted: bool = True) -> bool:
    """Whether the peer's package imports (logged when not); False when not ``wanted``."""
    if not wanted:
        return False
    try:
        __import__(module)
    except ImportError:
        log(f"{module} is not installed (pip install -e '.[bench]'): bayesmf rows only")
        return False
    return True


# -- warm-up and the fold loop -------------------------------------------------------------------
def load(dataset: str, folds: list[int], args: argparse.Namespace) -> Iterator[Fold]:
    """The folds as `bench_topn.load_folds` gives them (``--data-dir``)."""
    return load_folds(dataset, folds, args.data_dir)


def warm_up(args: argparse.Namespace, runs: Iterable[Callable[[RatingsData, RatingsData, argparse.Namespace], object]],
            source: FoldSource = load, **short: Any) -> None:
    """Call each ``run(train, test, args)`` on the tiny set with short chains: compiles, not counted.

    ``short``: more options to shorten (``rank`` 2, ``draws`` 5, ``tune`` 2 already are).
    """
    _, train, test = next(source("tiny", [1], args))
    quick = argparse.Namespace(**(vars(args) | {"rank": 2, "draws": 5, "tune": 2} | short))
    for run in runs:
        run(train, test, quick)


@dataclass(frozen=True)
class Clock:
    """The load average and the time at the start of the measured part (after the warm-up)."""

    load_before: tuple[float, ...]
    start: float

    @classmethod
    def now(cls) -> Clock:
        return cls(os.getloadavg(), time.perf_counter())


def run_folds(args: argparse.Namespace, each: Callable[[str, RatingsData, RatingsData], Iterable[Record]],
              describe: Callable[[Record], str], folds: Sequence[int] | None = None,
              source: FoldSource = load, dataset: str = "ml-100k") -> list[Record]:
    """``each(fold, train, test)``'s records of every fold, each with its ``fold``, logged by ``describe``.

    The folds: ``--folds`` of ``dataset`` (ML-100K's canonical u1-u5, or ml-latest-small's
    five seeded folds k1-k5; ``folds``: these numbers instead), or with ``--quick`` the tiny
    set's first fold.
    """
    dataset = "tiny" if args.quick else dataset
    numbers = [1] if args.quick else list(folds) if folds is not None else fold_numbers(args.folds)
    records: list[Record] = []
    for fold, train, test in source(dataset, numbers, args):
        for rec in each(fold, train, test):
            records.append(rec | {"fold": fold})
            log(f"{fold} {describe(records[-1])}")
    return records


# -- the table and the section -------------------------------------------------------------------
#: A column: header, then the record's key and its format spec, or a function of the record.
Column = tuple[str, str | Callable[[Record], str], str]
#: Where `table` puts each row's time ratio to its peer.
RATIO: Column = ("ratio", "", "")


def mean_rows(records: Sequence[Record], by: Sequence[str], label: str = "mean") -> list[Record]:
    """One record per group of equal ``by`` values (first-seen order), ``fold`` = ``label``.

    Numeric fields (not bool) become their mean over the group's records; the others are
    those of the group's first record.
    """
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for rec in records:
        groups.setdefault(tuple(rec[k] for k in by), []).append(rec)

    def average(group: list[Record], key: str) -> Any:
        values: list[Any] = [r.get(key) for r in group]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return float(np.mean(values))
        return values[0]

    return [{key: average(group, key) for key in group[0]} | {"fold": label} for group in groups.values()]


def ratio_to_peer(records: Sequence[Record], rec: Record, is_peer: Callable[[Record], bool],
                  match: Sequence[str], time_key: str) -> float:
    """``rec``'s seconds over those of the first peer record that agrees on ``match`` (nan: none)."""
    peers = [r for r in records if is_peer(r) and all(r[k] == rec[k] for k in match)]
    return rec[time_key] / peers[0][time_key] if peers else math.nan


def table(records: Sequence[Record], columns: Sequence[Column], is_peer: Callable[[Record], bool] | None = None,
          peer: str = "myFM", match: Sequence[str] = ("fold",), time_key: str = "s_per_sweep") -> list[str]:
    """A markdown table, one row per record; at `RATIO`, ``time_key`` over the peer's on the same ``match``.

    ``is_peer`` tells the peer's records (default: the system starts with ``peer``, lower case).
    """
    def peer_row(r: Record) -> bool:
        return is_peer(r) if is_peer is not None else str(r["system"]).startswith(peer.lower())

    def cell(rec: Record, column: Column) -> str:
        _, key, spec = column
        if column is RATIO:
            return f"{ratio_to_peer(records, rec, peer_row, match, time_key):.2f}"
        return key(rec) if callable(key) else format(rec[key], spec)

    headers = [f"ratio to {peer}" if c is RATIO else c[0] for c in columns]
    lines = ["| " + " | ".join(headers) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(cell(rec, c) for c in columns) + " |" for rec in records]
    return lines


def columns(*keys: str, spec: str = "") -> list[Column]:
    """Columns headed by their keys, or ``"header=key"`` (split at the last ``=``), all in format ``spec``."""
    return [(k.rsplit("=", 1)[0], k.rsplit("=", 1)[-1], spec) for k in keys]


#: The closing columns of the tables beside myFM: seconds per sweep, the ratio, fit seconds.
TIMES: list[Column] = [("s / sweep", "s_per_sweep", ".4f"), RATIO, ("fit s", "fit_s", ".1f")]


def peer_columns(*metrics: str, lead: Sequence[str] = ("fold", "system")) -> list[Column]:
    """The columns of a table beside myFM: ``lead``, the ``metrics`` (``"header=key"``, 4 decimals), `TIMES`."""
    return [*columns(*lead), *columns(*metrics, spec=".4f"), *TIMES]


def finish(script: str, title: str, argv: Sequence[str] | None, args: argparse.Namespace, clock: Clock,
           protocol: Sequence[str], body: Sequence[str], payload: object, quick_note: str = QUICK_NOTE,
           section: str | None = None) -> int:
    """Publish ``script``'s section (title, provenance, protocol lines, body); ``--json``: ``payload``.

    The section is printed, and written to ``--results`` unless ``--no-write`` (``--quick``
    sets it), between the markers of ``section`` (default: ``script``; a script with one
    section per data set names each). Returns 0, the exit status.
    """
    lines = [title, "", *provenance(script, argv, clock.load_before, clock.start), *protocol, "", *body]
    if args.quick:
        lines.insert(1, quick_note)
    publish(args.results, section or script, lines, write=not args.no_write)
    if args.json:
        args.json.write_text(json.dumps(payload, indent=1))
    return 0
