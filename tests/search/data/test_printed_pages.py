"""Cleaning printed report pages (issue 30): a light page, a white-topped thermal scale,
the segment grid and scores over the map. Measured against each page's overlay-free
twin (search.synth.printed): the disc is found without a crop box, the map's own white
end is not taken for lettering, what was drawn over the map is filled from the map
around it, and the check refuses what cleaning would, in cleaning's words."""

from __future__ import annotations

import io
import shutil
from functools import cache

import numpy as np
import pytest
from PIL import Image

from search.data import TRIAD, DataError, check_dataset, load_dataset
from search.data.clean import clean_export, disc_mask
from search.data.disc import find_discs
from search.data.map_cache import MapCache
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.data.preview import COVER, UNSURE, PreviewItem, deidentified_export, draw_preview
from search.data.scale import learn_scale
from search.synth import write_synthetic_dataset
from search.synth.printed import PRINTED_SCALES, PrintedExport
from search.synth.render import colourize
from tests.search.synth.test_printed import page

SEEDS = (0, 1, 2, 3, 5, 8)  # both scales, smooth and stepped, white and grey pages


def jpeg(image: np.ndarray, quality: int = 85) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@cache
def cleaned(seed: int, which: str, as_jpeg: bool = False):
    drawn = page(seed)
    image = drawn.image if which == "page" else drawn.twin
    return clean_export(jpeg(image) if as_jpeg else image, 224)


@pytest.mark.parametrize("as_jpeg", [False, True], ids=["png", "jpeg"])
@pytest.mark.parametrize("seed", SEEDS)
def test_the_disc_of_a_light_page_is_found_without_a_crop_box(seed, as_jpeg):
    drawn = page(seed)
    cx, cy, radius = drawn.discs["stress"]
    for image in (drawn.image, drawn.twin):
        (disc,) = find_discs(jpeg(image) if as_jpeg else image)
        assert abs(disc.cx - cx) <= 1.5 and abs(disc.cy - cy) <= 1.5
        assert abs(disc.radius - radius) <= 1.5


def test_a_jpeg_maps_rim_is_found_where_it_lies_not_where_its_blurred_colour_begins():
    # JPEG halves colour resolution: a yellow rim on grey paper ramps over three pixels,
    # and half way up the ramp's first pixels lay 0.6 px beyond the rim (the twin's map,
    # a quarter-pixel smaller than its page's, moved every speck of its texture)
    for seed in SEEDS:
        drawn = page(seed)
        radius = drawn.discs["stress"][2]
        for image in (drawn.image, drawn.twin):
            (disc,) = find_discs(jpeg(image))
            assert abs(disc.radius - radius) <= 0.25, seed


def test_a_map_in_a_framed_grey_panel_on_a_white_page_is_found():
    # The panel stands out from the page as a square, no disc: read as a page of its own.
    seed = next(s for s in range(40) if page(s).page == (255, 255, 255) and _panel(page(s)))
    drawn = page(seed)
    (disc,) = find_discs(drawn.image)
    cx, cy, radius = drawn.discs["stress"]
    assert abs(disc.cx - cx) <= 1.5 and abs(disc.cy - cy) <= 1.5
    assert abs(disc.radius - radius) <= 1.5


def _panel(drawn: PrintedExport) -> bool:
    """Whether a grey panel lies between the disc and the white page."""
    cx, cy, radius = drawn.discs["stress"]
    beside = drawn.twin[round(cy), min(drawn.twin.shape[1] - 1, round(cx + radius + 8))]
    return bool(beside.max() < 245)


@pytest.mark.parametrize("as_jpeg", [False, True], ids=["png", "jpeg"])
def test_the_white_end_of_the_scale_is_map_not_lettering(as_jpeg):
    # Before issue 30, 9.2 % of such twins' discs (median; 15 % at most) was taken for
    # lettering and in-painted. Measured on seeds 0-39 (PNG) and 0-19 (JPEG): 0.0 %.
    shares = [cleaned(seed, "twin", as_jpeg).text_fraction for seed in SEEDS]
    assert np.median(shares) == 0.0
    assert max(shares) <= 0.005, f"{100 * max(shares):.2f} % of a twin's disc removed"


