"""Rebuild the result tables from a search's folder (Ray's experiment folder, local or on
object storage): for a search whose driver could not write them, or after the tables
were lost. Rewrites each trial's files, so ingesting twice, or after the search wrote
them, leaves one row per trial. No Ray here: the folder is read as files."""

from __future__ import annotations

import os
from datetime import datetime

from results.records import SearchStatus
from results.rows import trial_rows
from results.store import ResultStore
from search.errors import DamagedTable
from search.files import open_location
from search.layout import StorageLayout
from search.tuning.ray_folders import SavedState, trial_folders
from search.tuning.record import load_search_row

__all__ = ["ingest_experiment"]


def ingest_experiment(
    experiment: str | os.PathLike[str], results_root: str | os.PathLike[str] | None = None
) -> int:
    """Write every trial of `experiment` (a folder or a URI) into the tables under
    `results_root` (default: `results` beside the experiment); returns the number of
    trials. A trial the search was cut off before is `interrupted`, never `stopped`
    (that is the scheduler's word). The searches row is rebuilt from the search's own
    record when the tables have none.

    Raises:
        FileNotFoundError: no trial folders (no `params.json`) under `experiment`.
    """
    name = open_location(experiment)[1].rsplit("/", 1)[-1]
    store = ResultStore(results_root or StorageLayout.of_experiment(experiment).results)
    folders = trial_folders(experiment)
    if not folders:
        raise FileNotFoundError(f"{experiment}: no trial folders (*/params.json) to ingest")
    saved = SavedState.read(experiment)
    ended, restarts, cut_off = [], saved.restart_counts(), saved.unfinished_trials()
    for folder in folders:
        records = folder.records()
        trial_id = folder.trial_id(records)
        rows = trial_rows(
            name, trial_id, folder.config(), records, folder.error(), restarts.get(trial_id),
            interrupted=trial_id in cut_off,
        )  # fmt: skip
        store.write_trial(rows)
        ended.append(rows.trial["ended"])
    if not _has_search_row(store, name):
        _restore_search_row(experiment, name, store, [e for e in ended if e is not None])
    return len(folders)


def _has_search_row(store: ResultStore, name: str) -> bool:
    """Whether the tables hold the search's row; a damaged file of it holds none, so the
    row is restored over it (the repair `DamagedTable` names)."""
    try:
        return store.table("searches", search=name).num_rows > 0
    except DamagedTable:
        return False


def _restore_search_row(experiment, name: str, store: ResultStore, ended: list) -> None:
    """The searches row as the search wrote it when it started (kept in its record file),
    ending with its last trial; its status says it was rebuilt, not how it ended."""
    row = load_search_row(experiment)
    if row is None:
        return
    started = row.get("started")
    row.update(
        search=name,
        started=datetime.fromisoformat(started) if started else None,
        ended=max(ended) if ended else None,
        status=SearchStatus.INGESTED,
    )
    store.write_search(row)
