"""Finding the polar-map discs in a clinical export.

A map is a large round object that stands out from the page it is drawn on: a dark
screenshot's canvas, or a printed report's white, off-white or grey page. The page's
colour is the commonest colour along the export's edges; a panel of another colour
framing the map (a grey box on a white page) is a page of its own, read the same way
inside it. Text strokes, grid lines, frames and the colour bar are thin: an opening at a
quarter of the resolution removes them. Every remaining component that a circle fits
(the circle that most of its outline follows: a map whose brightest end is the page's
own white loses bites of its rim, never its circle) and that fills most of that circle
is a disc; a colour bar or a panel, long or square, is not. A full-resolution pass
refines each centre and radius. Some vendors export stress and rest side by side in one
screenshot: the discs come in reading order, and a view's position (left, right, top,
bottom, or 1..n) says which is its map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from search import errors
from search.data import morphology
from search.data.pixels import round_kernel

__all__ = [
    "NO_DISC",
    "POSITIONS",
    "Disc",
    "SeveralDiscs",
    "choose_disc",
    "find_disc",
    "find_discs",
    "page_colours",
    "parse_position",
]

LIT = 30  # a pixel differing from the page by more than this in some channel is drawn ...
FINE = 10  # ... or by this much on a light page without noise
COARSE = 4  # downsampling factor of the first pass
ROUND = 0.7  # a disc fills at least this share of its circle (a bar: far less) ...
SPILL = 0.1  # ... and at most this share of it lies beyond the circle (a square: 21 %)
SMALLEST = 0.5  # ... and its radius is at least this share of the largest disc's ...
LEAST = 0.08  # ... and of the export's shorter side (a map is large; a round glyph is not)
WHOLE = 0.985  # a region filling this share of its circle is a whole disc: its area is its size
TRIALS = 200  # random triples of outline points tried for the circle a disc's outline follows
EDGE = 0.03  # the page's colour is read along the export's edges, this share deep
RIM_REACH = 8  # the rim of a map on a light page is looked for this many pixels either side
RIM_LEVEL = 9  # the map's level at its rim: the samples (half pixels) this far in from the page
RIM_LINE = 4  # a line stroked along a rim is at most this wide (pixels) ...
LINE_OFF = 60  # ... and its colour this far off the way from the page's to the map's
POSITIONS = ("left", "right", "top", "bottom")
NO_DISC = (
    "no polar-map disc found: nothing large and round stands out from the page (give "
    "the map's box with --crop VIEW=LEFT,TOP,RIGHT,BOTTOM)"
)


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
    """A circle in image pixels: centre (cx, cy) and radius; `rim_line`, the width of a
    line stroked along the rim (centred on it: half of it lies on the map), 0 for none."""

    cx: float
    cy: float
    radius: float
    rim_line: float = 0.0

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
    Either way the same discs are found.

    Raises:
        ValueError: nothing disc-like is found (the message is `NO_DISC`).
    """
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    small = np.ascontiguousarray(image[::COARSE, ::COARSE, :3])
    page = _page_colour(small, _edges(small.shape[:2]))
    least = LEAST * min(small.shape[:2])
    found = []
    # wider lines of the page's own colour may cut the map (see `_coarse_discs`); a thin
    # outline around a map as light as the page (a grid's rim, a panel's frame) may fall
    # between the pixels a quarter of the resolution keeps, unless every pixel is read
    for bridge, pooled in ((1, None), (2, None), (1, image)):
        found = [(p, c) for p, c in _coarse_discs(small, page, None, bridge, pooled)
                 if c[2] >= least]  # fmt: skip
        if found:
            break
    if not found:
        raise ValueError(NO_DISC)
    largest = max(circle[2] for _, circle in found)
    discs = []
    for page, (cx, cy, radius) in found:
        if radius < SMALLEST * largest:
            continue
        coarse = Disc(cx * COARSE, cy * COARSE, radius * COARSE)
        discs.append(_refine(image, page, coarse) if refine else coarse)
    return _reading_order(discs)


def page_colours(image: np.ndarray, discs: list[Disc]) -> list[np.ndarray]:
    """The colours an export's maps are drawn on: its page's (along its edges) and the
    commonest colour just beyond each disc (a panel's, when one frames the map)."""
    small = np.ascontiguousarray(image[::COARSE, ::COARSE, :3])
    colours = [_page_colour(small, _edges(small.shape[:2])).colour]
    y, x = np.ogrid[: small.shape[0], : small.shape[1]]
    for disc in discs:
        distance = np.hypot(x - disc.cx / COARSE, y - disc.cy / COARSE) / (disc.radius / COARSE)
        ring = (distance > 1.05) & (distance < 1.3)
        if ring.any():
            colours.append(_page_colour(small, ring).colour)
    return colours


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


