"""What is drawn over a map besides its lettering: the 17-segment grid, ring and sector
boundaries, territory outlines, the score printed in each segment.

Marks are thin and stand out from the map on both sides of them, darker (black or grey
lines and digits) or lighter (white ones), in one colour whatever lies beneath: a map is
a field of colours from its scale that changes smoothly, or in a stepped scale's bands,
and never draws a thin line across itself. So a mark is

- a **line**: thin strokes with long straight (or gently curved) runs, in any colour; or
- a **glyph**: a letter-sized group of thin strokes whose colour lies far along the
  scale from the map around it, or off the scale: black on yellow, white on red, green
  on a thermal scale. A map's own specks jump at most a band or two of its scale (a white
  speck at the top of a white-topped scale sits a tenth of the scale above the yellow
  around it). A letter-sized group that jumps less is left in the map, as unsure.

Marks are found inside the maps' discs only; beyond a disc's rim the map is taken to
continue (its nearest colours), so that a rim on a light or dark page is no mark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from search.data import morphology
from search.data.grid import grid_lines
from search.data.pixels import channel_max, label_max
from search.data.scale import ON_SCALE, ColourScale

__all__ = ["Marks", "find_marks", "texture_level"]

RUN = 4  # a line runs straight for at least this many stroke widths (2 * stroke + 1)
ANGLES = 16  # directions a line is looked for in
LINE_JUMP = 0.1  # a line lies at least this share of the scale from the map beneath it ...
CLUTTER = 0.2  # ... and stands alone: this share at most of the map beside it stands out so
STEPS = 1.25  # ... and more than a stepped scale's largest move between bands (its specks')
RIM = 2.5  # a disc's rim: its outermost pixels, this far in, may be blurred towards the page
MIRROR = 0.5  # the map is mirrored this many pixels inside its rim (the rim's pixels are part page)
MEDIAN = 5  # the map around a mark: the median of a window this many stroke widths wide
GLYPH_JUMP = 0.25  # a glyph lies at least this share of the scale from the map around it
LARGEST_GLYPH = 0.3  # ... and is at most this share of the disc's radius wide and high
PLATEAU = 0.7  # a mark's plateau: where it stands out at least this share of its most


@dataclass(frozen=True)
class Marks:
    """What is drawn over an export's maps, as H x W bool masks.

    Args:
        found: the lines and glyphs.
        lines: the lines alone (no lettering: a preview may show them as they are).
        sure: those that are no lettering: lines, and marks darker than the map beneath
            (a black grid, black digits; lettering is light). Lettering is looked for in
            the map with these filled in, so that a white grid line joins no speck of the
            map's own into a "word".
        unsure: letter-sized groups that stand out as marks do but lie too close along
            the scale to the map around them to be sure.
        beneath: H x W x 3, the map around each pixel of the discs (the median of a
            window several strokes wide; the image itself elsewhere).
    """

    found: np.ndarray
    lines: np.ndarray
    sure: np.ndarray
    unsure: np.ndarray
    beneath: np.ndarray


def find_marks(
    image: np.ndarray,
    discs: list[tuple[float, float, float]],
    stroke: int,
    contrast: tuple[float, float],
    scale: ColourScale | None,
) -> Marks:
    """The lines and glyphs drawn over the maps (`discs`: (cx, cy, radius) each).

    Args:
        stroke: the largest stroke radius looked for, in pixels.
        contrast: (least, most): a stroke stands out from its surroundings in some channel
            by twice what the map's own 1 % most textured pixels do, within these bounds.
        scale: the maps' colour scale (None: nothing is sure).
    """
    height, width = image.shape[:2]
    marks, lines, sure, unsure = np.zeros((4, height, width), bool)
    around = np.array(image[..., :3])
    pad = 2 * (2 * stroke + 1)
    for cx, cy, radius in discs:
        top, left = max(0, math.floor(cy - radius) - pad), max(0, math.floor(cx - radius) - pad)
        bottom = min(height, math.ceil(cy + radius) + pad + 1)
        right = min(width, math.ceil(cx + radius) + pad + 1)
        if bottom - top < 8 or right - left < 8:
            continue
        window = np.s_[top:bottom, left:right]
        rgb, inside = _mirrored(image[window][..., :3], (cx - left, cy - top, radius))
        y, x = np.ogrid[top:bottom, left:right]
        distance = np.hypot(x - cx, y - cy)
        disc = distance <= radius + 0.5  # up to the rim, not the mirror
        page = np.median(
            image[window][(distance > radius + 2) & (distance < radius + 6)][:, :3], axis=0
        )
        rim = (distance > radius - RIM, page)
        here = _marks_in(rgb, disc, stroke, contrast, scale, rim, (cx - left, cy - top, radius))
        around[window] = here.beneath
        marks[window] |= here.found & disc
        lines[window] |= here.lines & disc
        sure[window] |= here.sure & disc
        unsure[window] |= here.unsure & inside
    return Marks(marks, lines, sure, unsure & ~marks, around)


def _marks_in(
    rgb: np.ndarray, inside: np.ndarray, stroke: int, contrast: tuple[float, float],
    scale: ColourScale | None, rim: tuple[np.ndarray, np.ndarray],
    circle: tuple[float, float, float],
) -> Marks:  # fmt: skip
    """The marks in a disc's window (`inside`: the disc, up to its rim; `rim`: its
    outermost pixels, and the colour of the page beyond; `circle`: the disc in the
    window's pixels)."""
    band, page = rim
    size = 2 * stroke + 1
    values = rgb.astype(np.int16)
    opened = morphology.grey_opening(rgb, size)
    closed = morphology.grey_closing(rgb, size)
    lighter = channel_max(values - opened.astype(np.int16))
    darker = channel_max(closed.astype(np.int16) - values)
    least = _least_contrast(np.maximum(lighter, darker), inside, contrast)
    # What lies beneath a mark is the map around it: the median of a window several
    # strokes wide, which thin marks do not move (the opening or closing would take the
    # colour of lettering beside it: the map between white letters is no dark mark).
    beneath = _median(rgb, MEDIAN * size)
    above = channel_max(values - beneath.astype(np.int16))
    below = channel_max(beneath.astype(np.int16) - values)
    light = (lighter > least) & (above > least / 2)
    dark = (darker > least) & (below > least / 2) & ~light
    strokes = (light | dark) & inside & ~_blurred_rim(rgb, beneath, band, page)
    height = np.where(light, lighter, darker)
    jump, off = _jumps(rgb, beneath, strokes, scale)
    # a line: straight runs whose every pixel lies off the scale, or further along it from
    # the map beneath than the map's own specks do
    level = texture_level(scale)
    drawn = strokes & ((jump >= level) | (off > 0))
    straight = _long(_straight_runs(drawn, RUN * size), 2 * RUN * size)
    lines = _long(_alone(straight, drawn, light, size, CLUTTER), 2 * RUN * size)
    lines = drawn & morphology.dilate(lines, np.ones((3, 3), bool))
    # a grid's rings and spokes, however faint pixel by pixel, stand out all along them
    # (found with their anti-aliased edges: their fringe is only what differs from the map)
    grid = grid_lines([np.maximum(above, 0), np.maximum(below, 0)], circle) & inside
    grid |= morphology.dilate(grid, _diamond(1)) & _differs(values, beneath, least)
    # a line lost in speckle of its own colour is left in the map, but lettering is not
    # looked for along it: it would join the speckle into "words"
    hidden = drawn & morphology.dilate(straight, np.ones((3, 3), bool))

    # glyphs: groups of such pixels (a map's specks beside a digit do not join it)
    rest = drawn & ~lines & ~grid
    labels, count = ndimage.label(rest, structure=np.ones((3, 3), bool))
    radius = math.sqrt(inside.sum() / math.pi)
    if not count:
        lines = _with_fringe(lines, values, beneath, least) | grid
        return Marks(lines, lines, lines | hidden, np.zeros_like(lines), beneath)
    boxes = ndimage.find_objects(labels)
    tall = np.array([b[0].stop - b[0].start for b in boxes])
    wide = np.array([b[1].stop - b[1].start for b in boxes])
    pixels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    letter_sized = (
        (np.maximum(tall, wide) >= size)
        & (np.maximum(tall, wide) <= LARGEST_GLYPH * radius)
        & (pixels >= 2 * stroke**2)
    )
    # the plateau of each group: where it stands out most (its edges blend with the map)
    peak = label_max(height, labels, count)
    plateau = rest & (height >= PLATEAU * np.concatenate([[0], peak])[labels])
    on_plateau = np.bincount(labels[plateau], minlength=count + 1)[1:]
    far = _label_mean(jump, labels, plateau, count, on_plateau)
    off_share = _label_mean(off, labels, plateau, count, on_plateau)
    glyph = letter_sized & ((far >= max(GLYPH_JUMP, 2 * level)) | (off_share >= 0.5))
    # a group wholly within a stroke's reach of the rim is the mirror's seam (a coarse
    # map's blocks cut by the rim), not worth a reader's doubt
    seam = inside & ~morphology.minimum_filter(inside, 4 * stroke + 3)
    near_rim = np.bincount(labels[seam], minlength=count + 1)[1:] == pixels
    doubtful = letter_sized & ~glyph & (far >= level) & ~near_rim
    # a dark glyph's counters (the hole of a black 0, blurred dark by JPEG) go with it
    glyphs = np.concatenate([[False], glyph])[labels]
    glyphs |= ndimage.binary_fill_holes(glyphs & dark)
    if not np.isnan(page).any() and page.max() < 64:  # a screenshot's dark page
        glyphs = _off_rim(glyphs, band, radius)
    found = lines | glyphs
    doubt = np.concatenate([[False], doubtful])[labels]
    sure = _with_fringe(lines | hidden | (found & dark), values, beneath, least) | grid
    found = _with_fringe(found, values, beneath, least) | grid
    lines = _with_fringe(lines, values, beneath, least) | grid
    return Marks(found, lines, sure, doubt & ~grid, beneath)


