"""Cutting a backbone into a frozen prefix and a trainable top."""

from __future__ import annotations

import pytest
import timm
import torch

from trainables.chain import feature_chain
from trainables.unfreeze import feature_layers, plan_unfreezing


def backbone(name):
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=0).eval()


@pytest.mark.parametrize(
    ("name", "size"),
    [("resnet18", 96), ("densenet121", 96), ("efficientnet_b0", 96), ("inception_v3", 160)],
)
def test_the_chain_is_forward_features_and_any_cut_composes(name, size):
    model = backbone(name)
    chain = feature_chain(model)
    assert chain is not None and len(chain.units) > 3
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        # Pretrained norms are not identities, as they are at initialisation: the chain
        # found on the fresh model must still be the forward pass after they change.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        expected = model.forward_features(x)
        assert torch.allclose(chain.run(x), expected, atol=1e-5, rtol=1e-4)
        middle = len(chain.units) // 2
        prefix = chain.run(x, 0, middle)
        assert torch.allclose(chain.run(prefix, middle), expected, atol=1e-5, rtol=1e-4)
        own = [n for n, m in chain.units if any(True for _ in m.parameters(recurse=False))]
        assert all(n in dict(model.named_modules()) for n in own)


def test_resnet18_is_cut_at_the_block_holding_the_first_unfrozen_layer():
    model = backbone("resnet18")
    plan = plan_unfreezing(feature_layers(model), 3)
    chain = feature_chain(model)
    cut = chain.cut_before(plan.layers)
    assert chain.units[cut][0] == "layer4.1"  # layer4.1.bn1 is the lowest unfrozen layer
    names = [name for name, _ in chain.units]
    assert names[:4] == ["conv1", "bn1", "act1", "maxpool"] and "layer3.1" in names


def test_densenet_is_cut_at_a_dense_block_boundary_not_inside_one():
    model = backbone("densenet121")
    chain = feature_chain(model)
    names = [name for name, _ in chain.units]
    assert "features.denseblock4" in names
    assert not any(".denselayer" in name for name in names)  # concatenation: kept whole
    cut = chain.cut_before(plan_unfreezing(feature_layers(model), 65).layers)
    assert names[cut] == "features.denseblock4"


def test_nothing_unfrozen_means_the_whole_backbone_is_the_prefix():
    chain = feature_chain(backbone("resnet18"))
    assert chain.cut_before([]) == len(chain.units)


def test_a_vision_transformer_has_no_chain():
    assert feature_chain(backbone("test_vit")) is None
