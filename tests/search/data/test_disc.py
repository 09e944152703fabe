"""Finding the polar-map disc in exports of known geometry."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from search.data.disc import SeveralDiscs, choose_disc, find_disc, find_discs
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


# -- several maps per export, drawn by a renderer that is not the project's -------------


def jet(values: np.ndarray) -> np.ndarray:
    """A jet-like colour map: blue, cyan, yellow, red."""
    v = np.clip(values, 0, 1)[..., None]
    colours = np.clip(
        np.concatenate([1.5 - np.abs(4 * v - 3), 1.5 - np.abs(4 * v - 2), 1.5 - np.abs(4 * v - 1)],
                       axis=-1), 0, 1)  # fmt: skip
    return (255 * colours).astype(np.uint8)


def other_vendor(discs, canvas=(1200, 700), bar=True) -> np.ndarray:
    """A screenshot with map discs at `discs` ((cx, cy, r), ...), a vertical colour bar
    and white labels, on black: another layout and colour map than the project's."""
    width, height = canvas
    image = np.zeros((height, width, 3), np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    for cx, cy, r in discs:
        distance = np.hypot(x - cx, y - cy)
        inside = distance <= r
        angle = np.arctan2(y - cy, x - cx)
        values = 0.55 + 0.35 * np.cos(angle) * (distance / r)  # a smooth gradient
        image[inside] = jet(values)[inside]
        image[int(cy - r - 30) : int(cy - r - 18), int(cx - 40) : int(cx + 40)] = 255  # label
    if bar:
        ramp = jet(np.linspace(1, 0, 300))[:, None, :]
        image[200:500, width - 60 : width - 40] = ramp
    return image


@pytest.mark.parametrize(
    "discs",
    [
        [(300, 380, 200), (820, 380, 200)],  # side by side
        [(400, 200, 140), (400, 520, 140)],  # one above the other
        [(250, 250, 120), (620, 250, 120), (250, 560, 120)],  # a grid, one cell empty
    ],
)
def test_every_disc_of_an_export_is_found_within_two_pixels_in_reading_order(discs):
    found = find_discs(other_vendor(discs))
    assert len(found) == len(discs)  # the colour bar is not a disc
    order = sorted(discs, key=lambda d: (round(d[1] / 100), d[0]))
    for disc, (cx, cy, r) in zip(found, order, strict=True):
        assert abs(disc.cx - cx) < 2 and abs(disc.cy - cy) < 2 and abs(disc.radius - r) < 2


def test_a_position_picks_its_disc_and_several_discs_need_one():
    discs = find_discs(other_vendor([(300, 380, 200), (820, 380, 200)]))
    left, right = discs
    assert choose_disc(discs, "left") == left and choose_disc(discs, "right") == right
    assert choose_disc(discs, "1") == left and choose_disc(discs, "2") == right
    with pytest.raises(SeveralDiscs, match=r"holds 2 polar-map discs.*--layout"):
        choose_disc(discs, None)
    with pytest.raises(ValueError, match="position 3: the export holds 2 discs"):
        choose_disc(discs, "3")
    assert choose_disc(discs[:1], "right") == left  # one disc: the view's, wherever it is
