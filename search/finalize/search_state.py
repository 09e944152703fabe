"""Which search finalize works on, and whether it can: the search named (or the only one),
its settings, finished, on the data set it ran with."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from results import load_searches
from results.records import SearchStatus, TrialStatus
from search.errors import FinalizeError, SearchStateError, SettingsError
from search.finalize.settings import FinalizeSettings
from search.layout import StorageLayout
from search.tuning.prepare import PreparedSearch
from search.tuning.record import load_settings
from search.tuning.settings import SearchSettings

__all__ = ["check_finished", "check_same_data", "load_search"]


def load_search(settings: FinalizeSettings) -> tuple[str, dict[str, Any], SearchSettings]:
    """The search's name, its searches row and the settings it ran with.

    Raises:
        ValueError: no such search, several and none named, or its folder is gone.
    """
    searches = load_searches(settings.results)
    names = list(searches["search"])
    if not names:
        raise SearchStateError(_no_tables(settings.results))
    if settings.search is None and len(names) != 1:
        listed = ", ".join(names)
        raise SettingsError(f"{settings.results}: name a search with --search (there: {listed})")
    name = settings.search or names[0]
    if name not in names:
        listed = ", ".join(names)
        raise SearchStateError(f"{settings.results}: no search {name!r} (there: {listed})")
    row = searches[searches["search"] == name].iloc[0].to_dict()
    experiment = StorageLayout.of_results(settings.results).experiment(name)
    try:
        search_settings = load_settings(experiment)
    except FileNotFoundError as exc:
        raise SearchStateError(
            f"{experiment}: the search's folder (its settings) is needed"
        ) from exc
    changes: dict[str, Any] = {"address": None, "cpus_per_trial": 1.0, "gpus_per_trial": 0.0}
    if settings.data is not None:
        changes["data"] = settings.data
    if settings.cache is not None:
        changes["cache"] = settings.cache
    return name, row, replace(search_settings, **changes)


def _no_tables(results: str) -> str:
    """What to say when `results` holds no searches: most often the storage folder was
    given for its `results` folder."""
    inside = StorageLayout(str(results)).results
    if len(load_searches(inside)):
        return (
            f"{results} holds no result tables, but {inside} does: give the tables' "
            f"folder, polarmap finalize {inside}"
        )
    return (
        f"{results}: no result tables (searches/, trials/ ...) here; give the folder a "
        "search wrote them to, STORAGE/results (search run prints it)"
    )


def check_finished(name: str, row: dict, trials: pd.DataFrame, results: str) -> None:
    """Winners come from a finished search: an interrupted one has trials cut off
    part-way, whose short runs would compete with finished ones."""
    cut = int((trials["status"] == TrialStatus.INTERRUPTED).sum())
    if row.get("status") not in (SearchStatus.RUNNING, SearchStatus.INTERRUPTED) and not cut:
        return
    experiment = StorageLayout.of_results(results).experiment(name)
    state = f"its searches row says {row.get('status')!r}" + (
        f", {cut} of its trials were cut off" if cut else ""
    )
    raise SearchStateError(
        f"search {name} has not finished ({state}); finalize picks winners among finished "
        f"trials only. If it is still running, wait for it; else go on with: polarmap "
        f"search resume {experiment}"
    )


def check_same_data(prepared: PreparedSearch, row: dict, search_settings: SearchSettings):
    data, test = prepared.dataset.fingerprint, prepared.split.test_fingerprint
    if row.get("data_fingerprint") and data != row["data_fingerprint"]:
        raise FinalizeError(
            f"{search_settings.data}: not the data set the search used (fingerprint "
            f"{data[:12]}, the search's {row['data_fingerprint'][:12]}); give --data"
        )
    if row.get("test_fingerprint") and test != row["test_fingerprint"]:
        raise FinalizeError("the test split differs from the search's: same seed and shares needed")
