"""Trainables: the seeds' two-stage transfer-learning protocol (warm-up with the backbone
frozen, then fine-tune of its top layers) as a plain function taking a `report` callable,
so it runs and is tested without Ray. Its Ray Tune adapter lives in `trainables.tune`,
imported on its own so that nothing else here needs Ray."""

from trainables.augment import AugmentSpec
from trainables.config import TrialConfig
from trainables.data import trial_data
from trainables.metrics import classification_metrics
from trainables.model import HeadSpec, PolarMapNet
from trainables.protocol import TrialData, TrialResult, run_protocol
from trainables.unfreeze import UnfreezeRule, Unfreezing
from trainables.weights import WeightsNotFound, create_backbone

__all__ = [
    "AugmentSpec",
    "HeadSpec",
    "PolarMapNet",
    "TrialConfig",
    "TrialData",
    "TrialResult",
    "UnfreezeRule",
    "Unfreezing",
    "WeightsNotFound",
    "classification_metrics",
    "create_backbone",
    "run_protocol",
    "trial_data",
]
