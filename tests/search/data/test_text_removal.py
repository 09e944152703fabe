"""Text removal on exports drawn as other vendors draw them (search.synth.vendors), against
their truth: a disc without lettering keeps every map pixel; lettering over a map is found;
what only looks like lettering is left alone and shown as unsure."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image

from search.data.clean import clean_export, find_text, text_and_unsure
from search.data.disc import find_discs
from search.data.preview import UNSURE, PreviewItem, draw_preview
from search.synth.uptake import draw_patient, uptake_maps
from search.synth.vendors import COLOUR_MAPS, VENDORS, VendorExport, render_vendor_export


@cache
def maps(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
    drawn = uptake_maps(truth, 256, rng, 0.5)
    return {"stress": drawn["stress"], "rest": drawn["rest"]}


@cache
def export(vendor: str, colour_map: str, seed: int, over: bool) -> VendorExport:
    return render_vendor_export(
        maps(seed), vendor, np.random.default_rng(seed), colour_map, text_over_map=over
    )


def jpeg(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=85)
    return np.asarray(Image.open(buffer))


def inside(drawn: VendorExport, disc: tuple[float, float, float]) -> np.ndarray:
    cx, cy, radius = disc
    y, x = np.ogrid[: drawn.image.shape[0], : drawn.image.shape[1]]
    return np.hypot(x - cx, y - cy) <= radius - 1


# Before issue 17 the finder flagged up to 7.4 % of a text-free jet disc (count noise in
# its cyan-to-yellow band) and 34.9 % of a hot one (specks at its white peak).
@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("as_jpeg", [False, True], ids=["png", "jpeg"])
def test_discs_without_lettering_keep_every_map_pixel(vendor, as_jpeg):
    shares = []
    for colour_map in COLOUR_MAPS:
        for seed in (0, 1):
            drawn = export(vendor, colour_map, seed, False)
            image = jpeg(drawn.image) if as_jpeg else drawn.image
            found = find_text(image, next(iter(drawn.discs.values()))[2])
            for disc in drawn.discs.values():
                shares.append((found & inside(drawn, disc)).sum() / inside(drawn, disc).sum())
    assert np.median(shares) == 0.0
    assert max(shares) <= 0.005, f"{100 * max(shares):.3f} % of a text-free disc flagged"


@pytest.mark.parametrize(
    ("vendor", "colour_map"),
    [("single", "jet"), ("single", "rainbow"), ("single", "cool"), ("pair", "jet")],
)
def test_lettering_over_the_map_is_found(vendor, colour_map):
    for seed in (0, 1, 2):
        plain = export(vendor, colour_map, seed, False)
        drawn = export(vendor, colour_map, seed, True)
        found = find_text(drawn.image, next(iter(drawn.discs.values()))[2])
        changed = np.abs(drawn.image.astype(int) - plain.image.astype(int)).max(axis=2) > 24
        for disc in drawn.discs.values():
            visible = changed & drawn.text_mask & inside(drawn, disc)
            assert visible.sum() > 50, "the renderer no longer draws lettering over the map"
            assert (visible & found).sum() / visible.sum() >= 0.99


def recall(vendor: str, colour_map: str, seeds: range) -> float:
    """The share of visible lettering over the maps that the finder flags, pooled."""
    found_visible = visible = 0
    for seed in seeds:
        plain, drawn = (
            export(vendor, colour_map, seed, False),
            export(vendor, colour_map, seed, True),
        )
        found = find_text(drawn.image, next(iter(drawn.discs.values()))[2])
        changed = np.abs(drawn.image.astype(int) - plain.image.astype(int)).max(axis=2) > 24
        for disc in drawn.discs.values():
            shown = changed & drawn.text_mask & inside(drawn, disc)
            visible, found_visible = visible + shown.sum(), found_visible + (shown & found).sum()
    return found_visible / visible


# Lettering on a map's own brightest colours (white or yellow over a hot map's peak, yellow
# over a light grey one): the previous finder found 76 % (pair, hot) and 40 % (single, grey)
# of it over 10 exports, erasing up to 35 % of text-free hot discs to do so.
@pytest.mark.parametrize(
    ("vendor", "colour_map", "least"), [("pair", "hot", 0.85), ("single", "grey", 0.45)]
)
def test_lettering_over_a_maps_brightest_colours_is_mostly_found(vendor, colour_map, least):
    assert recall(vendor, colour_map, range(4)) >= least


def test_what_only_looks_like_lettering_is_left_alone_and_shown():
    # Count noise in jet's cyan-to-yellow band makes light specks that line up like
    # letters (the previous finder erased them). Cleaning leaves them; the preview shows them.
    drawn = next(
        d
        for seed in range(6)
        if (d := export("single", "jet", seed, False)) and clean_export(d.image, 224).unsure.any()
    )
    cleaned = clean_export(drawn.image, 224)
    assert cleaned.text_fraction == 0.0
    sheet = np.asarray(draw_preview([[PreviewItem("unsure", drawn.image, cleaned)]]))
    assert (sheet == UNSURE).all(axis=2).sum() > 20


def test_a_maps_jagged_rim_is_not_shown_as_unsure_lettering():
    # A pixelated map's rim stands out from the black beyond it as strokes do; the
    # preview outlined dozens of such "letters" around every hot disc.
    for seed in (0, 1):
        drawn = export("pair", "hot", seed, False)
        _, unsure = text_and_unsure(drawn.image, next(iter(drawn.discs.values()))[2])
        for cx, cy, radius in drawn.discs.values():
            y, x = np.ogrid[: drawn.image.shape[0], : drawn.image.shape[1]]
            rim = np.abs(np.hypot(x - cx, y - cy) - radius) <= 3
            assert not (unsure & rim).any()


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("colour_map", ["jet", "hot", "grey"])
def test_every_disc_is_found_within_two_pixels(vendor, colour_map):
    for seed in (0, 1):
        drawn = export(vendor, colour_map, seed, True)
        found = find_discs(drawn.image)
        assert len(found) == len(drawn.discs)
        truth = sorted(drawn.discs.values())  # left to right, as reading order has them
        for disc, (cx, cy, radius) in zip(found, truth, strict=True):
            assert abs(disc.cx - cx) <= 2 and abs(disc.cy - cy) <= 2
            assert abs(disc.radius - radius) <= 2


def test_the_pair_layout_positions_are_the_truth():
    drawn = export("pair", "rainbow", 0, False)
    assert drawn.positions == {"stress": "left", "rest": "right"}
    left, right = find_discs(drawn.image)
    for view, disc in (("stress", left), ("rest", right)):
        assert abs(disc.cx - drawn.discs[view][0]) <= 2


def test_a_word_whose_letter_a_speck_has_joined_is_still_a_word():
    # Issue 30 asks every doubtful letter to be set as type (white specks of a
    # white-topped scale cluster into rows); here a speck of a hot map's pale yellow
    # joins the T of a white "ANT" over it, moving the T's top but not its baseline.
    # With tops and baselines both asked for, the word was left unsure (recall 0).
    assert recall("single", "hot", range(9, 10)) >= 0.95


def test_a_letter_jpeg_has_parted_is_found_whole():
    # JPEG parts a white P over a rainbow map's yellow into its stem and its bowl; the
    # stem is a letter on the word's baseline, the bowl alone is none (its bottom is the
    # P's middle) and was left in the map: 813 of 883 visible pixels found, 854 now.
    drawn = export("pair", "rainbow", 2, True)
    plain = export("pair", "rainbow", 2, False)
    found = find_text(jpeg(drawn.image), next(iter(drawn.discs.values()))[2])
    changed = np.abs(drawn.image.astype(int) - plain.image.astype(int)).max(axis=2) > 24
    shown = np.zeros_like(found)
    for disc in drawn.discs.values():
        shown |= changed & drawn.text_mask & inside(drawn, disc)
    assert (found & shown).sum() / shown.sum() >= 0.95
