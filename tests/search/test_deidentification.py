"""DICOM header fields that identify a person never reach anything the project writes:
cache keys and files, previews, exported maps, result tables, reports, model cards,
predictions, logs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from search.cli import main
from search.synth.dicom import dicom_bytes

pytestmark = pytest.mark.slow

IDENTITY = {
    "PatientName": "ROSSINI^GIOACCHINO",
    "PatientID": "MRN-77120931",
    "OtherPatientIDs": "OPID-3141592",
    "PatientBirthDate": "19470229",
    "AccessionNumber": "ACC-5550123",
    "InstitutionName": "Ospedale San Zeno",
    "ReferringPhysicianName": "VERDI^GIUSEPPE",
    "StudyDate": "19991231",
}
TELLTALES = ["ROSSINI", "GIOACCHINO", "77120931", "3141592", "19470229", "5550123", "San Zeno",
             "VERDI", "GIUSEPPE", "19991231"]  # fmt: skip


def as_dicom(manifest) -> None:
    """Every export of the example data set rewritten as DICOM with a person in its
    header, each patient's own, the manifest pointing at them."""
    with manifest.open(newline="") as handle:
        rows = list(csv.reader(handle))
    photometrics = ["RGB", "YBR_FULL", "MONOCHROME2", "MONOCHROME1"]
    for n, row in enumerate(rows[1:]):
        for column in (1, 2):
            png = manifest.parent / row[column]
            pixels = np.asarray(Image.open(png).convert("RGB"))
            dcm = png.with_suffix(".dcm")
            dcm.write_bytes(dicom_bytes(pixels, photometrics[n % 4], IDENTITY))
            png.unlink()
            row[column] = str(dcm.relative_to(manifest.parent))
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_no_header_field_of_a_dicom_export_reaches_any_file_written(manifest, tmp_path, capsys):
    as_dicom(manifest)
    out = tmp_path / "out"
    storage, cache = out / "runs", out / "cache"
    data = ["--cache", str(cache)]
    assert main(["data", "check", str(manifest)]) == 0
    assert main(["data", "preprocess", str(manifest), "--size", "64", *data,
                 "--export", str(out / "clean")]) == 0  # fmt: skip
    assert main(["data", "preview", str(manifest), "--out", str(out / "preview.png"),
                 "--size", "64", "--patients", "4"]) == 0  # fmt: skip
    assert main(["search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
                 "test_resnet", "--modes", "dual", "--samples", "2", "--warmup-epochs", "1",
                 "--finetune-epochs", "1", "--split", "50/25/25", "--storage", str(storage),
                 "--name", "s", *data, "--quiet"]) == 0  # fmt: skip
    assert main(["finalize", str(storage / "results"), "--top", "1", "--seeds", "1",
                 "--bootstrap", "20", "--out", str(out / "finals"), *data]) == 0  # fmt: skip
    model = next((out / "finals").glob("*/seed-0"))
    assert main(["predict", str(model), str(manifest), "--out", str(out / "p.csv"), *data]) == 0
    printed = capsys.readouterr()

    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) > 50 and any(p.suffix == ".html" for p in written)
    for path in written:
        content = path.read_bytes()
        for telltale in TELLTALES:
            assert telltale.encode() not in content, (telltale, path)
    for telltale in TELLTALES:
        assert telltale not in printed.out + printed.err
