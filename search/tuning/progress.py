"""A live view of the search per (backbone, input mode) pair: trials running, paused,
done and errored, the best so far, epochs done of the budget, elapsed time. Printed at
most every few seconds while something changes; `quiet` prints one line per finished
trial instead, for logs."""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections import Counter
from typing import TextIO

from ray.tune import Callback
from ray.tune.experiment import Trial

from search.tuning.settings import SearchSettings, epoch_budget
from trainables.config import PAIR_KEY

__all__ = ["SearchProgress"]


class SearchProgress(Callback):
    def __init__(
        self, settings: SearchSettings, quiet: bool = False, every_s: float = 10.0,
        out: TextIO | None = None,
    ):  # fmt: skip
        space = settings.space
        self.pairs = settings.pairs
        self.budget = epoch_budget(
            space.samples, space.max_epochs, settings.reduction_factor, settings.scheduler
        )
        self.quiet, self.every_s = quiet, every_s
        self._out = out  # None: sys.stdout when printing (the tuner pickles this object)
        self.started = time.monotonic()
        self._shown = 0.0
        self._last_view = ""
        self._trials: list[Trial] = []

    def on_step_end(self, iteration: int, trials: list[Trial], **info) -> None:
        self._trials = trials
        if self.quiet or time.monotonic() - self._shown < self.every_s:
            return
        view = self.view(trials)
        if view != self._last_view:
            print(view, file=self.out, flush=True)
            self._last_view = view
        self._shown = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        if self.quiet:
            result = trial.last_result or {}
            print(
                f"[{self._elapsed()}] {trial.config.get(PAIR_KEY)} {trial.trial_id} done: "
                f"{result.get('epoch', 0)} epochs, best {result.get('best_selection', 0):.3f}",
                file=self.out, flush=True,
            )  # fmt: skip

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info):
        print(
            f"[{self._elapsed()}] {trial.config.get(PAIR_KEY)} {trial.trial_id} errored: "
            f"{trial.error_file or ''}",
            file=self.out, flush=True,
        )  # fmt: skip

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    def finish(self) -> None:
        if self._trials:
            print(self.view(self._trials), file=self.out, flush=True)

    def view(self, trials: list[Trial]) -> str:
        """The table: one row per pair."""
        lines = [
            f"search after {self._elapsed()}",
            f"  {'pair':32} {'run':>4} {'pause':>5} {'done':>5} {'err':>4} "
            f"{'best':>6} {'epochs':>12}",
        ]
        for pair in self.pairs:
            own = [t for t in trials if t.config.get(PAIR_KEY) == pair]
            status = Counter(t.status for t in own)
            results = [t.last_result or {} for t in own]
            # only trials that reported have a best: a pending one has none (and a NaN
            # in max() would win or lose by its place in the list)
            scores = [r["best_selection"] for r in results if _is_number(r.get("best_selection"))]
            best = f"{max(scores):.3f}" if scores else "-"
            epochs = sum(int(r.get("epoch", 0)) for r in results)
            lines.append(
                f"  {pair:32} {status[Trial.RUNNING]:>4} {status[Trial.PAUSED]:>5} "
                f"{status[Trial.TERMINATED]:>5} {status[Trial.ERROR]:>4} "
                f"{best:>6} {epochs:>5} / {self.budget:<5}"
            )
        return "\n".join(lines)

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _is_number(value) -> bool:
    """A score to rank: a number, not None nor NaN."""
    return isinstance(value, numbers.Real) and not math.isnan(value)
