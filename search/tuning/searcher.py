"""One Optuna study per (backbone, input mode) pair, behind the one searcher Ray takes.

Each pair's sampler (TPE, or random) learns only from that pair's trials, as its
Hyperband judges only them. Trials the scheduler stopped early are told to Optuna as
pruned, with their last score at the epoch they reached, not as complete: Ray's own
OptunaSearch reports them complete with a short-run score, which misleads TPE.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher

from trainables.config import PAIR_KEY

__all__ = ["PairSearcher"]

Suggest = Callable[[optuna.trial.Trial, str, str], dict[str, Any]]


class PairSearcher(Searcher):
    """Suggests `samples` trials per pair, taking the pairs in turn.

    Args:
        pairs: pair keys, "backbone/mode".
        samples: trials per pair.
        suggest: (optuna trial, backbone, mode) -> the trial's flat config, drawn from it.
        metric, mode: what the studies maximize (or minimize), from the trial's reports.
        max_epochs: a trial that reached it finished; one that did not was stopped early.
        sampler: "tpe" or "random".
        seed: the samplers' seed (pair i uses seed + i).
    """

    def __init__(
        self,
        pairs: list[str],
        samples: int,
        suggest: Suggest,
        metric: str,
        mode: str,
        max_epochs: int,
        sampler: str = "tpe",
        seed: int = 0,
    ):
        super().__init__(metric=metric, mode=mode)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        direction = "maximize" if mode == "max" else "minimize"
        self.studies = {
            pair: optuna.create_study(
                study_name=pair, direction=direction, sampler=_sampler(sampler, seed + i)
            )
            for i, pair in enumerate(pairs)
        }
        self.remaining = dict.fromkeys(pairs, samples)
        self.max_epochs = max_epochs
        self._suggest = suggest
        self._live: dict[str, tuple[str, optuna.trial.Trial]] = {}
        self._last: dict[str, dict[str, Any]] = {}
        self._turn = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        pairs = list(self.remaining)
        for i in range(len(pairs)):
            pair = pairs[(self._turn + i) % len(pairs)]
            if self.remaining[pair] > 0:
                self._turn = (self._turn + i + 1) % len(pairs)
                self.remaining[pair] -= 1
                trial = self.studies[pair].ask()
                backbone, mode = pair.split("/")
                self._live[trial_id] = (pair, trial)
                return {**self._suggest(trial, backbone, mode), PAIR_KEY: pair}
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._last[trial_id] = result

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self._live:
            return
        pair, trial = self._live.pop(trial_id)
        last = result or self._last.get(trial_id)
        self._last.pop(trial_id, None)
        study = self.studies[pair]
        if error or not last or self.metric not in last:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        epoch = int(last.get("epoch", 0))
        if epoch >= self.max_epochs:
            study.tell(trial, last[self.metric])
        else:
            trial.report(last[self.metric], step=epoch)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    @staticmethod
    def reconcile(state: dict[str, Any], made: dict[str, set[str]], samples: int) -> bool:
        """Set a saved state (`save`'s) to the trials Ray saved, `made` (pair -> trial
        ids): each pair's remaining count, and no open Optuna trial for a trial Ray never
        saved (told failed, so its study does not wait for it). True when it changed."""
        known = set().union(*made.values())
        changed = False
        for pair, left in state["remaining"].items():
            should = max(samples - len(made.get(pair, ())), 0)
            if left != should:
                state["remaining"][pair], changed = should, True
        for trial_id in [t for t in state["_live"] if t not in known]:
            pair, trial = state["_live"].pop(trial_id)
            state["studies"][pair].tell(trial, state=optuna.trial.TrialState.FAIL)
            changed = True
        return changed

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # set in the constructor, per pair

    def save(self, checkpoint_path: str) -> None:
        state = {k: v for k, v in self.__dict__.items() if k != "_suggest"}
        Path(checkpoint_path).write_bytes(pickle.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        self.__dict__.update(pickle.loads(Path(checkpoint_path).read_bytes()))


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler {name!r}: expected tpe or random")
