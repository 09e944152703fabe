"""Where a search stands, from its tables: its trials by status, the compute they used
(trial-, GPU- and CPU-hours) and its best trial so far."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from results.leaderboard import rank_trials
from results.read import load_searches, load_trials
from results.records import TrialStatus

__all__ = ["SearchSummary", "format_summary", "search_summaries"]

# a trial's statuses, always shown; interrupted is shown when there are such trials
STATUSES = (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.ERRORED)


@dataclass
class SearchSummary:
    """One search's figures. Hours are trials' wall time (summed over trials, so they
    exceed the elapsed time when trials run side by side); GPU- and CPU-hours weight it by
    the GPUs and CPUs each trial held."""

    search: str
    space: str | None
    status: str | None
    started: pd.Timestamp | None
    ended: pd.Timestamp | None
    trials: dict[str, int]
    epochs: int
    trial_hours: float
    gpu_hours: float
    cpu_hours: float
    devices: list[str]
    best: dict[str, Any] = field(default_factory=dict)

    @property
    def elapsed_hours(self) -> float | None:
        """Start to end, or to the last trial's end while the search runs."""
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds() / 3600


def search_summaries(
    results: str | os.PathLike[str], search: str | None = None
) -> list[SearchSummary]:
    """A summary of each search under `results` (or of `search`), oldest first.

    Raises:
        LookupError: `search` is given and has no rows.
    """
    searches = load_searches(results, search)
    trials = load_trials(results, search)
    names = list(dict.fromkeys([*searches["search"], *trials["search"]]))
    if search is not None and not names:
        raise LookupError(f"{results}: no search named {search!r}")
    rows = {row["search"]: row for row in searches.to_dict("records")}
    return [_summary(name, rows.get(name, {}), trials[trials["search"] == name]) for name in names]


def _summary(name: str, row: dict[str, Any], trials: pd.DataFrame) -> SearchSummary:
    hours = trials["wall_seconds"].fillna(0) / 3600
    counts = trials["status"].value_counts()
    ended = _time(row.get("ended"))
    if ended is None and not trials.empty:  # still running, or killed: its last trial's end
        ended = _time(trials["ended"].max())
    ranked = rank_trials(trials)
    best = ranked.iloc[0].to_dict() if not ranked.empty else {}
    return SearchSummary(
        search=name,
        space=row.get("space"),
        status=row.get("status"),
        started=_time(row.get("started")),
        ended=ended,
        trials={
            status.value: int(counts.get(status, 0))
            for status in (*STATUSES, TrialStatus.INTERRUPTED)
            if status in STATUSES or counts.get(status, 0)
        },
        epochs=int(trials["epochs_run"].fillna(0).sum()),
        trial_hours=float(hours.sum()),
        gpu_hours=float((hours * trials["gpus"].fillna(0)).sum()),
        cpu_hours=float((hours * trials["cpus"].fillna(0)).sum()),
        devices=sorted(set(trials["device"].dropna())),
        best=best,
    )


def format_summary(summary: SearchSummary) -> str:
    """The summary as a few lines of text."""
    s = summary
    trials = ", ".join(f"{count} {status}" for status, count in s.trials.items())
    elapsed = ""
    if s.elapsed_hours is not None:
        seconds = round(s.elapsed_hours * 3600)
        elapsed = f", {seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02} elapsed"
    started = "" if s.started is None else f" started {s.started:%Y-%m-%d %H:%M} UTC"
    lines = [
        f"search {s.search} (space {s.space or '?'}): {s.status or 'no searches row'}"
        f"{started}{elapsed}",
        f"  trials   {sum(s.trials.values())}: {trials}; {s.epochs} epochs run",
        f"  compute  {s.trial_hours:.3f} trial-hours, {s.gpu_hours:.3f} GPU-hours, "
        f"{s.cpu_hours:.3f} CPU-hours on {', '.join(s.devices) or 'no device recorded'}",
    ]
    if s.best:
        b = s.best
        lines.append(
            f"  best     {b['backbone']}/{b['mode']} trial {b['trial_id']}: "
            f"{b['selection_metric']} {b['best_selection']:.3f} at epoch {b['best_epoch']} "
            f"(ROC AUC {b['best_val_roc_auc']:.3f})"
        )
    else:
        lines.append("  best     no trial has reported a score yet")
    return "\n".join(lines)


def _time(value: Any) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value)
