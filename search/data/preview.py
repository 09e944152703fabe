"""A picture to check the crop by eye: each export next to its cleaned map.

The export is shown de-identified, because previews are outputs too: everything outside
the found disc is blurred past reading, and text found inside it is covered by a magenta
box (exactly what cleaning removed); lines drawn over the map (a segment grid, an
outline), which cleaning removed too, are coloured magenta pixel by pixel, so that the
map between them still shows. The found circle is outlined in green and its square
in cyan, so a misplaced crop shows at a glance. What looked like lettering inside the
disc but was left alone (unsure: a colour the map itself takes, or not one flat colour) is
outlined in orange, so a reader can judge whether it was text after all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from search.data.clean import CleanMap, disc_mask

__all__ = ["PreviewItem", "deidentified_export", "draw_preview"]

PANEL = 256  # height of every panel, pixels
COVER = (255, 0, 255)
UNSURE = (255, 140, 0)


@dataclass(frozen=True)
class PreviewItem:
    """One export and its cleaning, with the caption to show above them."""

    caption: str
    export: np.ndarray
    cleaned: CleanMap


def deidentified_export(export: np.ndarray, cleaned: CleanMap) -> np.ndarray:
    """The export with everything outside the disc blurred unreadable and the text found
    inside it covered; same size as the export."""
    disc = cleaned.disc
    height, width = export.shape[:2]
    blur = max(4.0, disc.radius / 20)
    shown = np.asarray(Image.fromarray(export).filter(ImageFilter.GaussianBlur(blur))) // 2

    y, x = np.ogrid[0:height, 0:width]
    inside = np.hypot(x - disc.cx, y - disc.cy) <= disc.radius
    shown[inside] = export[inside]
    left, top, _, _ = disc.box()
    lines = cleaned.lines if cleaned.lines is not None else np.zeros_like(cleaned.text)
    for rows, cols in _regions(cleaned.text & ~lines):
        row0, col0 = max(0, top + rows.start), max(0, left + cols.start)
        shown[row0 : max(row0, top + rows.stop), col0 : max(col0, left + cols.stop)] = COVER
    rows, cols = np.nonzero(lines)
    rows, cols = rows + top, cols + left
    kept = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    shown[rows[kept], cols[kept]] = COVER
    return shown


def draw_preview(rows: list[list[PreviewItem]]) -> Image.Image:
    """One row per patient, each export followed by its cleaned map."""
    font = ImageFont.load_default(size=14)
    tiles = [[_tile(item, font) for item in row] for row in rows]
    width = max(sum(t.width for t in row) + 8 * (len(row) + 1) for row in tiles)
    height = sum(max(t.height for t in row) + 8 for row in tiles) + 8
    sheet = Image.new("RGB", (width, height), (32, 32, 32))
    y = 8
    for row in tiles:
        x = 8
        for tile in row:
            sheet.paste(tile, (x, y))
            x += tile.width + 8
        y += max(t.height for t in row) + 8
    return sheet


def _tile(item: PreviewItem, font: ImageFont.ImageFont) -> Image.Image:
    export = Image.fromarray(deidentified_export(item.export, item.cleaned))
    scale = PANEL / export.height
    export = export.resize((round(export.width * scale), PANEL), Image.BILINEAR)
    draw = ImageDraw.Draw(export)
    disc = item.cleaned.disc
    cx, cy, r = disc.cx * scale, disc.cy * scale, disc.radius * scale
    draw.rectangle((cx - r, cy - r, cx + r, cy + r), outline=(0, 255, 255))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(0, 255, 0), width=2)
    left, top, _, _ = disc.box()
    for rows, cols in _regions(item.cleaned.unsure):
        box = ((left + cols.start) * scale - 2, (top + rows.start) * scale - 2,
               (left + cols.stop) * scale + 2, (top + rows.stop) * scale + 2)  # fmt: skip
        draw.rectangle(box, outline=UNSURE, width=2)

    cleaned = Image.fromarray(item.cleaned.pixels).resize((PANEL, PANEL), Image.NEAREST)
    outline = disc_mask(PANEL, PANEL / 2) ^ disc_mask(PANEL, PANEL / 2 - 1)
    marked = np.asarray(cleaned).copy()
    marked[outline & (marked.max(axis=2) == 0)] = (70, 70, 70)  # show the disc's rim
    tile = Image.new("RGB", (export.width + 4 + PANEL, PANEL + 20), (32, 32, 32))
    ImageDraw.Draw(tile).text((0, 2), item.caption, fill=(230, 230, 230), font=font)
    tile.paste(export, (0, 20))
    tile.paste(Image.fromarray(marked), (export.width + 4, 20))
    return tile


def _regions(mask: np.ndarray) -> list[tuple[slice, slice]]:
    """The boxes (rows, cols) of a mask's regions, near ones merged (letters into words)."""
    if not mask.any():
        return []
    merged = ndimage.binary_dilation(mask, iterations=3)
    return [box for box in ndimage.find_objects(ndimage.label(merged)[0]) if box is not None]
