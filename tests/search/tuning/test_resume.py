"""Mending a search's saved state before a resume, without Ray: a start that Ray never
saved readably is thrown away, so the search starts anew instead of Ray restarting it
with a searcher that believes it made every trial already; state files a kill cut short
are restored from the searcher's own copy, or rebuilt."""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from ray import cloudpickle

from results.store import ResultStore
from search.errors import SearchStateError
from search.tuning import SearchSettings
from search.tuning.resume import clear_unsaved_start, mend_saved_state
from search.tuning.searcher import PairSearcher
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


S0, S1 = "2026-01-01_00-00-00", "2026-01-02_00-00-00"  # a run and its resume


def draw(trial, backbone, mode):
    return {"a": trial.suggest_float("a", 3.0, 4.0)}


def saved_search(tmp_path: Path, sessions=(S0,)) -> tuple[SearchSettings, Path]:
    """A search folder as Ray leaves it after each of `sessions` saved, without running
    Ray: three trials made, six to make; per session its counter, its searcher state and
    our copy, saved as Ray saves (the counter first here: the copy takes the newest)."""
    space = replace(get_space("tiny"), backbones=("good",), modes=("stress",), samples=6)
    settings = SearchSettings(space=space, data=tmp_path, name="s", storage=str(tmp_path))
    folder = Path(settings.experiment)
    folder.mkdir(parents=True)
    trials = [{"trial_id": t, "status": "PAUSED", "config": {"pair": "good/stress"}} for t in "abc"]
    state = {"trial_data": [[json.dumps(trial), "{}"] for trial in trials]}
    (folder / f"experiment_state-{sessions[-1]}.json").write_text(json.dumps(state))
    searcher = PairSearcher(settings.pairs, 6, draw, "best", "max", max_epochs=9)
    for trial_id in "abc":
        searcher.suggest(trial_id)
    for session in sessions:
        counter = {"counter": 3, "total_samples": 6, "finished": False, "experiment": None}
        (folder / f"search_gen_state-{session}.json").write_bytes(cloudpickle.dumps(counter))
        temporary = folder / f".x-tmp-searcher-state-{session}.pkl"
        searcher.save(str(temporary))
        temporary.replace(folder / f"searcher-state-{session}.pkl")
    return settings, folder


def mend(settings: SearchSettings, tmp_path: Path, capsys) -> str:
    """Mend the saved state; what it said, as the command line shows it."""
    mend_saved_state(settings, ResultStore(tmp_path / "results"))
    return capsys.readouterr().err


def searcher_state(folder: Path, session=S0) -> dict:
    return pickle.loads((folder / f"searcher-state-{session}.pkl").read_bytes())


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [cut_short, lambda path: path.write_bytes(b"")])
def test_a_damaged_searcher_state_is_restored_from_its_copy(tmp_path, capsys, damage):
    settings, folder = saved_search(tmp_path)
    damage(folder / f"searcher-state-{S0}.pkl")
    said = mend(settings, tmp_path, capsys)
    assert f"warning: the searcher's saved state searcher-state-{S0}.pkl was " in said
    assert said.endswith("; restored from its copy\n") and said.count("\n") == 1
    state = searcher_state(folder)
    assert state["remaining"] == {"good/stress": 3} and set(state["_live"]) == set("abc")


def test_a_missing_searcher_state_beside_rays_counter_is_restored(tmp_path, capsys):
    settings, folder = saved_search(tmp_path)
    (folder / f"searcher-state-{S0}.pkl").unlink()  # the kill came before Ray copied it
    assert "was missing; restored from its copy" in mend(settings, tmp_path, capsys)
    assert set(searcher_state(folder)["_live"]) == set("abc")


def test_without_a_whole_copy_an_earlier_runs_state_is_taken(tmp_path, capsys):
    settings, folder = saved_search(tmp_path, sessions=(S0, S1))
    cut_short(folder / f"searcher-state-{S1}.pkl")
    cut_short(folder / f"polarmap-searcher-{S1}.pkl")
    assert f"restored from its copy of the run of {S0}" in mend(settings, tmp_path, capsys)
    assert searcher_state(folder, S1)["remaining"] == {"good/stress": 3}


def test_with_nothing_readable_left_the_searcher_is_rebuilt_from_rays_trials(tmp_path, capsys):
    settings, folder = saved_search(tmp_path)
    (folder / f"searcher-state-{S0}.pkl").write_bytes(b"\x80\x05garbage")
    cut_short(folder / f"polarmap-searcher-{S0}.pkl")
    assert "rebuilt from the 3 trials Ray saved" in mend(settings, tmp_path, capsys)
    state = searcher_state(folder)
    assert state["remaining"] == {"good/stress": 3} and state["_live"] == {}


def test_a_damaged_counter_is_restored_from_the_copy_and_set_to_rays_trials(tmp_path, capsys):
    settings, folder = saved_search(tmp_path)
    counter = folder / f"search_gen_state-{S0}.json"
    counter.write_bytes(b"")
    assert "trial counter" in mend(settings, tmp_path, capsys)
    assert cloudpickle.loads(counter.read_bytes())["counter"] == 3


def test_a_damaged_counter_with_no_copy_left_is_a_search_state_error(tmp_path, capsys):
    settings, folder = saved_search(tmp_path)
    cut_short(folder / f"search_gen_state-{S0}.json")
    (folder / f"polarmap-searcher-{S0}.pkl").unlink()
    with pytest.raises(SearchStateError, match="run the search again under a new --name"):
        mend(settings, tmp_path, capsys)


def test_a_checkpoint_an_interruption_already_deleted_is_passed_over(tmp_path, caplog):
    """A driver killed while Ray deleted a trial's older checkpoint leaves a state that
    still lists it; on resume, Ray's next save tried to delete it again and stopped half
    way with a FileNotFoundError traceback ("Error handling checkpoint"), skipping the
    trial's own bookkeeping after it. The newest checkpoint is the one kept and used."""
    from ray.train import Checkpoint, CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult

    from search.tuning.runner import tolerate_deleted_checkpoints

    tolerate_deleted_checkpoints()
    manager = _CheckpointManager(CheckpointConfig(num_to_keep=2))
    results = []
    for epoch in range(1, 5):
        folder = tmp_path / f"checkpoint_{epoch:06d}"
        folder.mkdir()
        results.append(_TrainingResult(Checkpoint.from_directory(str(folder)), {"epoch": epoch}))
    shutil.rmtree(tmp_path / "checkpoint_000001")  # deleted before the kill
    for result in results:
        manager.register_checkpoint(result)
    assert manager.latest_checkpoint_result is results[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_000003", "checkpoint_000004"]
    assert "Traceback" not in caplog.text


def test_a_newest_experiment_state_cut_short_is_set_aside_for_the_one_before(tmp_path, capsys):
    """Ray restores the newest experiment_state-*.json by name: one cut short by a kill
    while Ray copied it (or a full disk) made the resume fail, though the one before it
    was whole. It is renamed aside, so Ray reads the whole one."""
    settings, folder = saved_search(tmp_path, sessions=(S0, S1))
    whole = folder / f"experiment_state-{S1}.json"
    whole.rename(folder / f"experiment_state-{S0}.json")
    torn = folder / f"experiment_state-{S1}.json"
    torn.write_text('{"trial_data": [["{\\"trial_id')
    said = mend(settings, tmp_path, capsys)
    assert "newest saved state (experiment_state-" in said and "the one before it is used" in said
    assert not torn.exists() and torn.with_name(torn.name + ".damaged").exists()
    assert (folder / f"experiment_state-{S0}.json").exists()
