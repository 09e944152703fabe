"""An epoch's figures for a trial of one or more fold models.

With one split they are the validation figures, as ever. Cross-validated, `val_<metric>`
is the mean over the fold models of each one's figure on its own validation fold (the
curve the trial selects its epochs on: one epoch per stage for all folds, not one
optimistic pick per fold), `val_<metric>_sd` its standard deviation over the folds, and
`oof_<metric>` the figure of the pooled out-of-fold predictions (every patient predicted
once per repeat by the fold model that never trained on it; averaged over repeats).
`fold_<repeat>_<fold>/val_<metric>` keeps each fold model's own figures.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

from trainables.epoch_keys import class_key, fold_key, oof_key, sd_key, val_key
from trainables.fold_trainer import EpochOutcome
from trainables.metrics import METRICS, PER_CLASS_METRICS, classification_metrics
from trainables.pool import TrainingPool

__all__ = ["epoch_figures", "held_out_predictions"]


def epoch_figures(pool: TrainingPool, outcomes: list[EpochOutcome]) -> dict[str, Any]:
    """The epoch's record entries from every fold model's outcome, in `pool.folds` order."""
    y = pool.y.cpu().numpy()
    folds = []
    for fold, outcome in zip(pool.folds, outcomes, strict=True):
        macro, per_class = classification_metrics(y[fold.val_rows.numpy()], outcome.probabilities)
        folds.append((macro, per_class))
    record: dict[str, Any] = {
        "train_loss": _mean([o.train_loss for o in outcomes]),
        "train_accuracy": _mean([o.train_accuracy for o in outcomes]),
        val_key("loss"): _mean([o.val_loss for o in outcomes]),
    }
    for name in METRICS:
        record[val_key(name)] = _mean([macro[name] for macro, _ in folds])
    for name in PER_CLASS_METRICS:
        for c, cls in enumerate(pool.class_names):
            record[class_key(name, cls)] = _mean([float(per[name][c]) for _, per in folds])
    if not pool.cross_validated:
        return record
    for name in METRICS:
        record[sd_key(name)] = _sd([macro[name] for macro, _ in folds])
    validated = np.unique(np.concatenate([fold.val_rows.numpy() for fold in pool.folds]))
    pooled = [
        classification_metrics(y[validated], probabilities[validated])[0]
        for probabilities in _out_of_fold(pool, outcomes).values()
    ]
    for name in METRICS:
        record[oof_key(name)] = _mean([macro[name] for macro in pooled])
    for fold, outcome, (macro, _) in zip(pool.folds, outcomes, folds, strict=True):
        record[fold_key(fold.repeat, fold.index, val_key("loss"))] = outcome.val_loss
        for name in METRICS:
            record[fold_key(fold.repeat, fold.index, val_key(name))] = macro[name]
    return record


def held_out_predictions(pool: TrainingPool, outcomes: list[EpochOutcome], epoch: int) -> str:
    """Every validated patient's class probabilities from the fold model that did not train
    on it, as compact JSON (one entry per patient and repeat): what the trial predicted at
    the epoch it keeps, for the out-of-fold table."""
    y = pool.y.cpu().tolist()
    rows: dict[str, list] = {k: [] for k in ("patient", "repeat", "fold", "label", "p")}
    for fold, outcome in zip(pool.folds, outcomes, strict=True):
        for row, probabilities in zip(fold.val_rows.tolist(), outcome.probabilities, strict=True):
            rows["patient"].append(pool.ids[row])
            rows["repeat"].append(fold.repeat)
            rows["fold"].append(fold.index)
            rows["label"].append(y[row])
            rows["p"].append([round(float(p), 6) for p in probabilities])
    return json.dumps({"epoch": epoch, "classes": list(pool.class_names), **rows})


def _out_of_fold(pool: TrainingPool, outcomes: list[EpochOutcome]) -> dict[int, np.ndarray]:
    """repeat -> (N, classes) out-of-fold probabilities of every patient of the pool."""
    classes = len(pool.class_names)
    pooled: dict[int, np.ndarray] = {}
    for fold, outcome in zip(pool.folds, outcomes, strict=True):
        out = pooled.setdefault(fold.repeat, np.full((len(pool.y), classes), np.nan))
        out[fold.val_rows.numpy()] = outcome.probabilities
    return pooled


def _mean(values: list[float]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: an AUC no fold could rank
        return float(np.nanmean(values))


def _sd(values: list[float]) -> float:
    """Sample standard deviation over the folds (NaN figures left out)."""
    finite = [v for v in values if not np.isnan(v)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
