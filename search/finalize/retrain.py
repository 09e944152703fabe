"""Retraining a winner with one seed: one retrainer per kind of winner, each returning the
model finalize tests and the validation predictions its threshold and cross-validated
figures come from.

- A winner of a one-split search is retrained as it ran: one model, its epochs chosen on
  the validation patients.
- A winner of a cross-validated search is retrained as it ran, one model per fold, and
  becomes their ensemble (class probabilities averaged): every training patient was used,
  and its epochs were chosen on the folds' mean curve. Its out-of-fold predictions give
  the cross-validated figures.
- With `--refit`, a cross-validated winner is retrained once on every training patient
  for the epochs its cross-validation kept; the validation predictions are the search's
  own out-of-fold ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import torch

from results import load_table
from search.errors import SearchStateError
from search.finalize.greedy import each_patient_once
from search.inference.export import predict_probabilities
from trainables.config import TrialConfig
from trainables.ensemble import ModelEnsemble
from trainables.frozen_store import FrozenWorkStore
from trainables.pool import UNSEEN, FoldedData, TrialData
from trainables.protocol import TrialResult, run_protocol

__all__ = [
    "Retrained",
    "WinnerKind",
    "WinnerToRetrain",
    "label_shuffled",
    "out_of_fold",
    "refit_config",
    "retrain",
    "search_out_of_fold",
    "winner_kind",
]


class WinnerKind(StrEnum):
    """How a winner is retrained: as its search ran it (one split, or one model per fold),
    or refit once on every training patient."""

    SINGLE_SPLIT = "single split"
    FOLD_ENSEMBLE = "fold ensemble"
    REFIT = "refit"


@dataclass(frozen=True)
class Retrained:
    """A retrained winner: the model to test, its best epoch's figures, and the labels and
    class probabilities of the patients it was validated on (out-of-fold for a fold
    ensemble, the search's own out-of-fold ones for a refit)."""

    kind: WinnerKind
    config: TrialConfig  # as retrained (a refit's: the epochs its cross-validation kept)
    model: torch.nn.Module
    best: dict[str, Any]
    validation_labels: np.ndarray
    validation_probabilities: np.ndarray
    members: int = 1  # fold models in the ensemble

    @property
    def cross_validated(self) -> bool:
        """Whether the validation predictions are out-of-fold ones of every training
        patient (worth reporting as cross-validated figures)."""
        return self.kind is not WinnerKind.SINGLE_SPLIT


@dataclass(frozen=True)
class WinnerToRetrain:
    """What every retrainer reads: the winner's configuration (this seed's), the data it
    trains on, its trials row, the result tables and the class names."""

    config: TrialConfig
    data: TrialData | FoldedData
    trial: dict[str, Any]
    results: str
    class_names: tuple[str, ...]


def winner_kind(data: TrialData | FoldedData, refit: bool) -> WinnerKind:
    """The kind of a winner whose data is `data`, with `--refit` or not."""
    if not isinstance(data, FoldedData):
        return WinnerKind.SINGLE_SPLIT
    return WinnerKind.REFIT if refit else WinnerKind.FOLD_ENSEMBLE


def retrain(winner: WinnerToRetrain, refit: bool) -> Retrained:
    """The winner retrained by the retrainer of its kind."""
    kind = winner_kind(winner.data, refit)
    return RETRAINERS[kind](winner)


def _single_split(winner: WinnerToRetrain) -> Retrained:
    result = run_protocol(winner.config, winner.data, store=FrozenWorkStore())
    model = result.model.cpu().eval()
    labels = winner.data.val_y.numpy()
    probabilities = predict_probabilities(model, winner.data.val_x).numpy()
    return Retrained(WinnerKind.SINGLE_SPLIT, winner.config, model, result.best, labels,
                     probabilities)  # fmt: skip


def _fold_ensemble(winner: WinnerToRetrain) -> Retrained:
    result = run_protocol(winner.config, winner.data, store=FrozenWorkStore())
    model = ModelEnsemble([m.cpu().eval() for m in result.models]).eval()
    labels, probabilities = out_of_fold(result)
    return Retrained(WinnerKind.FOLD_ENSEMBLE, winner.config, model, result.best, labels,
                     probabilities, members=len(result.models))  # fmt: skip


def _refit(winner: WinnerToRetrain) -> Retrained:
    """The epochs cross-validation chose, on every training patient."""
    trial = winner.trial
    config = refit_config(winner.config, trial)
    result = run_protocol(config, winner.data.everyone(), store=FrozenWorkStore(),
                          keep_last=True)  # fmt: skip
    best = {"epoch": trial["best_epoch"],
            f"val_{trial['selection_metric']}": trial["best_selection"]}  # fmt: skip
    labels, probabilities = search_out_of_fold(winner.results, trial, winner.class_names)
    return Retrained(WinnerKind.REFIT, config, result.model.cpu().eval(), best, labels,
                     probabilities)  # fmt: skip


def label_shuffled(winner: WinnerToRetrain, seed: int) -> torch.nn.Module:
    """The winner's twin trained on its training patients with their labels permuted
    (seeded): the same network, data and epochs, nothing to learn. Its CAMs are the
    reference a localisation figure must beat (what a model that learned no disease still
    points at). One model, not a fold ensemble: a cross-validated winner's twin trains once
    on every training patient for the epochs the winner's cross-validation kept."""
    rng = np.random.default_rng(seed)
    data = winner.data
    if isinstance(data, FoldedData):
        y = data.y.clone()
        seen = np.flatnonzero(data.assignment[0] != UNSEEN)
        y[seen] = data.y[rng.permutation(seen)]
        twin = replace(data, y=y).everyone()
        config, keep_last = refit_config(winner.config, winner.trial), True
    else:
        twin = replace(data, train_y=data.train_y[rng.permutation(len(data.train_y))],
                       val_y=data.val_y[rng.permutation(len(data.val_y))])  # fmt: skip
        config, keep_last = winner.config, False
    result = run_protocol(config, twin, store=FrozenWorkStore(), keep_last=keep_last)
    return result.model.cpu().eval()


RETRAINERS: dict[WinnerKind, Callable[[WinnerToRetrain], Retrained]] = {
    WinnerKind.SINGLE_SPLIT: _single_split,
    WinnerKind.FOLD_ENSEMBLE: _fold_ensemble,
    WinnerKind.REFIT: _refit,
}


def refit_config(config: TrialConfig, trial: dict[str, Any]) -> TrialConfig:
    """The winner's configuration with the epochs its cross-validation kept: warm-up to its
    best warm-up epoch, then fine-tune to its best fine-tune epoch (none, when no fine-tune
    epoch beat warm-up)."""
    warmup = int(trial["best_warmup_epoch"] or config.warmup_epochs)
    finetune_epoch = trial.get("best_finetune_epoch")
    finetune = 0 if pd.isna(finetune_epoch) else int(finetune_epoch) - config.warmup_epochs
    return replace(config, warmup_epochs=warmup, finetune_epochs=finetune)


def search_out_of_fold(
    results: str, trial: dict[str, Any], class_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The winner's out-of-fold predictions as the search kept them (`predictions` table),
    each patient once (averaged over repeats), in patient order."""
    rows = load_table(results, "predictions", trial["search"], trial_id=trial["trial_id"])
    if rows.empty:
        raise SearchStateError(
            f"trial {trial['trial_id']}: no out-of-fold predictions in {results}; rebuild the "
            "tables with polarmap results ingest"
        )
    labels = [class_names.index(label) for label in rows["label"]]
    return each_patient_once(rows["patient_id"], labels, rows["probabilities"])


def out_of_fold(result: TrialResult) -> tuple[np.ndarray, np.ndarray]:
    """Labels and out-of-fold class probabilities of every training patient, in patient
    order, from a cross-validated trial's kept epoch (averaged over repeats, so each
    patient counts once)."""
    kept = json.loads(result.predictions or "{}")
    if not kept:
        raise SearchStateError("the trial kept no held-out predictions")
    return each_patient_once(kept["patient"], kept["label"], kept["p"])
