"""Nested cross-validation: the whole cross-validated search, once per outer fold, with
that outer fold as its unseen test. Each outer fold's search is a search of its own
(`NAME-outer-<m>`, m from 0) with its own Ray folder and resume, all writing to the same
result tables; a searches row for `NAME` itself says how the nested run stands.

They run one after another under this driver, each using every trial slot Ray has. They
read the same maps and their trials pool every patient (an outer fold's test patients in
no fold), so the frozen work done by the first outer search is found in the store by the
others. Resuming the nested run keeps the outer searches that finished, resumes the one
that was interrupted and starts the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from results.store import ResultStore
from search.data import Dataset
from search.tuning.prepare import PreparedSearch, prepare_search
from search.tuning.record import load_search_row, write_settings
from search.tuning.runner import run_search, search_record
from search.tuning.settings import FINISHED, SearchSettings, outer_search_name

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
) -> str:
    """Run (or resume) every outer fold's search; returns the nested run's status:
    `completed`, or `interrupted` when an outer search was (the others wait for resume).

    `first` is outer fold 0's prepared search (the plan was printed from it)."""
    count = first.split.outer_count or 0
    store = ResultStore(settings.results)
    row = _nested_row(settings, first, store, resume)
    if not resume or load_search_row(settings.experiment) is None:
        write_settings(settings, settings.experiment, row)
    store.write_search(row)
    for outer in range(count):
        one = outer_settings(settings, outer)
        before = store.table("searches", search=one.name).to_pylist()
        if before and before[0]["status"] in FINISHED:
            say(f"outer fold {outer} of {count}: search {one.name} already finished")
            continue
        prepared = first if outer == 0 else prepare_search(one, dataset)
        again = resume and load_search_row(one.experiment) is not None
        say(
            f"outer fold {outer} of {count}: search {one.name}, "
            f"{len(prepared.split.test)} patients held out" + (" (resumed)" if again else "")
        )
        if run_search(one, prepared, resume=again, quiet=quiet).interrupted:
            row.update(ended=datetime.now(UTC), status="interrupted")
            store.write_search(row)
            return "interrupted"
    row.update(ended=datetime.now(UTC), status="completed")
    store.write_search(row)
    return "completed"


def _nested_row(settings: SearchSettings, first: PreparedSearch, store: ResultStore, resume):
    """The nested run's searches row: no test split of its own (every patient is tested
    once, by the search that held it out), the number of outer folds."""
    row = search_record(settings, first)
    row.update(test_fingerprint=None, outer_folds=first.split.outer_count, outer_fold=None)
    if resume:
        for before in store.table("searches", search=settings.name).to_pylist():
            row["started"] = before["started"]
    return row
