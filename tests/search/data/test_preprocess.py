"""Cleaning a whole data set through the cache: synth -> check -> preprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import TRIAD, DataError, load_dataset
from search.data.clean import CropBox, clean_export, disc_mask
from search.data.map_cache import MapCache
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.synth import write_synthetic_dataset

SIZE = 64


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return write_synthetic_dataset(out, TRIAD, 12, seed=3, canvas=(820, 534))


@pytest.fixture(scope="module")
def cleaned_twice(synthetic, tmp_path_factory):
    dataset = load_dataset(synthetic, splittable=False)
    cache = MapCache(tmp_path_factory.mktemp("cache"))
    first = preprocess_dataset(dataset, PreprocessSpec(SIZE), cache, workers=2)
    second = preprocess_dataset(dataset, PreprocessSpec(SIZE), cache, workers=1)
    return dataset, first, second


def test_round_trip_gives_one_clean_map_per_patient_and_view(cleaned_twice):
    dataset, first, _ = cleaned_twice
    assert first.maps.shape == (12, 2, SIZE, SIZE, 3) and first.maps.dtype == np.uint8
    assert first.views == ("rest", "stress")
    assert first.patient_ids == tuple(p.patient_id for p in dataset.patients)
    outside = ~disc_mask(SIZE, SIZE / 2)
    assert not first.maps[:, :, outside].any()
    assert (first.maps[:, :, ~outside].max(axis=-1) > 0).mean() > 0.99


def test_maps_are_what_cleaning_each_file_gives(cleaned_twice):
    dataset, first, _ = cleaned_twice
    for i in (0, 5, 11):
        patient = dataset.patients[i]
        for j, view in enumerate(first.views):
            export = np.asarray(Image.open(patient.images[view]).convert("RGB"))
            assert np.array_equal(first.maps[i, j], clean_export(export, SIZE).pixels)


def test_text_is_removed_where_the_generator_put_it_over_the_map(cleaned_twice, synthetic):
    dataset, first, _ = cleaned_twice
    over, clear = [], []
    for i, patient in enumerate(dataset.patients):
        truth = json.loads((synthetic.parent / "truth" / f"{patient.patient_id}.json").read_text())
        for j, view in enumerate(first.views):
            has_text = truth["views"][view]["text_over_map"]
            (over if has_text else clear).append(first.text_fractions[i, j])
    assert over and clear
    assert np.mean(over) > 0.002 and np.mean(over) > 10 * np.mean(clear)


def test_second_run_reads_everything_from_the_cache(cleaned_twice):
    _, first, second = cleaned_twice
    assert first.from_cache == 0 and second.from_cache == 24
    assert np.array_equal(first.maps, second.maps)
    assert np.isnan(second.text_fractions).all()
    assert len(list(first.cache.rglob("*.npy"))) == 24


def test_a_crop_box_is_a_different_cache_entry(synthetic, tmp_path):
    dataset = load_dataset(synthetic, splittable=False)
    cache = MapCache(tmp_path)
    preprocess_dataset(dataset, PreprocessSpec(SIZE), cache, workers=1)
    boxed = PreprocessSpec(SIZE, {"rest": CropBox(0, 0, 500, 500)})
    result = preprocess_dataset(dataset, boxed, cache, workers=1)
    assert result.from_cache == 12  # stress maps reused, rest maps cleaned again
    assert len(list(tmp_path.rglob("*.npy"))) == 36


def test_exports_that_cannot_be_cleaned_are_refused_by_the_check_in_cleanings_words(
    manifest, tmp_path
):
    # Issue 30: the check passed printed pages that cleaning then refused, every one. The
    # check now refuses what cleaning would, naming row and column, before any compute.
    black = Image.new("RGB", (96, 96))
    black.save(manifest.parent / "images" / "P003_stress.png")
    black.save(manifest.parent / "images" / "P007_rest.png")
    with pytest.raises(DataError) as failed:
        load_dataset(manifest, splittable=False)
    message = str(failed.value)
    assert "row 4, stress_path: cannot clean: no polar-map disc found" in message
    assert "row 8, rest_path" in message and "2 error(s)" in message
    with pytest.raises(ValueError) as cleaning:
        clean_export(np.asarray(black), SIZE)
    assert f"stress_path: cannot clean: {cleaning.value}" in message


def test_a_crop_box_outside_the_image_is_refused(manifest, tmp_path):
    dataset = load_dataset(manifest, splittable=False)
    spec = PreprocessSpec(SIZE, {"stress": CropBox(0, 0, 200, 200)})
    with pytest.raises(DataError, match=r"crop box 0,0,200,200 lies outside the 96 x 96 image"):
        preprocess_dataset(dataset, spec, MapCache(tmp_path), workers=1)


def test_the_cleaning_pool_is_not_forked_from_a_process_running_other_threads(manifest):
    """A pool forked while another thread (Ray's, gRPC's) held a lock waited for ever:
    `polarmap demo` hung cleaning its second vendor's exports after its search."""
    import threading

    from search.data import check_dataset
    from search.data.map_cache import MapCache
    from search.data.preprocess import PreprocessSpec, pool_context, preprocess_dataset

    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:
        assert pool_context().get_start_method() == "forkserver"
        dataset = check_dataset(manifest).dataset
        cleaned = preprocess_dataset(dataset, PreprocessSpec(64), MapCache(manifest.parent / "c"),
                                     workers=2)  # fmt: skip
        assert cleaned.maps.shape[:2] == (len(dataset), 2) and cleaned.maps.any()
    finally:
        stop.set()
        busy.join()
