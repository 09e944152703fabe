"""A bull's-eye grid is found by where its lines lie: a faint white grid over a
white-topped scale's speckle (left in the map before: pixel by pixel no further from the
map than its own specks) is filled, while a map's own texture, and a stepped scale's
concentric bands, make no ring or spoke."""

from __future__ import annotations

import io
import math
from functools import cache

import numpy as np
from PIL import Image, ImageFilter

from search.data.clean import CropBox, clean_export, disc_mask
from search.data.grid import grid_lines
from search.synth.printed import PRINTED_SCALES
from search.synth.render import colourize

CENTRE, RADIUS, SIDE = 250.0, 190.0, 500
RINGS = (0.18, 0.45, 0.72)
SPOKES = [(0.45, 1.0, a) for a in range(30, 360, 60)] + [
    (0.18, 0.45, a) for a in range(45, 360, 90)
]


def jpeg(image: np.ndarray, quality: int = 85) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def grid_coverage(width: float = 1.0, fine: int = 4) -> np.ndarray:
    """SIDE x SIDE: the share of each pixel a grid of `width`-pixel lines covers."""
    n = SIDE * fine
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / fine - 0.5
    dx, dy = x - CENTRE, y - CENTRE
    distance = np.hypot(dx, dy)
    covered = np.zeros((n, n), bool)
    for ring in RINGS:
        covered |= np.abs(distance - ring * RADIUS) <= width / 2
    for inner, outer, angle in SPOKES:
        ux, uy = math.sin(math.radians(angle)), -math.cos(math.radians(angle))
        along = dx * ux + dy * uy
        across = np.abs(dx * uy - dy * ux)
        covered |= (across <= width / 2) & (along >= inner * RADIUS) & (along <= outer * RADIUS)
    covered &= distance <= RADIUS
    return covered.reshape(SIDE, fine, SIDE, fine).mean(axis=(1, 3))


@cache
def drawn(seed: int, stepped: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(page, its grid-free twin, the grid's pixels): a white-topped thermal map speckled
    as count noise speckles it, near its top on most of the disc, on off-white paper; a
    one-pixel white grid drawn over it; both as JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    distance = np.hypot(x - CENTRE, y - CENTRE)
    noise = rng.normal(0, 0.02, (SIDE // 2, SIDE // 2)).astype(np.float32)
    noise = np.asarray(Image.fromarray(noise, "F").resize((SIDE, SIDE)))
    values = np.clip(0.97 - 0.12 * distance / RADIUS + noise, 0, 1)
    if stepped:  # flat bands: concentric rings of colour, edges but no lines
        values = (np.floor(values * 10) + 0.5) / 10
    inside = distance <= RADIUS
    twin = np.empty((SIDE, SIDE, 3), np.uint8)
    twin[:] = (251, 250, 246)
    twin[inside] = colourize(values, PRINTED_SCALES["thermal"])[inside]
    coverage = grid_coverage()[..., None]
    page = (twin * (1 - coverage) + 255 * coverage).round().astype(np.uint8)
    return jpeg(page), jpeg(twin), coverage[..., 0] >= 0.5


def test_a_faint_white_grid_over_white_topped_speckle_is_found_and_filled():
    page, twin, lines = drawn(0)
    box = CropBox(*clean_export(page, 224).disc.box())
    cleaned = clean_export(page, 224, crop=box)
    left, top, _, _ = cleaned.disc.box()
    side = cleaned.text.shape[0]
    in_square = lines[top : top + side, left : left + side]
    assert cleaned.text[in_square].mean() >= 0.9  # the grid's pixels are filled in
    # (58 % were, pixel by pixel), and the cleaned map is nearer the grid-free twin's
    plain = clean_export(twin, 224, crop=box)
    differs = np.abs(cleaned.pixels.astype(int) - plain.pixels.astype(int))
    assert differs[disc_mask(224, 112)].mean() < 1.8  # 1.9 with the grid's faint pixels left


def test_a_maps_own_speckle_and_a_stepped_scales_bands_make_no_grid():
    for seed, stepped in ((0, False), (1, False), (0, True)):
        _, twin, _ = drawn(seed, stepped)
        values = twin.astype(np.float32)
        # as marks reads it: how far each pixel stands out from a wide median beneath
        beneath = np.stack(
            [
                np.asarray(Image.fromarray(twin[..., c]).filter(ImageFilter.MedianFilter(17)))
                for c in range(3)
            ],
            -1,
        ).astype(np.float32)
        lighter = np.maximum((values - beneath).max(axis=2), 0)
        darker = np.maximum((beneath - values).max(axis=2), 0)
        assert not grid_lines([lighter, darker], (CENTRE, CENTRE, RADIUS)).any(), seed
        if not stepped:  # nothing at all is filled
            assert clean_export(twin, 224).text_fraction < 0.001, seed
