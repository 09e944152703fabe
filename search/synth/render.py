"""Drawing a polar map the way clinical software exports it: a colour-mapped bullseye on
a larger dark canvas, with a colour bar and burned-in text (view, date, scanner, a
made-up patient name) around the map and sometimes over it.

Returns the pixels with their ground truth: where the disc is and which pixels are text,
so preprocessing can be measured against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CLINICAL_COLOURS", "Export", "TextWriter", "colourize", "render_export"]

# A "thermal"-style clinical colour scale: black (no uptake) through violet, blue, green,
# yellow and red to white (maximum), as perfusion software commonly shows.
CLINICAL_COLOURS = np.array(
    [
        (0.00, 0, 0, 0),
        (0.15, 60, 0, 110),
        (0.30, 20, 40, 220),
        (0.45, 0, 170, 200),
        (0.60, 40, 200, 40),
        (0.72, 240, 230, 0),
        (0.85, 250, 120, 0),
        (0.95, 230, 20, 20),
        (1.00, 255, 255, 255),
    ],
    dtype=float,
)

FIRST_NAMES = ("ALEX", "MARIA", "JOHN", "LINH", "FATIMA", "PETER", "ANNA", "MINH", "SARA")
LAST_NAMES = ("DOE", "NGUYEN", "SMITH", "GARCIA", "TRAN", "MUELLER", "ROSSI", "KHAN", "LEE")
SCANNERS = ("GE Discovery NM 530c", "Siemens Symbia T16", "Philips BrightView XCT")


@dataclass(frozen=True)
class Export:
    """One rendered export.

    Args:
        image: H x W x 3 uint8 canvas.
        text_mask: H x W bool, True where any text was drawn.
        disc: (centre x, centre y, radius) of the polar map, in canvas pixels.
        text_over_map: whether a text line was drawn over the disc.
    """

    image: np.ndarray
    text_mask: np.ndarray
    disc: tuple[float, float, float]
    text_over_map: bool


def colourize(uptake: np.ndarray, colours: np.ndarray = CLINICAL_COLOURS) -> np.ndarray:
    """Uptake in [0, 1] (NaN outside the map) -> RGB uint8 with a colour scale (rows of
    value, red, green, blue; default the clinical one); outside the map is black."""
    values = np.nan_to_num(uptake, nan=0.0)
    rgb = np.stack(
        [np.interp(values, colours[:, 0], colours[:, c]) for c in (1, 2, 3)],
        axis=-1,
    )
    rgb[np.isnan(uptake)] = 0
    return rgb.round().astype(np.uint8)


def render_export(
    uptake: np.ndarray,
    view_title: str,
    patient_name: str,
    study_date: str,
    scanner: str,
    rng: np.random.Generator,
    canvas: tuple[int, int] = (1640, 1068),
    text_over_map: bool = False,
) -> Export:
    """Place the colour-mapped map, a colour bar and text lines on a dark canvas."""
    width, height = canvas
    radius = float(rng.uniform(0.28, 0.34) * height)
    cx = float(rng.uniform(radius + 0.05 * width, width - radius - 0.2 * width))
    cy = float(rng.uniform(radius + 0.09 * height, height - radius - 0.09 * height))

    image = Image.new("RGB", canvas, (0, 0, 0))
    diameter = round(2 * radius)
    disc = Image.fromarray(colourize(uptake)).resize((diameter, diameter), Image.BILINEAR)
    inside = _disc_mask(diameter)
    image.paste(disc, (round(cx - radius), round(cy - radius)), Image.fromarray(inside))
    _colour_bar(image, x=round(cx + radius + 0.04 * width), top=round(cy - radius), length=diameter)

    mask = Image.new("L", canvas, 0)
    writer = TextWriter(image, mask, size=max(12, round(height * 0.028)))
    margin = round(0.015 * width)
    writer.write((margin, margin), view_title, (255, 255, 255), scale=1.5)
    writer.write((margin, round(0.065 * height)), f"Patient: {patient_name}", (255, 255, 255))
    writer.write(
        (margin, height - round(0.09 * height)), f"Study date: {study_date}", (255, 255, 0)
    )
    writer.write((margin, height - round(0.05 * height)), f"Scanner: {scanner}", (255, 255, 255))
    bar_x = round(cx + radius + 0.04 * width)
    for fraction, label in ((0.0, "100%"), (0.5, "50%"), (1.0, "0%")):
        writer.write((bar_x + 45, round(cy - radius + fraction * diameter) - 10), label, (200,) * 3)
    if text_over_map:
        # Clinical exports sometimes burn a label or a name line across the map itself.
        line = str(rng.choice([patient_name, study_date, view_title, "ANT", "SEPT INF"]))
        x = cx + rng.uniform(-0.7, 0.1) * radius
        y = cy + rng.uniform(-0.6, 0.5) * radius
        writer.write((round(x), round(y)), line, (255, 255, 255))
    return Export(np.asarray(image), np.asarray(mask) > 0, (cx, cy, radius), text_over_map)


def _disc_mask(diameter: int) -> np.ndarray:
    centre = (diameter - 1) / 2
    y, x = np.mgrid[0:diameter, 0:diameter]
    return ((np.hypot(x - centre, y - centre) <= diameter / 2) * 255).astype(np.uint8)


def _colour_bar(image: Image.Image, x: int, top: int, length: int) -> None:
    """A vertical colour scale, maximum at the top, 30 px wide."""
    values = np.linspace(1, 0, length)[:, None].repeat(30, axis=1)
    image.paste(Image.fromarray(colourize(values)), (x, top))


class TextWriter:
    """Draws text on the canvas and the same text on the mask, so the mask is exact."""

    def __init__(self, image: Image.Image, mask: Image.Image, size: int):
        self.image, self.mask, self.size = ImageDraw.Draw(image), ImageDraw.Draw(mask), size

    def write(self, xy: tuple[int, int], text: str, colour, scale: float = 1.0) -> None:
        font = _font(round(self.size * scale))
        self.image.text(xy, text, fill=colour, font=font)
        self.mask.text(xy, text, fill=255, font=font)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at `size` px, loaded once per size."""
    return ImageFont.load_default(size=size)
