"""Exports drawn the way other vendors' software draws them: other colour maps (jet,
rainbow, hot, cool, grey), other layouts (a horizontal colour bar under one map; both
views side by side in one screenshot, each titled), lettering in white or in one flat
colour, sometimes across a map. With exact truth (every disc, every text pixel), for
tests and for measuring the cleaner on exports it was not tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from search.synth.render import TextWriter, colourize

__all__ = ["COLOUR_MAPS", "VENDORS", "VendorExport", "render_vendor_export"]

# value, red, green, blue: the colour maps clinical viewers offer
COLOUR_MAPS = {
    "jet": np.array([(0, 0, 0, 128), (0.125, 0, 0, 255), (0.375, 0, 255, 255),
                     (0.625, 255, 255, 0), (0.875, 255, 0, 0), (1, 128, 0, 0)], float),
    "rainbow": np.array([(0, 110, 0, 160), (0.2, 0, 0, 255), (0.4, 0, 255, 0),
                         (0.6, 255, 255, 0), (0.8, 255, 128, 0), (1, 255, 0, 0)], float),
    "hot": np.array([(0, 10, 0, 0), (0.375, 255, 0, 0), (0.75, 255, 255, 0),
                     (1, 255, 255, 255)], float),
    "cool": np.array([(0, 0, 255, 255), (1, 255, 0, 255)], float),
    "grey": np.array([(0, 20, 20, 20), (1, 255, 255, 255)], float),
}  # fmt: skip

VENDORS = ("single", "pair")
COUNT_NOISE = {"single": 0.03, "pair": 0.02}  # per-pixel noise (SD) of the raw maps


@dataclass(frozen=True)
class VendorExport:
    """One export and its truth.

    Args:
        image: H x W x 3 uint8.
        text_mask: H x W bool, every pixel any lettering was drawn on.
        discs: view -> (centre x, centre y, radius), in canvas pixels.
        positions: view -> its disc's position (left, right; or None for one map).
        colour_map: the colour map's name.
        text_over_map: whether lettering was drawn across a map.
    """

    image: np.ndarray
    text_mask: np.ndarray
    discs: dict[str, tuple[float, float, float]]
    positions: dict[str, str | None]
    colour_map: str
    text_over_map: bool


def render_vendor_export(
    uptakes: dict[str, np.ndarray],
    vendor: str,
    rng: np.random.Generator,
    colour_map: str | None = None,
    text_over_map: bool = False,
) -> VendorExport:
    """Draw `uptakes` (view -> uptake in [0, 1], NaN outside the map) as `vendor` does:
    `single` (the first view alone with its count noise, jet by default, a horizontal
    colour bar under it, white lettering) or `pair` (stress left and rest right, each a
    coarse map drawn pixelated and titled in one flat colour, a vertical colour bar at
    the right; the colour map drawn at random from rainbow, hot, cool and grey unless
    given).

    Raises:
        ValueError: an unknown vendor or colour map.
    """
    if vendor not in VENDORS:
        raise ValueError(f"vendor {vendor!r}: expected one of {', '.join(VENDORS)}")
    if vendor == "single":
        colour_map = colour_map or "jet"
    else:
        colour_map = colour_map or str(rng.choice(["rainbow", "hot", "cool", "grey"]))
    if colour_map not in COLOUR_MAPS:
        raise ValueError(f"colour map {colour_map!r}: expected one of {', '.join(COLOUR_MAPS)}")
    colours = COLOUR_MAPS[colour_map]
    # raw maps at their native resolution carry count noise, pixel by pixel
    noise = COUNT_NOISE[vendor]
    uptakes = {view: np.clip(uptake + rng.normal(0, noise, uptake.shape), 0, 1)
               for view, uptake in uptakes.items()}  # fmt: skip
    if vendor == "single":
        return _single(uptakes, colours, colour_map, rng, text_over_map)
    return _pair(uptakes, colours, colour_map, rng, text_over_map)


def _single(uptakes, colours, name, rng, text_over_map) -> VendorExport:
    width, height = 1280, 1024
    view = next(iter(uptakes))
    radius = float(rng.uniform(0.30, 0.34) * height)
    cx, cy = float(rng.uniform(0.36, 0.44) * width), float(0.46 * height)
    image, mask = Image.new("RGB", (width, height)), Image.new("L", (width, height))
    _paste(image, colourize(uptakes[view], colours), cx, cy, radius)
    bar = colourize(np.linspace(0, 1, round(2 * radius))[None, :].repeat(24, axis=0), colours)
    image.paste(Image.fromarray(bar), (round(cx - radius), round(cy + radius + 30)))
    writer = TextWriter(image, mask, size=26)
    writer.write((40, 30), f"{view.upper()} POLAR MAP", (255, 255, 255), scale=1.3)
    writer.write((round(cx + radius + 60), 140), "Extent 12 %", (230, 230, 230))
    writer.write((round(cx + radius + 60), 190), "TPD 9 %", (230, 230, 230))
    writer.write((40, height - 60), "Reconstruction: OSEM 4i8s", (200, 200, 200))
    if text_over_map:
        where = (round(cx - 0.5 * radius), round(cy + rng.uniform(-0.5, 0.4) * radius))
        label = str(rng.choice(["ANT", "INF", "SEPT", "LAT", "APEX"]))
        writer.write(where, label, (255, 255, 255))
    return VendorExport(np.asarray(image), np.asarray(mask) > 0, {view: (cx, cy, radius)},
                        {view: None}, name, text_over_map)  # fmt: skip


def _pair(uptakes, colours, name, rng, text_over_map) -> VendorExport:
    width, height = 1600, 900
    radius = float(rng.uniform(0.30, 0.34) * height)
    gap = float(rng.uniform(60, 120))
    title = tuple(int(c) for c in rng.choice([(0, 255, 255), (255, 255, 0), (255, 255, 255)]))
    image, mask = Image.new("RGB", (width, height)), Image.new("L", (width, height))
    writer = TextWriter(image, mask, size=28)
    discs, positions = {}, {}
    left_cx = width / 2 - gap / 2 - radius - 60
    for view, position, cx in (("stress", "left", left_cx),
                               ("rest", "right", left_cx + 2 * radius + gap)):  # fmt: skip
        if view not in uptakes:
            continue
        cy = float(0.53 * height)
        coarse = _filled(uptakes[view][::4, ::4])  # coarse, drawn pixelated as some viewers do
        _paste(image, colourize(coarse, colours), cx, cy, radius, Image.NEAREST)
        writer.write((round(cx - 60), round(cy - radius - 60)), view.upper(), title, scale=1.2)
        if text_over_map:
            line = str(rng.choice(["ANT", "SEPT", "INF", "LAT"]))
            writer.write((round(cx - 0.3 * radius), round(cy + rng.uniform(-0.5, 0.4) * radius)),
                         line, title)  # fmt: skip
        discs[view], positions[view] = (float(cx), cy, radius), position
    bar = colourize(np.linspace(1, 0, 500)[:, None].repeat(26, axis=1), colours)
    image.paste(Image.fromarray(bar), (width - 90, 200))
    writer.write((width - 150, 160), "max", (255, 255, 255))
    return VendorExport(np.asarray(image), np.asarray(mask) > 0, discs, positions, name,
                        text_over_map)  # fmt: skip


def _filled(uptake: np.ndarray) -> np.ndarray:
    """NaN (outside the map) taken from the nearest map value, so the pasted circle, not
    the coarse grid's jagged edge, is the disc's rim."""
    missing = np.isnan(uptake)
    _, nearest = ndimage.distance_transform_edt(missing, return_indices=True)
    return uptake[tuple(nearest)]


def _paste(
    image: Image.Image, rgb: np.ndarray, cx: float, cy: float, radius: float,
    resample: int = Image.BILINEAR,
) -> None:  # fmt: skip
    diameter = round(2 * radius)
    disc = Image.fromarray(rgb).resize((diameter, diameter), resample)
    centre = (diameter - 1) / 2
    y, x = np.mgrid[0:diameter, 0:diameter]
    inside = ((np.hypot(x - centre, y - centre) <= diameter / 2) * 255).astype(np.uint8)
    image.paste(disc, (round(cx - radius), round(cy - radius)), Image.fromarray(inside))
