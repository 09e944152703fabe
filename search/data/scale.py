"""The colour scale an export's maps are drawn in, learned from the page itself.

From its colour bar (a long, narrow strip of the scale's colours beside the map) when it
has one whose colours the map takes; else from the map's own colours, ordered by
lightness (thermal, hot and grey scales run dark to light). The scale says where along
it a colour lies (0 at one end, 1 at the other) and how far off it a colour is: how the
cleaner tells a map's own texture from what is drawn over it. A white speck at the top
of a white-topped scale sits a tenth of the scale above the light yellow around it; a
black digit on yellow lies most of the scale away from it; a green line on a thermal
scale is off the scale altogether.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["ColourScale", "learn_scale"]

QUANTUM = 8  # colours are looked up in a table of 32 levels a channel
SAMPLES = 160  # a scale is kept as at most this many colours along it
BAR_CONTRAST = 24  # a colour bar stands out from the page around it by this much
COVERED = 0.7  # a bar is the map's scale when this share of the map lies on it ...
ON_SCALE = 40  # ... within this many levels in every channel
LUMA = np.array([0.299, 0.587, 0.114])
FLAT_RUN = 4  # colours this close along a bar are one flat band (of a stepped scale)


class ColourScale:
    """A colour scale: its colours in order along it, and for any colour where along the
    scale it lies and how far off it it is (looked up in a table of 32 levels a channel,
    filled as colours are asked for).

    Positions are distances travelled along the scale's colours (in RGB), as shares of
    its whole length: a scale that runs from red to white in its last twentieth moves a
    third of its length there, as far as the eye sees it move. A bar's scale is the path
    through its colours, so that a colour between two neighbouring ones (as resampling
    makes at the edge of a stepped scale's band) lies on it.

    Args:
        colours: n x 3, the scale's colours in order along it.
        places: n, their positions along it, 0..1.
        from_bar: whether the colour bar gave it (else the map's colours, by lightness).
        step: for a stepped scale, the largest move from one flat band to the next (0:
            smooth); a map's specks move so far.

    Attributes:
        bar: the colour bar's box (top, left, bottom, right), when the bar gave it.
    """

    def __init__(self, colours: np.ndarray, places: np.ndarray, from_bar: bool, step: float):
        self.colours, self.places = colours, places
        self.from_bar, self.step = from_bar, step
        self.bar: tuple[int, int, int, int] | None = None  # (top, left, bottom, right)
        self._positions = np.full(32**3, np.nan, np.float32)
        self._distances = np.full(32**3, np.nan, np.float32)

    def position(self, rgb: np.ndarray) -> np.ndarray:
        """Where along the scale each colour (... x 3 uint8) lies, 0..1."""
        cells = _cells(rgb)
        self._fill(cells)
        return self._positions[cells]

    def distance(self, rgb: np.ndarray) -> np.ndarray:
        """How far (largest channel difference) each colour is from the scale."""
        cells = _cells(rgb)
        self._fill(cells)
        return self._distances[cells]

    def _fill(self, cells: np.ndarray) -> None:
        """Look up the table cells not yet known."""
        wanted = np.unique(cells)
        wanted = wanted[np.isnan(self._positions[wanted])]
        if not len(wanted):
            return
        centres = np.stack([wanted // 1024, wanted // 32 % 32, wanted % 32], 1)
        centres = centres * QUANTUM + QUANTUM / 2
        if self.from_bar and len(self.colours) > 1:
            places, nearest = _on_path(centres, self.colours, self.places)
        else:
            _, index = cKDTree(self.colours).query(centres)
            places, nearest = self.places[index], self.colours[index]
        distance = np.abs(centres - nearest).max(axis=1)
        self._positions[wanted] = places
        self._distances[wanted] = np.maximum(distance - QUANTUM / 2, 0)


def _on_path(
    colours: np.ndarray, path: np.ndarray, places: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each colour (k x 3), the position of the nearest point on the path through
    `path`'s colours (whose positions are `places`), and that point."""
    start, move = path[:-1], np.diff(path, axis=0)
    length = np.maximum((move**2).sum(axis=1), 1e-9)
    where, point = np.empty(len(colours)), np.empty((len(colours), 3))
    for first in range(0, len(colours), 1024):  # bounded memory
        part = colours[first : first + 1024, None, :]
        share = np.clip(((part - start) * move).sum(axis=2) / length, 0, 1)
        nearest = start + share[..., None] * move
        best = ((part - nearest) ** 2).sum(axis=2).argmin(axis=1)
        rows = np.arange(len(best))
        where[first : first + 1024] = places[best] + share[rows, best] * np.diff(places)[best]
        point[first : first + 1024] = nearest[rows, best]
    return where, point


def learn_scale(image: np.ndarray, maps: np.ndarray, pages: list[np.ndarray]) -> ColourScale | None:
    """The scale of an export's maps (`maps`: H x W bool, the discs): its colour bar's on
    one of `pages` (the colours the map and its bar may be drawn on) whose colours
    the maps take (COVERED), else the maps' own colours by lightness. None when the
    export has no map."""
    inner = ndimage.binary_erosion(maps[::3, ::3], iterations=2)  # not the page at the rims
    sample = image[::3, ::3][inner][:, :3]
    if len(sample) < 50:
        return None
    best, covered = None, 0.0
    for bar, where in _bars(image, maps, pages):
        share = float((_distance_to(bar, sample) <= ON_SCALE).mean())
        if share >= COVERED and share > covered:
            best, covered, box = bar, share, where
    if best is not None:
        scale = _along(best)
        scale.bar = box
        return scale
    colours = _by_lightness(sample)
    lightness = colours @ np.array([0.299, 0.587, 0.114])
    places = (lightness - lightness[0]) / max(1.0, lightness[-1] - lightness[0])
    return ColourScale(colours, places, False, 0.0)


def _bars(
    image: np.ndarray, maps: np.ndarray, pages: list[np.ndarray]
) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The colour sequences of every colour bar candidate, and its box (top, left,
    bottom, right): long, narrow, solid strips that stand out from a page, read along
    their length (across: the median of their middle half), without a frame."""
    coarse = 4
    small = image[::coarse, ::coarse, :3].astype(np.int16)
    away = ~ndimage.binary_dilation(maps[::coarse, ::coarse], iterations=2)
    bars = []
    distinct = []  # a page and a panel of one colour are read once
    for page in pages:
        if all(np.abs(np.asarray(page) - seen).max() > BAR_CONTRAST / 2 for seen in distinct):
            distinct.append(np.asarray(page, float))
    for page in distinct:
        drawn = (np.abs(small - np.asarray(page, np.int16)).max(axis=2) > BAR_CONTRAST) & away
        labels, _ = ndimage.label(drawn)
        for index, box in enumerate(ndimage.find_objects(labels)):
            rows, cols = (b.stop - b.start for b in box)
            long, short = max(rows, cols), min(rows, cols)
            solid = (labels[box] == index + 1).mean()
            if long < 24 or long < 3 * short or short < 2 or solid < 0.7:
                continue
            top, left = box[0].start * coarse, box[1].start * coarse
            bottom, right = box[0].stop * coarse, box[1].stop * coarse
            strip = image[top:bottom, left:right, :3].astype(float)
            if rows < cols:  # horizontal: read along the columns
                strip = strip.transpose(1, 0, 2)
            across = strip.shape[1]
            middle = strip[:, across // 4 : max(across // 4 + 1, 3 * across // 4)]
            colours = _without_frame(np.median(middle, axis=1), np.asarray(page, float))
            if len(colours) < 16 or np.ptp(colours, axis=0).max() < 100:  # not a scale
                continue
            where = (top, left, bottom, right)
            bars.append((colours, where))
            # The one colour a bar can hide is the page's: a white top on white paper does
            # not stand out, so the bar seems to stop short of it. The scale may go on to
            # the page's colour at the end nearer to it in lightness (a grey page is
            # as far from yellow as from black in blue, not in lightness).
            paper = np.repeat(np.asarray(page, float)[None, :], 5, axis=0)
            nearer = np.abs((colours[[0, -1]] - paper[:1]) @ LUMA)
            ends = [paper, colours] if nearer[0] < nearer[1] else [colours, paper]
            bars.append((np.vstack(ends), where))
    return bars


def _without_frame(colours: np.ndarray, page: np.ndarray) -> np.ndarray:
    """A bar's colours along it without what its box holds beyond the bar at either
    end: the page, and a frame (a few samples unlike the bar's next ones)."""
    keep = np.abs(colours - page).max(axis=1) > BAR_CONTRAST
    if not keep.any():
        return colours[:0]
    first, last = np.flatnonzero(keep)[[0, -1]]
    colours = colours[first : last + 1]
    edge = max(3, len(colours) // 100)
    for _ in range(edge):  # a frame differs from the bar a few samples further in
        if len(colours) > 8 and np.abs(colours[0] - colours[4]).max() > 60:
            colours = colours[1:]
        if len(colours) > 8 and np.abs(colours[-1] - colours[-5]).max() > 60:
            colours = colours[:-1]
    return colours


def _distance_to(colours: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Per sample colour, the largest channel difference to the nearest of `colours`."""
    _, nearest = cKDTree(colours).query(sample.astype(float))
    return np.abs(sample.astype(float) - colours[nearest]).max(axis=1)


def _along(bar: np.ndarray) -> ColourScale:
    """The scale a bar's colours (in order along it) show: each flat band of a stepped
    scale one colour; positions by the distance travelled along the colours (smoothed
    first, so that JPEG's noise adds no length)."""
    bar = ndimage.median_filter(bar, size=(5, 1), mode="nearest")
    runs, start = [], 0
    for i in range(1, len(bar) + 1):
        if i == len(bar) or np.abs(bar[i] - bar[start]).max() > FLAT_RUN:
            runs.append((start, i))
            start = i
    inner = [b - a for a, b in runs[1:-1]] or [0]
    if max(inner) >= 0.04 * len(bar):  # stepped: one colour a band
        colours = np.array([np.median(bar[a:b], axis=0) for a, b in runs if b - a >= 3])
        moves = np.linalg.norm(np.diff(colours, axis=0), axis=1)
        total = max(moves.sum(), 1.0)
        places = np.concatenate([[0.0], np.cumsum(moves)]) / total
        return ColourScale(colours, places, True, float(moves.max() / total))
    smooth = ndimage.uniform_filter1d(bar, size=max(3, len(bar) // 40), axis=0, mode="nearest")
    pick = np.linspace(0, len(bar) - 1, min(SAMPLES, len(bar))).round().astype(int)
    moves = np.linalg.norm(np.diff(smooth[pick], axis=0), axis=1)
    places = np.concatenate([[0.0], np.cumsum(moves)]) / max(moves.sum(), 1.0)
    return ColourScale(bar[pick], places, True, 0.0)


def _by_lightness(sample: np.ndarray) -> np.ndarray:
    """The maps' own colours (binned), darkest to lightest: a scale without a bar."""
    binned = (sample // QUANTUM).astype(np.int64)
    keys, counts = np.unique(binned[:, 0] * 1024 + binned[:, 1] * 32 + binned[:, 2],
                             return_counts=True)  # fmt: skip
    keys = keys[counts >= max(2, 0.0005 * len(sample))]
    colours = np.stack([keys // 1024, keys // 32 % 32, keys % 32], 1) * QUANTUM + QUANTUM / 2
    lightness = colours @ np.array([0.299, 0.587, 0.114])
    return colours[np.argsort(lightness, kind="stable")].astype(float)


def _cells(rgb: np.ndarray) -> np.ndarray:
    q = np.asarray(rgb)[..., :3].astype(np.int32) // QUANTUM
    return q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2]
