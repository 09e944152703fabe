"""The data check: one test per kind of bad input, each asserting the row it names."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import (
    BINARY,
    DataError,
    SplitSpec,
    check_dataset,
    load_dataset,
    parse_class_set,
    parse_mode,
)


def errors_at(report, row: int | None = None, field: str | None = None) -> list[str]:
    """Messages of the report's errors at `row` (and `field`, when given)."""
    return [
        p.message for p in report.errors if p.row == row and (field is None or p.field == field)
    ]


def only_error(report, row: int | None, field: str | None = None) -> str:
    assert len(report.errors) == 1, [str(p) for p in report.problems]
    [message] = errors_at(report, row, field)
    return message


def test_valid_manifest_passes_and_keeps_everything(manifest):
    report = check_dataset(manifest)
    assert report.ok, [str(p) for p in report.problems]
    dataset = report.dataset
    assert len(dataset) == 40
    assert dataset.views == ("rest", "stress")
    assert dataset.class_counts() == {"Infarction": 8, "Ischemia": 10, "Normal": 22}
    first = dataset.patients[0]
    assert first.row == 2
    assert first.images["rest"] == manifest.parent / "images" / "P001_rest.png"


def test_metadata_columns_survive_loading(edit_manifest):
    def add_scanner(rows):
        rows[0].append("scanner")
        for i, row in enumerate(rows[1:]):
            row.append(f"cam-{i % 2}")

    dataset = load_dataset(edit_manifest(add_scanner))
    assert dataset.metadata_columns == ("sex", "scanner")
    assert dataset.patients[1].metadata["scanner"] == "cam-1"
    frame = dataset.to_frame()
    assert list(frame.columns[-2:]) == ["sex", "scanner"]
    assert set(frame["sex"]) <= {"F", "M"}
    assert frame.loc[1, "scanner"] == "cam-1"
    assert list(frame["label_name"][:1]) == ["Infarction"]


def test_missing_label_column_is_reported_on_the_header_row(edit_manifest):
    path = edit_manifest(lambda rows: [row.pop(3) for row in rows])
    report = check_dataset(path)
    assert "missing column 'label'" in errors_at(report, row=1)[0]
    assert report.dataset is None


def test_missing_view_column_for_the_mode(manifest):
    report = check_dataset(manifest, mode=parse_mode("stress_nac+stress"))
    message = only_error(report, row=1)
    assert "missing column 'stress_nac_path'" in message
    assert "rest, stress" in message  # what the manifest does have


def test_missing_image_file(edit_manifest):
    path = edit_manifest(lambda rows: rows[6].__setitem__(1, "images/nowhere.png"))
    message = only_error(check_dataset(path), row=7, field="rest_path")
    assert "file not found" in message and "nowhere.png" in message


def test_empty_image_file(manifest, edit_manifest):
    (manifest.parent / "images" / "empty.png").write_bytes(b"")
    path = edit_manifest(lambda rows: rows[3].__setitem__(2, "images/empty.png"))
    assert "empty (0 bytes)" in only_error(check_dataset(path), row=4, field="stress_path")


