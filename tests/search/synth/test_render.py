"""Rendering exports: the disc where the truth says, and an exact text mask."""

from __future__ import annotations

import numpy as np
import pytest

from search.synth.render import colourize, render_export
from search.synth.uptake import draw_patient, uptake_maps


def export(seed: int, text_over_map: bool, canvas=(820, 534)):
    rng = np.random.default_rng(seed)
    truth = draw_patient("Ischemia", rng, 0.5)
    maps = uptake_maps(truth, 128, rng, 0.5)
    return render_export(
        maps["stress"], "STRESS AC", "DOE, ALEX", "2024-02-01", "Scanner X", rng, canvas,
        text_over_map=text_over_map,
    )  # fmt: skip


def test_colourize_maps_the_scale_and_blacks_out_outside():
    uptake = np.array([[0.0, 1.0, np.nan]])
    rgb = colourize(uptake)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert rgb[0, 2].tolist() == [0, 0, 0]


@pytest.mark.parametrize("seed", range(4))
def test_the_disc_is_where_the_truth_says(seed):
    result = export(seed, text_over_map=False)
    cx, cy, radius = result.disc
    height, width = result.text_mask.shape
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot(x - cx, y - cy)
    lit = result.image.max(axis=2) > 30
    # Inside the disc (away from its edge) nearly everything is lit; nothing lit just
    # outside it except text and the colour bar, which lie further away.
    assert lit[distance < radius - 3].mean() > 0.97
    ring = (distance > radius + 3) & (distance < radius + 12)
    assert lit[ring & ~result.text_mask].mean() < 0.01


def test_text_mask_covers_the_burned_in_text():
    result = export(1, text_over_map=False)
    cx, cy, radius = result.disc
    assert result.text_mask.sum() > 500
    # Text is drawn in white, yellow or grey on black: masked pixels are mostly bright.
    assert (result.image[result.text_mask].max(axis=1) > 60).mean() > 0.5
    height, width = result.text_mask.shape
    y, x = np.mgrid[0:height, 0:width]
    assert not (result.text_mask & (np.hypot(x - cx, y - cy) < radius)).any()


def test_text_over_the_map_lands_inside_the_disc():
    result = export(2, text_over_map=True)
    cx, cy, radius = result.disc
    height, width = result.text_mask.shape
    y, x = np.mgrid[0:height, 0:width]
    assert (result.text_mask & (np.hypot(x - cx, y - cy) < radius)).sum() > 20
