"""Finding the polar-map disc in a clinical export.

The map is the one large, lit, round object on a dark canvas; text strokes and the
colour bar are thin. An opening at a quarter of the resolution removes them, the
largest remaining component gives the disc, and a full-resolution pass refines its
centre and radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Disc", "find_disc"]

LIT = 30  # a pixel whose brightest channel exceeds this is part of something drawn
COARSE = 4  # downsampling factor of the first pass


@dataclass(frozen=True)
class Disc:
    """A circle in image pixels: centre (cx, cy) and radius."""

    cx: float
    cy: float
    radius: float

    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the square around the disc, right/bottom exclusive."""
        return (
            math.ceil(self.cx - self.radius),
            math.ceil(self.cy - self.radius),
            math.floor(self.cx + self.radius) + 1,
            math.floor(self.cy + self.radius) + 1,
        )


def find_disc(image: np.ndarray) -> Disc:
    """Locate the polar map in an H x W x 3 (or H x W) uint8 export.

    Raises:
        ValueError: nothing disc-like is found (an empty or non-map image).
    """
    lit = (image.max(axis=2) if image.ndim == 3 else image) > LIT
    small = lit[::COARSE, ::COARSE]
    opened = ndimage.binary_opening(small, structure=_round(6))
    labels, count = ndimage.label(opened)
    if count == 0:
        raise ValueError("no polar-map disc found: the image has no large lit region")
    sizes = ndimage.sum(opened, labels, index=range(1, count + 1))
    blob = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    cy, cx = (c * COARSE for c in ndimage.center_of_mass(blob))
    radius = np.sqrt(blob.sum() / np.pi) * COARSE

    # Refine at full resolution, only looking just beyond the coarse circle.
    reach = radius + 2 * COARSE
    height, width = lit.shape
    top, left = max(0, int(cy - reach)), max(0, int(cx - reach))
    bottom, right = min(height, int(cy + reach) + 2), min(width, int(cx + reach) + 2)
    y, x = np.ogrid[top:bottom, left:right]
    near = np.hypot(x - cx, y - cy) <= reach
    region = ndimage.binary_fill_holes(lit[top:bottom, left:right] & near)
    region = ndimage.binary_opening(region, structure=_round(3))
    row, col = ndimage.center_of_mass(region)
    cy, cx = row + top, col + left
    radius = float(np.sqrt(region.sum() / np.pi))
    if radius < 8:
        raise ValueError("no polar-map disc found: the largest lit region is tiny")
    return Disc(float(cx), float(cy), radius)


def _round(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.hypot(x, y) <= radius
