"""Writes each trial's rows into the result tables the moment it ends (a Ray Tune
callback on the driver), so a search killed midway keeps every finished trial. A table
that cannot be written (a full disk, lost credentials) costs a warning, not the search:
`polarmap results ingest` rebuilds the tables from the search's folder afterwards."""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from results.rows import trial_rows
from results.store import ResultStore
from search.tuning.ray_folders import (
    checkpoint_records,
    error_message,
    trial_records,
    with_log,
)

__all__ = ["ResultsRecorder"]

log = logging.getLogger(__name__)


class ResultsRecorder(Callback):
    def __init__(self, results_root: str, search: str):
        self.results_root, self.search = results_root, search
        self.store = ResultStore(results_root)
        self._records: dict[str, list[dict[str, Any]]] = {}

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result, **info):
        self._records.setdefault(trial.trial_id, []).append(dict(result))

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        self._write(trial, None)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        self._write(trial, error_message(trial.error_file))

    def _write(self, trial: Trial, error: str | None) -> None:
        # every report up to the last checkpoint (its log), then those Ray wrote down, then
        # this run's: later copies of an epoch win, so Ray's own fields are kept
        records = with_log(
            checkpoint_records(trial.checkpoint),
            trial_records(trial.local_path) + self._records.pop(trial.trial_id, []),
        )
        try:
            rows = trial_rows(
                self.search, trial.trial_id, trial.config, records, error, trial.num_failures
            )
            self.store.write_trial(rows)
        except Exception as exc:  # the search's own state is intact; the tables can be rebuilt
            log.warning(
                "trial %s could not be written to the result tables in %s (%s: %s); the "
                "search goes on, and `polarmap results ingest` rebuilds the tables from its "
                "folder",
                trial.trial_id,
                self.results_root,
                type(exc).__name__,
                exc,
            )
