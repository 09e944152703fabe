"""Nested cross-validation: the whole cross-validated search, once per outer fold, with
that outer fold as its unseen test. Each outer fold's search is a search of its own
(`NAME-outer-<m>`, m from 0) with its own Ray folder and resume, all writing to the same
result tables; a searches row for `NAME` itself says how the nested run stands.

On one machine they run one after another in this process, each using every trial slot
it has; on a cluster (or with `--outer-parallel N`) they run at once, each in a Ray task
under this driver (`outer_tasks`). They read the same maps and their trials pool every
patient (an outer fold's test patients in no fold), so each piece of frozen work is done
once, by whichever trial needs it first, and found in the store by the others. Resuming
the nested run keeps the outer searches that finished, resumes the ones that were
interrupted and starts the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from results.records import SearchStatus
from results.store import ResultStore
from search.data import Dataset
from search.tuning.outer_tasks import OuterJob, run_outer_searches
from search.tuning.prepare import PreparedSearch, prepare_search
from search.tuning.record import load_search_row, write_settings
from search.tuning.runner import run_search, search_record
from search.tuning.settings import FINISHED, SearchSettings, outer_parallel, outer_search_name

__all__ = ["outer_settings", "run_nested"]

log = logging.getLogger(__name__)


def outer_settings(settings: SearchSettings, outer: int) -> SearchSettings:
    """The settings of outer fold `outer`'s search."""
    return replace(
        settings,
        name=outer_search_name(settings.name, outer),
        split=replace(settings.split, outer=outer),
        nested_in=settings.name,
    )


def run_nested(
    settings: SearchSettings,
    dataset: Dataset,
    first: PreparedSearch,
    resume: bool = False,
    quiet: bool = False,
    say: Callable[[str], None] = print,
) -> SearchStatus:
    """Run (or resume) every outer fold's search; returns the nested run's status:
    `completed`, or `interrupted` when an outer search was (the others wait for resume).

    `first` is outer fold 0's prepared search (the plan was printed from it)."""
    count = first.split.outer_count or 0
    store = ResultStore(settings.results)
    row = _nested_row(settings, first, store, resume)
    if not resume or load_search_row(settings.experiment) is None:
        write_settings(settings, settings.experiment, row, dataset, new=not resume)
    store.write_search(row)
    jobs = []
    for outer in range(count):
        one = outer_settings(settings, outer)
        before = store.table("searches", search=one.name).to_pylist()
        if before and before[0]["status"] in FINISHED:
            say(f"outer fold {outer} of {count}: search {one.name} already finished")
            continue
        jobs.append(OuterJob(outer, one, resume and load_search_row(one.experiment) is not None))
    parallel = outer_parallel(settings, count)
    if parallel > 1 and len(jobs) > 1:
        statuses = run_outer_searches(jobs, dataset, parallel, count, quiet, say).values()
        finished = all(status in FINISHED for status in statuses)
    else:
        finished = _one_at_a_time(jobs, dataset, first, count, quiet, say)
    status = SearchStatus.COMPLETED if finished else SearchStatus.INTERRUPTED
    row.update(ended=datetime.now(UTC), status=status)
    store.write_search(row)
    return status


def _one_at_a_time(jobs, dataset, first: PreparedSearch, count: int, quiet, say) -> bool:
    """Run the outer searches in this process in turn, with their live views; False when
    one was interrupted (the rest wait for resume)."""
    for job in jobs:
        prepared = first if job.outer == 0 else prepare_search(job.settings, dataset)
        say(
            f"outer fold {job.outer} of {count}: search {job.settings.name}, "
            f"{len(prepared.split.test)} patients held out" + (" (resumed)" if job.resume else "")
        )
        if run_search(job.settings, prepared, resume=job.resume, quiet=quiet).interrupted:
            return False
    return True


def _nested_row(settings: SearchSettings, first: PreparedSearch, store: ResultStore, resume):
    """The nested run's searches row: no test split of its own (every patient is tested
    once, by the search that held it out), the number of outer folds."""
    row = search_record(settings, first)
    row.update(test_fingerprint=None, outer_folds=first.split.outer_count, outer_fold=None)
    if resume:
        for before in store.table("searches", search=settings.name).to_pylist():
            row["started"] = before["started"]
    return row
