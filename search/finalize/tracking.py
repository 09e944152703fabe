"""A finalized search in MLflow, under the search's own run (made when the search was not
tracked): a run per winner, a nested run per seed with its test figures and their 95 %
intervals, the model card, weights, config and calibration as artifacts; a run for the
greedy ensemble; the report and checklist as artifacts of the search run. Written once
finalize has written its tables and report, which stay the record of truth: MLflow
failing is one warning. MLflow is imported only when asked for."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from search.records import EnsembleFinal, FinalModel

__all__ = ["MODEL_ARTIFACTS", "log_finals"]

log = logging.getLogger(__name__)

# a model folder's files that go to MLflow (the CAM overlays and predictions stay on disk)
MODEL_ARTIFACTS = ("MODEL_CARD.md", "model.safetensors", "config.json", "conformal.json")
REPORT_ARTIFACTS = ("report.html", "checklist.md")


def log_finals(
    uri: str,
    search: str,
    search_row: dict[str, Any],
    finals: list[FinalModel],
    finals_rows: list[dict[str, Any]],
    ensemble: EnsembleFinal | None,
    out: Path,
) -> None:
    """Write finalize's runs of `search` to the MLflow store at `uri`; `finals_rows` are
    the `finals` table's rows of `finals`, in order; `out` holds the report. Finalizing
    again writes again into the same runs (their figures replaced by the new ones)."""
    try:
        _log_finals(uri, search, search_row, finals, finals_rows, ensemble, out)
    except Exception as exc:
        log.warning(
            "MLflow at %s did not take the finalized models (%s: %s); the finals tables, "
            "models and report are written",
            uri,
            type(exc).__name__,
            exc,
        )


def _log_finals(uri, search, search_row, finals, finals_rows, ensemble, out: Path) -> None:
    from search.tracking.mlflow_runs import MlflowRuns

    runs = MlflowRuns(uri, search)
    new = "search" not in runs.runs  # a search not shown in MLflow as it ran
    search_run = runs.search_run(search_row, reopen=False)
    for name in REPORT_ARTIFACTS:
        if (out / name).is_file():
            runs.client.log_artifact(search_run, str(out / name), "finals")
    figures = [_figures(row) for row in finals_rows]
    for final, seed_figures in zip(finals, figures, strict=True):
        trial = final.trial
        winner = f"final:{trial['trial_id']}"
        runs.run_id(
            winner, f"final {trial['backbone']}/{trial['mode']} {trial['trial_id']}",
            parent="search", params=json.loads(trial.get("config") or "{}"), reopen=False,
            tags={"polarmap.trial_id": trial["trial_id"], "polarmap.kind": "winner"},
        )  # fmt: skip
        seed_run = runs.run_id(
            f"{winner}:seed-{final.seed}", f"seed {final.seed}", parent=winner,
            params={"seed": final.seed}, tags={"polarmap.model_dir": str(final.folder)},
        )  # fmt: skip
        runs.log(seed_run, metrics=seed_figures)
        _log_model_files(runs, seed_run, final.folder, "model")
        runs.end(f"{winner}:seed-{final.seed}", "FINISHED")
    for trial_id, seeds in _by_winner(finals, figures).items():
        # the winner's figures averaged over its seeds (their intervals are the seeds' runs')
        means = {k: sum(s[k] for s in seeds) / len(seeds) for k in _common(seeds)}
        runs.log(runs.runs[f"final:{trial_id}"].info.run_id, metrics={**means, "seeds": len(seeds)})
        runs.end(f"final:{trial_id}", "FINISHED")
    if ensemble is not None:
        _log_ensemble(runs, ensemble)
    if new:
        runs.end("search", "FINISHED")  # finalize finalizes finished searches only


def _log_ensemble(runs, ensemble: EnsembleFinal) -> None:
    f = ensemble.figures
    metrics = {f"test_{m}": v for m, v in f.macro.items()}
    for m, (low, high) in f.intervals.items():
        if "/" not in m:
            metrics.update({f"test_{m}_low": low, f"test_{m}_high": high})
    weights = ensemble.ensemble.selection.weights
    run = runs.run_id(
        "final:ensemble", "final greedy ensemble", parent="search",
        params={"members": ",".join(weights), "weights": json.dumps(weights)},
        tags={"polarmap.kind": "ensemble", "polarmap.model_dir": str(ensemble.folder)},
    )  # fmt: skip
    runs.log(run, metrics={**metrics, "test_patients": f.count})
    for trial_id, folder in ensemble.member_folders.items():
        _log_model_files(runs, run, Path(folder), f"members/{trial_id}")
    runs.end("final:ensemble", "FINISHED")


def _log_model_files(runs, run_id: str, folder: Path, under: str) -> None:
    """A model folder's `MODEL_ARTIFACTS`, as artifacts of the run under `under`."""
    for name in MODEL_ARTIFACTS:
        if (folder / name).is_file():
            runs.client.log_artifact(run_id, str(folder / name), under)


def _by_winner(finals, figures) -> dict[str, list[dict[str, float]]]:
    """Each winner's seeds' test figures (not their intervals), from each model's
    figures (`_figures`), in the order of `finals`."""
    seeds: dict[str, list[dict[str, float]]] = {}
    for final, model in zip(finals, figures, strict=True):
        tests = {k: v for k, v in model.items() if k.startswith("test_") and not _bound(k)}
        seeds.setdefault(final.trial["trial_id"], []).append(tests)
    return seeds


def _bound(key: str) -> bool:
    return key.endswith(("_low", "_high"))


def _common(seeds: list[dict[str, float]]) -> set[str]:
    return set.intersection(*(set(s) for s in seeds))


def _figures(row: dict[str, Any]) -> dict[str, float]:
    """A finals row's figures: test and cross-validated metrics with their intervals,
    ECE, threshold, patient counts (finite numbers; the seed is a param)."""
    return {
        k: float(v)
        for k, v in row.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "seed"
        and math.isfinite(v)
    }  # fmt: skip
