"""One trial scheduler per (backbone, input mode) pair, behind the one scheduler Ray takes.

A Hyperband that sees every trial of a search would stop a trial of a weak backbone
because a strong backbone's trials score higher, so no backbone would get a fair search.
Here each pair has its own Hyperband (or ASHA) with its own brackets: a trial is only ever
compared with trials of its own pair, and the pairs still share one Ray cluster, so given
capacity trials of several pairs run at the same time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandScheduler, TrialScheduler
from ray.tune.schedulers import hyperband as ray_hyperband

from search.errors import PolarmapError
from search.tuning.settings import pair_brackets
from trainables.config import PAIR_KEY  # the config entry naming a trial's pair

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.schedulers.hyperband import _Bracket

__all__ = [
    "TESTED_RAY",
    "PairHyperBand",
    "PairScheduler",
    "RayInternalsChanged",
    "check_ray_internals",
]

# The Ray releases this module was tested with: the same range as the ray requirement in
# pyproject.toml (a test keeps the two equal), and constraints.txt's pin is within it.
TESTED_RAY = ">=2.60,<2.61"

# What PairHyperBand passes to Ray's private _Bracket (see its _create_bracket).
_BRACKET_ARGS = (
    "time_attr", "max_trials", "init_t_attr", "max_t_attr", "eta", "s", "stop_last_trials",
)  # fmt: skip
# The attributes of a HyperBandScheduler that PairHyperBand reads or replaces.
_SCHEDULER_ATTRS = ("_time_attr", "_max_t_attr", "_eta", "_stop_last_trials", "_s_max_1")


class RayInternalsChanged(PolarmapError, RuntimeError):
    """The installed Ray no longer has the HyperBand internals this module relies on: the
    installation to fix, exit status 1."""

    exit_status = 1


def check_ray_internals() -> None:
    """Check that Ray's HyperBand still has the private parts this module overrides or
    calls, and raise `RayInternalsChanged` naming each one that changed, and the Ray
    version, if not.

    Ray has no public way to size a HyperBand's brackets, so `PairHyperBand` replaces
    HyperBandScheduler's `_create_bracket`, `_get_n0`, `_get_r0` and `_s_max_1` and builds
    `_Bracket`s itself, and `PairScheduler` sweeps the `_hyperbands`' finished brackets
    (`_Bracket.finished`, `cleanup_full`). A Ray release may rename or reshape any of them
    without notice; this fails when the scheduler is built instead of mid-search (an
    AttributeError deep in Ray, or an override Ray no longer calls, so brackets silently
    return to Ray's sizes). Cheap: signatures and one throwaway HyperBandScheduler."""
    problems = []

    bracket = getattr(ray_hyperband, "_Bracket", None)
    if not inspect.isclass(bracket):
        problems.append("ray.tune.schedulers.hyperband._Bracket is missing")
    else:
        if not _accepts(bracket, **dict.fromkeys(_BRACKET_ARGS, 1)):
            problems.append(f"_Bracket{_signature(bracket)} no longer takes {_BRACKET_ARGS}")
        for method in ("finished", "cleanup_full"):
            if not callable(getattr(bracket, method, None)):
                problems.append(f"_Bracket.{method} is missing")

    create = getattr(HyperBandScheduler, "_create_bracket", None)
    if not callable(create):
        problems.append("HyperBandScheduler._create_bracket is missing")
    elif not _accepts(create, None, 0):
        problems.append(f"HyperBandScheduler._create_bracket{_signature(create)} is not (self, s)")

    try:
        probe = HyperBandScheduler(time_attr="epoch", max_t=9, reduction_factor=3)
    except Exception as error:  # reported with the rest
        problems.append(f"HyperBandScheduler(time_attr, max_t, reduction_factor) fails: {error}")
    else:
        for name in ("_get_n0", "_get_r0"):
            get = getattr(probe, name, None)
            if not callable(get):
                problems.append(f"HyperBandScheduler().{name} is missing")
            elif not _accepts(get, 0):
                problems.append(f"HyperBandScheduler().{name}{_signature(get)} is not (s)")
        problems += [
            f"HyperBandScheduler().{name} is missing"
            for name in (*_SCHEDULER_ATTRS, "_hyperbands")
            if not hasattr(probe, name)
        ]

    problems += _runner_internals_problems()
    if problems:
        raise RayInternalsChanged(
            "polarmap-search's scheduler and runner (search/tuning/scheduler.py, runner.py) "
            f"rely on Ray internals that Ray {ray.__version__} changed: "
            + "; ".join(problems)
            + f". It is tested with ray{TESTED_RAY} (pyproject.toml; constraints.txt pins it): "
            "install that, or port PairHyperBand and PairScheduler to this Ray."
        )


def _runner_internals_problems() -> list[str]:
    """What the runner uses of Ray's private parts: the function a checkpoint manager
    deletes older checkpoints with (`tolerate_deleted_checkpoints`), and a restored
    Tuner's run config (`_use_callbacks`)."""
    from ray.train._internal import checkpoint_manager
    from ray.tune.impl.tuner_internal import TunerInternal

    problems = []
    delete = getattr(checkpoint_manager, "_delete_fs_path", None)
    if not callable(delete) or not _accepts(delete, None, ""):
        problems.append("ray.train._internal.checkpoint_manager._delete_fs_path(fs, fs_path)")
    if not callable(getattr(TunerInternal, "get_run_config", None)):
        problems.append("TunerInternal.get_run_config is missing")
    if "_local_tuner" not in getattr(tune.Tuner, "__annotations__", {}):
        problems.append("Tuner._local_tuner is missing")
    return problems


def _accepts(function: Callable, *args, **kwargs) -> bool:
    """Whether `function` can be called with these arguments (by its signature)."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    return True


def _signature(function: Callable) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return "(?)"


class PairScheduler(TrialScheduler):
    """Routes every trial event to the scheduler of the trial's pair (made on first use
    by `make`). Which trial runs next is asked of the pairs in turn, so no pair waits for
    another's brackets."""

    def __init__(self, make: Callable[[], TrialScheduler]):
        check_ray_internals()  # before the search starts, not at its first trial
        super().__init__()
        self._make = make
        self._metric: str | None = None
        self._mode: str | None = None
        self.pairs: dict[str, TrialScheduler] = {}
        self._scheduled: set[str] = set()  # ids of the trials handed to a pair's scheduler
        self._recovering: set[str] = set()  # failed trials Ray restarts from a checkpoint
        self._sweeping = False
        self._turn = 0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        self._metric, self._mode = metric or self._metric, mode or self._mode
        for scheduler in self.pairs.values():
            scheduler.set_search_properties(metric, mode, **spec)
        return True

    def scheduler_of(self, trial: Trial) -> TrialScheduler:
        pair = trial.config.get(PAIR_KEY, "")
        if pair not in self.pairs:
            scheduler = self._make()
            scheduler.set_search_properties(self._metric, self._mode)
            self.pairs[pair] = scheduler
        return self.pairs[pair]

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        # A resumed search re-adds its ended trials too. Given to a fresh Hyperband they
        # would sit in its brackets as live trials that never report again, so no bracket
        # holding one could ever halve, and its paused trials would wait forever.
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return
        if trial.trial_id in self._recovering:  # still in its bracket: see on_trial_error
            self._recovering.discard(trial.trial_id)
            return
        self._scheduled.add(trial.trial_id)
        self.scheduler_of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        if trial.trial_id not in self._scheduled:
            return
        # Ray 2.60 tells a trial it will restart from its checkpoint (a failure within
        # max_failures, a lost node) as an error, already marked ERROR, then adds it
        # again as new: Hyperband would take it out of its bracket and put it in a fresh
        # one, where trials restarted together wait for each other for ever. It keeps
        # its place instead, and goes on from its checkpoint as a paused trial would.
        if trial.status == Trial.ERROR and trial.should_recover():
            self._recovering.add(trial.trial_id)
            return
        self.scheduler_of(trial).on_trial_error(tune_controller, trial)
        self._stop_paused_in_finished_brackets(tune_controller, trial)

    def on_trial_result(self, tune_controller: TuneController, trial: Trial, result: dict) -> str:
        return self.scheduler_of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict
    ) -> None:
        if trial.trial_id in self._scheduled:
            self.scheduler_of(trial).on_trial_complete(tune_controller, trial, result)
            self._stop_paused_in_finished_brackets(tune_controller, trial)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        if trial.trial_id in self._scheduled:
            self.scheduler_of(trial).on_trial_remove(tune_controller, trial)
            self._stop_paused_in_finished_brackets(tune_controller, trial)

    def _stop_paused_in_finished_brackets(self, tune_controller, trial: Trial) -> None:
        """Ray's HyperBandScheduler (2.60) leaves trials paused at a bracket's last rung
        when the trial they waited for ends without a last report (it errors, is removed,
        or completes on its own, as a trial resumed from a checkpoint at its last epoch
        does): the bracket is then finished, so it is not processed again, and no one
        stops them; the search would wait forever. Stop them as the bracket would have."""
        if self._sweeping:
            return
        self._sweeping = True
        try:
            for band in getattr(self.scheduler_of(trial), "_hyperbands", []):
                for bracket in band:
                    if bracket is not None and bracket.finished():
                        bracket.cleanup_full(tune_controller)
        finally:
            self._sweeping = False

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        schedulers = list(self.pairs.values())
        for i in range(len(schedulers)):
            turn = (self._turn + i) % len(schedulers)
            trial = schedulers[turn].choose_trial_to_run(tune_controller)
            if trial is not None:
                self._turn = turn + 1
                return trial
        return None

    def debug_string(self) -> str:
        return "\n".join(f"{pair}: {s.debug_string()}" for pair, s in self.pairs.items())


