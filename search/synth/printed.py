"""Exports drawn as clinics print perfusion reports: a light page (white, off-white or
grey, sometimes with a framed grey panel around the map), dark lettering, a white-topped
thermal colour scale (black - blue - magenta - red - orange - yellow - white, as several
vendors' "thermal" / "Cedars" scales run) with its colour bar, the AHA 17-segment grid
drawn over the map in thin lines and each segment's score printed on it.

Every page comes with its overlay-free twin (the same page and map with no lettering, no
grid and no scores: what cleaning should give) and the masks of what was drawn, so
cleaning can be measured against the truth. Page sizes and colours, line widths and
colours, fonts, scale variants (smooth or in steps, a short or long white top), how the
map is resampled and its noise all vary from page to page, so that a cleaner tuned to one
picture shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from search.data.segments import RING_EDGES, segment_map
from search.synth.render import colourize

__all__ = ["PRINTED_SCALES", "PrintedExport", "render_printed_export"]

# value, red, green, blue. "thermal" reaches white only at the maximum; "cedars" holds
# white over its top 3 %, as scales with a long white end do.
PRINTED_SCALES = {
    "thermal": np.array([(0, 0, 0, 0), (0.2, 0, 0, 200), (0.4, 200, 0, 200), (0.6, 230, 0, 0),
                         (0.75, 255, 140, 0), (0.88, 255, 240, 0), (1, 255, 255, 255)], float),
    "cedars": np.array([(0, 0, 0, 0), (0.15, 0, 0, 255), (0.35, 170, 0, 200), (0.55, 255, 0, 0),
                        (0.7, 255, 128, 0), (0.85, 255, 255, 0), (0.97, 255, 255, 255),
                        (1, 255, 255, 255)], float),
}  # fmt: skip
SCALE_STEPS = (0, 0, 10, 16)  # flat bands of the scale (0: smooth), drawn at random
PAGES = ((1100, 850), (850, 1100), (1240, 1754), (1654, 1169), (1600, 1200), (1275, 1650))
PAGE_COLOURS = ((255, 255, 255), (255, 255, 255), (252, 251, 247), (242, 242, 242),
                (226, 228, 230), (205, 205, 205))  # fmt: skip
PANEL_COLOURS = ((235, 235, 235), (215, 218, 222), (250, 250, 250))
GRID_COLOURS = ((0, 0, 0), (0, 0, 0), (0, 0, 0), (60, 60, 60), (255, 255, 255), (0, 150, 0))
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
         "DejaVuSerif-Bold.ttf", "STIXGeneral.ttf")  # fmt: skip
SUPERSAMPLE = 4  # anti-aliased lines are drawn this many times finer, then averaged
# each segment's centre: (radius as a share of the disc's, angle from anterior towards
# the septum, degrees)
RING_MIDDLES = {0: (RING_EDGES[2] + 1) / 2, 1: (RING_EDGES[1] + RING_EDGES[2]) / 2,
                2: (RING_EDGES[0] + RING_EDGES[1]) / 2}  # fmt: skip


@dataclass(frozen=True)
class PrintedExport:
    """One printed page and its truth.

    Args:
        image: H x W x 3 uint8, the page as printed.
        twin: H x W x 3 uint8, the same page and map with no lettering, grid or scores.
        text_mask: H x W bool, every pixel lettering was drawn on (titles, labels, scores).
        overlay_mask: H x W bool, every pixel of the disc something was drawn over (grid
            lines, scores, any lettering), and the rim's line where it runs beyond the
            disc (a stroke is centred on its circle).
        discs: view -> (centre x, centre y, radius), in page pixels.
        positions: view -> None (one map a page).
        colour_map: the scale's name ('thermal' or 'cedars', '-stepped' when in bands).
        text_over_map: True (scores are printed over the map).
        page: the page's colour.
        scores: segment (1-17) -> the score printed on it.
    """

    image: np.ndarray
    twin: np.ndarray
    text_mask: np.ndarray
    overlay_mask: np.ndarray
    discs: dict[str, tuple[float, float, float]]
    positions: dict[str, str | None]
    colour_map: str
    text_over_map: bool
    page: tuple[int, int, int]
    scores: dict[int, int]


def render_printed_export(
    uptake: np.ndarray,
    view: str,
    texts: tuple[str, str, str],
    rng: np.random.Generator,
    scale: str | None = None,
    page: tuple[int, int] | None = None,
    colour_bar: bool = True,
    stepped: bool | None = None,
) -> PrintedExport:
    """Draw one view's `uptake` (size x size in [0, 1], NaN outside the map) on a printed
    report page; `texts` are (patient name, study date, scanner). The scale ('thermal' or
    'cedars'), whether it is drawn in flat bands (`stepped`), the page size and
    everything else not given are drawn from `rng`.

    Raises:
        ValueError: an unknown scale.
    """
    scale = scale or str(rng.choice(list(PRINTED_SCALES)))
    if scale not in PRINTED_SCALES:
        raise ValueError(f"scale {scale!r}: expected one of {', '.join(PRINTED_SCALES)}")
    width, height = page or tuple(int(v) for v in PAGES[int(rng.integers(len(PAGES)))])
    steps = int(rng.choice(SCALE_STEPS))
    if stepped is not None:  # asked for: smooth, or in as many bands as drawn (10 or 16)
        steps = (steps or 10 + 6 * int(rng.random() < 0.5)) if stepped else 0
    colours = _stepped(PRINTED_SCALES[scale], steps)
    page_colour = tuple(int(c) for c in PAGE_COLOURS[int(rng.integers(len(PAGE_COLOURS)))])
    short = min(width, height)
    size = max(11, round(short * rng.uniform(0.017, 0.026)))  # the lettering's, px
    labels = bool(rng.random() < 0.6)  # orientation labels just beyond the rim
    radius = float(rng.uniform(0.17, 0.27) * short)
    label_room = 3.2 * size if labels else 0.0
    gap_share, bar_share = rng.uniform(0.2, 0.45), rng.uniform(0.07, 0.12)
    vertical_bar = bool(rng.random() < 0.7)
    title_bottom = round(0.03 * height) + 7 * size
    while True:  # the largest radius drawn that leaves room for everything around the map
        bar_gap, bar_width = gap_share * radius + label_room, bar_share * radius
        right_room = bar_gap + bar_width + 4 * size if vertical_bar else label_room + 0.1 * radius
        top_room = title_bottom + 0.35 * radius + (2 * size if labels else 0)
        bar_below = label_room if vertical_bar else bar_gap + bar_width + 2 * size
        below = 0.08 * height + 2.5 * size + 0.3 * radius + bar_below
        left_room = 0.3 * radius + label_room
        tall, wide = top_room + 2 * radius + below, left_room + 2 * radius + right_room
        if (tall <= height and wide <= width) or radius < 0.08 * short:
            break
        radius *= 0.95
    cx = float(
        rng.uniform(radius + left_room, max(radius + left_room, width - radius - right_room))
    )
    cy = float(rng.uniform(radius + top_room, max(radius + top_room, height - radius - below)))

    image = np.empty((height, width, 3), np.float32)
    image[:] = page_colour
    panel = None
    if rng.random() < 0.45:  # a framed panel around the map, sometimes grey
        pad = rng.uniform(0.12, 0.25) * radius
        panel_right = cx + radius + pad + (right_room - 0.1 * radius if vertical_bar else 0)
        panel_bottom = cy + radius + pad + (0 if vertical_bar else bar_gap + bar_width + 2 * size)
        panel = (cx - radius - pad - label_room, cy - radius - pad - (2 * size if labels else 0),
                 panel_right, panel_bottom + (2 * size if labels else 0))  # fmt: skip
        if rng.random() < 0.5:
            fill = PANEL_COLOURS[int(rng.integers(len(PANEL_COLOURS)))]
            box = tuple(round(v) for v in panel)
            image[max(0, box[1]) : box[3], max(0, box[0]) : box[2]] = fill
        frame_width = int(rng.integers(1, 4))
        frame_colour = (0, 0, 0) if rng.random() < 0.6 else (128, 128, 128)
        _rectangle(image, panel, frame_colour, frame_width)

    # the map: normalised to its peak (the report's 100 %), with or without count noise
    values = uptake / np.nanquantile(uptake, rng.uniform(0.96, 0.995))
    if rng.random() < 0.4:
        values = values + rng.normal(0, rng.uniform(0.005, 0.02), values.shape)
    values = np.clip(values, 0, 1)
    diameter = round(2 * radius)
    disc = _map_pixels(values, colours, diameter, str(rng.choice(["colour", "value"])))
    left, top = round(cx - radius), round(cy - radius)
    inside = _disc(diameter)
    region = image[top : top + diameter, left : left + diameter]
    region[inside] = disc[inside]
    # the disc as drawn, whole pixels and all: what the grid is drawn on, and the truth
    cx, cy, radius = left + (diameter - 1) / 2, top + (diameter - 1) / 2, diameter / 2

    if colour_bar:
        length = 2 * radius * rng.uniform(0.8, 1.0)
        if vertical_bar:
            bar = (cx + radius + bar_gap, cy - length / 2, cx + radius + bar_gap + bar_width,
                   cy + length / 2)  # fmt: skip
        else:
            bar = (cx - length / 2, cy + radius + bar_gap, cx + length / 2,
                   cy + radius + bar_gap + bar_width)  # fmt: skip
        _colour_bar(image, bar, colours, vertical_bar)
        if rng.random() < 0.6:
            _rectangle(image, bar, (0, 0, 0), 1)
    twin = image.round().astype(np.uint8)

    # overlays: everything below is missing from the twin
    text_mask = np.zeros((height, width), bool)
    overlay_mask = np.zeros((height, width), bool)
    ink = (0, 0, 0) if rng.random() < 0.7 else (40, 40, 60)
    font_name = FONTS[int(rng.integers(len(FONTS)))]
    writer = _Writer(image, text_mask, font_name)
    name, study, scanner = texts
    margin = round(0.05 * width)
    lines = [(f"{view.upper()} PERFUSION  (polar map)", 1.3), (f"Patient: {name}", 1.0),
             (f"Study date: {study}", 1.0), (f"Camera: {scanner}", 1.0)]  # fmt: skip
    y = round(0.03 * height)
    for line, grow in lines:
        writer.write((margin, y), line, ink, round(size * grow))
        y += round(size * grow * 1.5)
    if colour_bar:
        ticks = ("100%", "50%", "0%") if rng.random() < 0.5 else ("100", "50", "0")
        for share, label in zip((0.0, 0.5, 1.0), ticks, strict=True):
            if vertical_bar:
                at = (round(bar[2] + 0.4 * size), round(bar[1] + share * (bar[3] - bar[1])))
                writer.write(at, label, ink, size, anchor="lm")
            else:
                at = (round(bar[2] - share * (bar[2] - bar[0])), round(bar[3] + 0.4 * size))
                writer.write(at, label, ink, size, anchor="mt")
    if labels:
        gap = radius * rng.uniform(0.02, 0.08) + 0.3 * size
        around = (("ANT", (0, -1), "mb"), ("INF", (0, 1), "mt"), ("SEPT", (-1, 0), "rm"),
                  ("LAT", (1, 0), "lm"))  # fmt: skip
        for label, (dx, dy), anchor in around:
            at = (round(cx + dx * (radius + gap)), round(cy + dy * (radius + gap)))
            writer.write(at, label, ink, size, anchor=anchor)
    scores = _scores(values)
    writer.write((margin, round(height - 0.06 * height)),
                 f"Summed score: {sum(scores.values())}   Extent: {rng.integers(0, 30)} %",
                 ink, size)  # fmt: skip

    # the 17-segment grid and the scores, over the map
    grid_colour = GRID_COLOURS[int(rng.integers(len(GRID_COLOURS)))]
    line_width = max(1.0, radius * rng.uniform(0.004, 0.013))
    rim = bool(rng.random() < 0.7)
    over = _grid(image.shape[:2], (cx, cy, radius), line_width, rim, bool(rng.random() < 0.75))
    _paint(image, over, grid_colour)
    overlay_mask |= over > 0
    score_writer = _Writer(image, text_mask, FONTS[int(rng.integers(len(FONTS)))])
    score_size = max(9, round(radius * rng.uniform(0.07, 0.12)))
    contrast = bool(rng.random() < 0.25)  # white on dark segments, black on light ones
    for segment, score in scores.items():
        ring, angle = _ring_and_angle(segment)
        distance = 0 if ring == 3 else RING_MIDDLES[ring] * radius
        at = (round(cx - distance * math.sin(math.radians(angle))),
              round(cy - distance * math.cos(math.radians(angle))))  # fmt: skip
        colour = ink
        if contrast:
            under = image[min(height - 1, at[1]), min(width - 1, at[0])]
            colour = (255, 255, 255) if under @ (0.299, 0.587, 0.114) < 110 else (0, 0, 0)
        score_writer.write(at, str(score), colour, score_size, anchor="mm")
    y, x = np.ogrid[:height, :width]
    in_disc = np.hypot(x - cx, y - cy) <= radius + 0.5
    overlay_mask |= text_mask & in_disc
    name = scale + ("-stepped" if steps else "")
    return PrintedExport(image.round().astype(np.uint8), twin, text_mask, overlay_mask,
                         {view: (cx, cy, radius)}, {view: None}, name, True,
                         page_colour, scores)  # fmt: skip


def _stepped(colours: np.ndarray, steps: int) -> np.ndarray:
    """The scale in `steps` flat bands (0: as it is): a table whose every band is one
    colour, the scale's colour at the band's middle."""
    if not steps:
        return colours
    rows = []
    for band in range(steps):
        low, high = band / steps, (band + 1) / steps
        rgb = [np.interp((low + high) / 2, colours[:, 0], colours[:, c]) for c in (1, 2, 3)]
        rows += [(low, *rgb), (high - 1e-6 if band < steps - 1 else 1.0, *rgb)]
    return np.array(rows, float)


def _map_pixels(values: np.ndarray, colours: np.ndarray, diameter: int, how: str) -> np.ndarray:
    """diameter x diameter x 3 float: the map coloured then resampled (`colour`, as most
    viewers do) or resampled then coloured (`value`: every pixel on the scale)."""
    if how == "colour":
        rgb = colourize(_filled(values), colours)
        return np.asarray(Image.fromarray(rgb).resize((diameter, diameter), Image.BILINEAR))
    grid = Image.fromarray(_filled(values).astype(np.float32), mode="F")
    fine = np.asarray(grid.resize((diameter, diameter), Image.BILINEAR))
    return colourize(np.clip(fine, 0, 1), colours).astype(np.float32)


def _filled(values: np.ndarray) -> np.ndarray:
    """NaN (outside the map) taken from the nearest map value, so resampling does not
    darken the rim."""
    missing = np.isnan(values)
    _, nearest = ndimage.distance_transform_edt(missing, return_indices=True)
    return values[tuple(nearest)]


def _disc(diameter: int) -> np.ndarray:
    centre = (diameter - 1) / 2
    y, x = np.ogrid[0:diameter, 0:diameter]
    return np.hypot(x - centre, y - centre) <= diameter / 2


def _colour_bar(image: np.ndarray, box, colours: np.ndarray, vertical: bool) -> None:
    left, top, right, bottom = (round(v) for v in box)
    if vertical:
        ramp = np.linspace(1, 0, bottom - top)[:, None].repeat(right - left, axis=1)
    else:
        ramp = np.linspace(0, 1, right - left)[None, :].repeat(bottom - top, axis=0)
    image[top:bottom, left:right] = colourize(ramp, colours)


def _rectangle(image: np.ndarray, box, colour, width: int) -> None:
    """A frame of `width` pixels just inside `box` (clipped to the page)."""
    height, page_width = image.shape[:2]
    left, top, right, bottom = (round(v) for v in box)
    left, top = max(0, left), max(0, top)
    right, bottom = min(page_width, right), min(height, bottom)
    image[top : top + width, left:right] = colour
    image[bottom - width : bottom, left:right] = colour
    image[top:bottom, left : left + width] = colour
    image[top:bottom, right - width : right] = colour


def _grid(
    shape: tuple[int, int], disc: tuple[float, float, float], width: float, rim: bool,
    smooth: bool,
) -> np.ndarray:  # fmt: skip
    """H x W float in [0, 1]: how much of each pixel the 17-segment grid covers (ring
    boundaries, segment boundaries, the rim when `rim`), anti-aliased when `smooth`.
    Lines are stroked as vector renderers stroke paths, centred on them: the rim's line
    lies half on the map, half beyond it."""
    cx, cy, radius = disc
    scale = SUPERSAMPLE if smooth else 1
    pad = math.ceil(width) + 2
    left, top = math.floor(cx - radius) - pad, math.floor(cy - radius) - pad
    side = math.ceil(2 * radius) + 2 * pad
    layer = Image.new("L", (side * scale, side * scale), 0)
    draw = ImageDraw.Draw(layer)
    # a pixel's centre, supersampled: the middle of the scale x scale pixels it becomes
    ox, oy = ((c * scale + (scale - 1) / 2) for c in (cx - left, cy - top))
    line = max(1, round(width * scale))
    spokes = [(RING_EDGES[1], 1.0, a) for a in range(30, 360, 60)]
    spokes += [(RING_EDGES[0], RING_EDGES[1], a) for a in range(45, 360, 90)]
    for inner, outer, angle in spokes:
        s, c = math.sin(math.radians(angle)), math.cos(math.radians(angle))
        ends = [(ox - f * radius * scale * s, oy - f * radius * scale * c) for f in (inner, outer)]
        draw.line(ends, fill=255, width=line)
    if scale > 1:
        layer = layer.resize((side, side), Image.BOX)
    cover = np.asarray(layer, np.float32) / 255
    # the rings, each a stroke centred on its circle (the rim's too: half beyond the map),
    # covering each pixel by its share (roughly) when anti-aliased
    y, x = np.ogrid[0:side, 0:side]
    distance = np.hypot(x - (cx - left), y - (cy - top))
    half = line / scale / 2
    for edge in [*RING_EDGES[:3], 1.0] if rim else list(RING_EDGES[:3]):
        off = np.abs(distance - edge * radius)
        ring = np.clip(half + 0.5 - off, 0, 1) if smooth else (off <= max(half, 0.5))
        cover = np.maximum(cover, ring.astype(np.float32))
    out = np.zeros(shape, np.float32)
    height, page_width = shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(height, top + side), min(page_width, left + side)
    out[y0:y1, x0:x1] = cover[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def _disc_at(side: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    y, x = np.ogrid[0:side, 0:side]
    return (np.hypot(x - centre[0], y - centre[1]) <= radius).astype(np.float32)


def _paint(image: np.ndarray, cover: np.ndarray, colour) -> None:
    """Lay `colour` over the image, each pixel by the share `cover` of it."""
    alpha = cover[..., None]
    image *= 1 - alpha
    image += alpha * np.asarray(colour, np.float32)


def _scores(values: np.ndarray) -> dict[int, int]:
    """A score per segment, 0 (normal) to 4 (absent uptake), from its mean uptake."""
    segments = segment_map(values.shape[0])
    scores = {}
    for segment in range(1, 18):
        mean = float(np.nanmean(values[segments == segment]))
        scores[segment] = int(np.clip(round((0.85 - mean) / 0.1), 0, 4))
    return scores


def _ring_and_angle(segment: int) -> tuple[int, float]:
    """A segment's ring (0 basal, 1 mid, 2 apical, 3 apex) and centre angle."""
    if segment <= 12:
        return (segment - 1) // 6, ((segment - 1) % 6) * 60.0
    if segment <= 16:
        return 2, (segment - 13) * 90.0
    return 3, 0.0


class _Writer:
    """Anti-aliased lettering on a float page, its pixels recorded in a mask."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, font: str):
        self.image, self.mask, self.font = image, mask, font

    def write(self, xy, text: str, colour, size: int, anchor: str = "la") -> None:
        font = _font(self.font, size)
        left, top, right, bottom = font.getbbox(text, anchor=anchor)
        layer = Image.new("L", (right - left + 2, bottom - top + 2), 0)
        ImageDraw.Draw(layer).text((1 - left, 1 - top), text, fill=255, font=font, anchor=anchor)
        cover = np.asarray(layer, np.float32) / 255
        x0, y0 = xy[0] + left - 1, xy[1] + top - 1
        height, width = self.mask.shape
        ys, xs = (
            slice(max(0, y0), min(height, y0 + cover.shape[0])),
            slice(max(0, x0), min(width, x0 + cover.shape[1])),
        )
        part = cover[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        if part.size == 0:
            return
        _paint(self.image[ys, xs], part, colour)
        self.mask[ys, xs] |= part > 0


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """One of matplotlib's bundled fonts at `size` px (Pillow's own when it is missing)."""
    import matplotlib  # a dependency; imported here for its fonts only

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)
