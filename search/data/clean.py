"""Turning a raw clinical export into a clean polar map.

Crop to the disc (found, or given as a box per view), remove burned-in text inside it,
blank everything outside it, and resize. Text removal is de-identification too: names
and dates must not reach any output, so the cleaned map is the only thing later steps
(caches, previews, CAMs, reports) ever see of an export.

Text is what lettering is: thin light strokes lined up as words, each letter one flat
colour, white or grey or the colour of the export's own titles. A map's colours are
gradients, so its bright ridges and specks (jet, rainbow, hot, cool, grey) are never
taken for text; what only looks like lettering is left alone and reported as unsure (the
preview outlines it). Text pixels are filled from the nearest map pixels that are not
text. docs/preprocessing.md has the rule and its measured figures.

Printed reports draw more over the map: the 17-segment grid, outlines, each segment's
score. Those marks (`search.data.marks`) are found first and removed like lettering;
whether a thing stands out from the map as no part of it could is read against the
map's own colour scale (`search.data.scale`, learned from the page's colour bar), so the
white end of a white-topped scale stays map. The disc is found on any page, dark or light
(`search.data.disc`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from search.data import morphology
from search.data.disc import Disc, choose_disc, find_discs, page_colours
from search.data.marks import find_marks, texture_level
from search.data.pixels import channel_max, label_max, round_kernel
from search.data.scale import ON_SCALE, ColourScale, learn_scale

__all__ = [
    "CLEANING_VERSION",
    "CleanMap",
    "CropBox",
    "clean_export",
    "crop_problem",
    "disc_mask",
    "find_text",
    "text_and_unsure",
]

CLEANING_VERSION = 7  # bump whenever the output of clean_export changes; part of cache keys
TEXT_CONTRAST = 60  # a stroke brighter than its surroundings by this much may be text
MIN_CONTRAST = 40  # ... or by this much over a quiet map (see `_contrast`)
TEXT_LIGHTNESS = 180  # ... if its second-brightest channel reaches this (white, grey, yellow)
ACHROMATIC = 48  # a pixel whose channels differ by at most this is white or grey
FLAT = 24  # colours (or lightnesses) this close are one: a letter's plateau is flat ...
PLATEAU = 0.8  # a letter's plateau: where it stands at least this share of its height
WORD = 3  # letters of one colour on a line that make a word
BLEND = 0.5  # a thin stroke keeps at least this share of its colour after JPEG
WHITE = np.array([[255.0, 255.0, 255.0]])
MAP_SHARE = 0.0002  # a colour the maps take at this share of their pixels is a map colour
FLAT_SHARE = 0.6  # ... at this share of its pixels (a map's ridge runs through a gradient)
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
        unsure: what looked like lettering inside the disc but was not text's colour or
            not flat (left alone), a bool mask over the same square as `text`.
        lines: the part of `text` that is lines drawn over the map (a segment grid, an
            outline), no lettering; over the same square (None: none known).
    """

    pixels: np.ndarray
    disc: Disc
    text: np.ndarray
    text_fraction: float
    unsure: np.ndarray
    lines: np.ndarray | None = None


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
    if crop is not None and (problem := crop_problem(crop, width, height)):
        raise ValueError(problem)
    discs = [crop.disc()] if crop is not None else find_discs(image)
    disc = choose_disc(discs, position)
    maps = _disc_masks(image.shape[:2], discs)
    text, unsure, lines = _overlays(image, disc.radius, maps, discs)

    square = _cut_square(image, disc)
    left, top, _, _ = disc.box()
    inside = disc_mask(square.shape[0], disc.radius, (disc.cx - left, disc.cy - top))
    text = _cut_square(text, disc) & inside
    # a line stroked along the rim lies half on the map: its inner half and a fringe
    # pixel are filled from the map like the rest of the grid
    rim_line = np.zeros_like(inside)
    if disc.rim_line > 0:
        short = disc.radius - disc.rim_line / 2 - 1
        rim_line = inside & ~disc_mask(square.shape[0], short, (disc.cx - left, disc.cy - top))
    text |= rim_line
    unsure = _cut_square(unsure, disc) & inside & ~text
    lines = (_cut_square(lines, disc) | rim_line) & text
    square = _fill(square, text, inside & ~text)
    square[~inside] = 0

    resized = _resample(square, disc, size)
    resized[~disc_mask(size, size / 2)] = 0
    share = float(text.sum() / max(1, inside.sum()))
    return CleanMap(resized, disc, text, share, unsure, lines)