def _coarse_discs(
    small: np.ndarray,
    page: Page,
    within: np.ndarray | None,
    bridge: int,
    full: np.ndarray | None = None,
) -> list[tuple[Page, tuple[float, float, float]]]:
    """(page colour, (cx, cy, radius)) of every disc of a quarter-resolution export, on
    its page or (`within`: a mask) on a panel; a large region that is no disc is read
    as a panel of its own colour, once. Gaps of up to about `2 * bridge` pixels are
    bridged (at this resolution). With the `full` export, a quarter-resolution pixel is
    drawn when any of the pixels it stands for is (a one-pixel line stays whole)."""
    drawn = _drawn(small, page) if full is None else _pooled(_drawn(full[..., :3], page))
    if within is not None:
        drawn &= within
    # Lines in the page's own colour drawn over a map (a white grid on a white page) cut
    # it into pieces: a closing joins them. What a drawn outline encloses (a grid's rim
    # around a map whose white end is the page's white) is drawn; thin things are not.
    drawn = ndimage.binary_fill_holes(morphology.closing(drawn, round_kernel(bridge)))
    opened = morphology.opening(drawn, round_kernel(6))
    labels, _ = ndimage.label(opened)
    found = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        grown = tuple(slice(max(0, b.start - 1), b.stop + 1) for b in box)
        blob = labels[grown] == index + 1
        circle = _circle_of(blob)
        if circle is not None:
            cx, cy, radius = circle
            found.append((page, (cx + grown[1].start, cy + grown[0].start, radius)))
        elif within is None and blob.sum() >= 400:  # a panel around the map(s)?
            panel = np.zeros(small.shape[:2], bool)
            panel[grown] = blob
            inner = morphology.minimum_filter(panel, 7)  # without the panel's frame
            panel_page = _page_colour(small, panel & ~inner)
            found += _coarse_discs(small, panel_page, inner, bridge, full)
    return found