def test_the_grid_and_the_scores_are_removed_and_the_map_kept():
    # Measured on seeds 0-39 (PNG, the twin cleaned with its own disc found): 1.1 grey
    # levels (mean absolute difference over the disc, median over pages); with the grid
    # and scores left, 6.9 (the figure).
    differences = []
    inside = disc_mask(224, 112)
    for seed in SEEDS:
        diff = np.abs(
            cleaned(seed, "page").pixels.astype(int) - cleaned(seed, "twin").pixels.astype(int)
        )
        differences.append(diff[inside].mean())
    assert np.median(differences) <= 2.0, differences
    assert max(differences) <= 4.0, differences


def test_what_was_drawn_over_the_map_is_what_cleaning_removes():
    drawn = page(2)
    result = cleaned(2, "page")
    left, top, right, bottom = result.disc.box()
    # within the disc, short of its outermost pixel: the rim's line is stroked half on
    # the map, half on the page, and its pixels there are part page
    within = disc_mask(bottom - top, result.disc.radius - 1,
                       (result.disc.cx - left, result.disc.cy - top))  # fmt: skip
    overlay = drawn.overlay_mask[top:bottom, left:right] & within
    removed = result.text[: overlay.shape[0], : overlay.shape[1]]
    visible = overlay & (
        np.abs(drawn.image.astype(int) - drawn.twin.astype(int)).max(axis=2)[top:bottom, left:right]
        > 40
    )
    # every pixel of it, measured (seed 2); on the outermost pixel ring 88 % (a line
    # stroked along the rim is half on the page there)
    assert (visible & removed).sum() / visible.sum() >= 0.95
    assert result.lines is not None and result.lines.sum() > 0.5 * result.text.sum()


def test_the_scale_is_learned_from_the_colour_bar_or_else_from_the_map():
    drawn = page(3)
    maps = np.zeros(drawn.image.shape[:2], bool)
    cx, cy, radius = drawn.discs["stress"]
    y, x = np.ogrid[: maps.shape[0], : maps.shape[1]]
    maps = np.hypot(x - cx, y - cy) <= radius
    scale = learn_scale(drawn.twin, maps, [np.array(drawn.page, float)])
    assert scale is not None and scale.from_bar
    black, yellow, white = (np.array(c, np.uint8) for c in ((0, 0, 0), (255, 240, 0), (255,) * 3))
    ends = sorted([float(scale.position(black)), float(scale.position(white))])
    assert ends[0] <= 0.02 and ends[1] >= 0.98
    # white lies a short way along the scale from yellow, black most of it
    assert abs(scale.position(white) - scale.position(yellow)) < 0.35
    assert abs(scale.position(black) - scale.position(yellow)) > 0.6
    assert scale.distance(np.array((0, 160, 0), np.uint8)) > 60  # green is off a thermal scale
    bare = page(3, colour_bar=False)
    fallback = learn_scale(bare.twin, maps, [np.array(bare.page, float)])
    assert fallback is not None and not fallback.from_bar


def test_the_preview_shows_the_map_between_removed_lines_and_what_is_left_unsure():
    drawn = page(2)
    result = cleaned(2, "page")
    shown = deidentified_export(drawn.image, result)
    cx, cy, radius = result.disc.cx, result.disc.cy, result.disc.radius
    y, x = np.ogrid[: shown.shape[0], : shown.shape[1]]
    inside = np.hypot(x - cx, y - cy) <= radius - 2
    covered = (shown == COVER).all(axis=2) & inside
    # the grid is coloured pixel by pixel, the scores boxed: most of the map shows
    assert 0.02 < covered.sum() / inside.sum() < 0.4
    sheet = np.asarray(draw_preview([[PreviewItem("printed", drawn.image, result)]]))
    assert sheet.shape[0] > 200 and ((sheet == UNSURE).all(axis=2).sum() > 0) == bool(
        result.unsure.any()
    )


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    out = tmp_path_factory.mktemp("printed")
    balance = {"Infarction": 1, "Ischemia": 1, "Normal": 1}
    return write_synthetic_dataset(out, TRIAD, 3, seed=5, balance=balance, style="printed")


