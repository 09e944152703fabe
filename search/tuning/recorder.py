"""Writes each trial's rows into the result tables the moment it ends (a Ray Tune
callback on the driver), so a search killed midway keeps every finished trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from results.rows import trial_rows
from results.store import ResultStore

__all__ = ["ResultsRecorder", "trial_records"]


class ResultsRecorder(Callback):
    def __init__(self, results_root: str, search: str):
        self.results_root, self.search = results_root, search
        self._records: dict[str, list[dict[str, Any]]] = {}

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result, **info):
        self._records.setdefault(trial.trial_id, []).append(dict(result))

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        self._write(trial, None)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        self._write(trial, _error_message(trial))

    def _write(self, trial: Trial, error: str | None) -> None:
        # this run's reports, after those of an earlier run (a resumed search) on disk
        records = trial_records(trial.local_path) + self._records.pop(trial.trial_id, [])
        rows = trial_rows(self.search, trial.trial_id, trial.config, records, error)
        ResultStore(self.results_root).write_trial(rows)


def trial_records(trial_folder: str | Path | None) -> list[dict[str, Any]]:
    """The reports in a trial folder's result.json (none when it is absent)."""
    if trial_folder is None or not (Path(trial_folder) / "result.json").exists():
        return []
    lines = (Path(trial_folder) / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _error_message(trial: Trial) -> str:
    path = trial.error_file
    if path and Path(path).exists():
        text = Path(path).read_text().strip().splitlines()
        return text[-1] if text else "error"
    return "error (no message recorded)"
