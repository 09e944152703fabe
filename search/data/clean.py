"""Turning a raw clinical export into a clean polar map.

Crop to the disc (found, or given as a box per view), remove burned-in text inside it,
blank everything outside it, and resize. Text removal is de-identification too: names
and dates must not reach any output, so the cleaned map is the only thing later steps
(caches, previews, CAMs, reports) ever see of an export.

Text is found as thin, light strokes lined up as lettering: what a grey opening of each
colour channel with a square a few pixels wide removes (a white top-hat), restricted to
light colours and to groups large enough to be letters. The perfusion map itself is smooth
at that scale, so its own highlights stay. Text pixels are then filled from the nearest
map pixels that are not text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from search.data.disc import Disc, find_disc

__all__ = ["CLEANING_VERSION", "CleanMap", "CropBox", "clean_export", "disc_mask", "find_text"]

CLEANING_VERSION = 2  # bump whenever the output of clean_export changes; part of cache keys
TEXT_CONTRAST = 60  # a stroke brighter than its surroundings by this much may be text
TEXT_LIGHTNESS = 180  # ... if its second-brightest channel reaches this (white, grey, yellow)
STROKE_FRACTION = 1 / 80  # largest text stroke radius, as a share of the disc radius


@dataclass(frozen=True)
class CropBox:
    """A crop given by the user for every export of one view: (left, top, right, bottom)
    in pixels, right/bottom exclusive. The map is the largest circle inside it."""

    left: int
    top: int
    right: int
    bottom: int

    @classmethod
    def parse(cls, text: str) -> CropBox:
        """'LEFT,TOP,RIGHT,BOTTOM' -> CropBox."""
        parts = text.split(",")
        try:
            left, top, right, bottom = (int(p) for p in parts)
        except ValueError:
            raise ValueError(
                f"crop box {text!r}: expected four whole pixel numbers LEFT,TOP,RIGHT,BOTTOM"
            ) from None
        if right - left < 16 or bottom - top < 16 or min(left, top) < 0:
            raise ValueError(
                f"crop box {text!r}: expected 0 <= LEFT < RIGHT and 0 <= TOP < BOTTOM, "
                "at least 16 pixels wide and high"
            )
        return cls(left, top, right, bottom)

    def disc(self) -> Disc:
        """The largest circle inside the box."""
        return Disc(
            (self.left + self.right - 1) / 2,
            (self.top + self.bottom - 1) / 2,
            min(self.right - self.left, self.bottom - self.top) / 2,
        )

    def __str__(self) -> str:
        return f"{self.left},{self.top},{self.right},{self.bottom}"


@dataclass(frozen=True)
class CleanMap:
    """A cleaned export.

    Args:
        pixels: size x size x 3 uint8, the disc filling the square, black outside it.
        disc: where the map was in the export.
        text: the text found and filled in, as a bool mask over the square cut around the
            disc (origin at `disc.box()`'s left and top, in export pixels).
        text_fraction: share of the disc's pixels that were text and got filled in.
    """

    pixels: np.ndarray
    disc: Disc
    text: np.ndarray
    text_fraction: float


def clean_export(
    image: np.ndarray, size: int, crop: CropBox | None = None, position: str | None = None
) -> CleanMap:
    """Crop, de-text, blank and resize one H x W x 3 uint8 export to size x size;
    `position` says which disc is the map when the export holds several.

    Raises:
        ValueError: no disc is found (or several and no position), or the crop box does
            not fit in the image.
    """
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    height, width = image.shape[:2]
    if crop is not None and (crop.right > width or crop.bottom > height):
        raise ValueError(f"crop box {crop} lies outside the {width} x {height} image")
    disc = crop.disc() if crop is not None else find_disc(image, position)

    square = _cut_square(image, disc)
    left, top, _, _ = disc.box()
    inside = disc_mask(square.shape[0], disc.radius, (disc.cx - left, disc.cy - top))
    text = find_text(square, disc.radius) & inside
    square = _fill(square, text, inside & ~text)
    square[~inside] = 0

    resized = np.asarray(Image.fromarray(square).resize((size, size), Image.LANCZOS)).copy()
    resized[~disc_mask(size, size / 2)] = 0
    return CleanMap(resized, disc, text, float(text.sum() / max(1, inside.sum())))


def find_text(image: np.ndarray, disc_radius: float) -> np.ndarray:
    """H x W bool: burned-in text, widened by two pixels to take the anti-aliased (and
    JPEG-ringing) edges.

    A text pixel is part of a thin stroke brighter than its surroundings in some colour
    channel, is itself light (white, grey or yellow: its second-brightest channel is
    high), and lies on a line with enough other such pixels to be lettering. The last two
    conditions keep the noise speckles of a hot map region (red turning white in clinical
    colour scales) from being taken for text.
    """
    stroke = max(2, round(disc_radius * STROKE_FRACTION))
    top_hat = np.zeros(image.shape[:2], dtype=np.int16)
    for channel in range(3):
        values = image[..., channel].astype(np.int16)
        top_hat = np.maximum(top_hat, values - ndimage.grey_opening(values, size=2 * stroke + 1))
    # Light in a 3 x 3 neighbourhood: JPEG softens thin strokes below the threshold.
    second = np.sort(image[..., :3], axis=2)[..., 1]
    light = ndimage.grey_dilation(second, size=3) >= TEXT_LIGHTNESS
    strokes = (top_hat > TEXT_CONTRAST) & light

    lines, count = ndimage.label(
        ndimage.binary_dilation(strokes, structure=np.ones((1, 6 * stroke + 1), dtype=bool))
    )
    sizes = ndimage.sum(strokes, lines, index=np.arange(1, count + 1))
    lettering = np.concatenate([[False], sizes >= 2.5 * stroke**2])
    text = strokes & lettering[lines]
    return ndimage.binary_dilation(text, iterations=2)


def disc_mask(size: int, radius: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """size x size bool: pixels whose centre lies within `radius` of `centre` (x, y),
    by default the square's centre."""
    cx, cy = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    y, x = np.ogrid[0:size, 0:size]
    return np.hypot(x - cx, y - cy) <= radius


def _cut_square(image: np.ndarray, disc: Disc) -> np.ndarray:
    """The square around the disc, padded with black where it leaves the image."""
    left, top, right, bottom = disc.box()
    side = max(right - left, bottom - top)
    square = np.zeros((side, side, 3), dtype=np.uint8)
    height, width = image.shape[:2]
    src_left, src_top = max(left, 0), max(top, 0)
    src_right, src_bottom = min(left + side, width), min(top + side, height)
    square[src_top - top : src_bottom - top, src_left - left : src_right - left] = image[
        src_top:src_bottom, src_left:src_right, :3
    ]
    return square


def _fill(image: np.ndarray, holes: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Each hole pixel takes the colour of the nearest source pixel."""
    if not holes.any() or not sources.any():
        return image.copy()
    _, (rows, cols) = ndimage.distance_transform_edt(~sources, return_indices=True)
    filled = image.copy()
    filled[holes] = image[rows[holes], cols[holes]]
    return filled


def _round(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.hypot(x, y) <= radius
