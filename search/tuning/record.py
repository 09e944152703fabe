"""The record a search writes beside Ray's state as it starts (`polarmap-search.json`):
its settings, its space and its searches row. `search resume` rebuilds the search from it,
`results ingest` the searches row, `finalize` the data and split. No Ray here."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from search.data import Dataset, SplitSpec
from search.data.changes import data_changes, patient_summary
from search.errors import SearchStateError
from search.files import (
    create_file,
    join_location,
    open_location,
    parent_location,
    read_file,
    write_file,
)
from search.layout import SEARCH_RECORD, StorageLayout
from search.provenance import provenance
from search.tuning.settings import SearchSettings
from spaces import get_space

__all__ = [
    "SETTINGS_FILE",
    "check_same_data",
    "load_search_row",
    "load_settings",
    "write_settings",
]

SETTINGS_FILE = SEARCH_RECORD


def write_settings(
    settings: SearchSettings,
    path: str,
    search_row: dict[str, Any],
    dataset: Dataset | None = None,
    new: bool = False,
) -> None:
    """What `polarmap search resume` needs to rebuild the search, beside Ray's state: its
    settings, the searches row as it started (for `polarmap results ingest`) and each
    patient's label and images' digest (a resume refuses data that changed).

    With `new`, the record claims the search's name: when a record is already there (a
    search of that name, or another driver starting one at this moment) nothing is
    written and SearchStateError says so."""
    record = {
        "search_row": {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in search_row.items()
        },
        "settings": asdict(replace(settings, space=None)),
        "space": asdict(settings.space),
        "space_name": settings.space.name,
        "space_digest": settings.space.digest(),
        "provenance": provenance(),
        "patients": patient_summary(dataset) if dataset is not None else None,
    }
    fs, root = open_location(path)
    text = json.dumps(record, indent=2, default=str)
    if not new:
        write_file(fs, f"{root}/{SETTINGS_FILE}", text)
    elif not create_file(fs, f"{root}/{SETTINGS_FILE}", text):
        raise SearchStateError(taken_name(settings))


def taken_name(settings: SearchSettings, status: str | None = None) -> str:
    """Why a new search cannot have `settings.name` (a search of that name is `status`,
    when known), and what to do instead."""
    state = f" ({status})" if status else ""
    return (
        f"a search named {settings.name!r} already exists in {settings.storage}{state}: go "
        f"on with it (polarmap search resume {settings.experiment}), or choose another --name"
    )


def load_search_row(experiment: str | Path) -> dict[str, Any] | None:
    """The searches row as the search wrote it when it started (times as ISO text); None
    when the folder has no record, or one written by a version that did not keep it."""
    import pyarrow.fs as pafs

    fs, path = open_location(join_location(str(experiment), SETTINGS_FILE))
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    return json.loads(read_file(fs, path)).get("search_row")


def load_settings(experiment: str | Path) -> SearchSettings:
    """The settings a search was started with, from its folder (for `search resume` and
    finalize), with the storage the folder is in now: a folder moved or copied elsewhere
    resumes there, from any working directory, whatever storage it was started in."""
    record = _read_record(experiment)
    stored = record["space"]
    space = replace(
        get_space(record["space_name"]),
        backbones=tuple(stored["backbones"]),
        modes=tuple(stored["modes"]),
        warmup_epochs=stored["warmup_epochs"],
        finetune_epochs=stored["finetune_epochs"],
        samples=stored["samples"],
        pretrained=stored["pretrained"],
    )
    if space.digest() != record["space_digest"]:
        raise SearchStateError(
            f"space {space.name!r} has changed since the search started; resume it with the "
            "version of polarmap-search that started it"
        )
    values = record["settings"]
    folder = _folder_name(experiment)
    if folder != values["name"]:
        raise SearchStateError(
            f"{experiment}: this folder holds search {values['name']!r}, whose name is its "
            f"folder's and its rows' in the result tables; rename the folder back to "
            f"{values['name']!r} to go on with it"
        )
    values["space"] = space
    values["storage"] = StorageLayout.of(parent_location(str(experiment))).storage
    values["data"] = Path(values["data"])
    values["cache"] = Path(values["cache"]) if values.get("cache") else None
    values["split"] = SplitSpec(**values["split"])
    return SearchSettings(**values)


def check_same_data(
    experiment: str | Path, dataset: Dataset | None, test_fingerprint: str | None
) -> None:
    """Refuse to go on with the search in `experiment` when its data set, or the test
    patients its split holds out, differ from those it started with, naming what
    changed: trials on other data are not comparable, and a test set that moved would be
    one the search has seen."""
    record = _read_record(experiment)
    started = record.get("search_row") or {}
    changes: list[str] = []
    fingerprint = started.get("data_fingerprint")
    if dataset is not None and fingerprint and fingerprint != dataset.fingerprint:
        before = record.get("patients")
        changes = data_changes(before, patient_summary(dataset)) if before else []
        changes = changes or ["its fingerprint differs: patients, labels or images"]
    held_out = started.get("test_fingerprint")
    if not changes and held_out and test_fingerprint and held_out != test_fingerprint:
        changes = ["the split holds out other test patients"]
    if changes:
        name = record["settings"]["name"]
        raise SearchStateError(
            f"the data set has changed since search {name!r} started: "
            + "; ".join(changes)
            + ". A search's trials must all see the same patients: resume it with the data "
            "as it was (--data PATH, if it moved), or start a new search on this data with "
            "polarmap search run and another --name"
        )


def _folder_name(experiment: str | Path) -> str:
    base = str(experiment).partition("?")[0].rstrip("/")
    return base.rsplit("/", 1)[-1]


def _read_record(experiment: str | Path) -> dict[str, Any]:
    """The record, or SearchStateError saying why there is none to read."""
    import pyarrow.fs as pafs

    fs, path = open_location(join_location(str(experiment), SETTINGS_FILE))
    if fs.get_file_info(path).type != pafs.FileType.File:
        folder = open_location(str(experiment))[1]
        if fs.get_file_info(folder).type != pafs.FileType.Directory:
            raise SearchStateError(f"{experiment}: no search there (no such folder)")
        raise SearchStateError(
            f"{experiment}: the search was stopped before it saved its settings, so there is "
            f"nothing to resume; start it again (polarmap search run ... --name "
            f"{_folder_name(experiment)})"
        )
    try:
        return json.loads(read_file(fs, path))
    except (OSError, ValueError) as exc:
        raise SearchStateError(f"{path}: damaged, not the record of a search ({exc})") from exc
