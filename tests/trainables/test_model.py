"""The classifier: shared backbone for every view, pooled features, head; freezing."""

from __future__ import annotations

import pytest
import torch

from trainables.config import HeadSpec
from trainables.model import PolarMapNet, build_head
from trainables.weights import create_backbone


@pytest.mark.parametrize("backbone", ["test_resnet", "test_efficientnet"])
@pytest.mark.parametrize("views", [1, 2, 3])
def test_model_builds_and_runs_for_every_mode(backbone, views):
    model = PolarMapNet(create_backbone(backbone), views, 3, HeadSpec((32,), (0.1,)))
    logits = model(torch.randn(4, views, 3, 64, 64))
    assert logits.shape == (4, 3)
    assert model.head[0].in_features == views * model.num_features


def test_views_share_one_backbone_and_keep_their_order():
    torch.manual_seed(0)
    model = PolarMapNet(create_backbone("test_resnet"), 2, 3, HeadSpec()).eval()
    rest, stress = torch.randn(2, 1, 3, 64, 64)
    features = model.features(torch.stack([rest, stress], dim=1))
    alone = model.features(rest.unsqueeze(1))
    n = model.num_features
    assert torch.allclose(features[:, :n], alone, atol=1e-5)
    assert not torch.allclose(features[:, n:], alone, atol=1e-3)


def test_the_first_seeds_head_is_expressible():
    head = build_head(HeadSpec((512, 256), (0.5, 0.3)), 1024, 3)
    assert [m.out_features for m in head if isinstance(m, torch.nn.Linear)] == [512, 256, 3]
    assert [m.p for m in head if isinstance(m, torch.nn.Dropout)] == [0.5, 0.3]
    with pytest.raises(ValueError, match="2 widths but 1 dropouts"):
        HeadSpec((512, 256), (0.5,))


def test_warmup_freezes_the_backbone_and_keeps_its_norms_in_eval():
    model = PolarMapNet(create_backbone("test_resnet"), 2, 3, HeadSpec()).train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    assert model.head.training


def test_unfreezing_trains_exactly_the_top_layers():
    model = PolarMapNet(create_backbone("test_resnet"), 1, 3, HeadSpec())
    plan = model.unfreeze_top(3)
    model.train()
    modules = dict(model.layers)
    trainable = {n for n, m in model.layers if any(p.requires_grad for p in m.parameters())}
    assert trainable == set(plan.layers) and len(plan.layers) == 3
    for name, module in model.layers:
        assert module.training == (name in plan.layers)
    assert modules[plan.layers[0]].training
    model.freeze_backbone()
    assert not any(p.requires_grad for p in model.backbone.parameters())
