"""What a tracker is told while a search runs, and the fan-out that keeps a failing one
from costing the search.

The driver tells every tracker what the result recorder already receives: each epoch's
report of each trial as it arrives, and each trial's rows when it ends. Trials on cluster
workers never reach a tracker's store. The Parquet tables stay the record of truth; a
tracker shows the same figures where researchers already look.

A tracker is pickled with the recorder when Ray saves the search (and replaced by a
fresh one on resume): it opens its store lazily and leaves it out of its pickled state.
A resumed search tells a tracker epochs again (a trial restored from an earlier
checkpoint runs them once more): a tracker writes each epoch of a trial once, so a
resume leaves no duplicate and, from the rows of trials that end, no gap.
"""

from __future__ import annotations

import logging
from typing import Any

from results.rows import TrialRows

__all__ = ["Tracker", "Trackers"]

log = logging.getLogger(__name__)


class Tracker:
    """One place a search is shown besides its tables. Subclasses override what they
    use; every call may raise, and `Trackers` then warns once and stops calling it."""

    name = "tracker"  # in the warning when it fails: "MLflow", "TensorBoard", ...

    def trial_epoch(self, trial_id: str, config: dict[str, Any], report: dict[str, Any]) -> None:
        """One epoch's report of a running trial (Ray's result: `epoch`, `stage`, the
        figures `results.rows.epoch_figures` reads); `config` is its flat config."""

    def trial_ended(self, trial_id: str, config: dict[str, Any], rows: TrialRows) -> None:
        """The trial ended (completed, stopped by the scheduler, errored, or cut off by
        an interrupted search): its rows as the tables hold them, every epoch included."""

    def search_ended(self, status: str) -> None:
        """The search ended with `status`, as its searches row says (completed,
        interrupted, "stopped by the time budget")."""

    def close(self) -> None:
        """Flush and let go of the store (the search ended or stopped)."""


class Trackers(Tracker):
    """Several trackers told together. One that fails is one warning, naming it and why,
    and is not called again in this run: the search goes on, and its tables keep every
    figure."""

    name = "trackers"

    def __init__(self, trackers: list[Tracker] | None = None):
        self.trackers = list(trackers or [])

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def trial_epoch(self, trial_id: str, config: dict[str, Any], report: dict[str, Any]) -> None:
        self._tell("trial_epoch", trial_id, config, report)

    def trial_ended(self, trial_id: str, config: dict[str, Any], rows: TrialRows) -> None:
        self._tell("trial_ended", trial_id, config, rows)

    def search_ended(self, status: str) -> None:
        self._tell("search_ended", status)

    def close(self) -> None:
        self._tell("close")

    def _tell(self, what: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, what)(*args)
            except Exception as exc:
                self.trackers.remove(tracker)
                log.warning(
                    "%s stopped showing this search (%s: %s); the search goes on, and its "
                    "result tables keep every figure",
                    tracker.name,
                    type(exc).__name__,
                    exc,
                )
