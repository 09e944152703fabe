"""Augmentation of map tensors on the training device: flips and small rotations.

The seeds flipped and rotated by up to 10 degrees. On a polar map a horizontal flip swaps
the septal and lateral walls (a vertical one, anterior and inferior), so flips make
left-right (top-bottom) territory patterns indistinguishable: keep them off when that
matters. Random draws come from a generator the caller seeds, so epochs are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["AugmentSpec", "augment"]


@dataclass(frozen=True)
class AugmentSpec:
    """hflip/vflip: flip with probability 0.5; rotate: uniform angle in +-degrees."""

    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0

    @property
    def active(self) -> bool:
        return self.hflip or self.vflip or self.rotate > 0

    @classmethod
    def parse(cls, text: str) -> AugmentSpec:
        """'none', or parts joined by '+': 'hflip', 'vflip', 'rotate10' (degrees)."""
        if text in ("", "none"):
            return cls()
        options: dict[str, object] = {}
        for part in text.split("+"):
            if part in ("hflip", "vflip"):
                options[part] = True
            elif part.startswith("rotate") and part[6:].replace(".", "", 1).isdigit():
                options["rotate"] = float(part[6:])
            else:
                raise ValueError(
                    f"augmentation {text!r}: expected 'none' or parts joined by '+' from "
                    "hflip, vflip, rotate<degrees> (e.g. hflip+rotate10)"
                )
        return cls(**options)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [p for p, on in (("hflip", self.hflip), ("vflip", self.vflip)) if on]
        if self.rotate > 0:
            parts.append(f"rotate{self.rotate:g}")
        return "+".join(parts) or "none"


def augment(x: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """(B, V, C, H, W) -> same shape; every view of a patient gets the same transform, so
    rest and stress stay aligned. `generator` lives on the CPU."""
    if not spec.active:
        return x
    batch = x.shape[0]
    if spec.hflip:
        flip = torch.rand(batch, generator=generator) < 0.5
        x = torch.where(flip.to(x.device).view(-1, 1, 1, 1, 1), x.flip(-1), x)
    if spec.vflip:
        flip = torch.rand(batch, generator=generator) < 0.5
        x = torch.where(flip.to(x.device).view(-1, 1, 1, 1, 1), x.flip(-2), x)
    if spec.rotate > 0:
        angles = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(spec.rotate)
        cos, sin = torch.cos(angles), torch.sin(angles)
        zero = torch.zeros_like(cos)
        theta = torch.stack(
            [torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1
        )
        # Outside the rotated map: the value of a black pixel, each view's minimum (per
        # view, so that a view's augmented copy does not depend on the other views).
        fill = x.amin(dim=(0, 3, 4), keepdim=True)
        flat = (x - fill).flatten(0, 1)
        theta = theta.repeat_interleave(x.shape[1], dim=0).to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
        rotated = F.grid_sample(flat, grid, align_corners=False, padding_mode="zeros")
        x = rotated.view_as(x) + fill
    return x