def test_a_printed_data_set_goes_through_check_and_preprocess(printed, tmp_path):
    dataset = load_dataset(printed, splittable=False)
    maps = preprocess_dataset(dataset, PreprocessSpec(64), MapCache(tmp_path), workers=1)
    assert maps.maps.shape == (3, 2, 64, 64, 3)
    assert np.nanmax(maps.text_fractions) < 0.5


def test_the_check_refuses_a_page_without_a_disc_in_cleanings_words(printed, tmp_path):
    # Issue 30: the check said OK, then cleaning refused all 80 exports.
    copy = tmp_path / "data"
    shutil.copytree(printed.parent, copy)
    blank = np.full((600, 800, 3), 255, np.uint8)
    blank[40:60, 40:400] = 0  # a line of "text", no map
    Image.fromarray(blank).save(copy / "images" / "SYN0002_rest.png")
    printed = copy / "manifest.csv"
    report = check_dataset(printed, class_set=TRIAD, splittable=False)
    with pytest.raises(ValueError) as refused:
        clean_export(blank, 64)
    messages = [p.message for p in report.errors]
    assert messages == [f"cannot clean: {refused.value}"]
    assert report.errors[0].row == 3 and report.errors[0].field == "rest_path"
    with pytest.raises(DataError):
        load_dataset(printed, splittable=False)


def outlined_white_map(page_colour=(252, 251, 247)) -> tuple[np.ndarray, tuple]:
    """A framed panel on off-white paper holding a map almost all at its scale's white
    end, seen only by the one-pixel grid drawn round and across it."""
    image = np.full((1100, 850, 3), page_colour, np.uint8)
    image[340:800, 50:700] = page_colour
    image[340, 50:700] = image[799, 50:700] = image[340:800, 50] = image[340:800, 699] = 0
    cx, cy, radius = 300.0, 560.0, 150.0
    y, x = np.ogrid[:1100, :850]
    distance = np.hypot(x - cx, y - cy)
    image[distance <= radius] = 255
    rng = np.random.default_rng(0)
    specks = (distance <= radius) & (rng.random(distance.shape) < 0.02)
    image[specks] = (255, 255, 120)
    for edge in (0.45, 0.72, 1.0):
        image[np.abs(distance - (edge * radius - 0.5)) <= 0.5] = 0
    image[round(cy), round(cx - radius) : round(cx + radius)] = 0
    return image, (cx, cy, radius)


def test_a_white_map_on_paper_of_its_colour_is_found_by_the_outline_drawn_round_it():
    # Issue 30, on a printed page: a framed map whose colours are nearly all the page's
    # was "not found"; its one-pixel grid fell between the pixels the coarse pass read.
    image, (cx, cy, radius) = outlined_white_map()
    (disc,) = find_discs(image, refine=False)  # what the check counts
    (disc,) = find_discs(image)
    assert abs(disc.cx - cx) <= 1.5 and abs(disc.cy - cy) <= 1.5
    assert abs(disc.radius - radius) <= 1.5


