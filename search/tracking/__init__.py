"""Where a search is also shown while it runs and after: MLflow runs, TensorBoard event
files and an Optuna journal per search, written by the driver from what the result
recorder receives. Optional; the result tables stay the record of truth. Nothing here
imports Ray, and MLflow only when asked for."""

from search.tracking.base import Tracker, Trackers

__all__ = ["Tracker", "Trackers"]
