"""A trial's rows for the result tables, from what it reported (Ray's result records,
one per epoch, as in its result.json) and its configuration. Nothing here imports Ray."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from results.schema import MACRO_METRICS
from trainables.metrics import PER_CLASS_METRICS

__all__ = ["TrialRows", "trial_rows"]


class TrialRows:
    """The rows one trial contributes to each table."""

    def __init__(self, trial: dict[str, Any], epochs: list[dict], class_metrics: list[dict]):
        self.trial, self.epochs, self.class_metrics = trial, epochs, class_metrics


def trial_rows(
    search: str,
    trial_id: str,
    config: dict[str, Any],
    records: list[dict[str, Any]],
    error: str | None = None,
    failures: int | None = None,
) -> TrialRows:
    """Rows of one trial. `records` are its reports in order (a resumed trial's included);
    `error` is its error message when it failed; `failures` how often Ray restarted it
    from its checkpoint after a failure (a lost node, say), when known."""
    records = _one_per_epoch(records)
    last = records[-1] if records else {}
    max_epochs = int(config.get("warmup_epochs", 0)) + int(config.get("finetune_epochs", 0))
    best_epoch = last.get("best_epoch")
    best = next((r for r in records if r.get("epoch") == best_epoch), {})
    if error is not None:
        status = "errored"
    elif last.get("epoch", 0) >= max_epochs > 0:
        status = "completed"
    else:
        status = "stopped"
    a = _float(config.get("a"))
    trial = {
        "search": search,
        "trial_id": trial_id,
        "backbone": config.get("backbone"),
        "mode": config.get("mode"),
        "width": _int(config.get("width")),
        "depth": _int(config.get("depth")),
        "dropout": _float(config.get("dropout")),
        "a": a,
        "warmup_lr": None if a is None else 10.0**-a,
        "finetune_lr": None if a is None else 10.0 ** -(a + 2),
        "requested_unfreeze": _int(last.get("requested_unfreeze", config.get("unfreeze"))),
        "effective_unfreeze": _int(last.get("effective_unfreeze")),
        "trainable_share": _float(last.get("trainable_share")),
        "warmup_epochs": _int(config.get("warmup_epochs")),
        "finetune_epochs": _int(config.get("finetune_epochs")),
        "batch_size": _int(last.get("batch_size", config.get("batch_size"))),
        "augment": last.get("augment", config.get("augment")),
        "compute_path_warmup": last.get("compute_path_warmup"),
        "compute_path_finetune": last.get("compute_path_finetune"),
        "best_warmup_epoch": _int(last.get("best_warmup_epoch")),
        "best_finetune_epoch": _int(last.get("best_finetune_epoch")) or None,
        "best_epoch": _int(best_epoch),
        "selection_metric": last.get("selection_metric"),
        "best_selection": _float(last.get("best_selection")),
        **{f"best_val_{m}": _float(best.get(f"val_{m}")) for m in MACRO_METRICS},
        "best_val_loss": _float(best.get("val_loss")),
        "status": status,
        "error": error,
        "epochs_run": _int(last.get("epoch")) or 0,
        "wall_seconds": _float(last.get("time_total_s")),
        "device": last.get("device"),
        "cpus": _float(config.get("cpus")),
        "gpus": _float(config.get("gpus")),
        "node": last.get("hostname"),
        "node_id": last.get("node_id"),
        "failures": failures,
        "seed": _int(config.get("seed")),
        "threads": _int(config.get("threads")),
        "started": _time(records[0].get("timestamp"), records[0].get("time_this_iter_s"))
        if records
        else None,
        "ended": _time(last.get("timestamp")),
        "config": json.dumps(config, sort_keys=True, default=str),
    }
    epochs = [
        {
            "search": search,
            "trial_id": trial_id,
            "epoch": _int(r.get("epoch")),
            "stage": r.get("stage"),
            "stage_epoch": _int(r.get("stage_epoch")),
            "train_loss": _float(r.get("train_loss")),
            "train_accuracy": _float(r.get("train_accuracy")),
            "val_loss": _float(r.get("val_loss")),
            **{f"val_{m}": _float(r.get(f"val_{m}")) for m in MACRO_METRICS},
            "best_selection": _float(r.get("best_selection")),
            "epoch_seconds": _float(r.get("epoch_seconds")),
            "node_id": r.get("node_id"),
        }
        for r in records
    ]
    per_class = [
        {
            "search": search,
            "trial_id": trial_id,
            "epoch": _int(r.get("epoch")),
            "class": key.split("/", 1)[1],
            "metric": metric,
            "value": _float(value),
        }
        for r in records
        for key, value in r.items()
        for metric in PER_CLASS_METRICS
        if key.startswith(f"val_{metric}/")
    ]
    return TrialRows(trial, epochs, per_class)


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


def _time(timestamp: Any, minus: Any = None) -> datetime | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp) - float(minus or 0), tz=UTC)
