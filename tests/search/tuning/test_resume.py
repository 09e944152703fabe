"""Mending a search's saved state before a resume, without Ray: a start that Ray never
saved readably is thrown away, so the search starts anew instead of Ray restarting it
with a searcher that believes it made every trial already."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from results.store import ResultStore
from search.tuning import SearchSettings
from search.tuning.resume import clear_unsaved_start
from spaces import get_space


def killed_start(tmp_path: Path, state: str) -> SearchSettings:
    """A search folder as a kill during Ray's first save leaves it: our record, Ray's
    experiment state (`state`: its text), the searcher's state and a trial folder."""
    space = replace(get_space("tiny"), backbones=("good",), modes=("stress",))
    settings = SearchSettings(space=space, data=tmp_path, name="s", storage=str(tmp_path))
    folder = Path(settings.experiment)
    (folder / "stub_trainable_aaaa_1").mkdir(parents=True)
    (folder / "stub_trainable_aaaa_1" / "params.json").write_text("{}")
    (folder / "polarmap-search.json").write_text("{}")
    (folder / "experiment_state-2026-01-01_00-00-00.json").write_text(state)
    (folder / "searcher-state-2026-01-01_00-00-00.pkl").write_bytes(b"made six")
    return settings


def test_a_start_ray_never_saved_readably_is_cleared_for_a_new_one(tmp_path):
    settings = killed_start(tmp_path, "")  # the kill cut Ray's only state file short
    store = ResultStore(tmp_path / "results")
    assert clear_unsaved_start(settings, store)
    assert [p.name for p in Path(settings.experiment).iterdir()] == ["polarmap-search.json"]


def test_a_readable_state_is_resumed_as_it_is(tmp_path):
    trial = json.dumps({"trial_id": "aaaa", "status": "PAUSED", "config": {"pair": "good/stress"}})
    settings = killed_start(tmp_path, json.dumps({"trial_data": [[trial, "{}"]]}))
    assert not clear_unsaved_start(settings, ResultStore(tmp_path / "results"))
    assert len(list(Path(settings.experiment).iterdir())) == 4
