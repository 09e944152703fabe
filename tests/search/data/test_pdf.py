"""Polar maps in PDF reports: a page read as the map it shows, through the same check,
cleaning, cache and preview as a PNG; every PDF refused by row and column with the
reason; and nothing of the document's metadata written out."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from results import ResultStore
from search.cli import main
from search.data import TRIAD, check_dataset
from search.data.images import ImageProblem, read_export
from search.data.map_cache import CleaningParams, MapCache
from search.data.pdf import DEFAULT_DPI, page_sha256, render_page
from search.data.preprocess import PreprocessSpec, clean_file, preprocess_dataset

TELLTALES = {"Title": "ROSSINI GIOACCHINO", "Author": "VERDI GIUSEPPE", "Subject": "MRN 77120931"}


@dataclass
class Page:
    """A page to write: its size in points, images placed on it (pixels and their
    box `(x, y, width, height)` in points from the bottom left), lines of text and
    whether a black background (or a white one, which alone shows nothing) is painted."""

    width: float
    height: float
    images: list[tuple[np.ndarray, tuple[float, float, float, float]]] = field(default_factory=list)
    texts: list[tuple[float, float, str]] = field(default_factory=list)
    dark: bool = True
    white_box: bool = False  # a white rectangle only: drawn, but nothing visible


def pdf_bytes(pages: list[Page], info: dict[str, str] | None = None, encrypt=False) -> bytes:
    """A PDF of `pages`, written by hand: images lossless (Flate), text in Helvetica.
    `encrypt` adds a standard security handler whose user password is not empty."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree, filled in below
    kids = []
    for page in pages:
        content, xobjects = [], []
        if page.dark:
            content.append(f"0 0 0 rg 0 0 {page.width} {page.height} re f")
        if page.white_box:
            content.append(f"1 1 1 rg 0 0 {page.width} {page.height} re f")
        for n, (pixels, (x, y, w, h)) in enumerate(page.images):
            height, width = pixels.shape[:2]
            data = zlib.compress(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
            head = (f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} "
                    f"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode "
                    f"/Length {len(data)} >>\nstream\n")  # fmt: skip
            objects.append(head.encode() + data + b"\nendstream")
            xobjects.append(f"/Im{n} {len(objects)} 0 R")
            content.append(f"q {w} 0 0 {h} {x} {y} cm /Im{n} Do Q")
        for x, y, text in page.texts:
            content.append(f"BT 1 1 1 rg /F1 14 Tf {x} {y} Td ({text}) Tj ET")
        stream = "\n".join(content).encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        resources = (f"<< /XObject << {' '.join(xobjects)} >> /Font << /F1 << /Type /Font "
                     "/Subtype /Type1 /BaseFont /Helvetica >> >> >>")  # fmt: skip
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page.width} {page.height}] "
            f"/Resources {resources} /Contents {len(objects)} 0 R >>".encode()
        )
        kids.append(f"{len(objects)} 0 R")
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    trailer = ""
    if info:
        objects.append(("<< " + " ".join(f"/{k} ({v})" for k, v in info.items()) + " >>").encode())
        trailer += f" /Info {len(objects)} 0 R"
    if encrypt:
        trailer += (f" /Encrypt << /Filter /Standard /V 1 /R 2 /O <{'ab' * 32}> "
                    f"/U <{'cd' * 32}> /P -4 >> /ID [<{'01' * 16}> <{'01' * 16}>]")  # fmt: skip
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{trailer} >>\n".encode()
    out += b"startxref\n%d\n%%%%EOF\n" % start
    return bytes(out)


def png_pixels(manifest: Path, patient: str = "P001", view: str = "stress") -> np.ndarray:
    image = Image.open(manifest.parent / "images" / f"{patient}_{view}.png")
    return np.asarray(image.convert("RGB"))


def report_page(pixels: np.ndarray, dpi: float = 150, name: str = "ROSSINI 1947") -> Page:
    """A printed-report page: the map at `dpi` in the middle of a dark page twice its
    size, a patient's name and birth year burned in above it."""
    height, width = (side * 72 / dpi for side in pixels.shape[:2])
    page = Page(2 * width, 2 * height)
    page.images.append((pixels, (width / 2, height / 2, width, height)))
    page.texts.append((4, 1.75 * height, name))
    return page


