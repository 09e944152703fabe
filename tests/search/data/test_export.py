"""Cleaned maps out: PNGs and a manifest every command reads, a round trip that leaves
the maps as they are."""

from __future__ import annotations

import numpy as np

from search.cli import main
from search.data import check_dataset, load_dataset
from search.data.export import export_cleaned
from search.data.map_cache import MapCache
from search.data.preprocess import PreprocessSpec, preprocess_dataset


def test_cleaned_maps_round_trip_through_their_export(manifest, tmp_path):
    dataset = load_dataset(manifest)
    spec = PreprocessSpec(96)
    cleaned = preprocess_dataset(dataset, spec, MapCache(tmp_path / "cache"))
    exported = export_cleaned(dataset, cleaned, tmp_path / "clean")
    assert (tmp_path / "clean" / "P001" / "rest.png").is_file()

    report = check_dataset(exported)  # as every command reads it
    assert report.ok, report.errors
    again = report.dataset
    assert [p.patient_id for p in again.patients] == [p.patient_id for p in dataset.patients]
    assert again.labels == dataset.labels and again.views == dataset.views
    assert again.metadata_columns == dataset.metadata_columns
    recleaned = preprocess_dataset(again, spec, MapCache(tmp_path / "cache"))
    difference = np.abs(recleaned.maps.astype(int) - cleaned.maps.astype(int))
    assert difference.mean(axis=(2, 3, 4)).max() < 1  # each map, on average


def test_the_command_exports_and_says_where(manifest, tmp_path, capsys):
    out = tmp_path / "clean"
    args = ["data", "preprocess", str(manifest), "--size", "64", "--cache", str(tmp_path / "c")]
    assert main([*args, "--export", str(out)]) == 0
    assert f"their manifest: {out / 'manifest.csv'}" in capsys.readouterr().out
    assert main(["data", "check", str(out / "manifest.csv")]) == 0
