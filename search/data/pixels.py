"""Small reductions over an export's pixels that cleaning, its marks and disc finding
share: the largest channel, the largest value per label, a round structuring element."""

from __future__ import annotations

import numpy as np

__all__ = ["channel_max", "label_max", "round_kernel"]


def channel_max(values: np.ndarray) -> np.ndarray:
    """H x W: the largest of an H x W x 3 array's channels."""
    return np.maximum(np.maximum(values[..., 0], values[..., 1]), values[..., 2])


def label_max(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """The largest of `values` (>= 0) over each label 1..count, 0 for a label without a
    pixel (integers stay integers): `ndimage.maximum`'s answer without its sort of every
    pixel of the export."""
    inside = labels > 0
    largest = np.zeros(count + 1, dtype=np.promote_types(values.dtype, np.int64))
    which, value = labels[inside], values[inside]
    if not len(which):
        return largest[1:]
    order = np.argsort(which, kind="stable")  # the labelled pixels only, by label
    which, value = which[order], value[order]
    starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
    largest[which[starts]] = np.maximum.reduceat(value, starts)
    return largest[1:]


def round_kernel(radius: int) -> np.ndarray:
    """(2 radius + 1) x (2 radius + 1) bool: a disc of that radius."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.hypot(x, y) <= radius
