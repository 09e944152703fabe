"""A search already in the result tables, shown in MLflow afterwards: one run before
`--mlflow` existed, one whose tracking server was down, or last month's, to compare with
this month's. The same runs, params, per-epoch metrics and tags as a search writes live
(`search.tracking.mlflow_runs`), from the tables, which hold every figure."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from results import load_table
from results.records import SearchStatus
from results.rows import TrialRows
from search.errors import SearchStateError

__all__ = ["recorded_trials", "show_in_mlflow"]


def show_in_mlflow(uri: str, results: str | os.PathLike[str], search: str) -> int:
    """Write search `search` of the tables at `results` to the MLflow store at `uri`
    (runs it already has are gone on with, nothing written twice); the number of trials.

    Raises:
        SearchStateError: the tables hold no such search.
    """
    from search.tracking.mlflow_runs import MlflowTracker

    searches = load_table(results, "searches", search)
    if searches.empty:
        raise SearchStateError(f"{results}: the result tables hold no search {search!r}")
    search_row = _plain(searches.to_dict("records")[-1])
    tracker = MlflowTracker(uri, search_row, {"results": str(results)}, background=False)
    trials = recorded_trials(results, search)
    for trial_id, (config, rows) in trials.items():
        tracker.trial_ended(trial_id, config, rows)
    if search_row.get("status") != SearchStatus.RUNNING:
        tracker.search_ended(str(search_row.get("status")))
    return len(trials)


def recorded_trials(
    results: str | os.PathLike[str], search: str
) -> dict[str, tuple[dict[str, Any], TrialRows]]:
    """Each trial of `search` in the tables at `results`: its flat config and its rows
    (its trials row, its epochs rows in order), as a tracker is told them when it ends."""
    epochs = load_table(results, "epochs", search)
    by_trial = dict(tuple(epochs.groupby("trial_id"))) if not epochs.empty else {}
    recorded = {}
    for trial in load_table(results, "trials", search).to_dict("records"):
        rows = by_trial.get(trial["trial_id"])
        ordered = [] if rows is None else rows.sort_values("epoch").to_dict("records")
        config = json.loads(trial["config"]) if trial.get("config") else {}
        rows = TrialRows(_plain(trial), [_plain(r) for r in ordered], [])
        recorded[trial["trial_id"]] = (config, rows)
    return recorded


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A table row as a report holds it: missing values None (pandas reads them as NaN
    or NaT), numbers Python's."""
    return {
        k: None if _missing(v) else v.item() if isinstance(v, np.generic) else v
        for k, v in row.items()
    }


def _missing(value: Any) -> bool:
    try:
        return bool(value != value) or value is None or str(value) == "NaT"
    except (TypeError, ValueError):
        return False
