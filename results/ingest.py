"""Rebuild the result tables from a search's folder (Ray's experiment directory): for a
search whose driver could not write them, or after the tables were lost. Rewrites each
trial's files, so ingesting twice, or after the search wrote them, leaves one row per
trial."""

from __future__ import annotations

import json
from pathlib import Path

from results.rows import trial_rows
from results.store import ResultStore

__all__ = ["ingest_experiment"]


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
        result = folder / "result.json"
        lines = result.read_text().splitlines() if result.exists() else []
        records = [json.loads(line) for line in lines if line.strip()]
        trial_id = records[0]["trial_id"] if records else folder.name.split("_")[2]
        error_file = folder / "error.txt"
        error = None
        if error_file.exists():
            text = error_file.read_text().strip().splitlines()
            error = text[-1] if text else "error"
        store.write_trial(trial_rows(experiment.name, trial_id, config, records, error))
    return len(folders)
