"""The per-pair scheduler's routing, without a Ray run."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray
from packaging.requirements import Requirement
from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandScheduler, TrialScheduler, hyperband

from search.tuning.scheduler import (
    TESTED_RAY,
    PairHyperBand,
    PairScheduler,
    RayInternalsChanged,
    check_ray_internals,
)

ROOT = Path(__file__).resolve().parents[3]


class Recorder(TrialScheduler):
    """Records what it is told; runs the first pending trial it was given."""

    def __init__(self):
        super().__init__()
        self.added, self.ended = [], []

    def set_search_properties(self, metric, mode, **spec):
        return True

    def on_trial_add(self, tune_controller, trial):
        self.added.append(trial.trial_id)

    def on_trial_complete(self, tune_controller, trial, result):
        self.ended.append(trial.trial_id)

    def on_trial_result(self, tune_controller, trial, result):
        return TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller):
        return self.pending.pop(0) if getattr(self, "pending", None) else None


def trial(trial_id: str, pair: str, status: str = Trial.PENDING):
    return SimpleNamespace(trial_id=trial_id, config={"pair": pair}, status=status)


def test_each_pair_gets_only_its_own_trials():
    scheduler = PairScheduler(Recorder)
    for t in (trial("a1", "a/stress"), trial("b1", "b/stress"), trial("a2", "a/stress")):
        scheduler.on_trial_add(None, t)
    assert scheduler.pairs["a/stress"].added == ["a1", "a2"]
    assert scheduler.pairs["b/stress"].added == ["b1"]


def test_ended_trials_of_a_resumed_search_are_not_scheduled_again():
    scheduler = PairScheduler(Recorder)
    done = trial("a1", "a/stress", Trial.TERMINATED)
    failed = trial("a2", "a/stress", Trial.ERROR)
    paused = trial("a3", "a/stress", Trial.PENDING)  # a paused trial comes back pending
    for t in (done, failed, paused):
        scheduler.on_trial_add(None, t)
    assert scheduler.pairs["a/stress"].added == ["a3"]
    scheduler.on_trial_complete(None, done, {})  # events of unscheduled trials are ignored
    scheduler.on_trial_complete(None, paused, {})
    assert scheduler.pairs["a/stress"].ended == ["a3"]


def test_pairs_take_turns_choosing_the_next_trial():
    scheduler = PairScheduler(Recorder)
    a, b = trial("a1", "a/stress"), trial("b1", "b/stress")
    scheduler.on_trial_add(None, a)
    scheduler.on_trial_add(None, b)
    scheduler.pairs["a/stress"].pending = [a, trial("a2", "a/stress")]
    scheduler.pairs["b/stress"].pending = [b]
    chosen = [scheduler.choose_trial_to_run(None).trial_id for _ in range(3)]
    assert chosen == ["a1", "b1", "a2"]
    assert scheduler.choose_trial_to_run(None) is None


def test_a_trial_ray_restarts_after_a_failure_stays_where_it_was():
    scheduler = PairScheduler(Recorder)
    scheduler.pairs["a/stress"] = errors = Recorder()
    errors.errored = []
    errors.on_trial_error = lambda controller, t: errors.errored.append(t.trial_id)
    restarting = trial("a1", "a/stress")
    scheduler.on_trial_add(None, restarting)
    # Ray 2.60's order for a restart: the trial marked ERROR, the error, then re-added
    restarting.status, restarting.should_recover = Trial.ERROR, lambda: True
    scheduler.on_trial_error(None, restarting)
    restarting.status = Trial.PENDING
    scheduler.on_trial_add(None, restarting)
    assert errors.added == ["a1"] and errors.errored == []  # kept, not added twice
    # a final failure (no restart left) reaches the pair's scheduler as before
    final = trial("a2", "a/stress", Trial.RUNNING)
    final.should_recover = lambda: False
    scheduler.on_trial_add(None, final)
    scheduler.on_trial_error(None, final)
    assert errors.errored == ["a2"]


class HyperbandTrial:
    """As much of a Ray trial as HyperBand reads; hashed by identity, as Ray's are."""

    def __init__(self, trial_id: str, pair: str):
        self.trial_id, self.config, self.status = trial_id, {"pair": pair}, Trial.PENDING
        self.is_saving = False


class Controller:
    """What Ray's HyperBand asks of the tune controller: stopping a trial."""

    def __init__(self):
        self.stopped = []

    def stop_trial(self, t):
        self.stopped.append(t.trial_id)
        t.status = Trial.TERMINATED