def crop_problem(crop: CropBox, width: int, height: int) -> str | None:
    """Why a crop box cannot be cut from a width x height export (None when it can); the
    data check says it in the same words as cleaning would."""
    if crop.right > width or crop.bottom > height:
        return f"crop box {crop} lies outside the {width} x {height} image"
    return None


def find_text(image: np.ndarray, disc_radius: float, maps: np.ndarray | None = None) -> np.ndarray:
    """H x W bool: burned-in text, widened by two pixels to take the anti-aliased (and
    JPEG-ringing) edges. See `text_and_unsure`."""
    return text_and_unsure(image, disc_radius, maps)[0]


def text_and_unsure(
    image: np.ndarray,
    disc_radius: float,
    maps: np.ndarray | None = None,
    discs: list[Disc] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(text, unsure): H x W bool masks of an H x W x 3 uint8 export; see `_overlays`."""
    text, unsure, _ = _overlays(image, disc_radius, maps, discs)
    return text, unsure


def _overlays(
    image: np.ndarray,
    disc_radius: float,
    maps: np.ndarray | None = None,
    discs: list[Disc] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text, unsure, lines): H x W bool masks of an H x W x 3 uint8 export: what is
    drawn over its maps, to be filled in (lettering and marks); what only looks like it,
    left alone; and the part of the text that is lines (no lettering).

    Lettering is thin light strokes standing out from their surroundings in some colour
    channel (lighter, or darker in one channel: yellow on pale yellow), lined up in
    groups large enough to be words. A letter (a connected stroke) is text when its
    strokes are one flat colour and that colour is white or grey, or the colour of the
    export's lettering outside its maps (`maps`: H x W bool, the map discs; by default
    found). A map's colours are gradients: a bright ridge or speckle of a jet, rainbow,
    hot or cool map may look like lettering, but is not flat, or not the colour of the
    export's text; where the maps take the text's colour themselves, a letter counts
    only as one of a word's letters set on one cap line and baseline. Everything else is
    left alone as `unsure` (the preview shows it).

    Before lettering is looked for, marks drawn over the maps (segment grids, outlines,
    scores: `search.data.marks`, read against the maps' own colour scale, learned from
    the export's colour bar) are found and filled in from the map around them, so that
    the map's own texture beside a grid line is read as the map's. A "letter" over a
    map that lies on its scale no further from what lies beneath than the map's own
    specks do is the map's texture (a white speck at the top of a white-topped scale),
    not lettering, nor doubtful.

    Args:
        maps: H x W bool, the map discs with a two-pixel margin; by default found.
        discs: the discs themselves (by default read from `maps`).
    """
    stroke = max(2, round(disc_radius * STROKE_FRACTION))
    if maps is None:
        maps = _disc_masks(image.shape[:2], _coarse_discs(image))
        discs = _coarse_discs(image, refine=True)  # marks are read up to the rim
    elif discs is None:
        discs = _discs_of(maps)
    scale = learn_scale(image, maps, _pages(image, maps)) if maps.any() else None
    circles = [(d.cx, d.cy, d.radius) for d in discs]
    marks = find_marks(image, circles, stroke, (MIN_CONTRAST, TEXT_CONTRAST), scale)
    if marks.sure.any():  # the map without its marks, where lettering is looked for
        image = _filled_in(image, marks.sure, maps)
    found = _without_far_grey(image, _letters(image, stroke, maps), maps)
    if scale is not None:  # a map's own specks are not lettering, nor doubtful
        colours = _lettering_colours(image, found, maps, scale.bar)
        found = _without_texture(image, found, maps, scale, colours, marks.beneath)
    colour, beneath, flat, outside, faint, around = _letter_colours(image, found, maps)
    # a white or grey letter is lighter than what lies beneath; a darker one is a map's
    achromatic = _achromatic(colour) & ~found.sunk
    learned = colour[flat & outside & ~achromatic]  # white and grey need no learning
    # JPEG halves colour resolution: a thin stroke's colour is blended with what lies
    # beneath it, so a letter matches a text colour anywhere from it halfway to beneath
    targets = np.vstack([learned, WHITE])
    close = achromatic | _blended(colour, beneath, targets, blend=1.0)
    text_colour = close | _blended(colour, beneath, targets, blend=BLEND)
    text_colour |= _blended(colour, around, targets, blend=BLEND)
    # a faint letter is barely lighter than beneath it, as a hot map's own specks are:
    # doubtful, like a letter in a colour the maps take (below)
    candidate = flat & text_colour
    over_map = np.flatnonzero(candidate & ~outside)
    doubtful = over_map[_map_coloured(image, found.letters, colour[over_map], maps)]
    doubtful = np.union1d(doubtful, over_map[faint[over_map]])
    # ... unless it is one of a word's letters set as type is: count noise in a
    # white-topped scale's yellow makes white and pale-yellow specks that cluster into
    # rows of large "letters", which no baseline holds
    eligible = candidate.copy()
    candidate[doubtful] = _in_words(
        found.letters, found.lines, colour, stroke, doubtful, typeset=True
    )
    candidate |= _parted(found.letters, candidate & ~outside, eligible & ~candidate, colour)
    text = np.concatenate([[False], candidate])[found.letters]
    # A map's jagged rim stands out from the dark beyond it as a stroke would; a "letter"
    # lying wholly within a stroke's reach of the rim is the map's edge, not lettering.
    rim = maps & ~morphology.minimum_filter(maps, 4 * stroke + 3)
    on_rim = np.concatenate([[False], _label_all(rim, found.letters, found.count)])
    unsure = (found.letters > 0) & ~text & ~on_rim[found.letters]
    text = _widen(text, 2) | marks.found  # marks come with their own fringe
    return text, (unsure | marks.unsure) & ~text, marks.lines


@dataclass(frozen=True)
class Lettering:
    """What might be lettering in an export.

    Args:
        letters: H x W labels of strokes (8-connected) on lines long enough to be words.
        count: the number of letters.
        top_hat: H x W, how far each pixel stands above its surroundings (any channel).
        lines: H x W labels of the lines the letters lie on.
        background: H x W x 3, what lies beneath a stroke (a grey opening per channel).
        luma: H x W luminance.
        stroke: the largest stroke radius looked for, in pixels.
        luma_hat: H x W, how far each pixel stands above its surroundings in luminance
            (below, for a darker stroke).
        sunk: per letter, whether it is darker than its surroundings in some channel
            (rather than lighter).
    """

    letters: np.ndarray
    count: int
    top_hat: np.ndarray
    lines: np.ndarray
    background: np.ndarray
    luma: np.ndarray
    luma_hat: np.ndarray
    sunk: np.ndarray
    stroke: int
    contrast: float


def _letters(image: np.ndarray, stroke: int, maps: np.ndarray) -> Lettering:
    """The strokes of an export that may be letters (see `Lettering`): light thin
    strokes standing out from their surroundings in some channel, lighter than them
    (white over a map) or darker in a channel (yellow over a pale yellow or light grey
    map, which it matches in the others)."""
    rgb = np.ascontiguousarray(image[..., :3])
    size = 2 * stroke + 1
    values = rgb.astype(np.int16)
    opened = morphology.grey_opening(rgb, size).astype(np.int16)
    closed = morphology.grey_closing(rgb, size).astype(np.int16)
    lighter, darker = channel_max(values - opened), channel_max(closed - values)
    # Light in a 3 x 3 neighbourhood: JPEG softens thin strokes below the threshold.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    second = np.maximum(np.minimum(r, g), np.minimum(np.maximum(r, g), b))  # the median
    light = morphology.grey_dilation(second, 3) >= TEXT_LIGHTNESS
    contrast = _contrast(np.maximum(lighter, darker), maps)
    raised = (lighter > contrast) & light
    # a darker stroke is light itself (a white letter's dark gaps are not strokes)
    sunk = (darker > contrast) & (second >= TEXT_LIGHTNESS) & ~raised
    luma = (image[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.int16)
    luma_hat = np.where(
        sunk,
        morphology.grey_closing(luma, size) - luma,
        luma - morphology.grey_opening(luma, size),
    )
    top_hat = np.where(sunk, darker, lighter)
    background = np.where(sunk[..., None], closed, opened)
    # Three kinds of stroke, each read apart so that none joins another's letters or
    # lines: between the letters of a text dark in one channel (yellow over magenta) that
    # channel's surroundings stand out in it without being brighter overall.
    brighter = luma_hat >= 0.1 * top_hat
    letters, lines = np.zeros((2, *image.shape[:2]), dtype=np.int32)
    count = lined = 0
    for kind in (raised & brighter, raised & ~brighter, sunk):
        kind_lines, more_lines = ndimage.label(morphology.row_max(kind, 6 * stroke + 1))
        words = np.bincount(kind_lines[kind], minlength=more_lines + 1) >= 2.5 * stroke**2
        words[0] = False
        kind &= words[kind_lines]
        labels, more = ndimage.label(kind, structure=np.ones((3, 3), bool))
        letters = np.where(labels > 0, labels + count, letters)
        lines = np.where(kind, kind_lines + lined, lines)
        count, lined = count + more, lined + more_lines
    sunk_letters = np.zeros(count, dtype=bool)
    sunk_letters[count - more :] = True
    return Lettering(
        letters, count, top_hat, lines, background, luma, luma_hat, sunk_letters, stroke, contrast
    )


def _without_far_grey(image: np.ndarray, found: Lettering, maps: np.ndarray) -> Lettering:
    """The lettering without white or grey "letters" far from the maps (beyond a line of
    text's reach): no word over a map has them as letters, and white and grey are no
    colours to learn (a printed page's paper between its black letters makes thousands;
    reading each would cost more than the rest of cleaning)."""
    letters, count = found.letters, found.count
    if not count:
        return found
    reach = morphology.dilate(maps, np.ones((1, 2 * 12 * found.stroke + 1), bool))
    reach = morphology.dilate(reach, np.ones((4 * found.stroke + 1, 1), bool))
    near = _label_any(reach, letters, count)[1:]
    inside = letters > 0
    pixels = np.maximum(np.bincount(letters[inside], minlength=count + 1)[1:], 1)
    labels = letters[inside]
    mean = (
        np.stack(
            [
                np.bincount(labels, weights=image[..., c][inside], minlength=count + 1)[1:]
                for c in range(3)
            ],
            axis=1,
        )
        / pixels[:, None]
    )
    far_grey = ~near & _achromatic(mean)
    if not far_grey.any():
        return found
    return replace(
        found, letters=np.where(np.concatenate([[False], far_grey])[letters], 0, letters)
    )


def _lettering_colours(
    image: np.ndarray, found: Lettering, maps: np.ndarray, bar: tuple[int, int, int, int] | None
) -> np.ndarray:
    """k x 3: the chromatic colours the export's lettering outside its maps is drawn in
    (titles, labels), each a flat letter's; not the colour bar's own bands, nor a map's
    rim beyond a disc found a little small (a white line drawn along it)."""
    away = morphology.dilate(maps, round_kernel(2 * found.stroke + 1))
    if bar is not None:
        top, left, bottom, right = bar
        away[max(0, top - 4) : bottom + 4, max(0, left - 4) : right + 4] = True
    outside = found.letters * ~_label_any(away, found.letters, found.count)[found.letters]
    colour, _, flat, away, *_ = _letter_colours(image, replace(found, letters=outside), maps)
    return colour[flat & away & ~_achromatic(colour)]


def _without_texture(
    image: np.ndarray,
    found: Lettering,
    maps: np.ndarray,
    scale: ColourScale,
    text_colours: np.ndarray,
    around: np.ndarray,
) -> Lettering:
    """The lettering without the maps' own texture: a "letter" lying mostly over the maps
    whose plateau (where it stands out most) lies on their colour scale, no further along
    it from what lies beneath than the maps' own specks do (`texture_level`), is a speck
    of the map: a white speck at the top of a white-topped scale, a band's speck in a
    stepped one; what lies beneath is the map `around` it (the median of a window several
    strokes wide: an opening would take the darkest of a textured map's specks). Unless
    it is in a colour of the export's own lettering (`text_colours`: a cyan label over a
    jet map's cyan), as JPEG may have blended it."""
    letters, count = found.letters, found.count
    if not count:
        return found
    where = (letters > 0) & maps
    jump = np.zeros(letters.shape, np.float32)
    off = np.zeros(letters.shape, np.float32)
    here = image[where][:, :3]
    jump[where] = np.abs(scale.position(here) - scale.position(around[where]))
    off[where] = scale.distance(here) > ON_SCALE
    peak = label_max(found.top_hat, letters, count)
    plateau = where & (found.top_hat >= PLATEAU * np.concatenate([[0], peak])[letters])
    on_plateau = np.bincount(letters[plateau], minlength=count + 1)[1:]
    pixels = np.bincount(letters[letters > 0], minlength=count + 1)[1:]
    in_maps = np.bincount(letters[where], minlength=count + 1)[1:]
    mean_jump = np.bincount(letters[plateau], weights=jump[plateau], minlength=count + 1)[1:]
    off_share = np.bincount(letters[plateau], weights=off[plateau], minlength=count + 1)[1:]
    plateaus = np.maximum(on_plateau, 1)
    texture = (
        (in_maps >= 0.5 * pixels)
        & (on_plateau > 0)
        & (mean_jump / plateaus < texture_level(scale))
        & (off_share / plateaus < 0.5)
    )
    if len(text_colours) and texture.any():
        which = np.flatnonzero(texture)
        labels = letters[plateau]
        colour, under = (
            np.stack([np.bincount(labels, weights=values[plateau][:, c], minlength=count + 1)[1:]
                      for c in range(3)], 1)[which] / plateaus[which, None]
            for values in (image[..., :3].astype(float), found.background.astype(float))
        )  # fmt: skip
        texture[which[_blended(colour, under, text_colours, blend=BLEND)]] = False
    if not texture.any():
        return found
    kept = np.where(np.concatenate([[False], texture])[letters], 0, letters)
    return replace(found, letters=kept)


def _contrast(standing_out: np.ndarray, maps: np.ndarray) -> float:
    """How far a stroke must stand out to be read: TEXT_CONTRAST, or less over maps whose
    own texture is quieter (a smooth grey or cool map: twice what its 1 % most
    textured pixels reach, at least MIN_CONTRAST)."""
    inner = ndimage.binary_erosion(maps[::2, ::2], iterations=3)  # away from the rims
    if inner.sum() < 250:
        return TEXT_CONTRAST
    texture = np.percentile(standing_out[::2, ::2][inner], 99)
    return float(np.clip(2 * texture, MIN_CONTRAST, TEXT_CONTRAST))


def _label_any(flags: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Per label 0..count: whether any of its pixels is set (label 0: False)."""
    inside = labels > 0
    hits = np.bincount(labels[inside], weights=flags[inside], minlength=count + 1)
    hits[0] = 0
    return hits > 0


def _label_all(flags: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Whether every pixel of each label 1..count is set (False for a label without a
    pixel): `ndimage.minimum(...) > 0` for a boolean image, without its sort."""
    inside = labels > 0
    pixels = np.bincount(labels[inside], minlength=count + 1)[1:]
    flagged = np.bincount(labels[inside], weights=flags[inside], minlength=count + 1)[1:]
    return (pixels > 0) & (flagged == pixels)


def _in_words(
    letters: np.ndarray,
    lines: np.ndarray,
    colour: np.ndarray,
    stroke: int,
    which: np.ndarray,
    typeset: bool = False,
) -> np.ndarray:
    """For the letters `which` (indices): whether each one's line holds at least WORD
    letters of its colour, each large or set as type is: on its cap line and baseline
    (top and bottom rows within two pixels of its own) and letter-high (at least two
    strokes and a gap). With `typeset`, each set as type is: letter-high on its
    baseline, two of them on one cap line too (a speck of the map joined to a letter
    moves its top, not its baseline). The letter itself must be large or letter-high.
    A map's specks do not line up so."""
    if not len(which):
        return np.zeros(0, dtype=bool)
    line = label_max(lines, letters, len(colour))
    top, bottom, _, _ = _letter_boxes(letters, len(colour))
    high = bottom - top >= 2 * stroke + 1
    big = np.bincount(letters.ravel(), minlength=len(colour) + 1)[1:] >= 4 * stroke**2
    letter = big | high

    def of_its_word(these: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """these x all: letters of its colour on its line, and which of them are
        letter-high on its baseline."""
        same = np.abs(colour[these, None, :] - colour[None, :, :]).max(axis=2) <= FLAT
        same &= line[these, None] == line[None, :]
        return same, same & high[None, :] & (np.abs(bottom[these, None] - bottom[None, :]) <= 2)

    def capped(these: np.ndarray, on_base: np.ndarray) -> np.ndarray:
        """Of those on its baseline, those on its cap line too: set as type is."""
        return on_base & (np.abs(top[these, None] - top[None, :]) <= 2)

    same, on_base = of_its_word(which)
    if not typeset:
        counted = capped(which, on_base) | (same & big[None, :])
        return letter[which] & (counted.sum(axis=1) >= WORD)
    pool = np.flatnonzero(on_base.any(axis=0))
    typeset_mates = np.zeros(len(colour), dtype=int)
    typeset_mates[pool] = capped(pool, of_its_word(pool)[1]).sum(axis=1)
    paired = (on_base & (typeset_mates[None, :] >= 2)).any(axis=1)
    return letter[which] & (on_base.sum(axis=1) >= WORD) & paired


def _letter_boxes(letters: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """(top, bottom, left, right) of each letter's box, bottom and right exclusive; a
    label without pixels gets -99 throughout, beside and on a line with nothing."""
    none = (slice(-99, -99),) * 2
    rows, cols = zip(*(b or none for b in ndimage.find_objects(letters, max_label=count)),
                     strict=True)  # fmt: skip
    return (np.array([r.start for r in rows]), np.array([r.stop for r in rows]),
            np.array([c.start for c in cols]), np.array([c.stop for c in cols]))  # fmt: skip


def _parted(
    letters: np.ndarray, text: np.ndarray, pieces: np.ndarray, colour: np.ndarray
) -> np.ndarray:
    """Per letter: the `pieces` (doubted) lying beside a letter of `text`, within its rows
    and a pixel or two from its box, no wider than it is high, two pixels across at least
    and no larger than it (slivers and specks of a white-topped map's speckle beside a
    "letter" of it took held-back twins past 0.5 %), in its colour (a speck of the map
    beside a letter is not): the parts of a letter that JPEG parted (a P's bowl
    from its stem), which on their own are no letter on a baseline."""
    parted = np.zeros_like(text)
    these, of = np.flatnonzero(pieces), np.flatnonzero(text)
    if not len(these) or not len(of):
        return parted
    top, bottom, left, right = _letter_boxes(letters, len(text))
    pixels = np.bincount(letters.ravel(), minlength=len(text) + 1)[1:]
    beside = (
        (top[these, None] >= top[None, of] - 1)
        & (bottom[these, None] <= bottom[None, of] + 1)
        & (left[these, None] <= right[None, of] + 2)
        & (right[these, None] >= left[None, of] - 2)
        & ((right - left)[these, None] <= (bottom - top)[None, of])  # no wider than it is high
        & (np.minimum(right - left, bottom - top)[these, None] >= 2)  # a stroke, not a sliver
        & (pixels[these, None] <= pixels[None, of])  # the lesser part of the letter
        & (np.abs(colour[these, None, :] - colour[None, of, :]).max(axis=2) <= FLAT)
    )
    parted[these[beside.any(axis=1)]] = True
    return parted


def _letter_colours(
    image: np.ndarray, found: Lettering, maps: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per letter: its colour (the median of its plateau, the pixels where it stands out
    most: its edges blend with what lies beneath), the colour beneath it, whether it is
    flat (its plateau one lightness, as drawn lettering is; a map's ridge peaks through a
    gradient), whether it lies outside the maps, and whether it is faint (barely lighter
    than what lies beneath: white on light yellow, as a hot map's own specks are); and
    the colour around it (the median of a ring beyond its edges: what JPEG blends it with,
    where a channel the letter is dark in hides what lies beneath)."""
    count = found.count
    colour, beneath, around = np.zeros((3, count, 3))
    ring = found.stroke + 2
    height, width = found.letters.shape
    flat, outside = np.zeros(count, dtype=bool), np.zeros(count, dtype=bool)
    faint = np.zeros(count, dtype=bool)
    for index, window in enumerate(ndimage.find_objects(found.letters)):
        if window is None:
            continue
        mine = found.letters[window] == index + 1
        heights = found.top_hat[window][mine]
        top = heights >= PLATEAU * heights.max()
        colour[index] = np.median(image[window][mine][top, :3], axis=0)
        beneath[index] = np.median(found.background[window][mine][top], axis=0)
        luma = found.luma[window][mine][top]
        flat[index] = (np.abs(luma - np.median(luma)) <= FLAT).mean() >= FLAT_SHARE
        flat[index] &= top.sum() >= 2
        outside[index] = not maps[window][mine].any()
        faint[index] = np.median(found.luma_hat[window][mine][top]) <= TEXT_CONTRAST / 4
        if outside[index] or not flat[index] or _achromatic(colour[index : index + 1])[0]:
            around[index] = beneath[index]  # only a chromatic letter over a map needs it
            continue
        wide = tuple(
            slice(max(0, w.start - ring), min(stop, w.stop + ring))
            for w, stop in zip(window, (height, width), strict=True)
        )
        me = found.letters[wide] == index + 1
        beyond = ndimage.binary_dilation(me, iterations=ring) & ~ndimage.binary_dilation(me)
        beyond &= found.letters[wide] == 0
        around[index] = (
            np.median(image[wide][beyond][:, :3], axis=0) if beyond.any() else beneath[index]
        )
    return colour, beneath, flat, outside, faint, around


def _blended(
    colour: np.ndarray, beneath: np.ndarray, targets: np.ndarray, blend: float
) -> np.ndarray:
    """Per letter: whether its colour is within ACHROMATIC of one of `targets` (k x 3),
    or (blend < 1) that target blended at most 1 - `blend` of the way towards the colour
    beneath it."""
    matched = np.zeros(len(colour), dtype=bool)
    for target in targets:
        matched |= np.abs(colour - target).max(axis=1) <= ACHROMATIC
        if blend >= 1:
            continue
        direction = target - beneath
        length = np.maximum((direction**2).sum(axis=1), 1.0)
        share = np.clip(((colour - beneath) * direction).sum(axis=1) / length, 0.0, 1.0)
        residual = np.abs(colour - beneath - share[:, None] * direction).max(axis=1)
        matched |= (share >= blend) & (residual <= ACHROMATIC)
    return matched


def _map_coloured(
    image: np.ndarray, letters: np.ndarray, colour: np.ndarray, maps: np.ndarray
) -> np.ndarray:
    """Per letter: whether the maps themselves take its colour (on a sample of their
    pixels beyond any stroke), as a hot or grey colour scale reaches white at its
    maximum: a white speck there is as likely the map's own peak as a letter."""
    if not len(colour):
        return np.zeros(0, dtype=bool)
    clear = maps & ~_widen(letters > 0, 2)
    sample = image[::3, ::3][clear[::3, ::3]][:, :3].astype(np.int16)
    if not len(sample):
        return np.zeros(len(colour), dtype=bool)
    hits = np.zeros(len(colour))
    for start in range(0, len(colour), 64):  # bounded memory: 64 letters at a time
        part = colour[start : start + 64, None, :]
        hits[start : start + 64] = (np.abs(sample[None] - part).max(axis=2) <= FLAT).sum(1)
    return hits >= MAP_SHARE * len(sample)


def _widen(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask grown by `pixels` (a diamond, as that many 4-connected dilations)."""
    y, x = np.ogrid[-pixels : pixels + 1, -pixels : pixels + 1]
    return morphology.dilate(mask, np.abs(x) + np.abs(y) <= pixels)


def _coarse_discs(image: np.ndarray, refine: bool = False) -> list[Disc]:
    """The export's map discs at a quarter of the resolution, or refined (none when it
    has none)."""
    try:
        return find_discs(image, refine=refine)
    except ValueError:
        return []


def _discs_of(maps: np.ndarray) -> list[Disc]:
    """The discs of a mask of them drawn with a two-pixel margin (`_disc_masks`)."""
    labels, count = ndimage.label(maps)
    if not count:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    centres = ndimage.center_of_mass(maps, labels, range(1, count + 1))
    return [Disc(float(col), float(row), float(np.sqrt(size / np.pi)) - 2)
            for (row, col), size in zip(centres, sizes, strict=True)]  # fmt: skip


def _filled_in(image: np.ndarray, holes: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """A copy of the image whose `holes` take the colour of the nearest map pixel that
    is not one (within the box around them)."""
    rows, cols = np.nonzero(holes)
    top, bottom = max(0, rows.min() - 8), rows.max() + 9
    left, right = max(0, cols.min() - 8), cols.max() + 9
    window = np.s_[top:bottom, left:right]
    filled = image.copy()
    filled[window] = _fill(image[window], holes[window], maps[window] & ~holes[window])
    return filled


def _pages(image: np.ndarray, maps: np.ndarray) -> list[np.ndarray]:
    """The colours the maps may be drawn on: the page's, and the commonest colour just
    beyond the discs (a panel's)."""
    labels, _ = ndimage.label(maps[::4, ::4])
    discs = []
    for rows, cols in ndimage.find_objects(labels):
        centre = (2 * (cols.start + cols.stop - 1), 2 * (rows.start + rows.stop - 1))
        discs.append(Disc(*centre, 2 * max(rows.stop - rows.start, cols.stop - cols.start)))
    return page_colours(image, discs)


def _disc_masks(shape: tuple[int, int], discs: list[Disc]) -> np.ndarray:
    """H x W bool: the discs, with a two-pixel margin (their anti-aliased rims)."""
    maps = np.zeros(shape, dtype=bool)
    y, x = np.ogrid[: shape[0], : shape[1]]
    for disc in discs:
        maps |= np.hypot(x - disc.cx, y - disc.cy) <= disc.radius + 2
    return maps


def _achromatic(colours: np.ndarray) -> np.ndarray:
    """White or grey: channels within ACHROMATIC of each other (white tinted by JPEG is
    matched as white blended with what lies beneath)."""
    return np.ptp(colours, axis=-1) <= ACHROMATIC


def disc_mask(size: int, radius: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """size x size bool: pixels whose centre lies within `radius` of `centre` (x, y),
    by default the square's centre."""
    cx, cy = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    y, x = np.ogrid[0:size, 0:size]
    return np.hypot(x - cx, y - cy) <= radius


def _cut_square(image: np.ndarray, disc: Disc) -> np.ndarray:
    """The square around the disc (of an image or a mask), padded with zeros where it
    leaves the image."""
    left, top, right, bottom = disc.box()
    side = max(right - left, bottom - top)
    if image.ndim == 3:
        image = image[..., :3]
    square = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    height, width = image.shape[:2]
    src_left, src_top = max(left, 0), max(top, 0)
    src_right, src_bottom = min(left + side, width), min(top + side, height)
    square[src_top - top : src_bottom - top, src_left - left : src_right - left] = image[
        src_top:src_bottom, src_left:src_right
    ]
    return square


def _resample(square: np.ndarray, disc: Disc, size: int) -> np.ndarray:
    """The disc's own square (to a fraction of a pixel, not the whole pixels cut around
    it) resized to size x size: a disc found a third of a pixel elsewhere moves the map
    a third of a pixel, not a whole one."""
    left, top, _, _ = disc.box()
    padded = np.pad(square, ((1, 1), (1, 1), (0, 0)))  # black beyond: outside the disc
    side = padded.shape[0]
    x0, y0 = disc.cx - disc.radius + 0.5 - left + 1, disc.cy - disc.radius + 0.5 - top + 1
    box = tuple(
        float(np.clip(v, 0, side)) for v in (x0, y0, x0 + 2 * disc.radius, y0 + 2 * disc.radius)
    )
    return np.asarray(Image.fromarray(padded).resize((size, size), Image.LANCZOS, box=box)).copy()


def _fill(image: np.ndarray, holes: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Each hole pixel takes the colour of the nearest source pixel."""
    if not holes.any() or not sources.any():
        return image.copy()
    _, (rows, cols) = ndimage.distance_transform_edt(~sources, return_indices=True)
    filled = image.copy()
    filled[holes] = image[rows[holes], cols[holes]]
    return filled
