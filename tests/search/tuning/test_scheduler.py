"""The per-pair scheduler's routing, without a Ray run."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from search.tuning.scheduler import PairHyperBand, PairScheduler


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