def test_a_trial_ending_without_a_last_report_does_not_leave_its_bracket_paused():
    """A resumed search: trial c runs on to the full-budget bracket's last epoch and
    pauses there for a and b, which resume from checkpoints at their own last epoch and
    so end without reporting. Ray's HyperBand then finds the bracket finished on their
    removal and never processes it: c stayed paused for ever (the `search resume` hang)."""
    from ray.tune.schedulers import HyperBandScheduler

    scheduler = PairScheduler(lambda: HyperBandScheduler(time_attr="epoch", max_t=9))
    scheduler.set_search_properties("best_selection", "max")
    controller = Controller()
    c, a, b = (HyperbandTrial(i, "a/stress") for i in ("c", "a", "b"))  # the resume's order
    for t in (c, a, b):
        scheduler.on_trial_add(controller, t)
    c.status = Trial.RUNNING
    for epoch in range(5, 10):
        action = scheduler.on_trial_result(controller, c, {"epoch": epoch, "best_selection": 1})
    assert action == TrialScheduler.PAUSE  # at the last epoch, waiting for a and b
    c.status = Trial.PAUSED
    for ending in (a, b):  # each runs and ends at once, reporting nothing
        ending.status = Trial.RUNNING
        scheduler.on_trial_complete(controller, ending, {})
        ending.status = Trial.TERMINATED
    assert controller.stopped == ["c"]  # the finished bracket lets c end too


class HashableTrial:
    def __init__(self, trial_id: str):
        self.trial_id, self.config, self.status = trial_id, {"pair": "a/stress"}, Trial.PENDING


def test_a_pairs_hyperband_puts_all_its_trials_in_one_bracket_sized_for_them():
    scheduler = PairHyperBand(6, time_attr="epoch", max_t=27, reduction_factor=3)
    scheduler.set_search_properties("best_selection", "max")
    trials = [HashableTrial(f"a{i}") for i in range(6)]
    for t in trials:
        scheduler.on_trial_add(None, t)
    (band,) = scheduler._hyperbands
    (bracket,) = band
    assert bracket.current_trials() == trials
    assert (bracket._r, bracket._halves) == (9, 1)  # a rung at 9 epochs, then the end
    for score, t in enumerate(trials):  # all at the rung
        bracket.update_trial_stats(t, {"best_selection": score, "epoch": 9})
    good, bad = bracket.successive_halving("best_selection", 1.0)
    assert list(good) == trials[4:] and list(bad) == trials[:4]
    assert bracket._r == 27


def test_the_installed_ray_has_the_hyperband_internals_the_scheduler_relies_on():
    check_ray_internals()


def test_the_tested_ray_range_is_the_one_the_project_requires_and_installs():
    """TESTED_RAY (named in the guard's error) is pyproject.toml's ray requirement, and the
    installed Ray (constraints.txt's pin) is within it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (ray_requirement,) = (r for r in map(Requirement, project["dependencies"]) if r.name == "ray")
    assert str(ray_requirement.specifier) == str(Requirement(f"ray{TESTED_RAY}").specifier)
    assert ray_requirement.specifier.contains(ray.__version__)


class ReshapedBracket:
    """A _Bracket as a later Ray might have it: a parameter renamed."""

    def __init__(self, time_attr, max_trials, min_t, max_t_attr, eta, s, stop_last_trials=True):
        pass

    def finished(self):
        return False

    def cleanup_full(self, tune_controller):
        pass


def _without_get_n0(init):
    def reshaped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        del self._get_n0

    return reshaped


BREAKAGES = {
    "_Bracket is missing": lambda patch: patch.delattr(hyperband, "_Bracket"),
    "_Bracket(": lambda patch: patch.setattr(hyperband, "_Bracket", ReshapedBracket),
    "_Bracket.cleanup_full": lambda patch: patch.delattr(hyperband._Bracket, "cleanup_full"),
    "_create_bracket is missing": lambda patch: patch.delattr(
        HyperBandScheduler, "_create_bracket"
    ),
    "_create_bracket(self, s, band)": lambda patch: patch.setattr(
        HyperBandScheduler, "_create_bracket", lambda self, s, band: None
    ),
    "_get_n0 is missing": lambda patch: patch.setattr(
        HyperBandScheduler, "__init__", _without_get_n0(HyperBandScheduler.__init__)
    ),
}


@pytest.mark.parametrize("changed", BREAKAGES)
def test_a_changed_ray_internal_stops_the_scheduler_naming_it_and_the_ray_version(
    monkeypatch, changed
):
    """A Ray whose HyperBand internals changed fails when the scheduler is built, with an
    error naming what changed, the installed Ray and the Ray the project is tested with,
    rather than mid-search or by silently sizing brackets Ray's way."""
    BREAKAGES[changed](monkeypatch)
    for build in (
        lambda: PairHyperBand(6, time_attr="epoch", max_t=27, reduction_factor=3),
        lambda: PairScheduler(Recorder),
    ):
        with pytest.raises(RayInternalsChanged) as error:
            build()
        message = str(error.value)
        assert changed in message
        assert f"Ray {ray.__version__} changed" in message
        assert f"tested with ray{TESTED_RAY}" in message
