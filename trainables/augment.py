"""Augmentation of map tensors on the training device: flips and small rotations.

The seeds flipped and rotated by up to 10 degrees. On a polar map a horizontal flip swaps
the septal and lateral walls (a vertical one, anterior and inferior), so flips make
left-right (top-bottom) territory patterns indistinguishable: keep them off when that
matters. Random draws come from a generator the caller seeds, so epochs are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainables.config import AugmentSpec

__all__ = ["augment"]


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
