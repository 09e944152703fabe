"""Finding the polar-map discs in a clinical export.

A map is a large, lit, round object on a dark canvas; text strokes and the colour bar
are thin. An opening at a quarter of the resolution removes them; every remaining
component that is round and not much smaller than the largest is a disc (a colour bar,
long and narrow, is not), and a full-resolution pass refines each centre and radius.
Some vendors export stress and rest side by side in one screenshot: the discs come in
reading order, and a view's position (left, right, top, bottom, or 1..n) says which is
its map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from search import errors
from search.data import morphology

__all__ = [
    "POSITIONS",
    "Disc",
    "SeveralDiscs",
    "choose_disc",
    "find_disc",
    "find_discs",
    "parse_position",
]

LIT = 30  # a pixel whose brightest channel exceeds this is part of something drawn
COARSE = 4  # downsampling factor of the first pass
ROUND = 0.7  # a disc fills at least this share of the circle around it (a bar: far less)
SMALLEST = 0.5  # ... and its radius is at least this share of the largest disc's
POSITIONS = ("left", "right", "top", "bottom")


class SeveralDiscs(errors.DataError, ValueError):
    """An export holds several map discs and nothing says which one to read."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(
            f"the export holds {count} polar-map discs; say which is this view's: a position "
            f"(left, right, top, bottom, or 1..{count} in reading order) with --layout "
            "VIEW=POSITION or a <view>_position column"
        )


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


def find_disc(image: np.ndarray, position: str | None = None) -> Disc:
    """The polar map of an H x W x 3 (or H x W) uint8 export: its only disc, or the one
    at `position` when it holds several.

    Raises:
        ValueError: nothing disc-like is found (an empty or non-map image), or the
            position names no disc; SeveralDiscs: several discs and no position.
    """
    return choose_disc(find_discs(image), position)


def find_discs(image: np.ndarray, refine: bool = True) -> list[Disc]:
    """Every map disc of an export, in reading order (top to bottom, then left to right);
    `refine=False` gives them at a quarter of the resolution (to count and place them).

    Raises:
        ValueError: nothing disc-like is found.
    """
    small = _lit(image[::COARSE, ::COARSE])
    opened = morphology.opening(small, _round(6))
    labels, count = ndimage.label(opened)
    if count == 0:
        raise ValueError("no polar-map disc found: the image has no large lit region")
    blobs = [ndimage.binary_fill_holes(labels == i) for i in range(1, count + 1)]
    sizes = [int(blob.sum()) for blob in blobs]
    largest = max(sizes)
    discs = []
    for blob, size in zip(blobs, sizes, strict=True):
        if size < (SMALLEST**2) * largest or _roundness(blob) < ROUND:
            continue
        disc = _refine(image, blob) if refine else _coarse(blob)
        if disc is not None:
            discs.append(disc)
    if not discs:
        raise ValueError("no polar-map disc found: the largest lit region is tiny")
    return _reading_order(discs)


def parse_position(text: str) -> str:
    """A view's position among an export's discs: left, right, top, bottom or 1..n.

    Raises:
        ValueError: anything else.
    """
    position = text.strip().lower()
    if position in POSITIONS or (position.isdigit() and int(position) >= 1):
        return position
    raise ValueError(
        f"position {text!r}: expected left, right, top, bottom or a number 1..n (the discs "
        "in reading order)"
    )


def choose_disc(discs: list[Disc], position: str | None) -> Disc:
    """The disc at `position` (one disc: itself, whatever the position).

    Raises:
        SeveralDiscs: several discs and no position; ValueError: the position names no
            disc.
    """
    if len(discs) == 1:
        return discs[0]
    if position is None:
        raise SeveralDiscs(len(discs))
    if position.isdigit():
        index = int(position) - 1
        if index >= len(discs):
            raise ValueError(f"position {position}: the export holds {len(discs)} discs")
        return discs[index]
    key = {"left": lambda d: d.cx, "right": lambda d: -d.cx,
           "top": lambda d: d.cy, "bottom": lambda d: -d.cy}[position]  # fmt: skip
    return min(discs, key=key)


def _roundness(blob: np.ndarray) -> float:
    """Share of the circle around the blob (from its farthest pixel) that it fills."""
    rows, cols = np.nonzero(blob)
    cy, cx = rows.mean(), cols.mean()
    reach = np.hypot(rows - cy, cols - cx).max() + 0.5
    return float(blob.sum() / (np.pi * reach**2))


def _lit(image: np.ndarray) -> np.ndarray:
    """Pixels that are part of something drawn."""
    return (image.max(axis=2) if image.ndim == 3 else image) > LIT


def _coarse(blob: np.ndarray) -> Disc:
    cy, cx = (c * COARSE for c in ndimage.center_of_mass(blob))
    return Disc(float(cx), float(cy), float(np.sqrt(blob.sum() / np.pi) * COARSE))


def _refine(image: np.ndarray, blob: np.ndarray) -> Disc | None:
    """A coarse blob's disc at full resolution, looking just beyond its circle."""
    coarse = _coarse(blob)
    cx, cy = coarse.cx, coarse.cy
    reach = coarse.radius + 2 * COARSE
    height, width = image.shape[:2]
    top, left = max(0, int(cy - reach)), max(0, int(cx - reach))
    bottom, right = min(height, int(cy + reach) + 2), min(width, int(cx + reach) + 2)
    y, x = np.ogrid[top:bottom, left:right]
    near = np.hypot(x - cx, y - cy) <= reach
    region = ndimage.binary_fill_holes(_lit(image[top:bottom, left:right]) & near)
    region = morphology.opening(region, _round(3))
    if not region.any():
        return None
    row, col = ndimage.center_of_mass(region)
    radius = float(np.sqrt(region.sum() / np.pi))
    if radius < 8:
        return None
    return Disc(float(col + left), float(row + top), radius)


def _reading_order(discs: list[Disc]) -> list[Disc]:
    """Rows of discs top to bottom (a disc whose centre lies within another's radius
    vertically is in its row), each row left to right."""
    rows: list[list[Disc]] = []
    for disc in sorted(discs, key=lambda d: d.cy):
        if rows and abs(disc.cy - rows[-1][0].cy) < rows[-1][0].radius:
            rows[-1].append(disc)
        else:
            rows.append([disc])
    return [disc for row in rows for disc in sorted(row, key=lambda d: d.cx)]


def _round(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.hypot(x, y) <= radius