def _pooled(drawn: np.ndarray) -> np.ndarray:
    """A full-resolution mask at a quarter of the resolution (the shape of
    `image[::COARSE, ::COARSE]`): True where any pixel of the block is."""
    height, width = drawn.shape
    rows, cols = -(-height // COARSE), -(-width // COARSE)
    padded = np.zeros((rows * COARSE, cols * COARSE), bool)
    padded[:height, :width] = drawn
    return padded.reshape(rows, COARSE, cols, COARSE).any(axis=(1, 3))


def _circle_of(blob: np.ndarray) -> tuple[float, float, float] | None:
    """(cx, cy, radius) of a filled blob that is a disc, in its own pixels: the circle its
    outline follows, which the blob fills (ROUND) without spilling beyond (SPILL); the
    blob's own size when it is a whole disc. None for anything else."""
    points = _outline(blob)
    circle = _fit_circle(points, tolerance=1.5)
    if circle is None:
        return None
    inside = _circle_mask(blob.shape, circle)
    area = float(blob.sum())
    filled = (blob & inside).sum() / (np.pi * circle[2] ** 2)
    beyond = blob & ~_circle_mask(blob.shape, (*circle[:2], circle[2] + 1))  # a pixel's slack
    if filled < ROUND or beyond.sum() > SPILL * area:
        return None
    if filled >= WHOLE:  # a whole disc: its centre of mass and size, exactly
        row, col = ndimage.center_of_mass(blob)
        return float(col), float(row), float(np.sqrt(area / np.pi))
    return circle


@dataclass(frozen=True)
class Page:
    """What a map is drawn on: its colour, and how far a pixel must differ from it in
    some channel to stand out (more where JPEG makes the page noisy)."""

    colour: np.ndarray
    tolerance: float


def _page_colour(image: np.ndarray, where: np.ndarray) -> Page:
    """The commonest colour of `where` (colours within 16 levels binned together; the
    median of the commonest bin): a page's or a panel's. A black page keeps the rule of
    dark screenshots (LIT); a lighter one is read more finely, as its own noise allows
    (white map regions on a light grey page differ from it by 25 levels)."""
    pixels = image[where].astype(np.int32)
    if not len(pixels):
        return Page(np.zeros(3), LIT)
    bins = (pixels[:, 0] // 16) * 256 + (pixels[:, 1] // 16) * 16 + pixels[:, 2] // 16
    commonest = pixels[bins == np.bincount(bins).argmax()]
    colour = np.median(commonest, axis=0)
    if colour.max() < LIT:
        return Page(colour, LIT)
    noise = np.median(np.abs(commonest - colour).max(axis=1))
    return Page(colour, float(np.clip(8 + 6 * noise, FINE, LIT)))


def _edges(shape: tuple[int, int]) -> np.ndarray:
    """H x W bool: a band along the image's edges, EDGE of its size deep (at least a pixel)."""
    height, width = shape
    band = np.zeros(shape, bool)
    deep = max(1, round(EDGE * height)), max(1, round(EDGE * width))
    band[: deep[0]] = band[-deep[0] :] = True
    band[:, : deep[1]] = band[:, -deep[1] :] = True
    return band


def _drawn(image: np.ndarray, page: Page) -> np.ndarray:
    """Pixels that stand out from the page: some channel differs by more than its
    tolerance (on a black page, a pixel whose brightest channel exceeds LIT)."""
    if not page.colour.any():
        return image.max(axis=2) > page.tolerance
    low = np.clip(np.ceil(page.colour - page.tolerance), 0, 255).astype(np.uint8)
    high = np.clip(np.floor(page.colour + page.tolerance), 0, 255).astype(np.uint8)
    return cv2.inRange(image, low, high) == 0


def _outline(region: np.ndarray) -> np.ndarray:
    """N x 2 (x, y): the pixels along the outer outline of a region's largest part."""
    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=len)[:, 0, :].astype(float)


def _fit_circle(
    points: np.ndarray, tolerance: float, start: tuple[float, float, float] | None = None
) -> tuple[float, float, float] | None:
    """The circle (cx, cy, radius) that the most `points` lie on (within `tolerance`),
    fitted to them by least squares: from `start`, or from the best of random triples
    (a fixed stream: the same points give the same circle). Points off the circle (the
    bites a page-coloured part of a map takes out of its outline) do not pull it."""
    if len(points) < 8:
        return None
    circle = start
    if circle is None:
        triples = points[np.random.default_rng(0).integers(0, len(points), (TRIALS, 3))]
        centres, radii = _circumcircles(triples)
        distance = np.abs(
            np.hypot(
                points[None, :, 0] - centres[:, None, 0], points[None, :, 1] - centres[:, None, 1]
            )
            - radii[:, None]
        )
        best = int((distance <= tolerance).sum(axis=1).argmax())
        circle = (*centres[best], radii[best])
    first = 4 * tolerance if start is None else 2 * COARSE + tolerance
    for reach in (first, 2 * tolerance, tolerance):
        cx, cy, radius = circle
        near = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - radius) <= reach
        if near.sum() < 8:
            return None
        circle = _least_squares_circle(points[near])
    return circle


