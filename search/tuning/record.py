"""The record a search writes beside Ray's state as it starts (`polarmap-search.json`):
its settings, its space and its searches row. `search resume` rebuilds the search from it,
`results ingest` the searches row, `finalize` the data and split. No Ray here."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from search.data import SplitSpec
from search.errors import SearchStateError
from search.files import join_location, open_location, read_file, write_file
from search.layout import SEARCH_RECORD
from search.provenance import provenance
from search.tuning.settings import SearchSettings
from spaces import get_space

__all__ = ["SETTINGS_FILE", "load_search_row", "load_settings", "write_settings"]

SETTINGS_FILE = SEARCH_RECORD


def write_settings(settings: SearchSettings, path: str, search_row: dict[str, Any]) -> None:
    """What `polarmap search resume` needs to rebuild the search, beside Ray's state, and
    the searches row as it started (for `polarmap results ingest`)."""
    record = {
        "search_row": {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in search_row.items()
        },
        "settings": asdict(replace(settings, space=None)),
        "space": asdict(settings.space),
        "space_name": settings.space.name,
        "space_digest": settings.space.digest(),
        "provenance": provenance(),
    }
    fs, root = open_location(path)
    write_file(fs, f"{root}/{SETTINGS_FILE}", json.dumps(record, indent=2, default=str))


def load_search_row(experiment: str | Path) -> dict[str, Any] | None:
    """The searches row as the search wrote it when it started (times as ISO text); None
    when the folder has no record, or one written by a version that did not keep it."""
    import pyarrow.fs as pafs

    fs, path = open_location(join_location(str(experiment), SETTINGS_FILE))
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    return json.loads(read_file(fs, path)).get("search_row")


def load_settings(experiment: str | Path) -> SearchSettings:
    """The settings a search was started with, from its folder (for `search resume`)."""
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
    values["space"] = space
    values["data"] = Path(values["data"])
    values["cache"] = Path(values["cache"]) if values.get("cache") else None
    values["split"] = SplitSpec(**values["split"])
    return SearchSettings(**values)


def _read_record(experiment: str | Path) -> dict[str, Any]:
    fs, path = open_location(join_location(str(experiment), SETTINGS_FILE))
    return json.loads(read_file(fs, path))
