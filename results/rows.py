"""A trial's rows for the result tables, from what it reported (Ray's result records,
one per epoch, as in its result.json) and its configuration. Nothing here imports Ray."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from results.records import EpochRow, TrialRow, TrialStatus
from results.schema import MACRO_METRICS
from trainables.config import TrialConfig
from trainables.epoch_keys import (
    compute_path_key,
    frozen_key,
    oof_key,
    parse_class_key,
    parse_fold_key,
    sd_key,
    val_key,
)

__all__ = ["TrialRows", "epoch_figures", "trial_rows"]


class TrialRows:
    """The rows one trial contributes to each table."""

    def __init__(
        self,
        trial: dict[str, Any],
        epochs: list[dict],
        class_metrics: list[dict],
        fold_epochs: list[dict] | None = None,
        predictions: list[dict] | None = None,
    ):
        self.trial, self.epochs, self.class_metrics = trial, epochs, class_metrics
        self.fold_epochs, self.predictions = fold_epochs or [], predictions or []

    def tables(self) -> dict[str, list[dict]]:
        """Table name -> this trial's rows in it."""
        return {
            "trials": [self.trial],
            "epochs": self.epochs,
            "class_metrics": self.class_metrics,
            "fold_epochs": self.fold_epochs,
            "predictions": self.predictions,
        }


def trial_rows(
    search: str,
    trial_id: str,
    config: dict[str, Any],
    records: list[dict[str, Any]],
    error: str | None = None,
    failures: int | None = None,
    interrupted: bool = False,
) -> TrialRows:
    """Rows of one trial. `config` is its flat config (`trainables.config`); `records`
    are its reports in order (a resumed trial's included); `error` is its error message
    when it failed; `failures` how often Ray restarted it from its checkpoint after a
    failure (a lost node, say), when known; `interrupted` when the search stopped
    before the trial ended (Ctrl-C, a killed driver), so that it is not taken for a
    trial the scheduler stopped."""
    records = _one_per_epoch(records)
    trial = {  # typed on the way, so a misspelt column is refused here (`results.records`)
        "search": search,
        "trial_id": trial_id,
        **_configured(config),
        **_reported(records),
        "status": _status(TrialConfig.from_flat(config), records, error, interrupted),
        "error": error,
        "failures": failures,
        "config": json.dumps(config, sort_keys=True, default=str),
    }
    trial = TrialRow.from_row(trial).to_row()
    keys = {"search": search, "trial_id": trial_id}
    epochs = [EpochRow.from_row({**keys, **_epoch_row(r)}).to_row() for r in records]
    per_class = [{**keys, **row} for r in records for row in _class_metric_rows(r)]
    folds = [{**keys, **row} for r in records for row in _fold_rows(r)]
    predictions = [{**keys, **row} for row in _prediction_rows(records)]
    return TrialRows(trial, epochs, per_class, folds, predictions)


def _configured(flat: dict[str, Any]) -> dict[str, Any]:
    """What the trial was configured with, read through the trainable's own config."""
    config = TrialConfig.from_flat(flat)
    uniform = len(set(config.head.widths)) == 1 and len(set(config.head.dropouts)) == 1
    return {
        "backbone": config.backbone,
        "mode": flat.get("mode"),
        "width": config.head.widths[0] if uniform else None,
        "depth": len(config.head.widths) if uniform else None,
        "dropout": config.head.dropouts[0] if uniform else None,
        "a": config.a,
        "warmup_lr": config.warmup_lr,
        "finetune_lr": config.finetune_lr,
        "warmup_epochs": config.warmup_epochs,
        "finetune_epochs": config.finetune_epochs,
        "cpus": _float(flat.get("cpus")),  # the trial's Ray resources, for compute hours
        "gpus": _float(flat.get("gpus")),
        "seed": config.seed,
        "threads": config.threads,
        # as the trial ran them (defaults included) when it reported; else as configured
        "requested_unfreeze": config.unfreeze,
        "batch_size": config.batch_size,
        "augment": str(config.augment),
    }