def as_pdf(manifest: Path, view: str) -> None:
    """Each patient's `view` export rewritten as a one-page PDF report, the manifest
    pointing at it."""
    text = manifest.read_text()
    for n in range(1, text.count("\n")):
        png = f"images/P{n:03d}_{view}.png"
        pdf = manifest.parent / png.replace(".png", ".pdf")
        pdf.write_bytes(pdf_bytes([report_page(png_pixels(manifest, f"P{n:03d}", view))]))
        text = text.replace(png, png.replace(".png", ".pdf"))
    manifest.write_text(text)


def test_a_page_renders_its_image_pixel_for_pixel(manifest):
    pixels = png_pixels(manifest)
    for dpi in (72, 150, 300):
        rendered = render_page(pdf_bytes([report_page(pixels, dpi)]))
        assert (rendered.page, rendered.pages, rendered.dpi) == (1, 1, pytest.approx(dpi))
        height, width = pixels.shape[:2]
        assert rendered.pixels.shape == (2 * height, 2 * width, 3)
        top, left = height // 2, width // 2
        inside = rendered.pixels[top : top + height, left : left + width]
        assert np.array_equal(inside, pixels)  # its own resolution: nothing resampled
    vector = render_page(pdf_bytes([Page(200, 100, texts=[(10, 50, "drawn, no image")])]))
    assert vector.dpi == DEFAULT_DPI and vector.pixels.shape == (278, 556, 3)


def test_a_manifest_of_pdf_reports_checks_and_cleans_as_its_pngs(manifest, tmp_path, capsys):
    spec = PreprocessSpec(size=64)
    before = preprocess_dataset(check_dataset(manifest).dataset, spec, MapCache(tmp_path / "a"),
                                workers=1)  # fmt: skip
    as_pdf(manifest, "stress")
    report = check_dataset(manifest)
    assert report.ok, report.problems
    patient = report.dataset.patients[0]
    assert patient.images["stress"].suffix == ".pdf" and patient.pages == {"stress": 1}
    assert report.notes == (
        "PDF pages rendered: 40, at 150 dpi (40); each at its largest image's own resolution, "
        "200 dpi where it has none",
    )
    after = preprocess_dataset(report.dataset, spec, MapCache(tmp_path / "b"), workers=1)
    assert np.array_equal(after.maps[:, 0], before.maps[:, 0])  # rest: the same PNGs
    difference = np.abs(after.maps[:, 1].astype(int) - before.maps[:, 1].astype(int))
    assert difference.mean(axis=(1, 2, 3)).max() <= 1.0  # grey levels, each map (0 here)
    # The command line says how the pages were drawn.
    assert main(["data", "check", str(manifest)]) == 0
    assert "PDF pages rendered: 40, at 150 dpi (40)" in capsys.readouterr().out


def test_a_page_drawn_larger_than_its_own_resolution_cleans_close_to_the_png(manifest, tmp_path):
    # 36 dpi: below the 72 dpi floor, so each pixel is drawn 2 x 2, resampled by PDFium.
    pixels, cache = png_pixels(manifest), MapCache(tmp_path / "cache")
    path = tmp_path / "low.pdf"
    path.write_bytes(pdf_bytes([report_page(pixels, dpi=36)]))
    assert render_page(path.read_bytes()).dpi == 72
    png, _ = clean_file(manifest.parent / "images" / "P001_stress.png", CleaningParams(64), cache)
    pdf, _ = clean_file(path, CleaningParams(64, page=1), cache)
    assert np.abs(pdf.astype(int) - png.astype(int)).mean() < 6


