"""Trainables: the seeds' two-stage transfer-learning protocol (warm-up with the backbone
frozen, then fine-tune of its top layers) as a plain function taking a `report` callable,
so it runs and is tested without Ray. Its Ray Tune adapter lives in `trainables.tune`,
imported on its own so that nothing else here needs Ray.

The names below are imported when first used, not with the package: the configuration
(`trainables.config`) and the metrics (`trainables.metrics`) need no torch, so the result
tables can read them without loading torch."""

from importlib import import_module
from typing import Any

_HOMES = {
    "AugmentSpec": "trainables.config",
    "HeadSpec": "trainables.config",
    "TrialConfig": "trainables.config",
    "UnfreezeRule": "trainables.config",
    "classification_metrics": "trainables.metrics",
    "ModelEnsemble": "trainables.ensemble",
    "PolarMapNet": "trainables.model",
    "FoldedData": "trainables.pool",
    "TrialData": "trainables.pool",
    "TrialResult": "trainables.protocol",
    "run_protocol": "trainables.protocol",
    "trial_data": "trainables.data",
    "Unfreezing": "trainables.unfreeze",
    "WeightsNotFound": "trainables.weight_files",
    "create_backbone": "trainables.weights",
}

__all__ = sorted(_HOMES, key=lambda name: (not name[0].isupper(), name))


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trainables' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_HOMES))
