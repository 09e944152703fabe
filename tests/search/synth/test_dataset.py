"""Writing a synthetic data set: manifest, exports, truth; checked and reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from search.data import BINARY, TRIAD, load_dataset
from search.synth import class_counts, write_synthetic_dataset

SMALL = (410, 267)  # a quarter of the seed's canvas keeps the tests fast


@pytest.mark.parametrize(
    ("patients", "expected"),
    [
        (87, {"Infarction": 4, "Ischemia": 18, "Normal": 65}),
        (160, {"Infarction": 7, "Ischemia": 33, "Normal": 120}),
        (10, {"Infarction": 0, "Ischemia": 2, "Normal": 8}),
    ],
)
def test_class_counts_follow_the_first_seeds_proportions(patients, expected):
    assert class_counts(patients, {"Infarction": 4, "Ischemia": 18, "Normal": 65}) == expected


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    balance = {"Infarction": 1, "Ischemia": 1, "Normal": 1}
    return write_synthetic_dataset(out, TRIAD, 21, seed=3, balance=balance, canvas=SMALL)


def test_synth_then_check_round_trip(synthetic):
    dataset = load_dataset(synthetic)
    assert dataset.class_counts() == {"Infarction": 7, "Ischemia": 7, "Normal": 7}
    assert dataset.views == ("rest", "stress")
    assert dataset.metadata_columns == ("sex", "scanner")
    with Image.open(dataset.patients[0].images["rest"]) as image:
        assert image.size == SMALL and image.mode == "RGB"


def test_truth_sidecars_match_the_manifest(synthetic):
    dataset = load_dataset(synthetic)
    for p in dataset.patients:
        truth = json.loads((synthetic.parent / "truth" / f"{p.patient_id}.json").read_text())
        assert truth["label"] == TRIAD.names[p.label]
        assert (truth["defect"] is None) == (truth["label"] == "Normal")
        for view in ("rest", "stress"):
            mask = np.asarray(Image.open(synthetic.parent / truth["views"][view]["text_mask"]))
            assert mask.shape == SMALL[::-1] and mask.any()
            assert 0 < truth["views"][view]["disc"]["radius"] < SMALL[1] / 2


def test_same_seed_same_data_set(synthetic, tmp_path):
    balance = {"Infarction": 1, "Ischemia": 1, "Normal": 1}
    again = write_synthetic_dataset(tmp_path, TRIAD, 21, seed=3, balance=balance, canvas=SMALL)
    assert load_dataset(again).fingerprint == load_dataset(synthetic).fingerprint
    other = write_synthetic_dataset(
        tmp_path / "other", TRIAD, 21, seed=4, balance=balance, canvas=SMALL
    )
    assert load_dataset(other).fingerprint != load_dataset(synthetic).fingerprint


def test_binary_cad_patients_carry_a_defect(tmp_path):
    manifest = write_synthetic_dataset(tmp_path, BINARY, 16, seed=0, canvas=SMALL)
    dataset = load_dataset(manifest, class_set=BINARY, split=None)
    assert dataset.class_counts() == {"non-CAD": 8, "CAD": 8}
    for p in dataset.patients:
        truth = json.loads((tmp_path / "truth" / f"{p.patient_id}.json").read_text())
        assert truth["diagnosis"] in (("Normal",) if p.label == 0 else ("Ischemia", "Infarction"))


def test_jpeg_exports(tmp_path):
    balance = {"Infarction": 1, "Ischemia": 1, "Normal": 1}
    manifest = write_synthetic_dataset(
        tmp_path, TRIAD, 21, balance=balance, canvas=SMALL, image_format="jpeg"
    )
    dataset = load_dataset(manifest)
    assert dataset.patients[0].images["stress"].suffix == ".jpg"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"balance": {"CAD": 1}}, "not classes of triad"),
        ({"balance": {"Normal": 0}}, "not all zero"),
        ({"difficulty": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_options_fail_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_synthetic_dataset(tmp_path / "out", TRIAD, 10, **kwargs)
    assert not (tmp_path / "out").exists()


def test_the_readers_annotations_follow_the_truth(synthetic):
    # a reader sees the defect's territory and segments where the view shows it:
    # ischemia at stress only, infarction at rest and stress; a normal study, none
    dataset = load_dataset(synthetic)
    assert "stress_territory" not in dataset.metadata_columns
    for p in dataset.patients:
        truth = json.loads((synthetic.parent / "truth" / f"{p.patient_id}.json").read_text())
        defect = truth["defect"]
        for view in ("rest", "stress"):
            shown = defect is not None and (view == "stress" or not defect["reversible"])
            assert p.territories[view] == ((defect["territory"],) if shown else ())
            abnormal = {i + 1 for i, score in enumerate(p.scores[view]) if score}
            assert abnormal == (set(defect["segments"]) if shown else set())
