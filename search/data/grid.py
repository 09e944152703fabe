"""The lines of a bull's-eye grid drawn over a polar map: rings about the map's centre and
spokes running out from it (ring and sector boundaries, the 17-segment grid), found by
where they lie rather than by how they look pixel by pixel.

A thin white line over a white-topped scale's speckle, or JPEG's blur of a one-pixel line,
is no further from the map beneath than the map's own specks are, pixel by pixel. But a
ring stands out from the map a few pixels either side of it all the way round, and a
spoke all the way along: the map's texture makes no such ridge over more than a third of
a circle, nor along a fifth of a radius. So a ring is a radius at which, around most of
the circle, the pixels stand out further from the map beneath (lighter, or darker) than
the pixels three pixels in and out do; a spoke, likewise across its direction.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["grid_lines"]

ACROSS = 3.0  # a line's pixels are compared with those this many pixels either side
RIDGE = 4.0  # ... and stand out further than they do by at least this (grey levels)
RING_SHARE = 0.6  # a ring stands out so round at least this share of its circle
SPOKE_SHARE = 0.95  # a spoke stands out so along at least this share of ...
SPOKE_LENGTH = 0.25  # ... a stretch of this share of the radius, and ...
SHORTEST_SPOKE = 30  # ... at least this many pixels (fewer: a small map's texture may)
INNERMOST = 0.1  # rings and spokes are looked for from this share of the radius ...
OUTERMOST = 3.0  # ... out to this many pixels inside the rim (its own line is the disc's)


def grid_lines(standing_out: list[np.ndarray], circle: tuple[float, float, float]) -> np.ndarray:
    """H x W bool: the pixels of the rings and spokes about `circle` ((cx, cy, radius) in
    the images' pixels) found in any of `standing_out` (H x W each: how far each pixel
    stands out from the map beneath it, lighter in one, darker in another)."""
    cx, cy, radius = circle
    shape = standing_out[0].shape
    found = np.zeros(shape, bool)
    if radius < 20:
        return found
    radii = np.arange(0.0, radius - OUTERMOST, 0.5)
    angles = np.arange(round(2 * math.pi * radius)) / radius  # a pixel apart at the rim
    map_x = (cx + radii[:, None] * np.cos(angles)[None, :]).astype(np.float32)
    map_y = (cy + radii[:, None] * np.sin(angles)[None, :]).astype(np.float32)
    for image in standing_out:
        polar = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        for rows, cols in (_rings(polar, radii, radius), _spokes(polar, radii, angles, radius)):
            xs, ys = map_x[rows, cols], map_y[rows, cols]
            found[_pixels(ys, shape[0]), _pixels(xs, shape[1])] = True
    return found


def _pixels(coordinates: np.ndarray, size: int) -> np.ndarray:
    return np.clip(np.rint(coordinates).astype(int), 0, size - 1)


def _rings(polar: np.ndarray, radii: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of `polar` on a ring, where it stands out."""
    step = round(2 * ACROSS)  # rows are half a pixel apart
    if len(radii) <= 2 * step:
        return np.zeros(0, int), np.zeros(0, int)
    ridge = np.zeros(polar.shape, bool)
    ridge[step:-step] = (
        polar[step:-step] - np.maximum(polar[: -2 * step], polar[2 * step :]) > RIDGE
    )
    on_ring = (ridge.mean(axis=1) >= RING_SHARE) & (radii >= INNERMOST * radius)
    return np.nonzero(ridge & on_ring[:, None])


def _spokes(
    polar: np.ndarray, radii: np.ndarray, angles: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of `polar` on a spoke, where it stands out."""
    rows = np.flatnonzero(radii >= INNERMOST * radius)[::2]  # a pixel apart
    count = len(angles)
    # ACROSS pixels either side of a spoke at radius r lie this many columns away
    shift = np.maximum(1, np.rint(ACROSS * radius / radii[rows])).astype(int)
    cols = np.arange(count)
    sampled = polar[rows]
    before = np.take_along_axis(sampled, (cols[None, :] - shift[:, None]) % count, axis=1)
    after = np.take_along_axis(sampled, (cols[None, :] + shift[:, None]) % count, axis=1)
    ridge = (sampled - np.maximum(before, after)) > RIDGE
    length = max(SHORTEST_SPOKE, round(SPOKE_LENGTH * radius))
    if len(rows) < length:
        return np.zeros(0, int), np.zeros(0, int)
    # each stretch of `length` rows along a column standing out so on most of its rows
    summed = np.cumsum(np.vstack([np.zeros((1, count)), ridge]), axis=0)
    share = (summed[length:] - summed[:-length]) / length
    starts = share >= SPOKE_SHARE
    on_spoke = np.zeros_like(ridge)
    for offset in range(length):  # every row of an accepted stretch
        on_spoke[offset : offset + len(starts)] |= starts
    found_rows, found_cols = np.nonzero(on_spoke & ridge)
    return rows[found_rows], found_cols
