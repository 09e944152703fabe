"""Polar maps exported as DICOM (Secondary Capture: RGB, YBR or monochrome, one frame or
several), read with pydicom, a well-kept DICOM library.

Only the pixels are read. Header fields that identify a person (name, id, birth date,
accession number, institution, dates, UIDs) are never looked at, so they cannot reach
anything this project writes; the cleaned map is all later steps see of an export.
"""

from __future__ import annotations

import io

import numpy as np

from search import errors

__all__ = ["DicomProblem", "dicom_rgb", "is_dicom"]


class DicomProblem(errors.DataError, ValueError):
    """A DICOM file whose map cannot be read; the message says why and what to do."""


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 'DICM' after its 128-byte preamble."""
    return data[128:132] == b"DICM"


def dicom_rgb(data: bytes, frame: int | None = None) -> np.ndarray:
    """The map a DICOM export shows, as (height, width, 3) uint8 RGB; `frame` (1..n)
    picks one of a multi-frame file.

    Raises:
        DicomProblem: not DICOM, no pixel data, a compressed transfer syntax no installed
            decoder handles, several frames and none chosen, or pixels with no known
            display scale.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import pixel_array

    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=False)
    except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
        raise DicomProblem(f"not a readable DICOM file ({exc})") from None
    if "PixelData" not in header:
        raise DicomProblem("a DICOM file without pixel data (no image in it)")
    frames = int(getattr(header, "NumberOfFrames", 1) or 1)
    if frames > 1 and frame is None:
        raise DicomProblem(
            f"a DICOM file of {frames} frames: say which is the map with a <view>_frame "
            f"column (1..{frames})"
        )
    if frame is not None and not 1 <= frame <= frames:
        raise DicomProblem(f"frame {frame}: the DICOM file has {frames} frame(s)")
    try:
        pixels = pixel_array(header, index=None if frames == 1 else frame - 1)
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        syntax = header.file_meta.get("TransferSyntaxUID", "unknown")
        name = getattr(syntax, "name", str(syntax))
        raise DicomProblem(
            f"its pixel data cannot be decoded (transfer syntax {name}: {exc}); install a "
            "decoder pydicom supports (pylibjpeg, gdcm) or export it uncompressed"
        ) from None
    return _to_rgb(pixels, header)


def _to_rgb(pixels: np.ndarray, header) -> np.ndarray:
    """8-bit RGB from RGB (YBR already converted by pydicom) or monochrome pixels, scaled
    by their stored bit depth; MONOCHROME1 (white is 0) inverted."""
    photometric = str(getattr(header, "PhotometricInterpretation", "")).upper()
    if int(getattr(header, "PixelRepresentation", 0) or 0) == 1:
        raise DicomProblem("signed pixel values: their display scale is not known")
    bits = int(getattr(header, "BitsStored", 8) or 8)
    values = pixels.astype(np.float64) / (2**bits - 1)
    if photometric == "MONOCHROME1":
        values = 1.0 - values
    scaled = np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)
    if scaled.ndim == 2:
        return np.repeat(scaled[..., None], 3, axis=2)
    if scaled.ndim == 3 and scaled.shape[2] == 3:
        return scaled
    raise DicomProblem(f"pixels of shape {pixels.shape}: expected one grey or RGB image")
