"""The classifier: one shared timm backbone for every view, pooled features per view
concatenated, and a small head.

Features are `forward_features` then global average pooling, as the seeds' Keras models
had them (include_top=False): timm's own head is never used, so VGG's FC6/FC7
(`pre_logits`, about 119 M parameters) stay out. Views are folded into the batch, so one
backbone pass serves all of them.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.chain import Chain
from trainables.config import HeadSpec, UnfreezeRule
from trainables.unfreeze import (
    Unfreezing,
    architecture_key,
    feature_layers,
    plan_unfreezing,
    probe_size,
)

__all__ = ["PolarMapNet", "build_head", "pool_features"]


def build_head(spec: HeadSpec, in_features: int, num_classes: int) -> nn.Sequential:
    """[Linear(width) -> ReLU -> Dropout] per entry of the spec, then Linear(classes)."""
    layers: list[nn.Module] = []
    for width, dropout in zip(spec.widths, spec.dropouts, strict=True):
        layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def pool_features(features: torch.Tensor) -> torch.Tensor:
    """Global average pooling of `forward_features` output: over H and W of a feature map
    (B, C, H, W), or over the tokens of a transformer (B, N, C)."""
    if features.ndim == 4:
        return features.mean(dim=(2, 3))
    if features.ndim == 3:
        return features.mean(dim=1)
    raise ValueError(f"cannot pool backbone features of shape {tuple(features.shape)}")


_NUM_FEATURES: dict[tuple[str, int], int] = {}


def _num_features(backbone: nn.Module, size: int) -> int:
    """Width of the pooled features, probed once per architecture and process (timm's
    `num_features` is FC7's 4096 for VGG, not the 512 channels of `forward_features`)."""
    key = (architecture_key(backbone), size)
    if key not in _NUM_FEATURES:
        with torch.no_grad():
            was_training = backbone.training
            backbone.eval()
            probe = backbone.forward_features(torch.zeros(1, 3, size, size))
            backbone.train(was_training)
        _NUM_FEATURES[key] = pool_features(probe).shape[1]
    return _NUM_FEATURES[key]


class PolarMapNet(nn.Module):
    """Backbone shared by `num_views` views -> concatenated pooled features -> head.

    Input: (batch, views, 3, H, W). Output: (batch, classes) logits.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_views: int,
        num_classes: int,
        head: HeadSpec,
    ):
        super().__init__()
        self.backbone = backbone
        self.num_views = num_views
        size = probe_size(backbone)
        self.layers = feature_layers(backbone, size)
        self.num_features = _num_features(backbone, size)
        self.head = build_head(head, self.num_features * num_views, num_classes)
        self.unfreezing: Unfreezing | None = None
        self.freeze_backbone()

    @property
    def num_classes(self) -> int:
        return self.head[-1].out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, H, W) -> (B, V * features) pooled backbone features."""
        batch = x.shape[0]
        images = x.flatten(0, 1)
        if images.is_cuda:  # tensor cores prefer NHWC
            images = images.contiguous(memory_format=torch.channels_last)
        pooled = pool_features(self.backbone.forward_features(images))
        return pooled.reshape(batch, -1)

    def features_from(self, activations: torch.Tensor, chain: Chain, start: int) -> torch.Tensor:
        """(B, V, ...) activations entering unit `start` of the backbone's chain -> the same
        (B, V * features) pooled features as `features` on the maps."""
        batch = activations.shape[0]
        x = activations.flatten(0, 1)
        if x.is_cuda and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return pool_features(chain.run(x, start)).reshape(batch, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def freeze_backbone(self) -> None:
        """Warm-up: no backbone parameter trains."""
        self.backbone.requires_grad_(False)
        self.unfreezing = None
        self.train(self.training)

    def unfreeze_top(self, k: int, rule: UnfreezeRule | None = None) -> Unfreezing:
        """Fine-tune: the top k parameterized layers train, cut back to what `rule` allows."""
        self.backbone.requires_grad_(False)
        plan = plan_unfreezing(self.layers, k, rule)
        modules = dict(self.layers)
        for name in plan.layers:
            modules[name].requires_grad_(True)
        self.unfreezing = plan
        self.train(self.training)
        return plan

    def train(self, mode: bool = True) -> PolarMapNet:
        """Frozen layers stay in eval mode (BatchNorm keeps its ImageNet statistics) even
        while the rest trains."""
        super().train(mode)
        if mode:
            for _, module in self.layers:
                if not any(p.requires_grad for p in module.parameters(recurse=False)):
                    module.eval()
        return self
