"""Rebuild the result tables from a search's folder (Ray's experiment directory, local or
on object storage): for a search whose driver could not write them, or after the tables
were lost. Rewrites each trial's files, so ingesting twice, or after the search wrote
them, leaves one row per trial."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import pyarrow.fs as pafs

from results.rows import trial_rows
from results.store import ResultStore
from search.files import join_location, open_location, read_file, sibling_location

__all__ = ["SEARCH_FILE", "error_message", "ingest_experiment", "trial_records"]

SEARCH_FILE = "polarmap-search.json"  # what a search writes beside Ray's state as it starts


def ingest_experiment(
    experiment: str | os.PathLike[str], results_root: str | os.PathLike[str] | None = None
) -> int:
    """Write every trial of `experiment` (a folder or a URI) into the tables under
    `results_root` (default: `results` beside the experiment); returns the number of
    trials. The searches row is rebuilt from the search's own record when the tables
    have none.

    Raises:
        FileNotFoundError: no trial folders (no `params.json`) under `experiment`.
    """
    fs, root = open_location(experiment)
    name = root.rsplit("/", 1)[-1]
    store = ResultStore(results_root or sibling_location(experiment, "results"))
    listed = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    folders = sorted(
        info.path
        for info in listed
        if info.type == pafs.FileType.Directory
        and fs.get_file_info(f"{info.path}/params.json").type == pafs.FileType.File
    )
    if not folders:
        raise FileNotFoundError(f"{experiment}: no trial folders (*/params.json) to ingest")
    ended, failures = [], _failures(fs, root)
    for folder in folders:
        config = json.loads(read_file(fs, f"{folder}/params.json"))
        records = _records(fs, folder)
        trial_id = records[0]["trial_id"] if records else folder.rsplit("/", 1)[-1].split("_")[2]
        error = _error(fs, f"{folder}/error.txt")
        rows = trial_rows(name, trial_id, config, records, error, failures.get(trial_id))
        store.write_trial(rows)
        ended.append(rows.trial["ended"])
    if not store.table("searches", search=name).num_rows:
        _restore_search_row(fs, root, name, store, [e for e in ended if e is not None])
    return len(folders)


def _failures(fs, root: str) -> dict[str, int]:
    """trial id -> how often Ray restarted it after a failure, from the newest saved
    experiment state (Ray 2.60's format: per trial, its state and its run metadata, each
    JSON); none when there is no state."""
    states = sorted(
        info.path
        for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        if info.base_name.startswith("experiment_state-") and info.base_name.endswith(".json")
    )
    if not states:
        return {}
    failures = {}
    for state, metadata in json.loads(read_file(fs, states[-1])).get("trial_data", []):
        trial_id = json.loads(state).get("trial_id")
        count = json.loads(metadata).get("num_failures")
        if trial_id is not None and count is not None:
            failures[trial_id] = int(count)
    return failures


def trial_records(trial_folder: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    """The reports in a trial folder's result.json, in order (none when it is absent)."""
    if trial_folder is None:
        return []
    return _records(*open_location(trial_folder))


def error_message(error_file: str | os.PathLike[str] | None) -> str:
    """The last line of a trial's error file (the exception and its message)."""
    message = _error(*open_location(error_file)) if error_file else None
    return message or "error (no message recorded)"


def _records(fs, folder: str) -> list[dict[str, Any]]:
    path = f"{folder}/result.json"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return []
    lines = read_file(fs, path).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _error(fs, path: str) -> str | None:
    """The error file's last line; None when there is no error file."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    lines = read_file(fs, path).decode("utf-8").strip().splitlines()
    return lines[-1] if lines else "error"


def _restore_search_row(fs, root: str, name: str, store: ResultStore, ended: list) -> None:
    """The searches row as the search wrote it when it started (kept in its record file),
    ending with its last trial; its status says it was rebuilt, not how it ended."""
    path = join_location(root, SEARCH_FILE)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return
    row = json.loads(read_file(fs, path)).get("search_row")
    if row is None:  # written by a version that did not keep it
        return
    started = row.get("started")
    row.update(
        search=name,
        started=datetime.fromisoformat(started) if started else None,
        ended=max(ended) if ended else None,
        status="ingested",
    )
    store.write_search(row)
