"""The generator's other export styles and formats: side-by-side exports with each view's
position, single maps in other colour maps, DICOM files; read, checked and cleaned right."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from search.data import TRIAD, check_dataset
from search.data.clean import clean_export
from search.data.images import read_export
from search.synth import check_export_options, write_synthetic_dataset

BALANCE = {"Infarction": 1, "Ischemia": 1, "Normal": 1}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("pair")
    return write_synthetic_dataset(out, TRIAD, 6, seed=1, balance=BALANCE, style="pair")


def test_pair_exports_hold_both_views_and_say_which_is_which(pair):
    rows = list(csv.DictReader(pair.open()))
    assert all(r["stress_path"] == r["rest_path"] for r in rows)
    assert {(r["stress_position"], r["rest_position"]) for r in rows} == {("left", "right")}
    assert check_dataset(pair, class_set=TRIAD, splittable=False).ok


def test_cleaning_finds_every_disc_of_a_pair_within_two_pixels(pair):
    dataset = check_dataset(pair, class_set=TRIAD, splittable=False).dataset
    for patient in dataset.patients:
        truth = json.loads((pair.parent / "truth" / f"{patient.patient_id}.json").read_text())
        for view in ("stress", "rest"):
            image = read_export(patient.images[view].read_bytes())
            disc = clean_export(image, 64, position=patient.positions[view]).disc
            expected = truth["views"][view]["disc"]
            assert truth["views"][view]["position"] == patient.positions[view]
            assert abs(disc.cx - expected["cx"]) <= 2 and abs(disc.cy - expected["cy"]) <= 2
            assert abs(disc.radius - expected["radius"]) <= 2


def test_a_pair_without_positions_is_refused_naming_row_file_and_disc_count(pair, tmp_path):
    rows = list(csv.DictReader(pair.open()))
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["patient_id", "stress_path", "rest_path", "label"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in writer.fieldnames} | {
                "stress_path": str(pair.parent / row["stress_path"]),
                "rest_path": str(pair.parent / row["rest_path"])})  # fmt: skip
    report = check_dataset(manifest, class_set=TRIAD, splittable=False)
    assert not report.ok
    first = report.errors[0]
    assert first.row == 2 and "SYN0001_pair.png" in first.message
    assert "holds 2 polar-map discs" in first.message and "--layout" in first.message


def test_dicom_exports_are_read_and_reproducible(tmp_path):
    options = {"balance": BALANCE, "image_format": "dicom", "style": "single"}
    one = write_synthetic_dataset(tmp_path / "a", TRIAD, 3, seed=4, colour_map="rainbow", **options)
    two = write_synthetic_dataset(tmp_path / "b", TRIAD, 3, seed=4, colour_map="rainbow", **options)
    files = sorted((tmp_path / "a" / "images").iterdir())
    assert len(files) == 6 and all(f.suffix == ".dcm" for f in files)
    for file in files:
        assert file.read_bytes() == (tmp_path / "b" / "images" / file.name).read_bytes()
        assert file.read_bytes()[128:132] == b"DICM"
        assert b"Synthetic Hospital" in file.read_bytes()  # the header names a made-up patient
    assert check_dataset(one, class_set=TRIAD, splittable=False).ok
    assert check_dataset(two, class_set=TRIAD, splittable=False).ok
    image = read_export(files[0].read_bytes())
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("tiff", "project", None), "format 'tiff'"),
        (("png", "poster", None), "style 'poster'"),
        (("png", "project", "jet"), "with a vendor style"),
        (("png", "single", "viridis"), "colour map 'viridis'"),
    ],
)
def test_unknown_export_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        check_export_options(*options)
