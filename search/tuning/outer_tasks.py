"""The outer searches of a nested run at once, under one driver: each runs as a Ray task on
the driver's node (so its records land in the driver's results folder) and is the same
search `run_search` runs in this process, with its own Tuner, Ray folder, searches row and
resume; their trials draw slots from the same cluster, so one outer search's trials fill
the slots another leaves idle while its Hyperband waits for a rung. Trials of different
outer searches that need the same frozen work compute it once (the store's locks).

The driver says when each outer search starts and ends and, unless quiet, how many trials
each has recorded; the searches' own live views stay in Ray's worker logs. Ctrl-C stops
every running outer search gracefully (Ray delivers it to the task as SIGINT, which the
search turns into Ray Tune's own clean stop) and starts no more; a second Ctrl-C stops at
once. Either way `search resume` goes on."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from results.records import SearchStatus
from results.store import ResultStore
from search.data import Dataset
from search.tuning.prepare import prepare_search
from search.tuning.runner import RAY_DEFAULTS, StopSignals, run_search, start_ray
from search.tuning.settings import SearchSettings

__all__ = ["NOT_STARTED", "OuterJob", "run_outer_searches"]

NOT_STARTED = "not started"  # an outer fold's status when Ctrl-C came first: no searches row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OuterJob:
    """One outer fold's search to run: its settings, and whether it resumes."""

    outer: int
    settings: SearchSettings
    resume: bool


def run_outer_searches(
    jobs: list[OuterJob],
    dataset: Dataset,
    parallel: int,
    count: int,
    quiet: bool = False,
    say: Callable[[str], None] = print,
    every_s: float = 60.0,
) -> dict[int, str]:
    """Run `jobs`, at most `parallel` at once; returns each outer fold's status (that of
    its searches row: completed, stopped by the time budget, interrupted; `not started`
    when Ctrl-C came first). `count`: the nested run's number of outer folds."""
    if not jobs:
        return {}
    started_here = start_ray(jobs[0].settings)
    try:
        return _Driver(jobs, dataset, parallel, count, quiet, say, every_s).run()
    finally:
        if started_here:
            ray.shutdown()


def _search_task(settings: SearchSettings, dataset: Dataset, resume: bool) -> SearchStatus:
    """One outer search, inside its Ray task: the status of its searches row."""
    prepared = prepare_search(settings, dataset)
    return run_search(settings, prepared, resume=resume, quiet=True).status


class _Driver:
    def __init__(self, jobs, dataset, parallel, count, quiet, say, every_s):
        self.waiting = [replace(job, settings=_absolute(job.settings)) for job in jobs]
        self.dataset = ray.put(dataset)
        self.parallel, self.count, self.quiet, self.say = max(1, parallel), count, quiet, say
        self.every_s = every_s
        self.running: dict[ray.ObjectRef, OuterJob] = {}
        self.statuses: dict[int, str] = {}
        self.started = time.monotonic()
        self.store = ResultStore(jobs[0].settings.results)
        here = ray.get_runtime_context().get_node_id()
        # what a task needs of this process's environment on a node Ray started elsewhere
        env = {
            k: v for k, v in os.environ.items() if k.startswith("POLARMAP_") or k in RAY_DEFAULTS
        }
        self.task = ray.remote(_search_task).options(
            num_cpus=0,
            max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
            runtime_env={"env_vars": env} if env else None,
        )

    def run(self) -> dict[int, str]:
        stopping = False
        with StopSignals() as stop:  # noted here, acted on in the loop; a second one: at once
            shown = time.monotonic()
            while self.waiting or self.running:
                if stop.received and not stopping:
                    self._stop_all()
                    stopping = True
                while self.waiting and len(self.running) < self.parallel and not stop.received:
                    self._start(self.waiting.pop(0))
                if not self.running:
                    break
                done, _ = ray.wait(list(self.running), num_returns=1, timeout=1.0)
                for ref in done:
                    self._finished(ref)
                if not self.quiet and time.monotonic() - shown >= self.every_s:
                    self.say(self._view())
                    shown = time.monotonic()
        for job in self.waiting:
            self.statuses[job.outer] = NOT_STARTED
        return self.statuses

    def _start(self, job: OuterJob) -> None:
        self.running[self.task.remote(job.settings, self.dataset, job.resume)] = job
        self.say(
            f"[{self._elapsed()}] outer fold {job.outer} of {self.count}: search "
            f"{job.settings.name} started" + (" (resumed)" if job.resume else "")
        )

    def _finished(self, ref: ray.ObjectRef) -> None:
        job = self.running.pop(ref)
        try:
            status = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            status = SearchStatus.INTERRUPTED
        except ray.exceptions.RayError as exc:  # the others go on; resume reruns this one
            log.error("outer search %s failed: %s", job.settings.name, exc)
            status = SearchStatus.INTERRUPTED
        self.statuses[job.outer] = status
        self.say(
            f"[{self._elapsed()}] outer fold {job.outer} of {self.count}: search "
            f"{job.settings.name} {status} ({self._recorded(job)} trials recorded)"
        )

    def _stop_all(self) -> None:
        """Cancelling a task delivers SIGINT to it, which its search turns into Ray Tune's
        graceful stop."""
        self.say("stopping the running outer searches cleanly (Ctrl-C again: at once)")
        for ref in self.running:
            ray.cancel(ref)

    def _view(self) -> str:
        running = ", ".join(
            f"{job.outer}: {self._recorded(job)}/{job.settings.trials}"
            for job in sorted(self.running.values(), key=lambda j: j.outer)
        )
        return (
            f"[{self._elapsed()}] outer searches running (trials recorded): {running}; "
            f"{len(self.statuses)} ended, {len(self.waiting)} waiting"
        )

    def _recorded(self, job: OuterJob) -> int:
        try:
            return self.store.table("trials", search=job.settings.name).num_rows
        except (OSError, ValueError) as exc:  # a file replaced while read: next time
            log.debug("could not count the trials of %s: %s", job.settings.name, exc)
            return 0

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _absolute(settings: SearchSettings) -> SearchSettings:
    """Paths as the task (in another working folder) must read them."""
    cache = settings.cache.resolve() if settings.cache else None
    weights = settings.weights
    if weights and "://" not in weights:
        weights = str(Path(weights).expanduser().resolve())
    return replace(
        settings, data=Path(settings.data).resolve(), cache=cache, weights=weights,
        storage=settings.layout.storage,
    )  # fmt: skip