class PairHyperBand(HyperBandScheduler):
    """Ray's HyperBandScheduler with the brackets a pair's trials can fill
    (`search.tuning.settings.pair_brackets`): one successive-halving bracket of all its
    trials when they cannot fill a whole Hyperband round, so that trials are stopped early
    whatever the sample count; Ray's own brackets otherwise."""

    def __init__(self, samples: int, time_attr: str, max_t: int, reduction_factor: int):
        check_ray_internals()
        super().__init__(time_attr=time_attr, max_t=max_t, reduction_factor=reduction_factor)
        brackets = pair_brackets(samples, max_t, reduction_factor)
        self._sized = brackets[0] if len(brackets) == 1 else None
        if self._sized is not None:  # one bracket per band, each of that shape
            self._s_max_1 = 1
            self._get_n0 = lambda s: self._sized.trials
            self._get_r0 = lambda s: self._sized.rungs[0]

    def _create_bracket(self, s: int) -> _Bracket:
        if self._sized is None:
            return super()._create_bracket(s)
        return ray_hyperband._Bracket(
            time_attr=self._time_attr,
            max_trials=self._sized.trials,
            init_t_attr=self._sized.rungs[0],
            max_t_attr=self._max_t_attr,
            eta=self._eta,
            s=len(self._sized.rungs) - 1,
            stop_last_trials=self._stop_last_trials,
        )
