"""The seeds' two-stage transfer-learning protocol as a plain function.

Warm-up: backbone frozen (BatchNorm in eval), head trained with Adam at 10^-a; the best
validation epoch is restored. Fine-tune: the top k layers unfrozen (within the one-third
rule), Adam at 10^-(a+2); the best epoch is restored again. Only validation data choose
epochs. `run_protocol` takes a `report` callable, called after every epoch with the
epoch's figures and the trial's whole state, so it runs without Ray; the Ray adapter
turns each call into `tune.report` with a checkpoint, and passing that state back as
`resume` continues the trial exactly where it stopped.

Cross-validated (`FoldedData`), a trial trains one model per fold with the same settings,
side by side, epoch by epoch, from one frozen pass. Its epochs are chosen on the fold-mean
validation curve: one epoch per stage for all its fold models, so its score is one pick,
not k separate optimistic ones (`trainables.fold_figures`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from trainables.config import TrialConfig
from trainables.epoch_keys import val_key
from trainables.fold_figures import epoch_figures, held_out_predictions
from trainables.fold_trainer import FoldTrainer, FrozenWork
from trainables.frozen_store import FrozenWorkStore
from trainables.model import PolarMapNet
from trainables.pool import FoldedData, TrainingPool, TrialData
from trainables.weights import initial_backbone

__all__ = ["FoldedData", "TrialConfig", "TrialData", "TrialResult", "run_protocol"]

Report = Callable[[dict[str, Any], dict[str, Any]], None]

STATE_FORMAT = "polarmap-trial-state/2"


@dataclass
class TrialResult:
    """What a finished trial leaves: its model(s) with their best weights restored (one
    per fold when cross-validated; `model` is the first), and figures."""

    models: list[PolarMapNet]
    history: list[dict[str, Any]]
    best: dict[str, Any]
    unfreezing: dict[str, Any]
    compute_path: dict[str, str]
    predictions: str | None = None  # the held-out predictions at the kept epoch (JSON)
    frozen_store: dict[str, int] | None = None  # entries read from the store, computed

    @property
    def model(self) -> PolarMapNet:
        return self.models[0]


def run_protocol(
    config: TrialConfig,
    data: TrialData | FoldedData,
    report: Report | None = None,
    resume: dict[str, Any] | None = None,
    store: FrozenWorkStore | None = None,
    keep_last: bool = False,
) -> TrialResult:
    """Run (or continue from `resume`, a state a `report` call received) one trial.
    `store` shares the frozen work (the backbone below the cut) with other trials.
    `keep_last`: no epoch is chosen, each stage's last epoch is kept (a refit whose
    epochs were chosen before, by cross-validation)."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pool = data.pool
    backbone = initial_backbone(config.backbone, config.pretrained, config.weights, config.seed)
    model = PolarMapNet(backbone, len(config.views), len(pool.class_names), config.head)
    # channels_last: faster convolutions on GPUs and with oneDNN on CPUs alike.
    model = model.to(device, memory_format=torch.channels_last)
    # every fold model starts from the same weights
    models = [model] + [copy.deepcopy(model) for _ in pool.folds[1:]]
    trial = _Trial(config, pool, models, device, store, keep_last)
    if resume is not None:
        trial.load_state(resume)
    try:
        while trial.epoch < config.epochs:
            record = trial.run_epoch()
            if report is not None:
                report(record, trial.state())
        trial.restore_best()
        return TrialResult(
            models, trial.history, trial.best_summary(), trial.unfreezing,
            trial.compute_path, trial.predictions, trial.frozen_store,
        )  # fmt: skip
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


