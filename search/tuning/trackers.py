"""The trackers a search tells as it runs: TensorBoard event files and an Optuna journal
in its experiment folder, always; MLflow runs when `--mlflow` names a store. No Ray here;
MLflow is imported only when asked for."""

from __future__ import annotations

from typing import Any

from search.tracking import Tracker, Trackers
from search.tracking.optuna_journal import StudyJournal
from search.tracking.tensorboard import TensorBoardTracker
from search.tuning.prepare import PreparedSearch
from search.tuning.settings import SearchSettings

__all__ = ["search_trackers"]


def search_trackers(
    settings: SearchSettings, prepared: PreparedSearch, search_row: dict[str, Any]
) -> Trackers:
    """The trackers of the search `settings` describe, writing where it is now (a search
    moved since it started tells those of its new place)."""
    space = settings.space
    trackers: list[Tracker] = [
        TensorBoardTracker(settings.experiment),
        StudyJournal(settings.experiment, space.ranges, prepared.max_unfreeze, space.max_epochs),
    ]
    if settings.mlflow:
        from search.tracking.mlflow_runs import MlflowTracker

        places = {"experiment": settings.experiment, "results": settings.results}
        trackers.append(MlflowTracker(settings.mlflow, search_row, places))
    return Trackers(trackers)
