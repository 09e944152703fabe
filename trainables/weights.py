"""Building a timm backbone, with pretrained weights from the hub or from local files.

Offline clusters and this project's machines cannot reach the model hub, so weights can
come from a file or a folder (for example one filled by `polarmap weights fetch`), or from
an s3:// prefix with a folder's layout, copied once per node into a local cache
(`trainables.weights_remote`). timm loads them through `pretrained_cfg_overlay(file=...)`,
with `torch.load(weights_only=True)` for PyTorch files and safetensors otherwise: no
pickled code runs.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "WeightsNotFound",
    "create_backbone",
    "initial_backbone",
    "weight_candidates",
    "weights_digest",
]

SUFFIXES = (".safetensors", ".pth", ".bin")


class WeightsNotFound(FileNotFoundError):
    """Pretrained weights were asked for and are not where they were looked for."""


def weight_candidates(name: str, folder: Path) -> list[Path]:
    """Where a folder may hold the weights of backbone `name` (optionally `arch.tag`), in
    the order they are tried: `<name>.<suffix>`, `<arch>.<suffix>`, and the Hugging Face
    layout `<name>/model.safetensors` or `<name>/pytorch_model.bin`."""
    arch = name.split(".")[0]
    stems = list(dict.fromkeys([name, arch]))
    paths = [folder / f"{stem}{suffix}" for stem in stems for suffix in SUFFIXES]
    for stem in stems:
        paths += [folder / stem / "model.safetensors", folder / stem / "pytorch_model.bin"]
    return paths


def create_backbone(
    name: str, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """A timm model without classifier (`num_classes=0`).

    Args:
        name: timm model name, optionally with a pretrained tag (`resnet18.a1_in1k`).
        pretrained: load ImageNet weights: from `weights` when given, else the model hub.
        weights: a weights file, or a folder searched with `weight_candidates`, or a URI
            (s3://bucket/prefix, of a file or of such a folder) whose file is copied once
            into this node's cache (`trainables.weights_remote.cached_weights`).

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
    if weights is not None:
        path = _local_weights(name, weights)
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


def weights_digest(backbone: str, pretrained: bool, weights: str | Path | None, seed: int) -> str:
    """What decides the backbone's weights: the hub tag, the file found for it (local path
    or URI, size, time of change; a URI's file is not downloaded), or the seed of a random
    initialisation.

    Raises:
        WeightsNotFound: as `create_backbone`.
    """
    if not pretrained:
        return f"{backbone}:random-init:{seed}"
    if weights is None:
        return f"{backbone}:hub"
    if _is_remote(weights):
        from trainables.weights_remote import find_remote_weights

        _, remote = find_remote_weights(backbone, str(weights))
        return f"{backbone}:{remote.location}:{remote.size}:{remote.mtime_ns}"
    path = _find_weights(backbone, Path(weights)).resolve()
    stat = path.stat()
    return f"{backbone}:{path}:{stat.st_size}:{stat.st_mtime_ns}"


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


def _is_remote(weights: str | Path) -> bool:
    return isinstance(weights, str) and "://" in weights


def _local_weights(name: str, weights: str | Path) -> Path:
    """The local file of `name`'s weights: found in a file or folder, or downloaded once
    from a URI into this node's cache."""
    if _is_remote(weights):
        from trainables.weights_remote import cached_weights

        return cached_weights(name, str(weights))
    return _find_weights(name, Path(weights))


def _find_weights(name: str, weights: Path) -> Path:
    if weights.is_file():
        return weights
    searched = weight_candidates(name, weights) if weights.is_dir() else [weights]
    for path in searched:
        if path.is_file():
            return path
    raise WeightsNotFound(
        f"pretrained weights for backbone {name!r} not found; searched:\n"
        + "\n".join(f"  {path}" for path in searched)
    )
