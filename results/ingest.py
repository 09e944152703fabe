"""Rebuild the result tables from a search's folder (Ray's experiment directory): for a
search whose driver could not write them, or after the tables were lost. Rewrites each
trial's files, so ingesting twice, or after the search wrote them, leaves one row per
trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from results.rows import trial_rows
from results.store import ResultStore

__all__ = ["error_message", "ingest_experiment", "trial_records"]


def ingest_experiment(experiment: str | Path, results_root: str | Path | None = None) -> int:
    """Write every trial of `experiment` into the tables under `results_root` (default:
    `results` beside the experiment folder); returns the number of trials.

    Raises:
        FileNotFoundError: no trial folders (no `params.json`) under `experiment`.
    """
    experiment = Path(experiment)
    store = ResultStore(results_root or experiment.parent / "results")
    folders = sorted(p.parent for p in experiment.glob("*/params.json"))
    if not folders:
        raise FileNotFoundError(f"{experiment}: no trial folders (*/params.json) to ingest")
    for folder in folders:
        config = json.loads((folder / "params.json").read_text())
        records = trial_records(folder)
        trial_id = records[0]["trial_id"] if records else folder.name.split("_")[2]
        error_file = folder / "error.txt"
        error = error_message(error_file) if error_file.exists() else None
        store.write_trial(trial_rows(experiment.name, trial_id, config, records, error))
    return len(folders)


def trial_records(trial_folder: str | Path | None) -> list[dict[str, Any]]:
    """The reports in a trial folder's result.json, in order (none when it is absent)."""
    if trial_folder is None or not (Path(trial_folder) / "result.json").exists():
        return []
    lines = (Path(trial_folder) / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def error_message(error_file: str | Path | None) -> str:
    """The last line of a trial's error file (the exception and its message)."""
    if error_file and Path(error_file).exists():
        lines = Path(error_file).read_text().strip().splitlines()
        return lines[-1] if lines else "error"
    return "error (no message recorded)"
