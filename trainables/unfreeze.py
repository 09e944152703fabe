"""Unfreezing the top k layers of a backbone, under the seed's one-third rule.

A "layer" is a module that owns parameters directly (convolution, linear, normalization):
the unit closest to Keras layers, which the seeds counted. timm's `group_matcher` groups
are too coarse for the rule (resnet18's top group holds 42 % of its parameters).
Layers are ordered by when `forward_features` runs them, found once with hooks on a small
input, so modules outside the feature path (VGG's FC6/FC7 `pre_logits`, classifiers) are
not part of the backbone and never count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainables.config import UnfreezeRule

__all__ = [
    "Unfreezing",
    "architecture_key",
    "feature_layers",
    "plan_unfreezing",
    "probe_size",
]


@dataclass(frozen=True)
class Unfreezing:
    """What fine-tuning trains.

    Args:
        requested: the k asked for.
        effective: the k the rule allows (at most `requested`).
        allowed: the largest k the rule allows for this backbone.
        layers: names of the unfrozen layers, top first.
        trainable_share: unfrozen backbone parameters / all backbone parameters.
        total_layers: parameterized layers on the feature path.
    """

    requested: int
    effective: int
    allowed: int
    layers: tuple[str, ...]
    trainable_share: float
    total_layers: int


def probe_size(backbone: nn.Module) -> int:
    """A small input size the backbone accepts: half its default size (at least 64 px;
    Inception-style networks need more than 64), or the default where it is fixed."""
    config = getattr(backbone, "pretrained_cfg", None) or {}
    size = int(config.get("input_size", (3, 224, 224))[-1])
    return size if config.get("fixed_input_size") else max(64, size // 2)


def architecture_key(backbone: nn.Module) -> str:
    """timm's architecture name and the module tree's shape: equal for equal structures,
    so what is learnt by probing one model holds for every model built the same way."""
    config = getattr(backbone, "pretrained_cfg", None) or {}
    shape = ";".join(f"{n}:{type(m).__name__}" for n, m in backbone.named_modules())
    return f"{config.get('architecture', type(backbone).__name__)}:{hash(shape)}"


_LAYER_NAMES: dict[tuple[str, int], tuple[str, ...]] = {}


def feature_layers(
    backbone: nn.Module, input_size: int | None = None
) -> list[tuple[str, nn.Module]]:
    """(name, module) of every parameterized layer `forward_features` runs, in the order it
    runs them (each once, at its first call), found on an `input_size` probe (default
    `probe_size`) once per architecture and process."""
    input_size = input_size or probe_size(backbone)
    key = (architecture_key(backbone), input_size)
    if key not in _LAYER_NAMES:
        _LAYER_NAMES[key] = tuple(name for name, _ in _probe_layers(backbone, input_size))
    modules = dict(backbone.named_modules())
    return [(name, modules[name]) for name in _LAYER_NAMES[key]]


def _probe_layers(backbone: nn.Module, input_size: int) -> list[tuple[str, nn.Module]]:
    order: list[str] = []
    names = {module: name for name, module in backbone.named_modules()}
    owning = [m for m in backbone.modules() if any(True for _ in m.parameters(recurse=False))]
    hooks = [m.register_forward_hook(_recorder(names[m], order)) for m in owning]
    was_training = backbone.training
    try:
        backbone.eval()
        with torch.no_grad():
            backbone.forward_features(torch.zeros(1, 3, input_size, input_size))
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    modules = dict(backbone.named_modules())
    return [(name, modules[name]) for name in dict.fromkeys(order)]


def plan_unfreezing(
    layers: list[tuple[str, nn.Module]], requested: int, rule: UnfreezeRule | None = None
) -> Unfreezing:
    """The top `requested` layers, cut back until the rule holds."""
    rule = rule or UnfreezeRule()
    if requested < 0:
        raise ValueError(f"unfreeze depth must be 0 or more, got {requested}")
    sizes = [sum(p.numel() for p in m.parameters(recurse=False)) for _, m in layers]
    total = sum(sizes)
    allowed, running = 0, 0
    for k, size in enumerate(reversed(sizes), start=1):
        running += size
        if k > rule.max_layer_share * len(layers) or running > rule.max_parameter_share * total:
            break
        allowed = k
    effective = min(requested, allowed)
    chosen = [name for name, _ in reversed(layers)][:effective]
    trainable = sum(list(reversed(sizes))[:effective])
    return Unfreezing(
        requested, effective, allowed, tuple(chosen), trainable / total if total else 0.0,
        len(layers),
    )  # fmt: skip


def _recorder(name: str, order: list[str]):
    def record(module: nn.Module, inputs: object, output: object) -> None:
        order.append(name)

    return record