class _Trial:
    """The fold models of one trial, and the choice of the epochs they keep."""

    def __init__(self, config, pool: TrainingPool, models, device, store, keep_last=False):
        self.config, self.pool, self.keep_last = config, pool, keep_last
        self.frozen = frozen = FrozenWork(pool, device, store)
        self.earlier_counts = {"read": 0, "computed": 0}  # of the runs before a resume
        self.folds = [
            FoldTrainer(config, fold, model, device, frozen)
            for fold, model in zip(pool.folds, models, strict=True)
        ]
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_metric, self.best_loss = -np.inf, np.inf
        self.best_epoch = {"warmup": 0, "finetune": 0}
        self.predictions: str | None = None

    @property
    def unfreezing(self) -> dict[str, Any]:
        return self.folds[0].unfreezing

    @property
    def compute_path(self) -> dict[str, str]:
        return self.folds[0].compute_path

    @property
    def frozen_store(self) -> dict[str, int]:
        """Frozen-work entries this trial read from the store and computed, over every run
        of it (a resumed trial reads its frozen work again)."""
        now = self.frozen.counts
        return {k: self.earlier_counts[k] + now[k] for k in now}

    def run_epoch(self) -> dict[str, Any]:
        started = time.perf_counter()
        outcomes = [fold.run_epoch() for fold in self.folds]
        self.epoch += 1
        stage = self.folds[0].stage
        figures = epoch_figures(self.pool, outcomes)
        score, loss = figures[val_key(self.config.selection)], figures[val_key("loss")]
        improved = (
            self.keep_last
            or score > self.best_metric
            or (score == self.best_metric and loss < self.best_loss)
        )
        if improved:
            self.best_metric, self.best_loss = score, loss
            self.best_epoch[stage] = self.epoch
            for fold in self.folds:
                fold.keep_best()
            self.predictions = held_out_predictions(self.pool, outcomes, self.epoch)
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "stage": stage,
            "stage_epoch": self.epoch - (0 if stage == "warmup" else self.config.warmup_epochs),
            **{k: v for k, v in figures.items() if "/" not in k},
            "selection_metric": self.config.selection,
            "best_selection": self.best_metric,
            "best_epoch": max(self.best_epoch.values()),
            "epoch_seconds": time.perf_counter() - started,
        }
        if self.pool.cross_validated:
            record["folds"] = len({f.index for f in self.pool.folds})
            record["repeats"] = len({f.repeat for f in self.pool.folds})
        record.update({k: v for k, v in figures.items() if "/" in k})
        if improved:  # only the kept epoch's predictions are kept (kilobytes per epoch)
            for earlier in self.history:
                earlier.pop("held_out_predictions", None)
            record["held_out_predictions"] = self.predictions
        self.history.append(record)
        return record

    def restore_best(self) -> None:
        for fold in self.folds:
            fold.restore_best()

    def best_summary(self) -> dict[str, Any]:
        best = next(r for r in self.history if r["epoch"] == max(self.best_epoch.values()))
        return {
            "epoch": best["epoch"],
            "warmup_epoch": self.best_epoch["warmup"],
            "finetune_epoch": self.best_epoch["finetune"] or None,
            **{k: v for k, v in best.items() if k.startswith(("val_", "oof_"))},
        }

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: small, without the frozen backbone. A deep
        copy, so later epochs do not change a state already handed out."""
        return copy.deepcopy(
            {
                "format": STATE_FORMAT,
                "config": _plain(asdict(self.config)),
                "epoch": self.epoch,
                "folds": [fold.state() for fold in self.folds],
                "best_metric": self.best_metric,
                "best_loss": self.best_loss,
                "best_epoch": dict(self.best_epoch),
                "unfreezing": self.unfreezing,
                "compute_path": self.compute_path,
                "frozen_store": self.frozen_store,
                "history": self.history,
                "predictions": self.predictions,
                "torch_rng": torch.get_rng_state(),
            }
        )

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("config") != _plain(asdict(self.config)):
            raise ValueError("the saved trial state belongs to another configuration")
        if state.get("format") != STATE_FORMAT:  # one model's state, as version 1 kept it
            state = {**state, "folds": [state], "predictions": None}
        if len(state["folds"]) != len(self.folds):
            raise ValueError(
                f"the saved trial state holds {len(state['folds'])} fold models, this trial "
                f"{len(self.folds)}"
            )
        self.epoch = state["epoch"]
        for fold, saved in zip(self.folds, state["folds"], strict=True):
            fold.load_state(saved, self.epoch, state["unfreezing"])
        self.best_metric, self.best_loss = state["best_metric"], state["best_loss"]
        self.best_epoch = dict(state["best_epoch"])
        self.history = list(state["history"])
        self.predictions = state["predictions"]
        self.earlier_counts = dict(state.get("frozen_store") or self.earlier_counts)
        torch.set_rng_state(state["torch_rng"])


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively: the form a config takes after a JSON round trip."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
