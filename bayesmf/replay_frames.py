"""What `bayesmf.replay.replay` returns: the `Replay` frames, paired differences, the regret plot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from bayesmf.data import RatingsData

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Replay", "frames", "paired_difference", "plot_regret"]


class Replay(NamedTuple):
    """Result of `bayesmf.replay.replay`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per (``policy``, ``round``): ``n_users``, ``n_active`` (users still with
        pool items that round), ``cum_hits``, ``hit_rate``, ``cum_regret`` (means over
        users) and their standard errors ``*_se`` (sd over users / sqrt(n_users)).
    per_user : pandas.DataFrame
        One row per (``policy``, ``user``, ``round``) for every round: ``active``,
        ``cum_hits``, ``hit_rate`` (over the rounds the user had), ``cum_regret``, and per
        user ``n_pool``, ``n_relevant``, ``n_train`` (training ratings the user started from).
    shown : pandas.DataFrame
        One row per recommendation made: ``policy``, ``user``, ``round``, ``item``,
        ``rating`` (held out), ``hit``.

    The frames' ``attrs`` hold the protocol (``rounds``, ``threshold``, ``policies``,
    ``quantile``, ``train_ratings_kept``, ``method``) and the counts ``n_test_users``,
    ``n_users``, ``n_users_skipped``, ``n_test_in_train``.
    """

    summary: pd.DataFrame
    per_user: pd.DataFrame
    shown: pd.DataFrame


def frames(train: RatingsData, names: list[str], users: np.ndarray, pools: list[np.ndarray], iidx: np.ndarray,
            rating: np.ndarray, shown: np.ndarray, n_train: np.ndarray, threshold: float,
            attrs: dict[str, Any]) -> Replay:
    """Build the three frames of `Replay` from the pool positions shown (-1: the pool had run out)."""
    P, n_users, T = shown.shape
    n_pool = np.array([len(p) for p in pools], dtype=np.int64)
    n_relevant = np.array([int((rating[p] >= threshold).sum()) for p in pools], dtype=np.int64)
    active = shown >= 0
    got = np.zeros(shown.shape)
    for u, pool in enumerate(pools):
        got[:, u][active[:, u]] = rating[pool][shown[:, u][active[:, u]]]
    hit = active & (got >= threshold)
    cum_hits = np.cumsum(hit, axis=2)
    t = np.arange(1, T + 1)
    had = np.minimum(t[None, :], n_pool[:, None])  # rounds each user had by round t
    oracle = np.minimum(t[None, :], n_relevant[:, None])  # the oracle shows the relevant items first
    cum_regret = oracle[None] - cum_hits
    hit_rate = cum_hits / had[None]
    raw_users = train.users.to_raw(users)
    per_user = pd.DataFrame({
        "policy": np.repeat(names, n_users * T),
        "user": np.tile(np.repeat(raw_users, T), P),
        "round": np.tile(t, P * n_users),
        "active": active.ravel(),
        "cum_hits": cum_hits.ravel(),
        "hit_rate": hit_rate.ravel(),
        "cum_regret": cum_regret.ravel(),
        "n_pool": np.tile(np.repeat(n_pool, T), P),
        "n_relevant": np.tile(np.repeat(n_relevant, T), P),
        "n_train": np.tile(np.repeat(n_train, T), P),
    })
    p_idx, u_idx, t_idx = np.nonzero(active)
    items = np.array([iidx[pools[u][shown[p, u, k]]] for p, u, k in zip(p_idx, u_idx, t_idx, strict=True)],
                     dtype=np.int64)
    shown_frame = pd.DataFrame({
        "policy": np.asarray(names)[p_idx] if len(p_idx) else np.empty(0, dtype=object),
        "user": raw_users[u_idx],
        "round": t_idx + 1,
        "item": train.items.to_raw(items),
        "rating": got[p_idx, u_idx, t_idx],
        "hit": hit[p_idx, u_idx, t_idx],
    })
    rows = []
    for p, name in enumerate(names):
        for k in range(T):
            rec: dict[str, Any] = {"policy": name, "round": k + 1, "n_users": n_users,
                                   "n_active": int(active[p, :, k].sum())}
            for col, values in (("cum_hits", cum_hits), ("hit_rate", hit_rate), ("cum_regret", cum_regret)):
                v = values[p, :, k].astype(np.float64)
                rec[col] = float(v.mean())
                rec[f"{col}_se"] = float(v.std(ddof=1) / np.sqrt(n_users)) if n_users > 1 else np.nan
            rows.append(rec)
    summary = pd.DataFrame(rows)
    for frame in (summary, per_user, shown_frame):
        frame.attrs.update(attrs)
    return Replay(summary, per_user, shown_frame)


def paired_difference(per_user: pd.DataFrame, policy: str, baseline: str, column: str = "cum_hits") -> pd.DataFrame:
    """Per round, ``policy`` minus ``baseline`` in ``column``, paired by user.

    Parameters
    ----------
    per_user : pandas.DataFrame
        `Replay.per_user`, or several concatenated (e.g. a MAP fit's and a posterior fit's
        replays of the same test set, so that ``thompson`` can be set against
        ``greedy-map``).
    policy, baseline : str
        Values of the ``policy`` column.
    column : {"cum_hits", "hit_rate", "cum_regret"}
        The per-user quantity compared.

    Returns
    -------
    pandas.DataFrame
        ``round``, ``n_users`` (users in both), ``mean`` and ``se`` (sd of the per-user
        differences / sqrt(n_users)).

    Raises
    ------
    ValueError
        A policy or column not in the frame, or no user shared by the two.
    """
    for name in (policy, baseline):
        if name not in set(per_user["policy"]):
            raise ValueError(f"policy {name!r} is not in the frame (it holds {sorted(set(per_user['policy']))})")
    if column not in ("cum_hits", "hit_rate", "cum_regret"):
        raise ValueError(f"column={column!r} is not one of 'cum_hits', 'hit_rate', 'cum_regret'")
    wide = per_user[per_user["policy"].isin([policy, baseline])].pivot_table(
        index=["round", "user"], columns="policy", values=column, aggfunc="first").dropna()
    if wide.empty:
        raise ValueError(f"no user is in both {policy!r} and {baseline!r}")
    diff = (wide[policy] - wide[baseline]).groupby(level="round")
    out = pd.DataFrame({"n_users": diff.size(), "mean": diff.mean(), "se": diff.std(ddof=1) / np.sqrt(diff.size())})
    return out.reset_index()


def plot_regret(
    summary: pd.DataFrame,
    policies: Sequence[str] | None = None,
    *,
    width: float = 2.0,
    ax: Axes | None = None,
) -> Axes:
    """Cumulative regret against the oracle by round, one line per policy, ± ``width`` se bands.

    Parameters
    ----------
    summary : pandas.DataFrame
        `Replay.summary` (or several concatenated).
    policies : sequence of str, optional
        Policies to draw (default: all in the frame but ``oracle``, whose regret is 0).
    width : float
        Half-width of the bands in standard errors (> 0).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure otherwise.

    Returns
    -------
    matplotlib.axes.Axes
        The axes (``ax.figure`` is the figure); nothing is shown.
    """
    from bayesmf._validate import validate_positive
    from bayesmf.plots import _axes, _require

    _require(summary, ["policy", "round", "cum_regret", "cum_regret_se"], "summary")
    width = float(validate_positive("width", width) or 0.0)
    present = list(dict.fromkeys(summary["policy"]))
    chosen = [p for p in present if p != "oracle"] if policies is None else list(policies)
    missing = [p for p in chosen if p not in present]
    if missing:
        raise ValueError(f"policies {missing} are not in the summary (it holds {present})")
    ax = _axes(ax, (6.0, 4.0))
    for name in chosen:
        part = summary[summary["policy"] == name].sort_values("round")
        x, y, se = part["round"].to_numpy(), part["cum_regret"].to_numpy(), part["cum_regret_se"].to_numpy()
        (line,) = ax.plot(x, y, marker=".", label=name)
        ax.fill_between(x, y - width * se, y + width * se, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative regret vs oracle (hits)")
    ax.set_title(f"Replay: mean over {int(summary['n_users'].iloc[0])} users, bands ± {width:g} se")
    ax.legend()
    return ax
