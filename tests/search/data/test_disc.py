"""Finding the polar-map disc in exports of known geometry."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from search.data.disc import find_disc
from search.synth.render import render_export
from search.synth.uptake import draw_patient, uptake_maps


def export(seed: int, text_over_map: bool):
    rng = np.random.default_rng(seed)
    truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
    maps = uptake_maps(truth, 128, rng, 0.5)
    return render_export(
        maps["rest"], "REST AC", "ROSSI, ANNA", "2024-05-06", "Scanner", rng, (1640, 1068),
        text_over_map=text_over_map,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_disc_is_found_within_two_pixels(seed):
    result = export(seed, text_over_map=seed % 2 == 0)
    found = find_disc(result.image)
    cx, cy, radius = result.disc
    assert abs(found.cx - cx) < 2 and abs(found.cy - cy) < 2
    assert abs(found.radius - radius) < 2


def test_disc_is_found_in_a_jpeg_export():
    result = export(7, text_over_map=True)
    buffer = io.BytesIO()
    Image.fromarray(result.image).save(buffer, format="JPEG", quality=85)
    found = find_disc(np.asarray(Image.open(buffer)))
    cx, cy, radius = result.disc
    assert abs(found.cx - cx) < 3 and abs(found.cy - cy) < 3 and abs(found.radius - radius) < 3


def test_box_is_the_square_around_the_disc():
    result = export(1, text_over_map=False)
    left, top, right, bottom = find_disc(result.image).box()
    assert (
        abs((right - left) - 2 * result.disc[2]) < 4 and abs((bottom - top) - (right - left)) <= 1
    )


def test_an_empty_canvas_has_no_disc():
    with pytest.raises(ValueError, match="no polar-map disc found"):
        find_disc(np.zeros((300, 400, 3), dtype=np.uint8))