def test_unreadable_image_file(manifest, edit_manifest):
    (manifest.parent / "images" / "notes.png").write_text("not an image at all")
    path = edit_manifest(lambda rows: rows[5].__setitem__(1, "images/notes.png"))
    message = only_error(check_dataset(path), row=6, field="rest_path")
    assert "not a readable PNG, JPEG or TIFF image" in message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_truncated_image_file(manifest, edit_manifest, fmt):
    noise = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format=fmt)
    data = buffer.getvalue()
    (manifest.parent / "images" / "cut").write_bytes(data[: len(data) * 2 // 3])
    path = edit_manifest(lambda rows: rows[9].__setitem__(2, "images/cut"))
    assert "truncated" in only_error(check_dataset(path), row=10, field="stress_path")


def test_image_in_another_format_is_refused(manifest, edit_manifest):
    Image.new("RGB", (96, 96)).save(manifest.parent / "images" / "map.bmp")
    path = edit_manifest(lambda rows: rows[2].__setitem__(1, "images/map.bmp"))
    message = only_error(check_dataset(path), row=3, field="rest_path")
    assert "expected a PNG, JPEG or TIFF image, found BMP" in message


def test_image_too_small(manifest, edit_manifest):
    Image.new("L", (200, 40)).save(manifest.parent / "images" / "strip.png")
    path = edit_manifest(lambda rows: rows[11].__setitem__(2, "images/strip.png"))
    message = only_error(check_dataset(path, min_size=64), row=12, field="stress_path")
    assert "200 x 40 pixels" in message and "at least 64" in message


def test_unknown_label(edit_manifest):
    path = edit_manifest(lambda rows: rows[4].__setitem__(3, "Infraction"))
    message = only_error(check_dataset(path), row=5, field="label")
    assert "unknown label 'Infraction'" in message
    assert "Infarction (0), Ischemia (1), Normal (2)" in message


def test_labels_as_names_in_any_case_or_as_indices(edit_manifest):
    def relabel(rows):
        rows[1][3] = "0"  # Infarction by index
        rows[30][3] = "normal"

    dataset = load_dataset(edit_manifest(relabel))
    assert dataset.labels["P001"] == 0
    assert dataset.labels[dataset.patients[28].patient_id] == 2


def test_index_beyond_the_class_set_is_unknown(edit_manifest):
    path = edit_manifest(lambda rows: rows[4].__setitem__(3, "3"))
    assert "unknown label '3'" in only_error(check_dataset(path), row=5, field="label")


def test_duplicate_patient_id(edit_manifest):
    path = edit_manifest(lambda rows: rows[8].__setitem__(0, "P002"))
    message = only_error(check_dataset(path), row=9, field="patient_id")
    assert "duplicate patient_id 'P002'" in message and "row 3" in message


def test_patient_missing_a_view_the_mode_needs(edit_manifest):
    path = edit_manifest(lambda rows: rows[14].__setitem__(2, ""))
    message = only_error(check_dataset(path, mode=parse_mode("dual")), row=15, field="stress_path")
    assert "no image for view 'stress'" in message and "'dual'" in message
    # A mode that does not use the view does not need it.
    assert check_dataset(path, mode=parse_mode("rest")).ok


def test_row_with_wrong_number_of_fields(edit_manifest):
    path = edit_manifest(lambda rows: rows[19].append("extra"))
    assert "has 6 fields, the header has 5" in only_error(check_dataset(path), row=20)


def test_class_too_small_for_the_split(edit_manifest):
    """The first seed's 4 infarction cases cannot fill 70/15/15: say so and what fits."""
    path = edit_manifest(lambda rows: [rows[i].__setitem__(3, "Normal") for i in (1, 2, 3, 4)])
    report = check_dataset(path)
    message = only_error(report, row=None)
    assert "class 'Infarction' has 4 patients" in message
    assert "--split 50/25/25" in message and "--folds" in message
    assert check_dataset(path, split=SplitSpec(0.5, 0.25, 0.25)).ok
    assert check_dataset(path, split=SplitSpec(0.75, 0.0, 0.25, folds=3)).ok


def test_every_problem_is_reported_at_once(manifest, edit_manifest):
    (manifest.parent / "images" / "empty.png").write_bytes(b"")

    def break_many(rows):
        rows[21][0] = rows[20][0]
        rows[24][3] = "Unknown"
        rows[26][1] = "images/missing.png"
        rows[28][2] = "images/empty.png"

    report = check_dataset(edit_manifest(break_many))
    assert sorted(p.row for p in report.errors) == [22, 25, 27, 29]


def test_row_numbers_count_physical_lines(manifest):
    """A quoted metadata cell spanning two lines shifts the rows below it, and blank
    lines are skipped but counted, as an editor shows them."""
    lines = manifest.read_text().splitlines()
    lines[1] = lines[1][: lines[1].rfind(",")] + ',"line one\nline two"'
    lines.insert(3, "")
    lines[5] = lines[5].replace("Infarction", "Infraction")
    manifest.write_text("\n".join(lines) + "\n")
    report = check_dataset(manifest)
    assert only_error(report, row=7, field="label").startswith("unknown label")
    assert report.records == 40


def test_semicolon_separated_manifest_gets_a_hint(manifest):
    manifest.write_text(manifest.read_text().replace(",", ";"))
    messages = errors_at(check_dataset(manifest), row=1)
    assert any("separated by semicolons; expected commas" in m for m in messages)


def test_byte_order_mark_and_relative_paths_from_another_folder(manifest, tmp_path, monkeypatch):
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert check_dataset(manifest.relative_to(tmp_path)).ok


def test_png_jpeg_tiff_rgb_and_grayscale_are_accepted(manifest, edit_manifest):
    images = manifest.parent / "images"
    gray = np.asarray(Image.open(images / "P001_rest.png"))
    Image.fromarray(gray).convert("RGB").save(images / "rgb.jpg", quality=95)
    Image.fromarray(gray).save(images / "gray.tif")
    Image.fromarray(gray).convert("RGB").save(images / "rgb.tiff")

    def use_formats(rows):
        rows[1][1], rows[1][2], rows[2][1] = "images/rgb.jpg", "images/gray.tif", "images/rgb.tiff"

    report = check_dataset(edit_manifest(use_formats))
    assert report.ok, [str(p) for p in report.problems]


def test_identical_images_of_two_patients_warn_but_pass(edit_manifest):
    path = edit_manifest(lambda rows: rows[12].__setitem__(1, rows[11][1]))
    report = check_dataset(path)
    assert report.ok
    [warning] = report.warnings
    assert warning.row == 13 and "byte-identical" in warning.message


def test_load_dataset_raises_with_every_problem(edit_manifest):
    path = edit_manifest(lambda rows: rows[4].__setitem__(3, "Infraction"))
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert "row 5" in str(caught.value)
    assert len(caught.value.problems) == 1


def test_binary_class_set(edit_manifest):
    def to_binary(rows):
        for row in rows[1:]:
            row[3] = "non-CAD" if row[3] == "Normal" else "CAD"

    dataset = load_dataset(edit_manifest(to_binary), class_set=BINARY)
    assert dataset.class_counts() == {"non-CAD": 22, "CAD": 18}


def test_fingerprint_follows_data_not_row_order_or_metadata(manifest, edit_manifest):
    before = load_dataset(manifest).fingerprint

    def reorder_and_edit_metadata(rows):
        rows[1:] = rows[:0:-1]
        for row in rows[1:]:
            row[4] = "X"

    assert load_dataset(edit_manifest(reorder_and_edit_metadata)).fingerprint == before
    image = manifest.parent / "images" / "P005_stress.png"
    pixels = np.asarray(Image.open(image)).copy()
    pixels[48, 48] ^= 1
    Image.fromarray(pixels).save(image)
    assert load_dataset(manifest).fingerprint != before


def test_missing_manifest(tmp_path: Path):
    report = check_dataset(tmp_path / "absent.csv")
    assert [p.message for p in report.errors] == ["manifest file not found"]


# -- labels made optional: a manifest of new patients to predict


def test_optional_labels_accept_a_manifest_without_a_label_column(edit_manifest):
    path = edit_manifest(lambda rows: [row.pop(3) for row in rows])
    report = check_dataset(path, require_labels=False, splittable=False)
    assert report.ok, [str(p) for p in report.problems]
    assert all(p.label is None for p in report.dataset.patients)
    assert report.dataset.metadata_columns == ("sex",)
    assert report.dataset.to_frame()["label_name"].isna().all()


def test_optional_labels_accept_empty_cells_and_keep_the_others(edit_manifest):
    path = edit_manifest(lambda rows: rows[3].__setitem__(3, ""))
    assert errors_at(check_dataset(path), row=4, field="label") == [
        "empty label; expected a class name or index of class set 'triad': Infarction (0), "
        "Ischemia (1), Normal (2) (choose another with --classes)"
    ]  # labels are required by default
    dataset = load_dataset(path, require_labels=False, splittable=False)
    assert dataset.labels["P003"] is None and dataset.labels["P001"] == 0


def test_optional_labels_still_refuse_an_unknown_label(edit_manifest):
    path = edit_manifest(lambda rows: rows[4].__setitem__(3, "Infraction"))
    report = check_dataset(path, require_labels=False, splittable=False)
    assert "unknown label 'Infraction'" in only_error(report, row=5, field="label")


def test_a_manifest_that_is_not_utf8_names_the_row_and_says_to_save_it_as_utf8(manifest):
    text = manifest.read_text().splitlines()
    text[3] = text[3] + ",Müller"  # a metadata cell, saved by a spreadsheet as Latin-1
    text[0] = text[0] + ",referrer"
    for i in range(1, len(text)):
        text[i] += "" if i == 3 else ",x"
    manifest.write_bytes(("\n".join(text) + "\n").encode("latin-1"))
    (problem,) = check_dataset(manifest).errors
    assert problem.row == 4 and "byte 0xFC" in problem.message
    assert "save the manifest as UTF-8" in problem.message


def test_paths_written_from_the_current_folder_get_a_hint(manifest, monkeypatch):
    """Image paths are read relative to the manifest's folder; a manifest written with
    paths from where the user stood gives one "file not found" per image, then the hint."""
    rows = manifest.read_text().splitlines()
    rows[1:] = [row.replace("images/", "data/images/") for row in rows[1:]]
    manifest.write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(manifest.parent.parent)  # where data/images/... are found
    report = check_dataset(manifest)
    hints = [p for p in report.errors if "relative to the manifest's folder" in p.message]
    assert len(hints) == 1 and "exist relative to the current folder" in hints[0].message
    assert sum("file not found" in p.message for p in report.errors) == len(rows[1:]) * 2


def test_a_16_bit_export_is_checked_and_cleaned_as_the_map_it_shows(manifest, edit_manifest):
    """16-bit greyscale used to pass the check and clean to a solid white disc (clipped
    to 8 bits); scaled by its 16 bits it cleans to the map its 8-bit twin gives."""
    from search.data.map_cache import MapCache
    from search.data.preprocess import PreprocessSpec, preprocess_dataset

    images = manifest.parent / "images"
    grey = np.asarray(Image.open(images / "P001_rest.png").convert("L"))
    Image.fromarray(grey).save(images / "grey8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(images / "grey16.png")  # I;16
    path = edit_manifest(
        lambda rows: (
            rows[1].__setitem__(1, "images/grey8.png"),
            rows[2].__setitem__(1, "images/grey16.png"),
        )
    )
    report = check_dataset(path)
    assert report.ok, report.errors
    cache = MapCache(manifest.parent / "c")
    cleaned = preprocess_dataset(report.dataset, PreprocessSpec(64), cache, views=("rest",))
    eight, sixteen = cleaned.maps[0, 0], cleaned.maps[1, 0]  # rows 2 and 3: the first two
    assert eight.mean() < 200  # not a white disc
    assert np.abs(eight.astype(int) - sixteen.astype(int)).max() <= 1


def test_pixels_without_a_display_scale_are_refused_by_row(manifest, edit_manifest):
    images = manifest.parent / "images"
    Image.fromarray(np.arange(96 * 96, dtype=np.int32).reshape(96, 96)).save(images / "i32.tif")
    path = edit_manifest(lambda rows: rows[4].__setitem__(2, "images/i32.tif"))
    message = only_error(check_dataset(path), row=5, field="stress_path")
    assert "32-bit integer pixels" in message and "i32.tif" in message


@pytest.mark.parametrize("classes", ["non-CAD=Normal;CAD=Ischemia+Infarction", "binary"])
def test_triad_labels_are_read_as_the_second_seeds_binary_task(manifest, classes):
    """8 Infarction + 10 Ischemia are CAD, 22 Normal non-CAD, with no manifest rewritten."""
    class_set = parse_class_set(classes)
    dataset = load_dataset(manifest, class_set=class_set)
    assert dataset.class_set.names == ("non-CAD", "CAD")
    assert dataset.class_counts() == {"non-CAD": 22, "CAD": 18}
    assert "non-CAD=Normal;CAD=Ischemia+Infarction" in class_set.spec  # what results record


def test_a_class_mapping_that_maps_a_label_twice_or_reads_badly_is_refused():
    with pytest.raises(ValueError, match="label 'Normal' is mapped twice"):
        parse_class_set("A=Normal;B=Normal+Ischemia")
    with pytest.raises(ValueError, match="expected CLASS=LABEL"):
        parse_class_set("A=;B=Ischemia")


def both_views_in_one_screenshot(manifest, edit_manifest, extra=None):
    """Every patient's rest and stress exports pasted side by side (rest left, a black gap
    between) into one file named as both views: as several vendors export them."""
    images = manifest.parent / "images"

    def combine(rows):
        for row in rows[1:]:
            rest, stress = (np.asarray(Image.open(manifest.parent / cell)) for cell in row[1:3])
            gap = np.zeros((rest.shape[0], 24), rest.dtype)  # black between the two maps
            pair = np.concatenate([rest, gap, stress], axis=1)
            name = f"{row[0]}_both.png"
            Image.fromarray(pair).save(images / name)
            row[1] = row[2] = f"images/{name}"
        if extra:
            extra(rows)

    return edit_manifest(combine)


def test_one_screenshot_for_two_views_needs_a_layout(manifest, edit_manifest):
    path = both_views_in_one_screenshot(manifest, edit_manifest)
    report = check_dataset(path)
    (message,) = errors_at(report, row=2, field="rest_path")
    assert "P001_both.png" in message and "holds 2 polar-map discs" in message
    assert "--layout" in message
    assert len(report.errors) == 2 * 40  # every row, both views

    laid_out = check_dataset(path, layout={"rest": "left", "stress": "right"})
    assert laid_out.ok and not laid_out.warnings
    first = laid_out.dataset.patients[0]
    assert first.positions == {"rest": "left", "stress": "right"}


def test_one_disc_read_for_two_views_is_a_warning(manifest, edit_manifest):
    path = both_views_in_one_screenshot(manifest, edit_manifest)
    report = check_dataset(path, layout={"rest": "left", "stress": "1"})  # both the left one
    assert report.ok
    assert len(report.warnings) == 40
    assert "'rest' and 'stress' maps are (nearly) the same pixels" in report.warnings[0].message


def test_positions_may_come_from_manifest_columns(manifest, edit_manifest):
    def columns(rows):
        rows[0] += ["rest_position", "stress_position"]
        for row in rows[1:]:
            row += ["left", "2"]
        rows[5][-1] = "middle"

    path = both_views_in_one_screenshot(manifest, edit_manifest, extra=columns)
    report = check_dataset(path)
    (message,) = errors_at(report, row=6, field="stress_position")
    assert "position 'middle': expected left, right, top, bottom" in message
    assert len(report.errors) == 2  # the bad cell, and its export that still has two maps


def test_each_view_cleans_to_its_own_disc_of_the_screenshot(manifest, edit_manifest, tmp_path):
    from search.data.map_cache import CleaningParams, MapCache
    from search.data.preprocess import PreprocessSpec, clean_file, preprocess_dataset

    images = manifest.parent / "images"
    path = both_views_in_one_screenshot(manifest, edit_manifest)
    dataset = check_dataset(path, layout={"rest": "left", "stress": "right"}).dataset
    cleaned = preprocess_dataset(dataset, PreprocessSpec(64), MapCache(tmp_path / "a"))
    for v, view in enumerate(("rest", "stress")):  # as cleaning each export alone gives
        alone, _ = clean_file(
            images / f"P001_{view}.png", CleaningParams(64), MapCache(tmp_path / "b")
        )
        assert np.abs(cleaned.maps[0, v].astype(int) - alone.astype(int)).mean() < 2


def test_the_layout_option(manifest, edit_manifest, capsys):
    from search.cli import main

    path = both_views_in_one_screenshot(manifest, edit_manifest)
    assert main(["data", "check", str(path)]) == 1
    assert "holds 2 polar-map discs" in capsys.readouterr().out
    assert main(["data", "check", str(path), "--layout", "rest=left,stress=right"]) == 0
    with pytest.raises(SystemExit) as exited:
        main(["data", "check", str(path), "--layout", "rest=middle"])
    assert exited.value.code == 2
