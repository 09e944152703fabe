"""Writes each trial's rows into the result tables the moment it ends (a Ray Tune
callback on the driver), so a search killed midway keeps every finished trial; a resumed
search first writes those of the trials that ended before it but never got there.

A storage that takes no more (full, over quota, read-only, object storage refusing
writes) stops the search at its first error, met here or by a trial copying its
checkpoint there, and the search ends with one line saying what to do (`watch`, a
`StorageWatch`): no retry could succeed. Any other table that cannot be written costs a
warning, not the search: `polarmap results ingest` rebuilds the tables from the search's
folder afterwards.

The recorder also tells the search's trackers (`search.tracking`: TensorBoard, the Optuna
journal, MLflow) each report and each ended trial's rows, so that they show what the
tables hold; a tracker that fails is one warning."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from results.rows import trial_rows
from results.store import ResultStore
from search.layout import StorageLayout
from search.tracking import Trackers
from search.tracking.backfill import recorded_trials
from search.tuning.ray_folders import TrialFolder, checkpoint_records, error_message, with_log
from search.tuning.storage_errors import StorageWatch
from trainables.report_log import report_lines

__all__ = ["ResultsRecorder"]

log = logging.getLogger(__name__)

ENDED = (Trial.TERMINATED, Trial.ERROR)


class ResultsRecorder(Callback):
    def __init__(self, results_root: str, search: str, trackers: Trackers | None = None):
        self.results_root, self.search = results_root, search
        self.trackers = trackers or Trackers()
        self.store = ResultStore(results_root)
        layout = StorageLayout.of_results(results_root)
        self.watch = StorageWatch(layout.storage, layout.experiment(search))
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._caught_up = False

    def on_step_begin(self, iteration: int, trials: list[Trial], **info):
        if not self._caught_up:  # the first step: the trials a resumed search restored
            self._caught_up = True
            self._write_unrecorded_ends(trials)

    def on_step_end(self, iteration: int, trials: list[Trial], **info):
        self.watch.stop_if_noted()

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result, **info):
        self._records.setdefault(trial.trial_id, []).append(dict(result))
        self.trackers.trial_epoch(trial.trial_id, trial.config, result)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        self._write(trial, None)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        # Ray retries a failed trial; one that failed copying its checkpoint into the
        # storage would fail again, so the search stops instead
        self.watch.note_failed_trial(trial.trial_id, _last_failure(trial.error_file))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        self.watch.note_failed_trial(trial.trial_id, _last_failure(trial.error_file))
        self._write(trial, error_message(trial.error_file))

    def _write(self, trial: Trial, error: str | None) -> None:
        """Write the trial's rows into the tables and tell the trackers."""
        try:
            # every report up to the last checkpoint (its log), then those Ray wrote down,
            # then this run's: later copies of an epoch win, so Ray's own fields are kept
            records = with_log(
                checkpoint_records(trial.checkpoint),
                _reported(trial.local_path) + self._records.pop(trial.trial_id, []),
            )
            rows = trial_rows(
                self.search, trial.trial_id, trial.config, records, error, trial.num_failures
            )
        except Exception as exc:
            self._could_not_write(trial, exc)
            return
        try:
            self.store.write_trial(rows)
        except Exception as exc:
            self._could_not_write(trial, exc)
        self.trackers.trial_ended(trial.trial_id, trial.config, rows)

    def _could_not_write(self, trial: Trial, exc: Exception) -> None:
        """The search's own state is intact; the tables can be rebuilt."""
        doing = f"writing the trial rows of trial {trial.trial_id}"
        if self.watch.note(exc, doing, ours=True):
            return  # the search stops after this step, and says why
        log.warning(
            "trial %s could not be written to the result tables in %s (%s: %s); the "
            "search goes on, and `polarmap results ingest` rebuilds the tables from its "
            "folder",
            trial.trial_id,
            self.results_root,
            type(exc).__name__,
            exc,
        )

    def _write_unrecorded_ends(self, trials: list[Trial]) -> None:
        """The rows of the trials that ended before this run (a resumed search) but are
        missing from the tables: the storage took no more as they ended, or the driver
        died just then. The trackers are told of every ended trial again: one may have
        missed its end (a driver killed before it was written; they write each once)."""
        ended = [t for t in trials if t.status in ENDED]
        if not ended:
            return
        try:
            recorded = set(self.store.table("trials", search=self.search)["trial_id"].to_pylist())
        except Exception:  # tables unreadable: the search's end says how to rebuild them
            return
        try:  # the trackers are told the others' rows as the tables hold them
            told = recorded_trials(self.results_root, self.search) if self.trackers else {}
        except Exception:  # as unreadable as above: the trackers miss their ends
            told = {}
        for trial in ended:
            if trial.trial_id not in recorded:
                self._write(trial, _saved_error(trial) if trial.status == Trial.ERROR else None)
            elif trial.trial_id in told:
                self.trackers.trial_ended(trial.trial_id, *told[trial.trial_id])


def _reported(trial_folder: str | None) -> list[dict[str, Any]]:
    """The reports in the driver's result.json of a trial, in order; a line cut short (a
    full disk) left out: the checkpoint's log keeps that epoch."""
    path = Path(trial_folder, "result.json") if trial_folder else None
    return report_lines(path.read_bytes()) if path and path.is_file() else []


def _last_failure(error_file: str | None) -> str:
    """Ray's text of a trial's latest failure (its error file holds one per failure)."""
    try:
        text = Path(error_file).read_text(errors="replace") if error_file else ""
    except OSError:  # none written (Ray could not either)
        text = ""
    return text.rsplit("Failure # ", 1)[-1]


def _saved_error(trial: Trial) -> str:
    """The last line of an errored trial's error file: the driver's copy, else (a
    resumed search has none) the storage's."""
    if trial.error_file and Path(trial.error_file).is_file():
        return error_message(trial.error_file)
    storage = getattr(trial, "storage", None)
    if storage is not None and trial.path:
        saved = TrialFolder(storage.storage_filesystem, trial.path).error()
        if saved:
            return saved
    return error_message(None)
