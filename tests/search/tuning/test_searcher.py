"""The per-pair Optuna searcher without a Ray run: pairs in turn, trials stopped early
told as pruned, its state saved and restored, with its own copy; a state rebuilt from
the trials Ray saved."""

from __future__ import annotations

import pickle

import optuna
from ray.tune.search import Searcher

from search.tuning.searcher import PairSearcher, read_copy

State = optuna.trial.TrialState


def draw(trial, backbone, mode):
    return {"a": trial.suggest_float("a", 3.0, 4.0), "backbone": backbone, "mode": mode}


def searcher(samples=2) -> PairSearcher:
    return PairSearcher(["r18/stress", "r18/dual"], samples, draw, "best", "max", max_epochs=9)


def test_pairs_take_turns_until_each_has_its_samples():
    s = searcher()
    configs = [s.suggest(f"t{i}") for i in range(4)]
    assert [c["pair"] for c in configs] == ["r18/stress", "r18/dual"] * 2
    assert all(3.0 <= c["a"] <= 4.0 and c["backbone"] == "r18" for c in configs)
    assert s.suggest("t4") == Searcher.FINISHED


def test_finished_stopped_and_failed_trials_reach_optuna_as_such():
    s = searcher(samples=3)
    ids = [f"t{i}" for i in range(6)]
    for trial_id in ids:
        s.suggest(trial_id)
    s.on_trial_complete("t0", {"best": 0.8, "epoch": 9})  # ran its whole budget
    s.on_trial_result("t2", {"best": 0.5, "epoch": 3})
    s.on_trial_complete("t2", {"best": 0.5, "epoch": 3})  # stopped by Hyperband at 3
    s.on_trial_complete("t4", None, error=True)
    study = s.studies["r18/stress"]
    states = [t.state for t in study.trials]
    assert states == [State.COMPLETE, State.PRUNED, State.FAIL]
    assert study.trials[0].value == 0.8
    assert study.trials[1].intermediate_values == {3: 0.5}
    assert all(t.state == State.RUNNING for t in s.studies["r18/dual"].trials)


def test_state_survives_save_and_restore(tmp_path):
    s = searcher()
    s.suggest("t0")
    s.suggest("t1")
    s.save(str(tmp_path / "state.pkl"))
    fresh = searcher()
    fresh.restore(str(tmp_path / "state.pkl"))
    assert fresh.remaining == {"r18/stress": 1, "r18/dual": 1}
    fresh.on_trial_complete("t0", {"best": 0.7, "epoch": 9})  # a trial from before
    assert fresh.studies["r18/stress"].trials[0].state == State.COMPLETE
    assert fresh.suggest("t2")["pair"] == "r18/stress"


def ray_save(s: PairSearcher, folder, session="2026-01-01_00-00-00"):
    """Save as Ray does: under a temporary name, then renamed to searcher-state-SESSION."""
    temporary = folder / f".0a1b-tmp-searcher-state-{session}.pkl"
    s.save(str(temporary))
    return temporary.replace(folder / f"searcher-state-{session}.pkl")


def test_each_save_leaves_a_copy_that_tells_whole_from_torn(tmp_path):
    (tmp_path / "search_gen_state-2026-01-01_00-00-00.json").write_bytes(b"counter: 1")
    s = searcher()
    s.suggest("t0")
    saved = ray_save(s, tmp_path)
    copy = tmp_path / "polarmap-searcher-2026-01-01_00-00-00.pkl"
    assert read_copy(copy.read_bytes()) == (saved.read_bytes(), b"counter: 1")
    whole = copy.read_bytes()
    assert read_copy(whole[: len(whole) // 2]) is None  # cut short
    assert read_copy(b"") is None
    assert read_copy(whole[:-1] + bytes([whole[-1] ^ 1])) is None  # one bit changed
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_a_rebuilt_state_counts_the_trials_made_and_draws_anew(tmp_path):
    made = {"r18/stress": {"t0"}, "r18/dual": {"t1", "t2"}}
    state = PairSearcher.rebuilt_state(["r18/stress", "r18/dual"], made, samples=2)
    assert not PairSearcher.reconcile(state, made, 2)  # already set to the trials made
    (tmp_path / "state.pkl").write_bytes(pickle.dumps(state))
    restored = searcher()
    restored.restore(str(tmp_path / "state.pkl"))
    config = restored.suggest("t3")
    assert config["pair"] == "r18/stress" and restored.suggest("t4") == Searcher.FINISHED
    assert config["a"] != searcher().suggest("t0")["a"]  # not the first trial's draw again
    restored.on_trial_complete("t3", {"best": 0.7, "epoch": 9})
    assert restored.studies["r18/stress"].trials[0].state == State.COMPLETE
