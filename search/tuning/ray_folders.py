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
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from search.files import open_location, read_file, write_file
from trainables.config import PAIR_KEY
from trainables.report_log import REPORTS_FILE, report_lines

log = logging.getLogger(__name__)

GENERATOR_STATE = "search_gen_state-"  # Ray's search algorithm: its trial counter
SEARCHER_STATE = "searcher-state-"  # PairSearcher.save, through Ray
SEARCHER_COPY = "polarmap-searcher-"  # PairSearcher.save's own copy, checked by its digest

__all__ = [
    "GENERATOR_STATE",
    "SEARCHER_COPY",
    "SEARCHER_STATE",
    "SavedState",
    "TrialFolder",
    "checkpoint_records",
    "error_message",
    "restart_counts",
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


@dataclass
class SavedState:
    """One reading of what Ray saved in an experiment folder: its files, listed once, and
    its newest readable experiment state, read once; resume mends from this snapshot and
    passes it on instead of visiting the storage again for each question.

    Attributes:
        fs, root: the folder's file system and path (`open_location`).
        files: the folder's files (not its trial folders), newest first.
        state_path, state: the newest readable experiment_state-*.json and what it
            holds; None when there is none.
        damaged: newer experiment states that did not read (cut short by a kill while
            Ray copied them), newest first.
    """

    fs: pafs.FileSystem
    root: str
    files: tuple[str, ...]
    state_path: str | None
    state: dict[str, Any] | None
    damaged: tuple[str, ...] = ()

    @classmethod
    def read(cls, experiment: str | os.PathLike[str]) -> SavedState:
        fs, root = open_location(experiment)
        listed = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        files = tuple(
            sorted((i.path for i in listed if i.type == pafs.FileType.File), reverse=True)
        )
        damaged = []
        for path in (f for f in files if _is_experiment_state(f)):
            try:
                state = json.loads(read_file(fs, path))
                if "trial_data" in state:
                    return cls(fs, root, files, path, state, tuple(damaged))
            except ValueError:  # empty or cut short (json's errors are ValueErrors)
                pass
            log.warning("%s is damaged (cut short when the search was stopped?); not read", path)
            damaged.append(path)
        return cls(fs, root, files, None, None, tuple(damaged))

    def saved_files(self, prefix: str) -> list[str]:
        """The paths of the folder's files whose name starts with `prefix`, newest first
        (Ray names them by the session's start)."""
        return [f for f in self.files if f.rsplit("/", 1)[-1].startswith(prefix)]

    def newest_file(self, prefix: str) -> str | None:
        names = self.saved_files(prefix)
        return names[0] if names else None

    def trials(self) -> list[dict[str, Any]]:
        """Each trial of the newest state, as Ray saved it (trial id, status, config)."""
        return [json.loads(trial) for trial, _ in (self.state or {}).get("trial_data", [])]

    def trials_per_pair(self) -> dict[str, set[str]] | None:
        """pair -> ids of its trials in the newest saved state (the `pair` of each trial's
        config); None when there is no saved state."""
        if self.state is None:
            return None
        made: dict[str, set[str]] = {}
        for trial in self.trials():
            pair = (trial.get("config") or {}).get(PAIR_KEY, "")
            made.setdefault(pair, set()).add(trial.get("trial_id"))
        return made

    def unfinished_trials(self) -> set[str]:
        """Ids of the trials that had not ended when Ray last saved the state (Ray saves
        it once more as it stops, before it stops the trials it cut off)."""
        return {
            trial.get("trial_id")
            for trial in self.trials()
            if trial.get("status") not in ("TERMINATED", "ERROR")
        }

    def restart_counts(self) -> dict[str, int]:
        """trial id -> how often Ray restarted it after a failure."""
        counts = {}
        for trial_state, metadata in (self.state or {}).get("trial_data", []):
            trial_id = json.loads(trial_state).get("trial_id")
            count = json.loads(metadata).get("num_failures")
            if trial_id is not None and count is not None:
                counts[trial_id] = int(count)
        return counts

    def mark_trials_ended(self, ended: dict[str, str]) -> None:
        """Set the status of the trials in `ended` (trial id -> TERMINATED or ERROR) in the
        newest saved state, written back once, so that restoring it does not run them
        again."""
        if self.state is None or not ended:
            return
        changed = False
        for entry in self.state["trial_data"]:
            trial = json.loads(entry[0])
            status = ended.get(trial.get("trial_id"))
            if status and trial.get("status") != status:
                trial["status"] = status
                entry[0], changed = json.dumps(trial), True
        if changed:
            write_file(self.fs, self.state_path, json.dumps(self.state))

    def set_damaged_aside(self) -> list[str]:
        """Rename the damaged newer experiment states (`NAME.json.damaged`), so that Ray's
        restore, which reads the newest by name, reads the newest whole one; their
        names."""
        for path in self.damaged:
            self.fs.move(path, f"{path}.damaged")
        self.files = tuple(f for f in self.files if f not in self.damaged)
        moved, self.damaged = [p.rsplit("/", 1)[-1] for p in self.damaged], ()
        return moved


def restart_counts(experiment: str | os.PathLike[str]) -> dict[str, int]:
    """trial id -> how often Ray restarted it after a failure, from the newest saved
    experiment state; none when there is no state."""
    return SavedState.read(experiment).restart_counts()


def unfinished_trials(experiment: str | os.PathLike[str]) -> set[str]:
    """Ids of the trials that had not ended when Ray last saved the experiment's state:
    empty for a search that ran to its end."""
    return SavedState.read(experiment).unfinished_trials()


def trials_per_pair(experiment: str | os.PathLike[str]) -> dict[str, set[str]] | None:
    """pair -> ids of its trials in the newest saved experiment state; None when there is
    no saved state."""
    return SavedState.read(experiment).trials_per_pair()


def session_of(path: str, prefix: str) -> str:
    """The session a saved file belongs to: its name less `prefix` and its extension
    ("searcher-state-2026-01-01_00-00-00.pkl" -> "2026-01-01_00-00-00")."""
    name = path.rsplit("/", 1)[-1]
    return name.removeprefix(prefix).rsplit(".", 1)[0]


def _result_lines(fs: pafs.FileSystem, path: str) -> list[dict[str, Any]]:
    """A trial's reports; a last line cut short by a kill or a full disk is passed over
    (the checkpoint's report log keeps that epoch)."""
    return report_lines(read_file(fs, path)) if _is_file(fs, path) else []


def _log(fs: pafs.FileSystem, checkpoint: str) -> list[dict[str, Any]]:
    path = f"{checkpoint}/{REPORTS_FILE}"
    return json.loads(read_file(fs, path)) if _is_file(fs, path) else []


def _is_experiment_state(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("experiment_state-") and name.endswith(".json")


def _last_line(fs: pafs.FileSystem, path: str) -> str | None:
    """An error file's last line; None when there is no such file."""
    if not _is_file(fs, path):
        return None
    lines = read_file(fs, path).decode("utf-8").strip().splitlines()
    return lines[-1] if lines else "error"


def _is_file(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type == pafs.FileType.File
