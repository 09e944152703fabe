"""Reading one image file: formats, modes, and the exact reason when it fails."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from search.data.images import ImageProblem, inspect_image

PIXELS = np.random.default_rng(1).integers(0, 255, (90, 120), dtype=np.uint8)


def encoded(fmt: str, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(PIXELS)
    image = image.convert(mode) if mode != "I;16" else Image.fromarray(PIXELS.astype("<u2") * 256)
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode", "kind"),
    [
        ("PNG", "L", "PNG"),
        ("PNG", "RGB", "PNG"),
        ("PNG", "RGBA", "PNG"),
        ("JPEG", "L", "JPEG"),
        ("JPEG", "RGB", "JPEG"),
        ("TIFF", "RGB", "TIFF"),
        ("TIFF", "I;16", "TIFF"),
    ],
)
def test_accepted_formats_and_modes(tmp_path, fmt, mode, kind):
    data = encoded(fmt, mode)
    path = tmp_path / "map"
    path.write_bytes(data)
    info = inspect_image(path)
    assert (info.format, info.width, info.height) == (kind, 120, 90)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "file not found"),
        (b"", "file is empty (0 bytes)"),
        (b"patient,label\n", "not a readable PNG, JPEG or TIFF image"),
    ],
)
def test_unusable_files(tmp_path, content, reason):
    path = tmp_path / "map.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageProblem, match=reason.replace("(", r"\(").replace(")", r"\)")):
        inspect_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_files(tmp_path, fmt, keep):
    data = encoded(fmt, "RGB")
    path = tmp_path / "map"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageProblem, match="truncated"):
        inspect_image(path)


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageProblem, match="not a file"):
        inspect_image(tmp_path)


def test_minimum_size_applies_to_the_short_side(tmp_path):
    path = tmp_path / "map.png"
    path.write_bytes(encoded("PNG"))
    assert inspect_image(path, min_size=90).height == 90
    with pytest.raises(ImageProblem, match=r"120 x 90 pixels, expected at least 91"):
        inspect_image(path, min_size=91)
