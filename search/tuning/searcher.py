"""One Optuna study per (backbone, input mode) pair, behind the one searcher Ray takes.

Each pair's sampler (TPE, or random) learns only from that pair's trials, as its
Hyperband judges only them. Trials the scheduler stopped early are told to Optuna as
pruned, with their last score at the epoch they reached, not as complete: Ray's own
OptunaSearch reports them complete with a short-run score, which misleads TPE.

Ray saves the searcher's state into its staging folder and copies that folder to the
experiment folder on the storage, writing each file in place: a driver killed meanwhile
can leave the file there cut short, and the search could not be resumed. So each save
also leaves our own copy beside Ray's file, which the same copying brings to the storage:
the state and the trial counter's last state (Ray writes the counter's file after this
save), behind a SHA-256 digest that tells a whole copy from a torn one (see
`search.tuning.resume`).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher

from search.files import write_atomic
from search.tuning.ray_folders import GENERATOR_STATE, SEARCHER_COPY, SEARCHER_STATE
from trainables.config import PAIR_KEY

__all__ = ["PairSearcher", "read_copy"]

_SEAL = b"polarmap-searcher-copy sha256="  # then the payload's hex digest, a newline, it

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

    @staticmethod
    def rebuilt_state(pairs: list[str], made: dict[str, set[str]], samples: int) -> dict:
        """A state for a search whose saved ones are all lost, from the trials Ray saved,
        `made` (pair -> trial ids): each pair's remaining count, nothing open. It holds
        no studies: the searcher restoring it keeps its own, fresh ones, their samplers
        reseeded so that they do not draw the first trials' configs again; they learn
        from the trials that end from then on."""
        remaining = {pair: max(samples - len(made.get(pair, ())), 0) for pair in pairs}
        return {"remaining": remaining, "_live": {}, "_last": {}, "_turn": 0}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # set in the constructor, per pair

    def save(self, checkpoint_path: str) -> None:
        """Save the state at `checkpoint_path` (Ray's temporary name for
        searcher-state-SESSION.pkl) and our copy beside it, polarmap-searcher-SESSION.pkl."""
        state = pickle.dumps({k: v for k, v in self.__dict__.items() if k != "_suggest"})
        path = Path(checkpoint_path)
        path.write_bytes(state)
        # the counter's file of Ray's last save (or of the session before, copied down
        # on a resume): this save's comes after this call, and only its count changes
        counters = sorted(path.parent.glob(f"{GENERATOR_STATE}*"))
        generator = counters[-1].read_bytes() if counters else None
        session = path.stem.partition(SEARCHER_STATE)[2] or path.stem
        copy = pickle.dumps({"searcher": state, "generator": generator})
        write_atomic(path.with_name(f"{SEARCHER_COPY}{session}.pkl"), _sealed(copy))

    def restore(self, checkpoint_path: str) -> None:
        state = pickle.loads(Path(checkpoint_path).read_bytes())
        if "studies" not in state:  # rebuilt (`rebuilt_state`): fresh studies, new draws
            for study in self.studies.values():
                study.sampler.reseed_rng()
        self.__dict__.update(state)


def read_copy(data: bytes) -> tuple[bytes, bytes | None] | None:
    """What a copy `save` left holds: the searcher's pickled state and the trial
    counter's (None when there was none yet); None when the copy is cut short or
    otherwise damaged (its digest does not hold)."""
    head, newline, payload = data.partition(b"\n")
    if not newline or head != _SEAL + hashlib.sha256(payload).hexdigest().encode():
        return None
    copy = pickle.loads(payload)
    return copy["searcher"], copy["generator"]


def _sealed(payload: bytes) -> bytes:
    return _SEAL + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler {name!r}: expected tpe or random")
