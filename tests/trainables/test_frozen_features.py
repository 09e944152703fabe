"""The frozen-feature plan's typed keys name the same store entries and compute paths as
the strings they replaced ("pooled"/"prefix", "pool"/"copy<c>", "cached-prefix:<cut>")."""

from __future__ import annotations

import pytest
import torch

from trainables.config import AugmentSpec, HeadSpec, TrialConfig
from trainables.frozen_features import (
    POOL,
    FeatureKind,
    FrozenFeatures,
    FrozenWork,
    Split,
    path_name,
)
from trainables.frozen_store import FrozenWorkStore
from trainables.model import PolarMapNet
from trainables.pool import TrialData
from trainables.weight_files import weights_digest
from trainables.weights import initial_backbone

CONFIG = TrialConfig(
    "test_resnet",
    views=("rest", "stress"),
    head=HeadSpec((8,), (0.0,)),
    a=2.5,
    unfreeze=3,
    warmup_epochs=1,
    finetune_epochs=1,
    batch_size=4,
    augment=AugmentSpec(hflip=True),
    augment_copies=2,
    seed=4,
)


@pytest.fixture(scope="module")
def data() -> TrialData:
    generator = torch.Generator().manual_seed(3)
    y = torch.randint(0, 3, (10,), generator=generator)
    x = torch.randn(10, 2, 3, 48, 48, generator=generator)
    return TrialData(x[:6], y[:6], x[6:], y[6:], ("A", "B", "C"))


def plan(data: TrialData, store: FrozenWorkStore | None = None) -> FrozenFeatures:
    backbone = initial_backbone(CONFIG.backbone, seed=CONFIG.seed)
    model = PolarMapNet(backbone, len(CONFIG.views), 3, CONFIG.head)
    device = torch.device("cpu")
    return FrozenFeatures(CONFIG, model, device, FrozenWork(data.pool, device, store))


def old_store_key(data: TrialData, kind: str, inputs: str) -> str:
    """A store key as the fold trainer formed it from strings."""
    return FrozenWorkStore.key(
        kind=kind,
        weights=weights_digest(CONFIG.backbone, CONFIG.pretrained, CONFIG.weights, CONFIG.seed),
        inputs=inputs,
        cut="layer4.0",
        device="cpu",
        autocast="None",
    )


def test_the_keys_are_values_not_strings_to_parse():
    assert [k.value for k in FeatureKind] == ["pooled", "prefix"]
    assert Split(2) == Split(2) and Split(2) != POOL and Split(0) != POOL
    assert len({(FeatureKind.PREFIX, POOL), (FeatureKind.PREFIX, Split(0))}) == 2


def test_compute_paths_keep_their_recorded_names():
    assert path_name(None, "layer4.0") == "full"
    assert path_name(FeatureKind.POOLED, "layer4.0") == "pooled-features"
    assert path_name(FeatureKind.PREFIX, "layer4.0") == "cached-prefix:layer4.0"


def test_store_keys_are_the_ones_the_strings_gave(data):
    features = plan(data)
    assert features.compute_path == {
        "warmup": "pooled-features",
        "finetune": "cached-prefix:layer4.0",
        "augmentation": "pool of 2 copies",
    }
    for view, digest in enumerate(data.pool.digests):
        for kind in FeatureKind:
            pool_key = features.store_key(kind, POOL, view)
            copy_key = features.store_key(kind, Split(1), view)
            assert pool_key == old_store_key(data, kind.value, digest)
            assert copy_key == old_store_key(data, kind.value, f"{digest}:{CONFIG.augment}:1")
            assert pool_key != copy_key != features.store_key(kind, Split(0), view)


def test_a_stage_starts_from_the_stacked_copies_and_drop_forgets_a_kind(data, tmp_path):
    store = FrozenWorkStore(tmp_path)
    features = plan(data, store)
    work = features.work
    pooled = features.start_points("warmup", copies=True)
    assert pooled.shape[:2] == (2, 10)  # (copies, maps, views x features)
    # the pooled features of 2 copies and their prefixes, per view, computed and stored
    assert work.counts == {"read": 0, "computed": 8}
    assert set(work.entries) == {(FeatureKind.PREFIX, Split(0)), (FeatureKind.PREFIX, Split(1))}
    prefix = features.start_points("finetune", copies=True)
    assert prefix.shape[:3] == (2, 10, 2)  # (copies, maps, views, ...)
    assert not work.entries  # the copies' prefixes are held in the stack only
    work.drop(FeatureKind.POOLED)
    assert set(work.stacked) == {FeatureKind.PREFIX}