def test_a_page_is_chosen_by_its_column_and_is_part_of_the_fingerprint(
    manifest, edit_manifest, tmp_path
):
    spec, cache = PreprocessSpec(size=64), MapCache(tmp_path / "cache")
    png = preprocess_dataset(check_dataset(manifest).dataset, spec, cache, workers=1)
    views = ("rest", "stress")
    both = pdf_bytes([report_page(png_pixels(manifest, "P001", view)) for view in views])
    (manifest.parent / "images" / "both.pdf").write_bytes(both)
    with pytest.raises(ImageProblem, match=r"a PDF of 2 pages: say which .* <view>_page column"):
        read_export(both)
    assert not np.array_equal(read_export(both, page=1), read_export(both, page=2))

    def pages(order):
        def edit(rows):
            if rows[0][-1] != "stress_page":
                rows[0] += ["rest_page", "stress_page"]
                for row in rows[1:]:
                    row += ["", ""]
            rows[1][1] = rows[1][2] = "images/both.pdf"
            rows[1][-2:] = order

        return edit

    report = check_dataset(edit_manifest(pages(["1", "2"])))
    assert report.ok, report.problems
    patient = report.dataset.patients[0]
    assert patient.pages == {"rest": 1, "stress": 2} and "rest_page" not in patient.metadata
    cleaned = preprocess_dataset(report.dataset, spec, cache, workers=1)
    assert np.array_equal(cleaned.maps[0], png.maps[0])  # each page its view's map
    # Pages swapped: the same bytes, other pages per view, so another fingerprint.
    swapped = check_dataset(edit_manifest(pages(["2", "1"]))).dataset
    assert swapped.fingerprint != report.dataset.fingerprint
    assert page_sha256(both, 1) != page_sha256(both, 2)


def one_page(pixels):
    return pdf_bytes([report_page(pixels)])


def two_pages(pixels):
    return pdf_bytes([report_page(pixels), report_page(pixels[::-1])])


REFUSALS = {  # name: (the file's bytes from the PNG's pixels, page cell, column, message)
    "no such page": (two_pages, "3", "stress_page", "page 3: the PDF has 2 page(s)"),
    "no page chosen": (two_pages, "", "stress_path",
                       "a PDF of 2 pages: say which holds the map with a <view>_page column"),
    "damaged": (lambda p: one_page(p)[:-300], "", "stress_path",
                "not a readable PDF, damaged or cut short?"),
    "encrypted": (lambda p: pdf_bytes([report_page(p)], encrypt=True), "", "stress_path",
                  "the PDF is encrypted with a password"),
    "empty page": (lambda p: pdf_bytes([Page(300, 300, dark=False)]), "", "stress_path",
                   "page 1 of the PDF is empty (nothing drawn on it)"),
    "text only": (lambda p: pdf_bytes([Page(300, 300, texts=[(9, 9, "A")], dark=False)]), "",
                  "stress_path", "page 1 of the PDF holds text only, no image"),
    "nothing visible": (lambda p: pdf_bytes([Page(300, 300, white_box=True, dark=False)]), "",
                        "stress_path", "page 1 of the PDF renders blank"),
    "not a PDF": (lambda p: b"%PNG, not a PDF", "", "stress_path", "not a PDF (no '%PDF-'"),
    "page of a PNG": (None, "1", "stress_page",
                      "page 1 given, but {png} is a PNG image, not a PDF: expected a PDF "
                      "report here, or an empty stress_page cell"),
    "page 0": (one_page, "0", "stress_page", "page '0': expected a page number 1..n"),
    "page x": (one_page, "x", "stress_page", "page 'x': expected a page number 1..n"),
    "page 1.5": (one_page, "1.5", "stress_page", "page '1.5': expected a page number 1..n"),
    "page -2": (one_page, "-2", "stress_page", "page '-2': expected a page number 1..n"),
    "page ²": (one_page, "²", "stress_page", "page '²': expected a page number 1..n"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_pdf_refusal_names_row_column_and_what_was_expected(manifest, edit_manifest, case):
    make, page, column, message = REFUSALS[case]
    png = manifest.parent / "images" / "P004_stress.png"
    if make is not None:
        png.with_suffix(".pdf").write_bytes(make(png_pixels(manifest, "P004")))

    def edit(rows):
        rows[0].append("stress_page")
        for row in rows[1:]:
            row.append("")
        if make is not None:
            rows[4][2] = "images/P004_stress.pdf"
        rows[4][-1] = page

    report = check_dataset(edit_manifest(edit))
    (problem,) = report.errors
    assert (problem.row, problem.field) == (5, column)
    assert message.format(png=png) in problem.message, problem.message
    assert report.dataset is None


def test_nothing_of_a_pdfs_metadata_reaches_any_file_written(manifest, tmp_path, capsys):
    # Each stress view a report whose metadata names the patient, the name burned in too.
    text = manifest.read_text()
    for n in range(1, 41):
        png = manifest.parent / "images" / f"P{n:03d}_stress.png"
        page = report_page(png_pixels(manifest, f"P{n:03d}"), name="ROSSINI GIOACCHINO")
        png.with_suffix(".pdf").write_bytes(pdf_bytes([page], info=TELLTALES))
        text = text.replace(png.name, png.with_suffix(".pdf").name)
    manifest.write_text(text)
    out = tmp_path / "out"
    assert main(["data", "check", str(manifest)]) == 0
    assert main(["data", "preprocess", str(manifest), "--size", "64", "--cache",
                 str(out / "cache"), "--export", str(out / "clean")]) == 0  # fmt: skip
    assert main(["data", "preview", str(manifest), "--out", str(out / "preview.png"),
                 "--size", "64", "--patients", "4"]) == 0  # fmt: skip
    printed = capsys.readouterr()

    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) > 40 and (out / "preview.png").is_file()
    telltales = [word for value in TELLTALES.values() for word in value.split()]
    for path in written:
        content = path.read_bytes()
        for word in telltales:
            for encoded in (word.encode(), word.encode("utf-16-be")):
                assert encoded not in content, (word, path)
    for word in telltales:
        assert word not in printed.out + printed.err


def test_a_pages_cache_entry_is_its_own_and_found_without_the_page(manifest, tmp_path):
    cache, pixels = MapCache(tmp_path / "cache"), png_pixels(manifest)
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf_bytes([report_page(pixels)]))
    assert CleaningParams(64, page=1).digest() != CleaningParams(64, page=2).digest()
    assert CleaningParams(64, page=1).digest() != CleaningParams(64).digest()
    first, fraction = clean_file(path, CleaningParams(64, page=1), cache)
    assert fraction is not None
    again, fraction = clean_file(path, CleaningParams(64), cache)  # its only page
    assert fraction is None and np.array_equal(again, first)