def _circumcircles(triples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (n x 2) and radii (n) of the circles through n triples of points (a
    degenerate triple gets an infinite radius, which no point lies on)."""
    (ax, ay), (bx, by), (cx, cy) = (triples[:, i, :].T for i in range(3))
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    safe = np.where(np.abs(d) < 1e-9, 1.0, d)
    a2, b2, c2 = ax**2 + ay**2, bx**2 + by**2, cx**2 + cy**2
    ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / safe
    uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / safe
    radii = np.where(np.abs(d) < 1e-9, np.inf, np.hypot(ax - ux, ay - uy))
    return np.stack([ux, uy], axis=1), radii


def _least_squares_circle(points: np.ndarray) -> tuple[float, float, float]:
    """The algebraic least-squares circle through points (Kasa's fit)."""
    x, y = points[:, 0], points[:, 1]
    design = np.stack([2 * x, 2 * y, np.ones_like(x)], axis=1)
    (cx, cy, c), *_ = np.linalg.lstsq(design, x**2 + y**2, rcond=None)
    return float(cx), float(cy), float(np.sqrt(max(c + cx**2 + cy**2, 0.0)))


def _circle_mask(shape: tuple[int, int], circle: tuple[float, float, float]) -> np.ndarray:
    cx, cy, radius = circle
    y, x = np.ogrid[: shape[0], : shape[1]]
    return np.hypot(x - cx, y - cy) <= radius


def _refine(image: np.ndarray, page: Page, coarse: Disc) -> Disc:
    """A coarse disc at full resolution, looking just beyond its circle: the region that
    stands out from the page there, holes filled; its size and centre of mass when it is
    a whole disc, else the circle its outline follows (its pixels' outer edges, half a
    pixel beyond their centres). The rim is then found where the colour is half way
    from the map's to the page's (`_rim`): JPEG's ringing beyond it does not count. The
    coarse disc when nothing better is found."""
    cx, cy = coarse.cx, coarse.cy
    reach = coarse.radius + 2 * COARSE
    height, width = image.shape[:2]
    top, left = max(0, int(cy - reach)), max(0, int(cx - reach))
    bottom, right = min(height, int(cy + reach) + 2), min(width, int(cx + reach) + 2)
    y, x = np.ogrid[top:bottom, left:right]
    near = np.hypot(x - cx, y - cy) <= reach
    window = np.ascontiguousarray(image[top:bottom, left:right, :3])
    region = ndimage.binary_fill_holes(_drawn(window, page) & near)
    region = morphology.opening(region, round_kernel(3))
    if not region.any():
        return coarse
    start = (cx - left, cy - top, coarse.radius)
    circle = _fit_circle(_outline(region), tolerance=1.5, start=start)
    if circle is not None:
        inside = _circle_mask(region.shape, circle)
        whole = (region & inside).sum() / (np.pi * circle[2] ** 2) >= WHOLE
        # the outline's circle stays the coarse one's, found again more finely
        moved = max(abs(a - b) for a, b in zip(circle, start, strict=True))
        circle = circle if moved <= 2 * COARSE else None
    if circle is None or whole:
        row, col = ndimage.center_of_mass(region)
        circle = (float(col), float(row), float(np.sqrt(region.sum() / np.pi)))
        if circle[2] < 8:
            return coarse
    else:
        circle = (circle[0], circle[1], circle[2] + 0.5)
    rim = _rim(window, page, circle)
    if rim is None:
        return Disc(circle[0] + left, circle[1] + top, circle[2])
    (rim_x, rim_y, rim_radius), line = rim
    return Disc(rim_x + left, rim_y + top, rim_radius, line)


def _rim(
    image: np.ndarray, page: Page, circle: tuple[float, float, float]
) -> tuple[tuple[float, float, float], float] | None:
    """(the circle through the points where, along rays across `circle`'s outline, the
    colour is half way from the page's (just beyond) to what first stands out from it
    coming in from the page, the width of a line stroked along it or 0). The rim, to a
    fraction of a pixel, wherever the map there differs from the page (not where its
    white end meets a white page): JPEG's ringing, and the colour it bleeds beyond a
    saturated rim, are less than half way to the map beside them; where a line is
    stroked along the rim, half way across the line. None when too few rays cross a
    rim."""
    cx, cy, radius = circle
    differs = np.abs(image.astype(np.int16) - page.colour.round().astype(np.int16)).max(axis=2)
    rays = max(64, round(np.pi * radius))
    angles = np.linspace(0, 2 * np.pi, rays, endpoint=False)
    offsets = np.arange(-RIM_REACH, RIM_REACH + 0.25, 0.5)
    distance = radius + offsets[None, :]
    xs = cx + distance * np.cos(angles)[:, None]
    ys = cy + distance * np.sin(angles)[:, None]
    profile = ndimage.map_coordinates(
        differs.astype(np.float32), [ys, xs], order=1, mode="grid-constant", cval=0
    )  # beyond the image: the page (as if it went on), interpolated to as the rest is
    outer = profile[:, offsets >= RIM_REACH - 2].max(axis=1)
    # coming in from the page: the first sample that stands out from it, and the level
    # just inside it (the upper quartile of four pixels' samples): what the rim is half
    # way to. JPEG halves colour resolution, so a rim's colour ramps over three pixels or
    # so; the level at the ramp's start alone put the rim 0.6 px beyond where it lies.
    stands = profile >= (outer + 2 * page.tolerance)[:, None]
    first = len(offsets) - 1 - np.argmax(stands[:, ::-1], axis=1)
    rows = np.arange(rays)
    inward = np.clip(first[:, None] - np.arange(RIM_LEVEL)[None, :], 0, None)
    level = np.percentile(profile[rows[:, None], inward], 75, axis=1)
    clear = stands.any(axis=1) & (level - outer > 2 * page.tolerance) & (first < len(offsets) - 1)
    octants = np.bincount((8 * np.arange(rays) // rays)[clear], minlength=8)
    if clear.sum() < rays / 4 or (octants >= 3).sum() < 6:
        return None  # a short arc gives no circle (a white map on a grey page's white)
    half = (level + outer) / 2
    # the outermost sample at or above half way, no further out than the first
    above = (profile >= half[:, None]) & (np.arange(len(offsets))[None, :] <= first[:, None])
    last = len(offsets) - 1 - np.argmax(above[:, ::-1], axis=1)
    last = np.minimum(last, len(offsets) - 2)
    here, there = profile[rows, last], profile[rows, last + 1]
    share = np.clip((here - half) / np.maximum(here - there, 1e-6), 0, 1)
    at = offsets[last] + 0.5 * share
    # a line stroked along the rim is centred on it: the rim is half way across the line
    inner_edge = _rim_line(image, page, xs, ys, first, offsets)
    stroked = ~np.isnan(inner_edge)
    line = (
        float(np.median((at - inner_edge)[stroked & clear]))
        if (stroked & clear).sum() > clear.sum() / 2
        else 0.0
    )
    at = np.where(stroked, (at + inner_edge) / 2, at)
    points = np.stack([cx + (radius + at) * np.cos(angles), cy + (radius + at) * np.sin(angles)], 1)
    fitted = _fit_circle(
        points[clear], tolerance=1.0, start=(cx, cy, radius + float(np.median(at[clear])))
    )
    if fitted is None or abs(fitted[2] - radius) > RIM_REACH:
        return None
    return fitted, line


def _rim_line(
    image: np.ndarray,
    page: Page,
    xs: np.ndarray,
    ys: np.ndarray,
    first: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    """Per ray across a rim (samples at `xs`, `ys`, at `offsets` from the circle; `first`:
    the outermost that stands out from the page), the inner edge of a line stroked along
    the rim, as an offset (NaN where none is): what first stands out is then a colour of
    its own, off the way from the page's colour to the map's a few pixels further in
    (black or grey on a light page, white on a dark one), for at most RIM_LINE pixels
    before the map's; its inner edge is where the colour is half way back to the map's."""
    rgb = np.stack(
        [ndimage.map_coordinates(image[..., c].astype(np.float32), [ys, xs], order=1,
                                 mode="nearest") for c in range(3)],
        axis=-1,
    )  # fmt: skip
    rays, step = len(first), offsets[1] - offsets[0]
    rows = np.arange(rays)
    span = round(RIM_LINE / step)
    index = np.clip(first[:, None] - np.arange(2 * span + 3)[None, :], 0, None)
    colours = rgb[rows[:, None], index]  # coming in from the first that stands out
    inside = np.median(colours[:, -3:], axis=1)  # beyond any line: the map
    # the line's core: the sample least like both the page and the map (its edges are
    # blends of the line with either)
    unlike = np.minimum(
        np.abs(colours - page.colour).max(axis=2), np.abs(colours - inside[:, None]).max(axis=2)
    )[:, : span + 1]
    core = np.argmax(unlike, axis=1)
    line = colours[rows, core]
    towards = inside - page.colour[None, :]
    length = np.maximum((towards**2).sum(axis=1), 1.0)
    along = ((line - page.colour[None, :]) * towards).sum(axis=1) / length
    off = np.abs(line - page.colour[None, :] - along[:, None] * towards).max(axis=1)
    stroked = (off > LINE_OFF) & (unlike[rows, core] > LINE_OFF)
    # the inner edge: past the core, where the colour is first nearer the map's than the
    # line's (to a fraction of a sample)
    nearer = np.linalg.norm(colours - line[:, None], axis=2) - np.linalg.norm(
        colours - inside[:, None], axis=2
    )
    beyond = (nearer > 0) & (np.arange(colours.shape[1])[None, :] > core[:, None])
    inner = np.argmax(beyond, axis=1)
    found = stroked & beyond.any(axis=1)
    before, after = nearer[rows, np.maximum(inner - 1, 0)], nearer[rows, inner]
    part = np.clip(-before / np.maximum(after - before, 1e-6), 0, 1)
    edge = offsets[first] - step * (np.maximum(inner - 1, 0) + part)
    return np.where(found, edge, np.nan)


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
