"""The AHA 17-segment model on a polar map, and the coronary territories.

Orientation is the clinical one: apex at the centre, base at the rim, anterior at the
top, septal on the left, inferior at the bottom, lateral on the right.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["RING_EDGES", "TERRITORIES", "polar_grid", "segment_map"]

# Outer radius of apex, apical, mid and basal rings, as fractions of the disc radius.
RING_EDGES = (0.18, 0.45, 0.72, 1.0)

TERRITORIES = {
    "LAD": (1, 2, 7, 8, 13, 14, 17),
    "RCA": (3, 4, 9, 10, 15),
    "LCx": (5, 6, 11, 12, 16),
}


@lru_cache(maxsize=8)
def polar_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's radius (0 centre, 1 rim) and angle in degrees from the anterior wall
    (top), growing towards the septum (left), on a size x size bullseye. Read-only,
    cached: every map of a size shares them."""
    centre = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    dx, dy = (x - centre) / (size / 2), (centre - y) / (size / 2)  # y grows upwards
    radius = np.hypot(dx, dy)
    angle = (np.degrees(np.arctan2(dy, dx)) - 90) % 360
    radius.flags.writeable = angle.flags.writeable = False
    return radius, angle


@lru_cache(maxsize=8)
def segment_map(size: int) -> np.ndarray:
    """A size x size array holding each pixel's segment (1-17), 0 outside the disc.
    Read-only, cached."""
    radius, angle = polar_grid(size)
    segments = np.zeros((size, size), dtype=np.uint8)
    apex, apical, mid, basal = RING_EDGES
    # Basal and mid rings: six 60-degree segments centred on anterior, anteroseptal, ...
    six = ((angle + 30) % 360 // 60).astype(np.uint8)
    # Apical ring: four 90-degree segments centred on anterior, septal, inferior, lateral.
    four = ((angle + 45) % 360 // 90).astype(np.uint8)
    ring = (radius >= mid) & (radius < basal)
    segments[ring] = 1 + six[ring]
    ring = (radius >= apical) & (radius < mid)
    segments[ring] = 7 + six[ring]
    ring = (radius >= apex) & (radius < apical)
    segments[ring] = 13 + four[ring]
    segments[radius < apex] = 17
    segments.flags.writeable = False
    return segments
