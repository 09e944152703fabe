"""Ray Tune's experiment folder, read (and, for resume, mended) without importing Ray.

The one module that knows Ray 2.60's layout, local or on object storage:

    NAME/
      experiment_state-<time>.json   the driver's saved state: per trial, its state and
                                     its run metadata, each a JSON string
      search_gen_state-<time>.json   the search algorithm's trial counter (pickled)
      searcher-state-<time>.pkl      our searcher's studies (`PairSearcher.save`)
      polarmap-searcher-<time>.pkl   our own copy of them and of the counter's last
                                     state, with a checksum (`PairSearcher.save`)
      <trainable>_<trial id>_.../    one folder per trial
        params.json                  the trial's config
        result.json                  its reports, one JSON object per line
        error.txt                    the traceback, when it failed

<time> is the session's start (each resume is a new session): names sort by time.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pyarrow.fs as pafs

from search.files import open_location, read_file, write_file
from trainables.config import PAIR_KEY
from trainables.report_log import REPORTS_FILE

log = logging.getLogger(__name__)

GENERATOR_STATE = "search_gen_state-"  # Ray's search algorithm: its trial counter
SEARCHER_STATE = "searcher-state-"  # PairSearcher.save, through Ray
SEARCHER_COPY = "polarmap-searcher-"  # PairSearcher.save's own copy, checked by its digest

__all__ = [
    "GENERATOR_STATE",
    "SEARCHER_COPY",
    "SEARCHER_STATE",
    "TrialFolder",
    "checkpoint_records",
    "error_message",
    "mark_trials_ended",
    "newest_file",
    "restart_counts",
    "saved_files",
    "session_of",
    "trial_folders",
    "trial_records",
    "trials_per_pair",
    "unfinished_trials",
    "with_log",
]


class TrialFolder:
    """One trial's folder: its config, reports and error, read when asked for."""

    def __init__(self, fs: pafs.FileSystem, path: str):
        self.fs, self.path = fs, path

    def config(self) -> dict[str, Any]:
        return json.loads(read_file(self.fs, f"{self.path}/params.json"))

    def records(self) -> list[dict[str, Any]]:
        """Its reports, in order: the newest checkpoint's log, then result.json (whose
        records of the same epochs, richer in Ray's own fields, come later and win).
        See `with_log`."""
        listed = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        checkpoints = sorted(
            info.path
            for info in listed
            if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_")
        )
        logged = _log(self.fs, checkpoints[-1]) if checkpoints else []
        return with_log(logged, _result_lines(self.fs, f"{self.path}/result.json"))

    def error(self) -> str | None:
        """The last line of its error file (the exception and its message); None when it
        did not fail."""
        return _last_line(self.fs, f"{self.path}/error.txt")

    def trial_id(self, records: list[dict[str, Any]]) -> str:
        """From its reports, else from the folder's name (`<trainable>_<id>_...`)."""
        for record in records:  # Ray's records carry it; a log's may not
            if "trial_id" in record:
                return record["trial_id"]
        return self.path.rsplit("/", 1)[-1].split("_")[2]


