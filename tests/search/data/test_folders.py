"""The folder-per-class layout for single-view data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import BINARY, TRIAD, check_dataset, load_dataset, parse_mode


def disc_image(size: int, grey: int) -> Image.Image:
    """A plain map: a disc filling the square in one grey, black beyond it (what a
    cleaned map looks like; the check refuses an image without a disc)."""
    y, x = np.ogrid[:size, :size]
    inside = np.hypot(x - (size - 1) / 2, y - (size - 1) / 2) <= size / 2
    return Image.fromarray((inside * (40 + grey)).astype(np.uint8))


def make_folders(root: Path, counts: dict[str, int], size: int = 80) -> Path:
    """Class folders of plain maps, each a different grey (so none are byte-identical)."""
    grey = 0
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            grey += 1
            disc_image(size, grey).save(root / name / f"{name}-{i:02d}.png")
    return root


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "maps", {"Normal": 10, "Ischemia": 8, "Infarction": 7})


def test_folder_names_are_the_labels_and_stems_the_patient_ids(folders):
    dataset = load_dataset(folders)
    assert dataset.class_set == TRIAD  # the folder names match the triad preset
    assert dataset.class_counts() == {"Infarction": 7, "Ischemia": 8, "Normal": 10}
    assert dataset.labels["Ischemia-03"] == 1
    assert dataset.views == ("stress",)
    assert dataset.patients[0].row is None


def test_the_mode_names_the_single_view(folders):
    assert load_dataset(folders, mode=parse_mode("rest")).views == ("rest",)


def test_a_multi_view_mode_needs_a_manifest(folders):
    report = check_dataset(folders, mode=parse_mode("dual"))
    assert any("needs 2: use a manifest CSV" in p.message for p in report.errors)


def test_binary_folder_names_map_to_the_binary_preset(tmp_path):
    root = make_folders(tmp_path / "maps", {"CAD": 8, "non-CAD": 8})
    dataset = load_dataset(root)
    assert dataset.class_set == BINARY
    assert dataset.labels["CAD-00"] == 1


def test_own_class_names_are_taken_sorted(tmp_path):
    root = make_folders(tmp_path / "maps", {"reversible": 8, "fixed": 8, "none": 8})
    assert load_dataset(root).class_set.names == ("fixed", "none", "reversible")


def test_folder_that_is_not_a_class(folders):
    (folders / "Normla").mkdir()
    report = check_dataset(folders, class_set=TRIAD)
    [error] = report.errors
    assert error.source.endswith("Normla") and "not a class of class set 'triad'" in error.message


def test_same_patient_in_two_class_folders(folders):
    disc_image(80, 200).save(folders / "Ischemia" / "Normal-04.png")
    [error] = check_dataset(folders).errors
    assert "duplicate patient_id 'Normal-04'" in error.message
    named = {error.source.split("maps/")[1], error.message.split("maps/")[1].split(";")[0]}
    assert named == {"Ischemia/Normal-04.png", "Normal/Normal-04.png"}


def test_broken_image_names_its_file(folders):
    (folders / "Normal" / "Normal-02.png").write_bytes(b"")
    [error] = check_dataset(folders).errors
    assert error.source.endswith("Normal/Normal-02.png") and "empty" in error.message


def test_stray_files_are_ignored_with_a_warning(folders):
    (folders / "Normal" / "notes.txt").write_text("reader notes")
    (folders / "Normal" / ".DS_Store").write_bytes(b"\0")
    report = check_dataset(folders)
    assert report.ok and len(report.dataset) == 25
    [warning] = report.warnings
    assert warning.source.endswith("notes.txt")


def test_root_without_class_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    [error] = check_dataset(tmp_path / "empty").errors
    assert "found 0 class folder(s)" in error.message


def test_one_class_folder_is_not_a_classification(tmp_path):
    root = make_folders(tmp_path / "maps", {"Normal": 10})
    [error] = check_dataset(root).errors
    assert "found 1 class folder" in error.message and "at least two" in error.message
