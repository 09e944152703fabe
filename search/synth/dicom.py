"""Synthetic exports as DICOM Secondary Capture, as many sites export polar maps: RGB,
YBR or monochrome, one frame or several, with a made-up patient in the header (name, id,
birth date, accession number, institution, dates, UIDs) so that tests can show none of it
reaches anything the project writes."""

from __future__ import annotations

import hashlib
import io

import numpy as np

__all__ = ["PHOTOMETRIC", "SECONDARY_CAPTURE", "dicom_bytes"]

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
PHOTOMETRIC = ("RGB", "YBR_FULL", "MONOCHROME2", "MONOCHROME1")


def dicom_bytes(
    pixels: np.ndarray, photometric: str = "RGB", identity: dict[str, str] | None = None
) -> bytes:
    """A DICOM file of `pixels`: (height, width, 3) uint8 RGB, or (frames, height, width,
    3) for a multi-frame file, stored as `photometric`; `identity` sets header fields
    (PatientName, PatientID, ...).

    Raises:
        ValueError: an unknown photometric interpretation.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.pixels import convert_color_space
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if photometric not in PHOTOMETRIC:
        raise ValueError(f"photometric {photometric!r}: expected one of {', '.join(PHOTOMETRIC)}")
    frames = pixels if pixels.ndim == 4 else pixels[None]
    if photometric.startswith("MONOCHROME"):
        stored = np.round(frames.astype(np.float64).mean(axis=3)).astype(np.uint8)
        if photometric == "MONOCHROME1":
            stored = 255 - stored
    elif photometric == "YBR_FULL":
        stored = convert_color_space(frames.copy(), "RGB", "YBR_FULL")
    else:
        stored = frames
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    # UIDs drawn from the pixels: the same export gives the same file (reproducible data)
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[digest, "instance"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[digest, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[digest, "series"])
    ds.Modality = "OT"
    for field, value in (identity or {}).items():
        setattr(ds, field, value)
    ds.Rows, ds.Columns = stored.shape[1:3]
    ds.SamplesPerPixel = 1 if photometric.startswith("MONOCHROME") else 3
    ds.PhotometricInterpretation = photometric
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if len(stored) > 1:
        ds.NumberOfFrames = len(stored)
    ds.PixelData = np.ascontiguousarray(stored if len(stored) > 1 else stored[0]).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
