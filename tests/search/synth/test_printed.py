"""Printed report pages: a light page, a white-topped thermal scale, the segment grid and
scores over the map; each page with its overlay-free twin and exact masks."""

from __future__ import annotations

import csv
import json
from functools import cache

import numpy as np
import pytest
from PIL import Image

from search.data import TRIAD, check_dataset
from search.synth import check_export_options, write_synthetic_dataset
from search.synth.printed import PRINTED_SCALES, PrintedExport, render_printed_export
from search.synth.uptake import draw_patient, uptake_maps

TEXTS = ("ROSSI, ANNA", "2024-05-06", "Siemens Symbia T16")


@cache
def page(seed: int, **options) -> PrintedExport:
    rng = np.random.default_rng(seed)
    truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
    uptake = uptake_maps(truth, 256, rng, 0.5)["stress"]
    return render_printed_export(uptake, "stress", TEXTS, rng, **options)


def disc_of(drawn: PrintedExport, margin: float = 0.0) -> np.ndarray:
    cx, cy, radius = drawn.discs["stress"]
    y, x = np.ogrid[: drawn.image.shape[0], : drawn.image.shape[1]]
    return np.hypot(x - cx, y - cy) <= radius + margin


@pytest.mark.parametrize("seed", range(6))
def test_the_page_differs_from_its_twin_only_where_something_was_drawn_over_it(seed):
    drawn = page(seed)
    assert drawn.image.shape == drawn.twin.shape and drawn.image.dtype == np.uint8
    changed = (drawn.image != drawn.twin).any(axis=2)
    assert not (changed & ~(drawn.text_mask | drawn.overlay_mask)).any()
    # overlays: over the map, and the rim's line half beyond it (a few pixels wide)
    assert not (drawn.overlay_mask & ~disc_of(drawn, 4)).any()
    # the grid and 17 scores are there, and most of what the mask says shows
    assert drawn.overlay_mask.sum() > 2 * np.pi * drawn.discs["stress"][2]
    assert changed[drawn.overlay_mask].mean() > 0.5


@pytest.mark.parametrize("seed", range(6))
def test_the_page_is_light_and_the_twin_shows_the_map_where_the_truth_says(seed):
    drawn = page(seed)
    assert min(drawn.page) >= 200  # white, off-white or light grey
    corner = drawn.twin[:5, :5].reshape(-1, 3)
    assert (corner == drawn.page).all()
    inside = disc_of(drawn, -2)
    # the map is the scale's colours: its low end is dark, its top white or yellow
    assert drawn.twin[inside].max() == 255
    assert drawn.scores.keys() == set(range(1, 18))
    assert all(0 <= s <= 4 for s in drawn.scores.values())


def test_scales_are_white_topped_and_their_colour_bars_run_from_black_to_white():
    for name, table in PRINTED_SCALES.items():
        assert table[0, 1:].tolist() == [0, 0, 0], name
        assert table[-1, 1:].tolist() == [255, 255, 255], name
    drawn = page(2, scale="thermal", colour_bar=True)
    outside = ~disc_of(drawn, 3) & ~drawn.text_mask
    colours = drawn.twin[outside]
    assert (colours == 255).all(axis=1).any() and (colours.max(axis=1) < 20).any()


def test_pages_vary_in_size_scale_grid_and_lettering():
    drawn = [page(seed) for seed in range(12)]
    assert len({d.image.shape for d in drawn}) >= 3
    assert len({d.colour_map for d in drawn}) >= 3  # smooth and stepped, both scales
    assert len({d.page for d in drawn}) >= 3
    widths = {round(float(d.overlay_mask.sum()) / d.discs["stress"][2]) for d in drawn}
    assert len(widths) >= 4  # line widths and score sizes vary


def test_a_scale_is_chosen_by_name_and_an_unknown_one_is_refused():
    assert page(1, scale="cedars").colour_map.startswith("cedars")
    with pytest.raises(ValueError, match="scale 'jet'"):
        page(1, scale="jet")
    check_export_options("png", "printed", "thermal")
    with pytest.raises(ValueError, match="printed style draws one of thermal, cedars"):
        check_export_options("png", "printed", "jet")


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    out = tmp_path_factory.mktemp("printed")
    balance = {"Infarction": 1, "Ischemia": 1, "Normal": 1}
    return write_synthetic_dataset(
        out, TRIAD, 3, seed=2, balance=balance, style="printed", image_format="jpeg"
    )


def test_a_printed_data_set_writes_twins_masks_and_a_manifest_of_the_twins(printed):
    assert check_dataset(printed, class_set=TRIAD, splittable=False).ok
    truth_folder = printed.parent / "truth"
    twins = truth_folder / "twins.csv"
    assert check_dataset(twins, class_set=TRIAD, splittable=False).ok
    rows = list(csv.DictReader(twins.open()))
    assert [r["patient_id"] for r in rows] == ["SYN0001", "SYN0002", "SYN0003"]
    truth = json.loads((truth_folder / "SYN0001.json").read_text())
    view = truth["views"]["stress"]
    overlay = np.asarray(Image.open(printed.parent / view["overlay_mask"])) > 0
    image = np.asarray(Image.open(printed.parent / view["image"]))
    twin = np.asarray(Image.open(printed.parent / view["twin"]))
    assert overlay.shape == image.shape[:2] == twin.shape[:2] and overlay.any()
    assert 70 <= view["jpeg_quality"] <= 95
    assert view["scale"].split("-")[0] in PRINTED_SCALES
    # JPEG of the same page: far from the twin only near what was drawn over it
    far = np.abs(image.astype(int) - twin.astype(int)).max(axis=2) > 40
    assert far[overlay].mean() > 0.2 and far[~overlay].mean() < 0.02
