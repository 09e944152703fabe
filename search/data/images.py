"""Reading one image file and saying exactly what is wrong with it, if anything, and its
pixels as the user saw them.

Every image is decoded in full once during the check: PIL opens files lazily, so only a
full decode finds a truncated file. The same read gives the bytes' SHA-256, which the
data fingerprint is built from.

Exports come in every mode Pillow reads; `export_rgb` turns each into the 8-bit RGB map a
viewer shows: bilevel, grey and palette images as their grey or colours, 16-bit grey
scaled by its 16-bit range (not clipped, which made every map a white disc), alpha
composited over black (the background of clinical exports), CMYK and YCbCr converted.
Pixels whose scale is not known are refused with the reason: 32-bit integers, and
floating point outside 0..1. A DICOM file shows its pixels (`search.data.dicom`), a PDF
one page rendered (`search.data.pdf`); both are then exports like any screenshot.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from search import errors
from search.data.dicom import DicomProblem, dicom_rgb, is_dicom
from search.data.disc import Disc, choose_disc, find_discs
from search.data.pdf import NoSuchPage, PdfProblem, is_pdf, page_sha256, render_page

__all__ = [
    "ACCEPTED_FORMATS",
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "ImageProblem",
    "export_rgb",
    "inspect_image",
    "read_export",
]

# PIL format names; MPO is the multi-picture JPEG that some cameras and viewers write.
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".pdf")


@dataclass(frozen=True)
class ImageInfo:
    """What the check learned about a readable image."""

    path: Path
    format: str
    width: int
    height: int
    mode: str
    sha256: str
    discs: tuple[Disc, ...] = ()  # the map discs found, in reading order
    looks: tuple[np.ndarray, ...] = ()  # a small grey thumbnail of each disc
    page: int | None = None  # a PDF's page read (1-based), chosen or its only one
    dpi: float | None = None  # the resolution a PDF's page was rendered at

    def look(self, position: str | None) -> np.ndarray | None:
        """The thumbnail of the disc a view at `position` reads; None if none is sure."""
        try:
            return self.looks[self.discs.index(choose_disc(list(self.discs), position))]
        except ValueError:  # no disc, or several and no position
            return None


class ImageProblem(errors.DataError):
    """An image file that cannot be used; the message says why and what was expected.
    `cell` names the manifest cell at fault where it is not the path's: `page` for a PDF
    page that is not there."""

    def __init__(self, message: str, cell: str | None = None):
        super().__init__(message)
        self.cell = cell


def inspect_image(
    path: Path, min_size: int = 1, frame: int | None = None, page: int | None = None
) -> ImageInfo:
    """Decode `path` fully and return its facts; `frame` (1..n) picks the map of a
    multi-frame DICOM file, `page` (1..n) the page of a PDF.

    A PDF page's SHA-256 is over the file's bytes and the page number
    (`search.data.pdf.page_sha256`): two pages of one report are two images.

    Raises:
        ImageProblem: the file is missing, empty, not a PNG/JPEG/TIFF image, DICOM or
            PDF file, truncated, without a known display scale, or smaller than
            `min_size` pixels on a side; a PDF damaged, encrypted, without that page or
            with no image on it.
    """
    if not path.exists():
        raise ImageProblem("file not found")
    if not path.is_file():
        raise ImageProblem("not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageProblem(f"cannot read the file: {exc.strerror or exc}") from exc
    if not data:
        raise ImageProblem("file is empty (0 bytes)")
    sha256, rendered = hashlib.sha256(data).hexdigest(), None
    if is_dicom(data) or path.suffix.lower() == ".dcm":
        kind, mode, pixels = "DICOM", "DICOM", read_export(data, frame)
    elif is_pdf(data) or path.suffix.lower() == ".pdf":
        try:
            rendered = render_page(data, page)
        except PdfProblem as exc:
            raise ImageProblem(str(exc), "page" if isinstance(exc, NoSuchPage) else None) from None
        kind, mode, pixels = "PDF", "RGB", rendered.pixels
        sha256 = page_sha256(data, rendered.page)
    else:
        image = _decoded(data)
        kind, mode = ACCEPTED_FORMATS[image.format], image.mode
        pixels = export_rgb(image)  # refused here, with its reason, if it cannot be shown
    try:
        discs = tuple(find_discs(pixels, refine=False))  # enough to count and place them
    except ValueError:  # no disc: cleaning says so, with the row
        discs = ()
    height, width = pixels.shape[:2]
    if min(width, height) < min_size:
        raise ImageProblem(
            f"image is {width} x {height} pixels, expected at least {min_size} on each side"
        )
    return ImageInfo(
        path=path,
        format=kind,
        width=width,
        height=height,
        mode=mode,
        sha256=sha256,
        discs=discs,
        looks=tuple(_look(pixels, disc) for disc in discs),
        page=rendered.page if rendered else None,
        dpi=rendered.dpi if rendered else None,
    )


def read_export(data: bytes, frame: int | None = None, page: int | None = None) -> np.ndarray:
    """An export's bytes (PNG, JPEG, TIFF, DICOM or PDF) as the (height, width, 3) uint8
    RGB map a viewer shows; `frame` picks a DICOM file's frame, `page` a PDF's page.

    Raises:
        ImageProblem: as `inspect_image`.
    """
    if is_dicom(data):
        try:
            return dicom_rgb(data, frame)
        except DicomProblem as exc:
            raise ImageProblem(str(exc)) from None
    if is_pdf(data):
        try:
            return render_page(data, page).pixels
        except PdfProblem as exc:
            raise ImageProblem(str(exc)) from None
    if _has_image_magic(data):
        return export_rgb(_decoded(data))
    raise ImageProblem("not DICOM (no 'DICM' after its 128-byte preamble), PDF, nor an image")


def _has_image_magic(data: bytes) -> bool:
    """PNG, JPEG or TIFF by their first bytes."""
    return data.startswith((b"\x89PNG", b"\xff\xd8", b"II*\x00", b"MM\x00*"))


def _decoded(data: bytes) -> Image.Image:
    """A PNG, JPEG or TIFF image, decoded in full (only a full decode finds a truncated
    file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if ACCEPTED_FORMATS.get(image.format or "") is None:
                raise ImageProblem(f"expected a PNG, JPEG or TIFF image, found {image.format}")
            image.load()
    except ImageProblem:
        raise
    except UnidentifiedImageError as exc:
        raise ImageProblem("not a readable PNG, JPEG or TIFF image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageProblem("image is implausibly large for a polar map") from exc
    except (OSError, SyntaxError, EOFError, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        if "truncated" in detail.lower() or isinstance(exc, EOFError):
            raise ImageProblem(f"image data is truncated ({detail})") from exc
        raise ImageProblem(f"image cannot be decoded ({detail})") from exc
    return image


_CONVERTED = ("1", "L", "CMYK", "YCbCr", "LAB", "HSV", "RGBX")  # Pillow knows their RGB
_WITH_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")


def export_rgb(image: Image.Image) -> np.ndarray:
    """The export as a viewer shows it: (height, width, 3) uint8 RGB.

    Raises:
        ImageProblem: its pixels have no known display scale (32-bit integers, floating
            point outside 0..1) or its mode is not an image Pillow can show.
    """
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image)
    if mode.startswith("I;16"):
        grey = _to_8_bits(np.asarray(image).astype(np.float64), 65535)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "I":
        raise ImageProblem(
            "32-bit integer pixels: their display scale is not known; export the map as "
            "an 8- or 16-bit PNG"
        )
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ImageProblem(
                "floating-point pixels outside 0..1: their display scale is not known; "
                "export the map as an 8- or 16-bit PNG"
            )
        return np.repeat(_to_8_bits(values, 1.0)[..., None], 3, axis=2)
    if (mode == "P" and "transparency" in image.info) or mode in _WITH_ALPHA:
        rgba = np.asarray(image.convert("RGBA")).astype(np.float64)
        over_black = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        return np.round(over_black).astype(np.uint8)
    if mode == "P" or mode in _CONVERTED:
        return np.asarray(image.convert("RGB"))
    raise ImageProblem(f"image mode {mode} cannot be shown as a map; export it as RGB PNG")


def _look(pixels: np.ndarray, disc: Disc, side: int = 32) -> np.ndarray:
    """The disc's square, grey, shrunk to side x side: enough to tell one map from another
    (two views read from one disc look the same)."""
    left, top, right, bottom = disc.box()
    step = max(1, (right - left) // (4 * side))  # no need to average every pixel
    square = pixels[max(top, 0) : bottom : step, max(left, 0) : right : step].mean(axis=2)
    return np.asarray(Image.fromarray(square.astype(np.float32)).resize((side, side)))


def _to_8_bits(values: np.ndarray, full_scale: float) -> np.ndarray:
    return np.round(values / full_scale * 255).astype(np.uint8)
