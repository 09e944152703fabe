"""Marks over a map (search.data.marks) on hand-made maps: thin lines in any colour and
glyphs far along the scale from the map are found; a map's own speckle, a stepped
scale's bands and its rim are not."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from search.data.marks import find_marks
from search.data.scale import ColourScale
from search.synth.printed import PRINTED_SCALES
from search.synth.render import colourize

SIZE, RADIUS = 420, 200
CENTRE = (SIZE - 1) / 2
THERMAL = PRINTED_SCALES["thermal"]


def thermal_scale() -> ColourScale:
    ramp = colourize(np.linspace(0, 1, 300)[:, None], THERMAL)[:, 0].astype(float)
    places = np.linspace(0, 1, len(ramp))
    return ColourScale(ramp, places, True, 0.0)


def map_on_white(values: np.ndarray) -> np.ndarray:
    """A thermal map of `values` (SIZE x SIZE, 0..1) in a disc on a white page."""
    rgb = colourize(values, THERMAL)
    y, x = np.ogrid[:SIZE, :SIZE]
    rgb[np.hypot(x - CENTRE, y - CENTRE) > RADIUS] = 255
    return rgb


def smooth_values(rng: np.random.Generator, noise: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    values = 0.55 + 0.35 * x + 0.05 * np.sin(6 * y)
    return np.clip(values + rng.normal(0, noise, values.shape), 0, 1)


def marks_of(image: np.ndarray):
    return find_marks(image, [(CENTRE, CENTRE, RADIUS)], 3, (40, 60), thermal_scale())


def test_a_black_line_and_a_black_digit_are_marks_a_smooth_map_is_not():
    rng = np.random.default_rng(0)
    plain = map_on_white(smooth_values(rng))
    assert not marks_of(plain).found.any()

    drawn = Image.fromarray(plain)
    draw = ImageDraw.Draw(drawn)
    draw.line([(60, 200), (360, 220)], fill=(0, 0, 0), width=2)
    draw.text((250, 120), "3", fill=(0, 0, 0), font=ImageFont.load_default(size=28))
    marked = np.asarray(drawn)
    drawn_over = (marked != plain).any(axis=2)
    found = marks_of(marked)
    assert (found.found & drawn_over).sum() / drawn_over.sum() > 0.95
    assert (found.found & ~drawn_over).sum() < 3 * drawn_over.sum()  # a fringe, no more
    assert found.lines[205:215, 100:300].any()  # the line is a line, the digit a glyph


def test_a_white_line_over_red_is_a_mark_though_the_scale_ends_in_white():
    rng = np.random.default_rng(1)
    values = np.full((SIZE, SIZE), 0.62) + rng.normal(0, 0.005, (SIZE, SIZE))
    plain = map_on_white(np.clip(values, 0, 1))
    drawn = Image.fromarray(plain)
    ImageDraw.Draw(drawn).line([(120, 100), (300, 320)], fill=(255, 255, 255), width=3)
    marked = np.asarray(drawn)
    drawn_over = (marked != plain).any(axis=2)
    assert (marks_of(marked).found & drawn_over).sum() / drawn_over.sum() > 0.9


def test_a_white_topped_maps_own_speckle_is_not_a_mark():
    # noise at the top of the scale: white specks in light yellow, as a printed map's peak
    rng = np.random.default_rng(2)
    values = np.clip(0.93 + rng.normal(0, 0.03, (SIZE // 2, SIZE // 2)), 0, 1)
    fine = np.asarray(Image.fromarray(values.astype(np.float32), "F").resize((SIZE, SIZE)))
    found = marks_of(map_on_white(np.clip(fine, 0, 1)))
    assert found.found.sum() < 0.001 * np.pi * RADIUS**2


def test_the_rim_on_a_white_page_is_no_mark():
    rng = np.random.default_rng(3)
    found = marks_of(map_on_white(smooth_values(rng, noise=0.01)))
    y, x = np.ogrid[:SIZE, :SIZE]
    rim = np.abs(np.hypot(x - CENTRE, y - CENTRE) - RADIUS) <= 3
    assert not (found.found & rim).any()


def speckled_light_map(seed: int) -> np.ndarray:
    """Values near the top of the scale with strong count noise, drawn at a coarser
    grid and resized nearest: white and pale-yellow specks in yellow."""
    rng = np.random.default_rng(seed)
    values = np.clip(0.9 + rng.normal(0, 0.05, (SIZE // 2, SIZE // 2)), 0, 1)
    coarse = Image.fromarray(values.astype(np.float32), "F")
    return np.clip(np.asarray(coarse.resize((SIZE, SIZE), Image.NEAREST)), 0, 1)


def test_a_black_line_through_a_speckled_light_map_is_a_mark():
    # Found with a held-back renderer (issue 30): yellow specks among white stand out
    # darker in blue, as a black line does; beside the line they made it look like
    # speckle, and pieces of the grid were left in the map. A black line lies far along
    # the scale from the map; the speckle does not.
    plain = map_on_white(speckled_light_map(4))
    drawn = Image.fromarray(plain)
    ImageDraw.Draw(drawn).line([(60, 150), (360, 260)], fill=(0, 0, 0), width=2)
    marked = np.asarray(drawn)
    drawn_over = (marked != plain).any(axis=2)
    found = marks_of(marked)
    assert (found.lines & drawn_over).sum() / drawn_over.sum() > 0.9
