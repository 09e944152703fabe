"""Where things live: the storage layout of searches and the default cache folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.data.map_cache import MapCache
from search.layout import (
    StorageLayout,
    frozen_store_dir,
    map_cache_dir,
    weights_cache_dir,
)
from trainables.frozen_store import FrozenWorkStore


def test_a_local_storage_holds_searches_results_and_finals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layout = StorageLayout.of("runs")
    assert layout.storage == str(tmp_path / "runs")  # absolute: Ray needs it
    assert layout.experiment("s1") == str(tmp_path / "runs" / "s1")
    assert layout.record("s1") == str(tmp_path / "runs" / "s1" / "polarmap-search.json")
    assert layout.results == str(tmp_path / "runs" / "results")
    assert layout.finals("s1") == tmp_path / "runs" / "finals" / "s1"


def test_a_uri_keeps_its_query_last_and_finals_stay_on_this_machine():
    layout = StorageLayout.of("s3://bucket/runs?endpoint_override=localhost:9000")
    assert layout.experiment("s1") == "s3://bucket/runs/s1?endpoint_override=localhost:9000"
    assert layout.results == "s3://bucket/runs/results?endpoint_override=localhost:9000"
    assert layout.finals("s1") == Path("finals") / "s1"


@pytest.mark.parametrize(
    "storage", ["runs", "/data/runs", "s3://bucket/runs?endpoint_override=localhost:9000"]
)
def test_the_layout_is_found_again_from_its_results_or_a_search_folder(storage):
    layout = StorageLayout(storage)
    assert StorageLayout.of_results(layout.results) == layout
    assert StorageLayout.of_experiment(layout.experiment("s1")) == layout


def test_every_cache_lives_under_polarmap_cache(monkeypatch, tmp_path):
    """$POLARMAP_CACHE names the root of every cache: maps, frozen work and weights under
    it (the frozen work used to land beside it, outside a shared cache folder)."""
    monkeypatch.setenv("POLARMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POLARMAP_FROZEN", raising=False)
    monkeypatch.delenv("POLARMAP_WEIGHTS_CACHE", raising=False)
    assert map_cache_dir() == tmp_path / "cache" / "maps"
    assert frozen_store_dir() == tmp_path / "cache" / "frozen"
    assert weights_cache_dir() == tmp_path / "cache" / "weights"
    assert FrozenWorkStore().root == tmp_path / "cache" / "frozen"
    monkeypatch.setenv("POLARMAP_FROZEN", str(tmp_path / "f"))
    monkeypatch.setenv("POLARMAP_WEIGHTS_CACHE", str(tmp_path / "w"))
    assert (frozen_store_dir(), weights_cache_dir()) == (tmp_path / "f", tmp_path / "w")


def test_map_cache_dir_prefers_polarmap_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("POLARMAP_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert map_cache_dir() == tmp_path / "mine" / "maps"
    assert MapCache().root == tmp_path / "mine" / "maps"


@pytest.mark.parametrize("polarmap_cache", [None, ""])
def test_map_cache_dir_falls_back_to_xdg_cache_home(monkeypatch, tmp_path, polarmap_cache):
    if polarmap_cache is None:
        monkeypatch.delenv("POLARMAP_CACHE", raising=False)
    else:
        monkeypatch.setenv("POLARMAP_CACHE", polarmap_cache)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert map_cache_dir() == tmp_path / "xdg" / "polarmap" / "maps"


@pytest.mark.parametrize("xdg", [None, ""])
def test_map_cache_dir_falls_back_to_home(monkeypatch, tmp_path, xdg):
    monkeypatch.delenv("POLARMAP_CACHE", raising=False)
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert map_cache_dir() == tmp_path / "home" / ".cache" / "polarmap" / "maps"
