"""Polar maps in PDF reports: one page rendered to pixels with pypdfium2 (PDFium, the PDF
engine of Chrome), a well-kept library pinned with the project.

A rendered page is an export like any screenshot from then on: the same check, cleaning
(crop to the disc, burned-in text removed, the rest blanked), cache and preview. Only the
page's drawing is read. The document's metadata (Title, Author, Subject, Keywords,
dates), outline, attachments and form values are never looked at, so nothing of them can
reach a file this project writes; names and dates printed on the page are burned-in text
and go where a screenshot's go (outside the disc blanked, inside it removed).

Resolution: a page renders at the resolution of its largest image (by the area it covers
on the page), the one at which that image's pixels land one to one. A report that embeds
a screenshot of the map is read back as that screenshot, neither blurred by shrinking
nor enlarged (which adds no detail, only cost), so it cleans as the PNG would. A page
without images (a map drawn as vector shapes) renders at 200 dpi: a printed disc 2.5
inches wide then spans 500 pixels, about twice the largest backbone input (299). Always
between 72 dpi (the PDF's own unit, one pixel per point) and 600 dpi, and lower where a
page would exceed 16 million pixels.

PDFium is not thread-safe, not even across documents, and the check reads exports in
threads: every call into it holds one lock, and every document is closed inside it.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from functools import cache

import numpy as np

from search import errors

__all__ = [
    "DEFAULT_DPI",
    "NoSuchPage",
    "PdfProblem",
    "RenderedPage",
    "chosen_page",
    "is_pdf",
    "page_sha256",
    "render_page",
    "renderer",
]

DEFAULT_DPI = 200.0  # pages without images (see the module's docstring)
MIN_DPI, MAX_DPI = 72.0, 600.0
MAX_PIXELS = 16_000_000  # a Letter page at 600 dpi is 33.7 M: enough for any printed map
RENDER_POLICY = 1  # bump when the rule above changes: cached maps of PDFs are then redone

_PDFIUM = threading.Lock()


class PdfProblem(errors.DataError, ValueError):
    """A PDF whose page cannot be read as a map; the message says why and what to do."""


class NoSuchPage(PdfProblem):
    """The page asked for is not in the PDF: the page number is at fault, not the file."""


@dataclass(frozen=True)
class RenderedPage:
    """One page as a viewer shows it: `pixels` (height, width, 3) uint8 RGB, the page
    number (1-based), the document's page count, and the resolution it was drawn at."""

    pixels: np.ndarray
    page: int
    pages: int
    dpi: float


def is_pdf(data: bytes) -> bool:
    """A PDF file: '%PDF-' within its first 1024 bytes, where readers look for it."""
    return b"%PDF-" in data[:1024]


def page_sha256(data: bytes, page: int) -> str:
    """What identifies one page of a PDF as input data: the file's bytes and the page
    number. Not the rendered pixels, which change with the renderer's version."""
    digest = hashlib.sha256(data)
    digest.update(f"\npage {page}".encode())
    return digest.hexdigest()


@cache
def renderer() -> str:
    """The renderer and its resolution rule, as part of cleaned PDF maps' cache keys."""
    from importlib.metadata import version

    return f"pypdfium2 {version('pypdfium2')}, policy {RENDER_POLICY}"


def chosen_page(data: bytes, page: int | None = None) -> int:
    """The page a view reads (1-based), without rendering it.

    Raises:
        PdfProblem: as `render_page`, for what opening the document finds.
    """
    with _PDFIUM:
        document = _open(data)
        try:
            return _page_number(len(document), page)
        finally:
            document.close()


def render_page(data: bytes, page: int | None = None) -> RenderedPage:
    """Render page `page` (1-based; None: the only page) of a PDF as RGB pixels.

    Raises:
        PdfProblem: not a PDF, damaged, encrypted with a password, no such page, several
            pages and none chosen, or a page with no image on it or nothing visible.
    """
    import pypdfium2 as pdfium

    with _PDFIUM:
        document = _open(data)
        try:
            pages = len(document)
            number = _page_number(pages, page)
            try:
                pixels, dpi = _render(document, number)
            except pdfium.PdfiumError as exc:  # a page PDFium cannot draw, or part of one
                message = f"page {number} of the PDF cannot be rendered ({exc})"
                raise PdfProblem(message) from None
        finally:
            document.close()
    if pixels.size and (pixels == pixels[0, 0]).all():
        raise PdfProblem(
            f"page {number} of the PDF renders blank (one colour, nothing visible on it); "
            "expected the page with the polar map"
        )
    return RenderedPage(pixels, number, pages, dpi)


def _open(data: bytes):
    """The document, opened from bytes (never from a path: a file is read once)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    if not is_pdf(data):
        raise PdfProblem("not a PDF (no '%PDF-' header at its start)")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == raw.FPDF_ERR_PASSWORD:
            raise PdfProblem(
                "the PDF is encrypted with a password: save or print the report to PDF "
                "again without one"
            ) from None
        if code == raw.FPDF_ERR_SECURITY:
            raise PdfProblem(
                "the PDF is encrypted with a security handler PDFium does not support: save "
                "or print the report to PDF again without encryption"
            ) from None
        raise PdfProblem(f"not a readable PDF, damaged or cut short? ({exc})") from None


def _page_number(pages: int, page: int | None) -> int:
    if pages == 0:
        raise PdfProblem("the PDF has no pages")
    if page is None:
        if pages > 1:
            raise PdfProblem(
                f"a PDF of {pages} pages: say which holds the map with a <view>_page "
                f"column (1..{pages})"
            )
        return 1
    if not 1 <= page <= pages:
        raise NoSuchPage(f"page {page}: the PDF has {pages} page(s)")
    return page


def _render(document, number: int) -> tuple[np.ndarray, float]:
    """Page `number` as (height, width, 3) RGB and the resolution it was drawn at."""
    sheet = document[number - 1]
    try:
        dpi = _dpi(sheet, number)
        bitmap = sheet.render(scale=dpi / 72, rev_byteorder=True, may_draw_forms=False)
        try:
            return np.array(bitmap.to_numpy()[..., :3]), dpi  # a copy: the bitmap is freed
        finally:
            bitmap.close()
    finally:
        sheet.close()


def _dpi(sheet, number: int) -> float:
    """The resolution a page renders at (the module's docstring says why), after checking
    that something other than text is drawn on it."""
    import pypdfium2.raw as raw

    drawn = [o for o in sheet.get_objects() if o.type != raw.FPDF_PAGEOBJ_FORM]
    if not drawn:
        raise PdfProblem(
            f"page {number} of the PDF is empty (nothing drawn on it); expected the page "
            "with the polar map"
        )
    if all(o.type == raw.FPDF_PAGEOBJ_TEXT for o in drawn):
        raise PdfProblem(
            f"page {number} of the PDF holds text only, no image; expected the page with "
            "the polar map"
        )
    dpi, largest = DEFAULT_DPI, 0.0
    for image in (o for o in drawn if o.type == raw.FPDF_PAGEOBJ_IMAGE):
        left, bottom, right, top = image.get_bounds()
        width, height = right - left, top - bottom  # points, on the page
        pixels = max(image.get_px_size())
        if width > 0 and height > 0 and pixels > 0 and width * height > largest:
            largest, dpi = width * height, 72 * pixels / max(width, height)
    dpi = min(max(dpi, MIN_DPI), MAX_DPI)
    width, height = sheet.get_size()
    area = width * height / 72**2  # square inches
    if area * dpi**2 > MAX_PIXELS:
        dpi = math.sqrt(MAX_PIXELS / area)
    return dpi
