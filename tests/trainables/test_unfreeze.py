"""The one-third rule over parameterized layers, on real timm architectures."""

from __future__ import annotations

import pytest
import timm

from trainables.config import UnfreezeRule
from trainables.unfreeze import feature_layers, plan_unfreezing


@pytest.fixture(scope="module")
def layers():
    cache = {}

    def get(name):
        if name not in cache:
            model = timm.create_model(name, pretrained=False, num_classes=0)
            cache[name] = feature_layers(model)
        return cache[name]

    return get


def test_resnet18_allows_three_layers_with_a_fifth_of_its_parameters(layers):
    plan = plan_unfreezing(layers("resnet18"), requested=10)
    assert plan.allowed == 3 and plan.effective == 3 and plan.requested == 10
    assert plan.layers == ("layer4.1.bn2", "layer4.1.conv2", "layer4.1.bn1")
    assert plan.trainable_share == pytest.approx(0.211, abs=0.001)
    assert plan.total_layers == 40  # 20 convolutions (3 downsampling) + 20 norms


def test_vgg16_counts_only_the_convolutions_not_fc6_fc7(layers):
    vgg = layers("vgg16")
    assert all(name.startswith("features.") for name, _ in vgg)
    assert len(vgg) == 13
    plan = plan_unfreezing(vgg, requested=5)
    assert plan.allowed >= 1 and plan.trainable_share <= 1 / 3


def test_densenet121_allows_the_top_of_its_last_dense_block(layers):
    plan = plan_unfreezing(layers("densenet121"), requested=100)
    # 241 layers (120 convolutions, 121 norms); the parameter share binds first.
    assert plan.total_layers == 241
    assert plan.allowed == 65 and 0.30 < plan.trainable_share <= 1 / 3
    assert plan.layers[0] == "features.norm5"


def test_a_looser_rule_allows_more_and_zero_allows_nothing(layers):
    resnet = layers("resnet18")
    assert plan_unfreezing(resnet, 10, UnfreezeRule(0.5, 0.5)).allowed > 3
    assert plan_unfreezing(resnet, 0).effective == 0
    assert plan_unfreezing(resnet, 0).trainable_share == 0
    with pytest.raises(ValueError, match="0 or more"):
        plan_unfreezing(resnet, -1)


def test_layers_are_in_the_order_forward_features_runs_them(layers):
    names = [name for name, _ in layers("resnet18")]
    assert names[:2] == ["conv1", "bn1"]
    assert names.index("layer1.0.conv1") < names.index("layer2.0.conv1")
    assert names.index("layer2.0.bn2") < names.index("layer2.0.downsample.0")