def with_log(logged: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trial's reports: its checkpoint's log, then its results (later copies of an
    epoch win). The log fills only epochs below the last one the results reached (those
    a restore left out of them): a trial that restarted from scratch may keep a stale
    checkpoint of epochs its results never reached again."""
    reached = max((r["epoch"] for r in results if "epoch" in r), default=None)
    if reached is not None:
        logged = [r for r in logged if r.get("epoch", reached) < reached]
    return logged + results


def trial_folders(experiment: str | os.PathLike[str]) -> list[TrialFolder]:
    """The trial folders of `experiment` (a folder or a URI), in name order."""
    fs, root = open_location(experiment)
    listed = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return [
        TrialFolder(fs, info.path)
        for info in sorted(listed, key=lambda info: info.path)
        if info.type == pafs.FileType.Directory and _is_file(fs, f"{info.path}/params.json")
    ]


def trial_records(trial_folder: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    """The reports in a trial folder's result.json, in order (none when it is absent)."""
    if trial_folder is None:
        return []
    return _result_lines(*open_location(f"{trial_folder}/result.json"))


def checkpoint_records(checkpoint) -> list[dict[str, Any]]:
    """The report log in a Ray checkpoint (anything with `filesystem` and `path`); none
    without a checkpoint or a log."""
    if checkpoint is None:
        return []
    return _log(checkpoint.filesystem, checkpoint.path)


def error_message(error_file: str | os.PathLike[str] | None) -> str:
    """The last line of a trial's error file (the exception and its message)."""
    message = _last_line(*open_location(error_file)) if error_file else None
    return message or "error (no message recorded)"


def restart_counts(experiment: str | os.PathLike[str]) -> dict[str, int]:
    """trial id -> how often Ray restarted it after a failure, from the newest saved
    experiment state; none when there is no state."""
    fs, root = open_location(experiment)
    latest = _latest_state(fs, root)
    if latest is None:
        return {}
    counts = {}
    for trial_state, metadata in latest[1]["trial_data"]:
        trial_id = json.loads(trial_state).get("trial_id")
        count = json.loads(metadata).get("num_failures")
        if trial_id is not None and count is not None:
            counts[trial_id] = int(count)
    return counts


def unfinished_trials(experiment: str | os.PathLike[str]) -> set[str]:
    """Ids of the trials that had not ended when Ray last saved the experiment's state
    (Ray saves it once more as it stops, before it stops the trials it cut off): empty
    for a search that ran to its end."""
    fs, root = open_location(experiment)
    latest = _latest_state(fs, root)
    if latest is None:
        return set()
    unfinished = set()
    for trial_state, _ in latest[1]["trial_data"]:
        trial = json.loads(trial_state)
        if trial.get("status") not in ("TERMINATED", "ERROR"):
            unfinished.add(trial.get("trial_id"))
    return unfinished


def trials_per_pair(experiment: str | os.PathLike[str]) -> dict[str, set[str]] | None:
    """pair -> ids of its trials in the newest saved experiment state (the `pair` of each
    trial's config); None when there is no saved state."""
    fs, root = open_location(experiment)
    latest = _latest_state(fs, root)
    if latest is None:
        return None
    made: dict[str, set[str]] = {}
    for trial_state, _ in latest[1]["trial_data"]:
        trial = json.loads(trial_state)
        pair = (trial.get("config") or {}).get(PAIR_KEY, "")
        made.setdefault(pair, set()).add(trial.get("trial_id"))
    return made


def newest_file(experiment: str | os.PathLike[str], prefix: str) -> str | None:
    """The path (in `open_location`'s file system) of the newest of the experiment's
    files whose name starts with `prefix`: Ray names them by the session's start."""
    names = saved_files(experiment, prefix)
    return names[0] if names else None


def saved_files(experiment: str | os.PathLike[str], prefix: str) -> list[str]:
    """The paths (in `open_location`'s file system) of the experiment's files whose name
    starts with `prefix`, newest first."""
    fs, root = open_location(experiment)
    listed = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted((info.path for info in listed if info.base_name.startswith(prefix)), reverse=True)


def session_of(path: str, prefix: str) -> str:
    """The session a saved file belongs to: its name less `prefix` and its extension
    ("searcher-state-2026-01-01_00-00-00.pkl" -> "2026-01-01_00-00-00")."""
    name = path.rsplit("/", 1)[-1]
    return name.removeprefix(prefix).rsplit(".", 1)[0]


def mark_trials_ended(experiment: str | os.PathLike[str], ended: dict[str, str]) -> None:
    """Set the status of the trials in `ended` (trial id -> TERMINATED or ERROR) in the
    newest saved experiment state, so that restoring it does not run them again."""
    fs, root = open_location(experiment)
    latest = _latest_state(fs, root) if ended else None
    if latest is None:
        return
    path, state = latest
    changed = False
    for entry in state["trial_data"]:
        trial = json.loads(entry[0])
        status = ended.get(trial.get("trial_id"))
        if status and trial.get("status") != status:
            trial["status"] = status
            entry[0], changed = json.dumps(trial), True
    if changed:
        write_file(fs, path, json.dumps(state))


def _result_lines(fs: pafs.FileSystem, path: str) -> list[dict[str, Any]]:
    if not _is_file(fs, path):
        return []
    lines = read_file(fs, path).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _log(fs: pafs.FileSystem, checkpoint: str) -> list[dict[str, Any]]:
    path = f"{checkpoint}/{REPORTS_FILE}"
    return json.loads(read_file(fs, path)) if _is_file(fs, path) else []


def _latest_state(fs: pafs.FileSystem, root: str) -> tuple[str, dict[str, Any]] | None:
    """The newest readable experiment_state-*.json (their names sort by time), its path
    and what it holds; None when there is none. Ray writes the state in place: a driver
    killed while it copies the file to the storage leaves it empty or cut short, and the
    one before it (if any) is the newest the experiment has."""
    states = sorted(
        info.path
        for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        if info.base_name.startswith("experiment_state-") and info.base_name.endswith(".json")
    )
    for path in reversed(states):
        try:
            state = json.loads(read_file(fs, path))
            if "trial_data" in state:
                return path, state
        except ValueError:  # empty or cut short (json's errors are ValueErrors)
            pass
        log.warning("%s is damaged (cut short when the search was stopped?); not read", path)
    return None


def _last_line(fs: pafs.FileSystem, path: str) -> str | None:
    """An error file's last line; None when there is no such file."""
    if not _is_file(fs, path):
        return None
    lines = read_file(fs, path).decode("utf-8").strip().splitlines()
    return lines[-1] if lines else "error"


def _is_file(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type == pafs.FileType.File
