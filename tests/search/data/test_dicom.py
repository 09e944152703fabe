"""Polar maps exported as DICOM: read as the map they show (RGB, YBR, monochrome, a frame
of several), refused by row with the reason, and nothing of the header written out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from search.data import check_dataset
from search.data.images import ImageProblem, read_export
from search.synth.dicom import dicom_bytes

IDENTITY = {
    "PatientName": "ROSSINI^GIOACCHINO",
    "PatientID": "MRN-77120931",
    "PatientBirthDate": "19470229",
    "AccessionNumber": "ACC-5550123",
    "InstitutionName": "Ospedale San Zeno",
    "ReferringPhysicianName": "VERDI^GIUSEPPE",
    "StudyDate": "20240506",
}


def export(manifest, view: str = "rest", patient: str = "P001") -> np.ndarray:
    return np.asarray(
        Image.open(manifest.parent / "images" / f"{patient}_{view}.png").convert("RGB")
    )


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL", "MONOCHROME2", "MONOCHROME1"])
def test_every_secondary_capture_kind_reads_as_the_map_it_shows(manifest, photometric):
    pixels = export(manifest)
    shown = read_export(dicom_bytes(pixels, photometric, IDENTITY))
    expected = (
        pixels
        if not photometric.startswith("MONO")
        else np.repeat(np.round(pixels.mean(axis=2)).astype(np.uint8)[..., None], 3, axis=2)
    )
    tolerance = 2 if photometric == "YBR_FULL" else 0  # YBR to RGB rounds
    assert shown.shape == expected.shape
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= tolerance


def test_a_multi_frame_file_needs_its_frame(manifest, tmp_path, edit_manifest):
    frames = np.stack([export(manifest, "rest"), export(manifest, "stress")])
    data = dicom_bytes(frames, "RGB", IDENTITY)
    with pytest.raises(ImageProblem, match=r"2 frames: say which is the map with a <view>_frame"):
        read_export(data)
    assert np.array_equal(read_export(data, frame=2), frames[1])

    (manifest.parent / "images" / "both.dcm").write_bytes(data)

    def frames_column(rows):
        rows[0] += ["rest_frame", "stress_frame"]
        for row in rows[1:]:
            row += ["", ""]
        rows[1][1] = rows[1][2] = "images/both.dcm"
        rows[1][-2:] = ["1", "2"]
        rows[2][1] = "images/both.dcm"  # no frame: refused by row

    report = check_dataset(edit_manifest(frames_column))
    (problem,) = report.errors
    assert problem.row == 3 and problem.field == "rest_path" and "2 frames" in problem.message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\0" * 128 + b"NOPE" + b"\0" * 64, "not DICOM"),
        ("no pixels", "without pixel data"),
    ],
)
def test_dicom_problems_are_named_by_row(manifest, edit_manifest, content, reason):
    if content == "no pixels":
        import io

        import pydicom

        ds = pydicom.dcmread(io.BytesIO(dicom_bytes(export(manifest), "RGB", IDENTITY)))
        del ds.PixelData
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        content = buffer.getvalue()
    (manifest.parent / "images" / "bad.dcm").write_bytes(content)
    path = edit_manifest(lambda rows: rows[4].__setitem__(2, "images/bad.dcm"))
    (problem,) = check_dataset(path).errors
    assert (problem.row, problem.field) == (5, "stress_path") and reason in problem.message