def _median(rgb: np.ndarray, window: int) -> np.ndarray:
    """Per channel, the median of a window about `window` pixels wide (read at half the
    resolution: what lies beneath a mark need not be finer than the mark)."""
    half = np.ascontiguousarray(rgb[::2, ::2])
    side = max(3, (window // 2) | 1)
    small = np.stack(
        [cv2.medianBlur(np.ascontiguousarray(half[..., c]), side) for c in range(3)], -1
    )
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)[: rgb.shape[0], : rgb.shape[1]]


def _with_fringe(
    found: np.ndarray, values: np.ndarray, beneath: np.ndarray, least: float
) -> np.ndarray:
    """Marks with their fringe: the pixel beside them (anti-aliased, part mark) and,
    a pixel further, what still differs from the map beneath (JPEG's ringing) by a
    third of what a stroke must; no more, so as little of the map as may be is filled."""
    near = morphology.dilate(found, _diamond(1))
    further = morphology.dilate(found, _diamond(2)) & ~near
    return near | (further & _differs(values, beneath, least))


def _differs(values: np.ndarray, beneath: np.ndarray, least: float) -> np.ndarray:
    """Where the colour differs from the map beneath by a third of what a stroke must."""
    return channel_max(np.abs(values - beneath.astype(np.int16))) > least / 3


def _diamond(pixels: int) -> np.ndarray:
    y, x = np.ogrid[-pixels : pixels + 1, -pixels : pixels + 1]
    return np.abs(x) + np.abs(y) <= pixels


def texture_level(scale: ColourScale | None) -> float:
    """How far along the scale (from what lies beneath) a map's own specks may lie: a
    tenth of it, or a little more than its largest move from one flat band to the next
    when it is stepped. 1 without a scale: nothing is known to lie further."""
    return max(LINE_JUMP, STEPS * scale.step) if scale is not None else 1.0


def _off_rim(marks: np.ndarray, band: np.ndarray, radius: float) -> np.ndarray:
    """Glyphs without short pieces lying wholly on the disc's outermost pixels: on a
    dark page the rim is a map's strongest edge, which JPEG rings along, and no digit is
    printed there (on a light page, a dark piece there is a line drawn along the rim)."""
    labels, count = ndimage.label(marks, structure=np.ones((3, 3), bool))
    if not count:
        return marks
    pixels = np.bincount(labels.ravel(), minlength=count + 1)
    on_band = np.bincount(labels[band], minlength=count + 1)
    boxes = ndimage.find_objects(labels)
    reach = np.array([0.0] + [math.hypot(b[0].stop - b[0].start, b[1].stop - b[1].start)
                              for b in boxes])  # fmt: skip
    short = (on_band == pixels) & (reach < radius / 2)
    short[0] = False
    return marks & ~short[labels]


def _blurred_rim(
    rgb: np.ndarray, beneath: np.ndarray, rim: np.ndarray, page: np.ndarray
) -> np.ndarray:
    """The rim's pixels whose colour lies on the line from the map's to the page's,
    towards the page or, overshooting, away from it: the rim blurred by JPEG, or ringing
    beside it; not a line drawn along it (black on a white page lies off that line)."""
    if np.isnan(page).any():
        return np.zeros(rgb.shape[:2], bool)
    here = rgb[rim].astype(float)
    under = beneath[rim].astype(float)
    towards = page[None, :] - under
    length = np.maximum((towards**2).sum(axis=1), 1.0)
    share = np.clip(((here - under) * towards).sum(axis=1) / length, -1, 1)
    residual = np.abs(here - under - share[:, None] * towards).max(axis=1)
    blurred = np.zeros(rgb.shape[:2], bool)
    contrast = np.sqrt(length)  # JPEG blurs colour more where the rim is stronger
    along = (np.abs(share) >= 0.15) & (residual <= np.maximum(ON_SCALE, contrast / 2))
    blurred[rim] = along & (contrast > 60)
    return blurred


def _mirrored(rgb: np.ndarray, disc: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(the window with what lies beyond the disc's rim replaced by the map's mirror image
    in it, the disc's pixels): the map taken to go on beyond its rim as it was inside,
    so that the page beyond makes no stroke of the rim, and a line drawn along the rim
    stays a line."""
    cx, cy, radius = disc
    mirror = radius - MIRROR  # the rim's own pixels are part page, or ringing (JPEG)
    y, x = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]].astype(np.float32)
    dx, dy = x - cx, y - cy
    distance = np.hypot(dx, dy)
    inside = distance <= mirror
    if inside.all():
        return np.ascontiguousarray(rgb), inside
    scale = np.where(
        inside, 1.0, np.clip(2 * mirror - distance, 0, None) / np.maximum(distance, 1e-6)
    )
    map_x = (cx + dx * scale).astype(np.float32)
    map_y = (cy + dy * scale).astype(np.float32)
    mirrored = cv2.remap(np.ascontiguousarray(rgb), map_x, map_y, cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return mirrored, inside


def _least_contrast(standing_out: np.ndarray, inside: np.ndarray, bounds) -> float:
    """How far a stroke must stand out: twice what the map's own 1 % most textured
    pixels do (away from its rim), within `bounds`."""
    least, most = bounds
    inner = morphology.minimum_filter(inside, 7)
    if inner.sum() < 250:
        return float(most)
    return float(np.clip(2 * np.percentile(standing_out[inner][::2], 99), least, most))


def _straight_runs(strokes: np.ndarray, length: int) -> np.ndarray:
    """The stroke pixels on a straight run of `length` pixels (in any of ANGLES
    directions) lying wholly on strokes grown by a pixel (a thin ring bends away from a
    straight run; a line's anti-aliased pixels fall either side of it): lines, not
    specks or letters."""
    mask = cv2.dilate(strokes.astype(np.uint8), np.ones((3, 3), np.uint8))
    runs = np.zeros_like(mask)
    half = length // 2
    for index in range(ANGLES):
        angle = math.pi * index / ANGLES
        kernel = np.zeros((length, length), np.uint8)
        dx, dy = half * math.cos(angle), half * math.sin(angle)
        cv2.line(
            kernel, (round(half - dx), round(half - dy)), (round(half + dx), round(half + dy)), 1
        )
        runs |= cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_CONSTANT,
                                 borderValue=0)  # fmt: skip
    return runs.view(bool) & strokes


def _long(runs: np.ndarray, reach: float) -> np.ndarray:
    """The runs whose connected groups reach at least `reach` pixels (their boxes'
    diagonals): lines, not a letter's stem."""
    labels, count = ndimage.label(runs, structure=np.ones((3, 3), bool))
    if not count:
        return runs
    boxes = ndimage.find_objects(labels)
    far = np.array([math.hypot(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes])
    return np.concatenate([[False], far >= reach])[labels]


def _alone(
    runs: np.ndarray, strokes: np.ndarray, light: np.ndarray, size: int, clutter: float
) -> np.ndarray:
    """The runs that stand alone: beside a drawn line the map does not stand out as the
    line does (lighter, or darker, and as far along the scale or off it: `strokes` are
    such pixels) in more than `clutter` of its pixels. A straight run through a textured
    map's speckle (white specks in a white-topped scale's light yellow) is the
    speckle's, and a line drawn there in the speckle's colour is lost in it anyway; the
    yellow specks of that speckle, darker in blue than the white, are no clutter beside
    a black line, which lies far along the scale from both."""
    kept = np.zeros_like(runs)
    near = morphology.dilate(runs, np.ones((3, 3), bool))
    for polarity in (light, ~light):
        mine = runs & polarity
        if not mine.any():
            continue
        beside = (strokes & polarity & ~near).astype(np.float32)
        free = (~near).astype(np.float32)
        window = (2 * size + 1, 2 * size + 1)
        density = cv2.boxFilter(beside, -1, window, normalize=False) / np.maximum(
            cv2.boxFilter(free, -1, window, normalize=False), 1.0
        )
        kept |= mine & (density <= clutter)
    return kept


def _jumps(
    rgb: np.ndarray, beneath: np.ndarray, where: np.ndarray, scale: ColourScale | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of `where`: how far along the scale it lies from what lies beneath it,
    and whether it is off the scale (0 elsewhere)."""
    jump = np.zeros(where.shape, np.float32)
    off = np.zeros(where.shape, np.float32)
    if scale is None or not where.any():
        return jump, off
    here, under = rgb[where], beneath[where]
    jump[where] = np.abs(scale.position(here) - scale.position(under))
    off[where] = scale.distance(here) > ON_SCALE
    return jump, off


def _label_mean(
    values: np.ndarray, labels: np.ndarray, where: np.ndarray, count: int, pixels: np.ndarray
) -> np.ndarray:
    total = np.bincount(labels[where], weights=values[where], minlength=count + 1)[1:]
    return total / np.maximum(pixels, 1)
