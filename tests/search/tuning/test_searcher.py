"""The per-pair Optuna searcher without a Ray run: pairs in turn, trials stopped early
told as pruned, its state saved and restored."""

from __future__ import annotations

import optuna
from ray.tune.search import Searcher

from search.tuning.searcher import PairSearcher

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