def _reported(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the trial's reports say: its last report, and the epoch it kept."""
    last = records[-1] if records else {}
    best_epoch = last.get("best_epoch")
    best = next((r for r in records if r.get("epoch") == best_epoch), {})
    ran = {k: last[k] for k in ("requested_unfreeze", "batch_size", "augment") if k in last}
    return {
        **{k: _int(v) if k != "augment" else v for k, v in ran.items()},
        "effective_unfreeze": _int(last.get("effective_unfreeze")),
        "trainable_share": _float(last.get("trainable_share")),
        "compute_path_warmup": last.get(compute_path_key("warmup")),
        "compute_path_finetune": last.get(compute_path_key("finetune")),
        "frozen_read": _int(last.get(frozen_key("read"))),
        "frozen_computed": _int(last.get(frozen_key("computed"))),
        "best_warmup_epoch": _int(last.get("best_warmup_epoch")),
        "best_finetune_epoch": _int(last.get("best_finetune_epoch")) or None,
        "best_epoch": _int(best_epoch),
        "selection_metric": last.get("selection_metric"),
        "best_selection": _float(last.get("best_selection")),
        **{f"best_val_{m}": _float(best.get(val_key(m))) for m in MACRO_METRICS},
        "best_val_loss": _float(best.get(val_key("loss"))),
        "folds": _int(last.get("folds")),
        "repeats": _int(last.get("repeats")),
        **{f"best_val_{m}_sd": _float(best.get(sd_key(m))) for m in MACRO_METRICS},
        **{f"best_oof_{m}": _float(best.get(oof_key(m))) for m in MACRO_METRICS},
        "epochs_run": _int(last.get("epoch")) or 0,
        "wall_seconds": _float(last.get("time_total_s")),
        "device": last.get("device"),
        "node": last.get("hostname"),
        "node_id": last.get("node_id"),
        "started": _started(records[0]) if records else None,
        "ended": _time(last.get("timestamp", last.get("reported_at"))),
    }


def _status(config: TrialConfig, records: list[dict], error: str | None, cut: bool) -> TrialStatus:
    """errored, completed (ran every epoch), interrupted (cut off with the search; a
    resume goes on with it), or stopped (by the scheduler)."""
    if error is not None:
        return TrialStatus.ERRORED
    last_epoch = records[-1].get("epoch", 0) if records else 0
    if last_epoch >= config.epochs:
        return TrialStatus.COMPLETED
    return TrialStatus.INTERRUPTED if cut else TrialStatus.STOPPED


def _epoch_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "epoch": _int(record.get("epoch")),
        "stage": record.get("stage"),
        "stage_epoch": _int(record.get("stage_epoch")),
        "train_loss": _float(record.get("train_loss")),
        "train_accuracy": _float(record.get("train_accuracy")),
        # the columns are named as the report's keys
        **{val_key(m): _float(record.get(val_key(m))) for m in ("loss", *MACRO_METRICS)},
        **{sd_key(m): _float(record.get(sd_key(m))) for m in MACRO_METRICS},
        **{oof_key(m): _float(record.get(oof_key(m))) for m in MACRO_METRICS},
        "best_selection": _float(record.get("best_selection")),
        "epoch_seconds": _float(record.get("epoch_seconds")),
        "node_id": record.get("node_id"),
    }


# an epochs row's columns that say where and when, not how well
_NOT_FIGURES = ("epoch", "stage", "stage_epoch", "node_id")


def epoch_figures(record: dict[str, Any]) -> dict[str, float]:
    """One epoch's figures, as trackers (MLflow, TensorBoard) show them: training loss
    and accuracy, the validation metrics' fold means (`val_<m>`), their fold SDs
    (`val_<m>_sd`), out-of-fold figures, the best selection so far and the epoch's
    seconds; from a report or from a row of the epochs table (its columns are named as
    the report's keys). Figures a report lacks, or that are not finite, are left out."""
    row = _epoch_row(record)
    return {
        key: value
        for key, value in row.items()
        if key not in _NOT_FIGURES and isinstance(value, float) and math.isfinite(value)
    }


def _class_metric_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's per-class figures (`val_<metric>/<class>`), one row each."""
    epoch, rows = _int(record.get("epoch")), []
    for key, value in record.items():
        parsed = parse_class_key(key)
        if parsed is not None:
            metric, cls = parsed
            rows.append({"epoch": epoch, "class": cls, "metric": metric, "value": _float(value)})
    return rows


def _fold_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A cross-validated report's figures of each fold model (`fold_<repeat>_<fold>/...`)."""
    folds: dict[tuple[int, int], dict[str, Any]] = {}
    for key, value in record.items():
        parsed = parse_fold_key(key)
        if parsed is not None:
            repeat, fold, name = parsed
            folds.setdefault((repeat, fold), {})[name] = _float(value)
    return [
        {"epoch": _int(record.get("epoch")), "repeat": repeat, "fold": fold, **figures}
        for (repeat, fold), figures in sorted(folds.items())
    ]


def _prediction_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The held-out predictions of the epoch the trial kept (its last report of them): one
    row per patient (and repeat), from the fold model that did not train on the patient."""
    kept = next(
        (r["held_out_predictions"] for r in reversed(records) if r.get("held_out_predictions")),
        None,
    )
    if kept is None:
        return []
    kept = json.loads(kept)
    classes = kept["classes"]
    return [
        {
            "epoch": kept["epoch"],
            "patient_id": patient,
            "repeat": repeat,
            "fold": fold,
            "label": classes[label],
            "predicted": classes[max(range(len(p)), key=p.__getitem__)],
            "probabilities": p,
        }
        for patient, repeat, fold, label, p in zip(
            kept["patient"], kept["repeat"], kept["fold"], kept["label"], kept["p"], strict=True
        )
    ]


def _one_per_epoch(records: list[dict]) -> list[dict]:
    """The last report of each epoch, in epoch order (a trial resumed from an older
    checkpoint may report an epoch twice)."""
    by_epoch = {r["epoch"]: r for r in records if "epoch" in r}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _int(value: Any) -> int | None:
    return None if value is None or _nan(value) else int(value)


def _float(value: Any) -> float | None:
    return None if value is None or _nan(value) else float(value)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _started(first: dict[str, Any]) -> datetime | None:
    """When the first epoch began: Ray's time of its report less the epoch's time (or,
    for a report known only from the trial's log, the trial's own clock)."""
    if "timestamp" in first:
        return _time(first["timestamp"], first.get("time_this_iter_s"))
    return _time(first.get("reported_at"), first.get("epoch_seconds"))


def _time(timestamp: Any, minus: Any = None) -> datetime | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp) - float(minus or 0), tz=UTC)
