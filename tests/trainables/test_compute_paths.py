"""The cached compute paths (pooled features for warm-up, activations at the cut for
fine-tune) give what the exact path gives, and the path a trial used is recorded."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trainables.config import AugmentSpec, HeadSpec, TrialConfig
from trainables.frozen_store import FrozenWorkStore
from trainables.protocol import TrialData, run_protocol

CONFIG = TrialConfig(
    "test_resnet",
    views=("rest", "stress"),
    head=HeadSpec((16,), (0.0,)),
    a=2.5,
    unfreeze=3,
    warmup_epochs=2,
    finetune_epochs=3,
    batch_size=8,
    seed=3,
)


@pytest.fixture(scope="module")
def data() -> TrialData:
    generator = torch.Generator().manual_seed(1)
    y = torch.randint(0, 3, (40,), generator=generator)
    x = torch.randn(40, 2, 3, 48, 48, generator=generator) * 0.5
    x[:, 1, :, 8:40, 8:40] += y.view(-1, 1, 1, 1).float()
    return TrialData(x[:28], y[:28], x[28:], y[28:], ("A", "B", "C"))


def test_cached_and_exact_paths_give_the_same_losses_and_weights(data):
    cached = run_protocol(CONFIG, data)
    exact = run_protocol(replace(CONFIG, feature_cache=False), data)
    assert cached.compute_path == {
        "warmup": "pooled-features",
        "finetune": "cached-prefix:layer4.0",
        "augmentation": "none",
    }
    assert exact.compute_path == {"warmup": "full", "finetune": "full", "augmentation": "none"}
    for a, b in zip(cached.history, exact.history, strict=True):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_roc_auc"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["epoch"], key)
    with torch.no_grad():
        x = data.val_x
        assert torch.allclose(cached.model.eval()(x), exact.model.eval()(x), atol=1e-4)


def without_timing(history):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


def test_augmentation_draws_from_a_pool_of_copies(data, tmp_path):
    config = replace(CONFIG, augment=AugmentSpec(hflip=True, rotate=10), augment_copies=4)
    store = FrozenWorkStore(tmp_path)
    pooled = run_protocol(config, data, store=store)
    assert pooled.compute_path == {
        "warmup": "pooled-features",
        "finetune": "cached-prefix:layer4.0",
        "augmentation": "pool of 4 copies",
    }
    # prefix and pooled features of 4 training copies and of the validation maps, per view
    assert len(list(tmp_path.rglob("*.pt"))) == 2 * (4 + 1) * 2
    again = run_protocol(config, data)
    assert without_timing(again.history) == without_timing(pooled.history)
    plain = run_protocol(CONFIG, data)
    assert without_timing(plain.history) != without_timing(pooled.history)
    # The pool does not depend on the head or learning rate: another trial reuses it.
    run_protocol(replace(config, a=3.0, head=HeadSpec((8,), (0.0,))), data, store=store)
    assert len(list(tmp_path.rglob("*.pt"))) == 20


def test_the_exact_mode_augments_every_epoch(data):
    config = replace(CONFIG, augment=AugmentSpec(hflip=True), feature_cache=False)
    result = run_protocol(config, data)
    assert result.compute_path == {
        "warmup": "full",
        "finetune": "full",
        "augmentation": "per epoch",
    }


def test_a_transformer_fine_tunes_on_the_whole_model(data):
    config = replace(CONFIG, backbone="test_vit", warmup_epochs=1, finetune_epochs=1)
    vit_data = TrialData(
        torch.nn.functional.interpolate(data.train_x.flatten(0, 1), size=160).unflatten(0, (28, 2)),
        data.train_y,
        torch.nn.functional.interpolate(data.val_x.flatten(0, 1), size=160).unflatten(0, (12, 2)),
        data.val_y,
        data.class_names,
    )
    result = run_protocol(config, vit_data)
    assert result.compute_path == {
        "warmup": "pooled-features",
        "finetune": "full",
        "augmentation": "none",
    }