@pytest.mark.slow
def test_pdf_reports_go_through_a_search_and_predict_as_their_pngs(manifest, tmp_path, capsys):
    # Issue 30: "a PDF report page goes through check, preprocess, search and predict
    # like a PNG". Both views as PDF pages; one short search on Ray, then an exported
    # model's predictions, equal to those on the PNGs.
    from tests.search.inference.test_external import export_model

    pngs = tmp_path / "pngs" / "manifest.csv"
    pngs.parent.mkdir()
    pngs.write_text(manifest.read_text())
    (pngs.parent / "images").symlink_to(manifest.parent / "images")
    for view in ("stress", "rest"):
        as_pdf(manifest, view)
    args = ["search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
            "test_resnet", "--modes", "dual", "--split", "50/25/25", "--samples", "1",
            "--warmup-epochs", "1", "--finetune-epochs", "1", "--quiet",
            "--storage", str(tmp_path / "runs"), "--name", "pdf"]  # fmt: skip
    assert main(args) == 0
    store = ResultStore(tmp_path / "runs" / "results")
    assert store.table("trials", search="pdf").to_pandas()["status"].tolist() == ["completed"]
    fingerprint = store.table("searches", search="pdf").to_pylist()[0]["data_fingerprint"]
    assert fingerprint  # the pages' own, not their PNGs' (tested above)

    model = export_model(tmp_path / "model", TRIAD.names)
    written = {}
    for name, path in (("pdf", manifest), ("png", pngs)):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", str(model), str(path), "--out", str(out), "--workers", "1"]) == 0
        written[name] = pd.read_csv(out)
    # a page renders as its image, to a grey level or so at a map's edge (tested above)
    pd.testing.assert_frame_equal(written["pdf"], written["png"], rtol=0, atol=1e-3)
