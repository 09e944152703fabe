"""Previews are outputs too: the export they show must be de-identified."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from search.data.clean import CleanMap, clean_export
from search.data.preview import COVER, PANEL, PreviewItem, deidentified_export, draw_preview
from search.synth.render import Export, render_export
from search.synth.uptake import draw_patient, uptake_maps

FULL = (1640, 1068)
SMALL = (820, 534)
TEXTS = ("REST AC", "NGUYEN, LINH", "2023-11-30", "Philips BrightView XCT")


@cache
def render(seed: int, canvas: tuple[int, int], text: bool) -> Export:
    """An export with a text line over the map, or its text-free twin (same geometry)."""
    rng = np.random.default_rng(seed)
    truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
    uptake = uptake_maps(truth, 256, rng, 0.5)["rest"]
    texts = TEXTS if text else ("",) * 4
    geometry = np.random.default_rng([seed, 7])
    return render_export(uptake, *texts, geometry, canvas, text_over_map=text)


@cache
def shown(seed: int, canvas: tuple[int, int]) -> tuple[Export, CleanMap, np.ndarray]:
    export = render(seed, canvas, True)
    cleaned = clean_export(export.image, 224)
    return export, cleaned, deidentified_export(export.image, cleaned)


def distance_from_centre(cleaned: CleanMap, shape: tuple[int, ...]) -> np.ndarray:
    y, x = np.ogrid[0 : shape[0], 0 : shape[1]]
    return np.hypot(x - cleaned.disc.cx, y - cleaned.disc.cy)


def detail(image: np.ndarray) -> np.ndarray:
    """Per pixel, how much finer than a 1.5 px blur the grey image is: stroke detail."""
    grey = image.astype(float).mean(axis=2)
    return np.abs(grey - ndimage.gaussian_filter(grey, 1.5))


CASES = [pytest.param(0, FULL, id="full-0"), pytest.param(1, FULL, id="full-1")]
CASES += [pytest.param(2, SMALL, id="small-2")]


# Measured (full and small canvases, seeds 0-4): per text line, the shown image keeps at
# most 1.1 % of the raw stroke detail and 7 % of its grey-level spread; dimming without
# the blur would keep 50 % of both.
@pytest.mark.parametrize(("seed", "canvas"), CASES)
def test_text_outside_the_disc_is_blurred_past_reading(seed, canvas):
    export, cleaned, image = shown(seed, canvas)
    assert image.shape == export.image.shape and image.dtype == np.uint8
    distance = distance_from_centre(cleaned, image.shape)
    outside = distance > cleaned.disc.radius
    assert image[outside].max() <= 127  # dimmed as well as blurred

    away = distance > cleaned.disc.radius + 3  # clear of the disc's sharp rim
    text = export.text_mask & away
    lines, count = ndimage.label(ndimage.binary_dilation(text, iterations=6))
    assert count >= 5  # title, name, date, scanner, colour-bar labels
    raw_detail, shown_detail = detail(export.image), detail(image)
    for number, box in enumerate(ndimage.find_objects(lines), start=1):
        region = away[box] & (lines[box] == number)
        raw_grey = export.image[box].astype(float).mean(axis=2)[region]
        shown_grey = image[box].astype(float).mean(axis=2)[region]
        kept_detail = shown_detail[box][region].mean() / raw_detail[box][region].mean()
        kept_spread = shown_grey.std() / raw_grey.std()
        assert kept_detail < 0.05, f"line {number} at {box}: {kept_detail:.3f} of its detail"
        assert kept_spread < 0.25, f"line {number} at {box}: {kept_spread:.3f} of its spread"


@pytest.mark.parametrize(("seed", "canvas"), CASES)
def test_visible_text_inside_the_disc_is_covered(seed, canvas):
    export, cleaned, image = shown(seed, canvas)
    reference = render(seed, canvas, False)
    assert reference.disc == export.disc
    inside = distance_from_centre(cleaned, image.shape) <= cleaned.disc.radius
    differs = np.abs(export.image.astype(int) - reference.image.astype(int)).max(axis=2) > 24
    visible = export.text_mask & inside & differs
    assert visible.sum() > 100
    covered = (image == COVER).all(axis=2)
    assert covered[visible].all(), f"{(~covered[visible]).sum()} visible text pixels shown"


@pytest.mark.parametrize(("seed", "canvas"), CASES)
def test_the_rest_of_the_disc_is_shown_unchanged(seed, canvas):
    export, cleaned, image = shown(seed, canvas)
    inside = distance_from_centre(cleaned, image.shape) <= cleaned.disc.radius
    covered = (image == COVER).all(axis=2)
    unchanged = (image == export.image).all(axis=2)
    assert unchanged[inside & ~covered].all()
    far = inside & ~ndimage.binary_dilation(export.text_mask, iterations=10)
    assert unchanged[far].mean() > 0.995  # magenta boxes only where text is
    assert covered[inside].mean() < 0.05


def test_preview_grows_with_items_and_rows():
    export, cleaned, _ = shown(2, SMALL)
    item = PreviewItem("P001 (Normal), rest", export.image, cleaned)
    one = draw_preview([[item]])
    assert isinstance(one, Image.Image) and one.mode == "RGB"
    assert one.height >= PANEL and one.width >= PANEL + round(PANEL * 820 / 534)
    two_items = draw_preview([[item, item]])
    two_rows = draw_preview([[item], [item]])
    mixed = draw_preview([[item, item], [item]])
    tile_width, tile_height = one.width - 16, one.height - 16
    assert two_items.size == (2 * tile_width + 24, one.height)
    assert two_rows.size == (one.width, 2 * tile_height + 24)
    assert mixed.size == (two_items.width, two_rows.height)


def test_preview_shows_the_covered_export_not_the_raw_one():
    export, cleaned, image = shown(0, FULL)
    sheet = np.asarray(draw_preview([[PreviewItem("caption", export.image, cleaned)]]))
    magenta = (sheet == COVER).all(axis=2)
    assert magenta.any()  # the covered text shows in the preview
    # The export panel is the de-identified image scaled to PANEL rows, under the caption.
    scale = PANEL / image.shape[0]
    expected = Image.fromarray(image).resize((round(image.shape[1] * scale), PANEL), Image.BILINEAR)
    panel = sheet[8 + 20 : 8 + 20 + PANEL, 8 : 8 + expected.width].astype(int)
    raw = Image.fromarray(export.image).resize(expected.size, Image.BILINEAR)
    # Outlines are drawn on the panel, so compare medians of the differences.
    assert np.median(np.abs(panel - np.asarray(expected, dtype=int))) == 0
    assert np.abs(panel - np.asarray(raw, dtype=int)).mean() > 2
