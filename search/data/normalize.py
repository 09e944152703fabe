"""What a backbone expects as input, and turning cleaned maps into that.

Size, mean and std come from the backbone's timm pretrained config (ResNetV2's mean =
std = 0.5 is the second seed's [-1, 1] scaling). timm's eval transform is deliberately
not used: its centre crop (`crop_pct` < 1) would cut off the basal ring at the map's rim.
torch and timm are imported on first use, so data commands stay quick to start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["BackboneInput", "backbone_input", "normalize_maps"]


@dataclass(frozen=True)
class BackboneInput:
    """Input size (square, pixels) and per-channel mean and std in [0, 1] units."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def backbone_input(name: str) -> BackboneInput:
    """Look up a timm backbone's input size, mean and std by model name (a `.tag` suffix
    picks a pretrained variant), without building the model.

    Raises:
        ValueError: timm does not know the name.
    """
    import timm

    architecture = name.split(".")[0]
    if not timm.is_model(architecture):
        raise ValueError(f"unknown timm backbone {name!r} (see timm.list_models())")
    try:
        config = timm.models.get_pretrained_cfg(name, allow_unregistered=True)
    except RuntimeError as exc:  # an unknown pretrained tag
        raise ValueError(f"backbone {name!r}: {exc}") from None
    if config is None:  # an architecture without any pretrained config: timm's defaults
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

        return BackboneInput(224, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    _, height, width = config.input_size
    if height != width:
        raise ValueError(f"backbone {name!r} expects {width} x {height} input; maps are square")
    return BackboneInput(height, tuple(config.mean), tuple(config.std))


def normalize_maps(maps: np.ndarray, spec: BackboneInput) -> torch.Tensor:
    """(..., H, W, 3) uint8 maps -> (..., 3, H, W) float32 tensor, (x / 255 - mean) / std.

    Raises:
        ValueError: the maps are not uint8 at the backbone's input size.
    """
    import torch

    if maps.dtype != np.uint8 or maps.shape[-3:] != (spec.size, spec.size, 3):
        raise ValueError(
            f"expected uint8 maps of shape (..., {spec.size}, {spec.size}, 3), "
            f"got {maps.dtype} {maps.shape}"
        )
    pixels = torch.from_numpy(np.ascontiguousarray(maps)).movedim(-1, -3).float() / 255
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (pixels - mean) / std
