"""A trial's reports as the trainable makes them, and a small store of known trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from results.rows import trial_rows
from results.store import ResultStore


@pytest.fixture
def config() -> dict:
    """A trial's configuration as a search samples it."""
    return {
        "backbone": "resnet18", "mode": "dual", "width": 64, "depth": 1, "dropout": 0.2,
        "a": 3.5, "unfreeze": 3, "warmup_epochs": 2, "finetune_epochs": 1, "batch_size": 32,
        "augment": "none", "seed": 0, "threads": 2, "cpus": 2.0, "gpus": 0.5,
    }  # fmt: skip


@pytest.fixture
def make_records():
    """`make_records(epochs, best=2, seconds=2.0)`: one report per epoch, 2 warm-up epochs
    then fine-tune, the selection metric improving up to epoch `best`, each epoch taking
    `seconds`."""

    def make(epochs: int, best: int = 2, seconds: float = 2.0) -> list[dict]:
        return [
            {
                "epoch": e, "stage": "warmup" if e <= 2 else "finetune",
                "stage_epoch": e if e <= 2 else e - 2, "train_loss": 1.0 / e,
                "train_accuracy": 0.3 + e / 10, "val_loss": 1.1 / e,
                "val_accuracy": 0.5 + e / 10, "val_balanced_accuracy": 0.4 + e / 10,
                "val_roc_auc": 0.6, "val_sensitivity/Normal": 0.7,
                "val_sensitivity/Ischemia": 0.3, "best_selection": 0.4 + min(e, best) / 10,
                "best_epoch": min(e, best), "selection_metric": "balanced_accuracy",
                "effective_unfreeze": 3, "requested_unfreeze": 3, "trainable_share": 0.21,
                "best_warmup_epoch": min(e, 2), "best_finetune_epoch": 0,
                "compute_path_warmup": "pooled-features",
                "compute_path_finetune": "cached-prefix:layer4.1", "device": "NVIDIA H100",
                "time_total_s": seconds * e, "time_this_iter_s": seconds,
                "timestamp": 1_800_000_000 + seconds * e, "hostname": "node-1",
                "epoch_seconds": seconds,
            }
            for e in range(1, epochs + 1)
        ]  # fmt: skip

    return make


@pytest.fixture
def example_store(tmp_path, config, make_records) -> Path:
    """Two searches' tables. s1: t1 resnet18/dual completed (3 epochs of 600 s, best 0.6),
    t2 resnet18/stress stopped (2 epochs, best 0.5), t3 resnet18/dual errored after 1;
    s2: t9 vgg16/dual completed (3 epochs, best 0.7). Every trial held 0.5 GPU, 2 CPUs."""
    store = ResultStore(tmp_path / "results")
    stress, vgg = {**config, "mode": "stress"}, {**config, "backbone": "vgg16"}
    for search, trial_id, trial_config, records, error in (
        ("s1", "t1", config, make_records(3, seconds=600.0), None),
        ("s1", "t2", stress, make_records(2, best=1), None),
        ("s1", "t3", config, make_records(1), "RuntimeError: CUDA out of memory"),
        ("s2", "t9", vgg, make_records(3, best=3), None),
    ):
        store.write_trial(trial_rows(search, trial_id, trial_config, records, error))
    return tmp_path / "results"