def test_a_grey_page_hiding_the_bars_white_top_keeps_white_the_light_end():
    # The bar's white top does not stand out from a light grey page; the scale goes on
    # to the page's colour at its light end (yellow), not its dark one (black), though
    # grey is as far from both in blue. Found with a held-back renderer (issue 30): the
    # white band's edge in a stepped map was taken for lines and filled.
    page_colour = (238, 238, 238)
    image = np.full((700, 900, 3), page_colour, np.uint8)
    ramp = colourize(np.linspace(1, 0, 400)[:, None], PRINTED_SCALES["thermal"])[:, 0]
    image[150:550, 700:730] = ramp[:, None, :]
    cx, cy, radius = 350.0, 350.0, 200.0
    y, x = np.ogrid[:700, :900]
    maps = np.hypot(x - cx, y - cy) <= radius
    values = np.clip(0.6 + 0.4 * (x - 150) / 400 + 0 * y, 0, 1)
    image[maps] = colourize(values, PRINTED_SCALES["thermal"])[maps]
    scale = learn_scale(image, maps, [np.array(page_colour, float)])
    assert scale is not None and scale.from_bar
    black, yellow, white = (np.array(c, np.uint8) for c in ((0, 0, 0), (255, 240, 0), (255,) * 3))
    assert abs(scale.position(white) - scale.position(yellow)) < 0.35
    assert abs(scale.position(white) - scale.position(black)) > 0.6


def test_a_light_maps_own_pale_specks_in_rows_are_not_lettering():
    # Found with a held-back renderer (issue 30): count noise in a white-topped scale's
    # yellow makes pale-yellow specks that cluster into rows, as a word's letters do;
    # they are the map's colour, and (unlike a word) not set on one cap line and
    # baseline: 0.63 % of this disc was filled (3 % of one held-back twin's), 0.07 % now.
    rng = np.random.default_rng(3)
    size, radius = 360, 170
    values = np.clip(0.9 + rng.normal(0, 0.02, (size // 2, size // 2)), 0, 1)
    fine = np.asarray(Image.fromarray(values.astype(np.float32), "F").resize((size, size)))
    image = np.full((700, 900, 3), 255, np.uint8)
    y, x = np.ogrid[:size, :size]
    disc = np.hypot(x - (size - 1) / 2, y - (size - 1) / 2) <= radius
    square = image[100 : 100 + size, 100 : 100 + size]
    square[disc] = colourize(np.clip(fine, 0, 1), PRINTED_SCALES["thermal"])[disc]
    ramp = colourize(np.linspace(1, 0, 300)[:, None], PRINTED_SCALES["thermal"])[:, 0]
    image[130:430, 560:590] = ramp[:, None, :]
    image[130:430, 559] = image[130:430, 590] = image[129, 559:591] = image[430, 559:591] = 0
    assert clean_export(image, 224).text_fraction <= 0.005


def test_a_line_stroked_along_the_rim_is_centred_on_it_and_filled():
    # Vector renderers stroke a circle centred on its path: half of a rim line lies on
    # the page. Its outer edge made discs a pixel too large (on held-back matplotlib
    # pages), which on a speckled map moved every speck.
    rng = np.random.default_rng(6)
    side, cx, cy, radius = 420, 209.5, 209.5, 180.0
    y, x = np.ogrid[:side, :side]
    distance = np.hypot(x - cx, y - cy)
    values = np.clip(0.7 + 0.2 * (x - cx) / radius + rng.normal(0, 0.01, (side, side)), 0, 1)
    twin = np.full((side, side, 3), 255, np.uint8)
    twin[distance <= radius] = colourize(values, PRINTED_SCALES["thermal"])[distance <= radius]
    page = twin.astype(np.float32)
    cover = np.clip(1.5 + 0.5 - np.abs(distance - radius), 0, 1)[..., None]  # 3 px wide
    page = (page * (1 - cover)).round().astype(np.uint8)
    for image, line in ((page, True), (twin, False)):
        (disc,) = find_discs(image)
        assert abs(disc.radius - radius) <= 0.5 and abs(disc.cx - cx) <= 0.5
        assert (disc.rim_line > 1.5) == line
    cleaned, plain = clean_export(page, 224), clean_export(twin, 224)
    ring = disc_mask(224, 112) & ~disc_mask(224, 108)
    difference = np.abs(cleaned.pixels.astype(int) - plain.pixels.astype(int)).max(axis=2)
    assert np.median(difference[ring]) <= 8  # the line's inner half filled from the map
