"""Where things live: a search's storage layout and the default cache folders.

One place spells these paths, so the search, `results ingest`, `finalize` and the demo
agree on them and a reader can find every output from one page:

    STORAGE/                 --storage: a folder, or a URI such as s3://bucket/runs
      NAME/                  one search: Ray's experiment folder and its record file
        polarmap-search.json the settings, space and searches row it started with
        tensorboard/         every trial's curves, for `tensorboard --logdir STORAGE/NAME`
        optuna.journal       each pair's Optuna study, for `optuna-dashboard`
      results/               the Parquet result tables of every search in STORAGE
      finals/NAME/           the finalized models and report of search NAME

The caches are per machine (cleaned maps, frozen work, downloaded weights), all under one
root, $POLARMAP_CACHE, else $XDG_CACHE_HOME/polarmap, else ~/.cache/polarmap: `maps`,
`frozen` and `weights`, unless $POLARMAP_FROZEN or $POLARMAP_WEIGHTS_CACHE name other
folders (a command's --cache, another maps folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search.files import join_location, parent_location

__all__ = [
    "SEARCH_RECORD",
    "StorageLayout",
    "cache_root",
    "frozen_store_dir",
    "map_cache_dir",
    "weights_cache_dir",
]

SEARCH_RECORD = "polarmap-search.json"  # what a search writes beside Ray's state as it starts
RESULTS = "results"
FINALS = "finals"


@dataclass(frozen=True)
class StorageLayout:
    """The folders under one storage root (a local folder or a URI)."""

    storage: str

    @classmethod
    def of(cls, storage: str | os.PathLike[str]) -> StorageLayout:
        """The layout under `storage`: a URI as given, a local folder made absolute (Ray
        needs one)."""
        storage = str(storage)
        if "://" in storage:
            return cls(storage)
        return cls(str(Path(storage).expanduser().resolve()))

    @classmethod
    def of_results(cls, results: str | os.PathLike[str]) -> StorageLayout:
        """The layout whose result tables are `results` (STORAGE/results)."""
        return cls(parent_location(results))

    @classmethod
    def of_experiment(cls, experiment: str | os.PathLike[str]) -> StorageLayout:
        """The layout holding the search folder `experiment` (STORAGE/NAME)."""
        return cls(parent_location(experiment))

    def experiment(self, search: str) -> str:
        """STORAGE/NAME, with a URI's query string (such as ?endpoint_override=...) last."""
        return join_location(self.storage, search)

    def record(self, search: str) -> str:
        """The search's record file, STORAGE/NAME/polarmap-search.json."""
        return join_location(self.experiment(search), SEARCH_RECORD)

    @property
    def results(self) -> str:
        """STORAGE/results: the result tables, beside the searches' own folders."""
        return join_location(self.storage, RESULTS)

    def finals(self, search: str) -> Path:
        """Where finalize writes models and the report: STORAGE/finals/NAME when the
        storage is on this machine; ./finals/NAME when it is on object storage, as models
        and the report are local files a reader opens."""
        return self.finals_root / search

    @property
    def finals_root(self) -> Path:
        """The folder of every search's finals: STORAGE/finals, or ./finals for a storage
        on object storage (`finals`)."""
        if "://" in self.storage:
            return Path(FINALS)
        return Path(join_location(self.storage, FINALS))


def cache_root() -> Path:
    """Where every cache lives: $POLARMAP_CACHE, else $XDG_CACHE_HOME/polarmap, else
    ~/.cache/polarmap."""
    if os.environ.get("POLARMAP_CACHE"):
        return Path(os.environ["POLARMAP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "polarmap"


def map_cache_dir() -> Path:
    """`maps` under the cache root (a command's --cache names another folder)."""
    return cache_root() / "maps"


def frozen_store_dir() -> Path:
    """$POLARMAP_FROZEN, else `frozen` under the cache root."""
    if os.environ.get("POLARMAP_FROZEN"):
        return Path(os.environ["POLARMAP_FROZEN"])
    return cache_root() / "frozen"


def weights_cache_dir() -> Path:
    """$POLARMAP_WEIGHTS_CACHE, else `weights` under the cache root."""
    if os.environ.get("POLARMAP_WEIGHTS_CACHE"):
        return Path(os.environ["POLARMAP_WEIGHTS_CACHE"])
    return cache_root() / "weights"
