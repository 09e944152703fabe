"""Reading one image file: formats, modes, and the exact reason when it fails."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data.images import ImageProblem, export_rgb, inspect_image

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


# -- every Pillow mode an export can have, as the map the user saw or refused ----------

GREY = np.tile(np.array([0, 64, 128, 255], np.uint8), (8, 2))  # 8 x 8, known levels
COLOURS = np.stack([GREY, 255 - GREY, np.full_like(GREY, 77)], axis=2)


def in_mode(mode: str) -> Image.Image:
    """The same small map in `mode`, as an export in that mode holds it."""
    if mode == "I;16":
        return Image.fromarray(GREY.astype(np.uint16) * 257)  # 16 bits, full range
    if mode == "I":
        return Image.fromarray(GREY.astype(np.int32) * 257)
    if mode == "F":
        return Image.fromarray(GREY.astype(np.float32) / 255)
    if mode == "1":
        return Image.fromarray(GREY).convert("1", dither=Image.Dither.NONE)  # black, white
    if mode == "L":
        return Image.fromarray(GREY)
    if mode in ("LA", "PA", "RGBA"):
        alpha = np.full_like(GREY, 255)
        alpha[0, 0] = 0  # one transparent pixel: black, the exports' background
        base = Image.fromarray(np.dstack([COLOURS, alpha]))
        return base.convert("LA") if mode == "LA" else base.convert(mode)
    return Image.fromarray(COLOURS).convert(mode)  # P, CMYK, YCbCr


def saved(image: Image.Image, tmp_path) -> Path:
    """`image` written in a format that keeps its mode, and read back."""
    fmt = "PNG" if image.mode in ("1", "L", "LA", "P", "RGBA", "I;16") else "TIFF"
    path = tmp_path / f"map.{fmt.lower()}"
    image.save(path, format=fmt)
    with Image.open(path) as back:
        assert back.mode == image.mode  # the file holds that mode
    return path


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("1", np.where(GREY >= 128, 255, 0)),
        ("L", GREY),
        ("I;16", GREY),  # scaled by its 16 bits: not clipped to a white disc
        ("F", GREY),  # floating point in 0..1
        ("LA", None),
        ("P", None),
        ("PA", None),
        ("RGBA", None),
        ("CMYK", None),
        ("YCbCr", None),
    ],
)
def test_every_export_mode_reaches_the_cleaner_as_the_map_the_user_saw(tmp_path, mode, expected):
    path = saved(in_mode(mode), tmp_path)
    info = inspect_image(path)
    assert info.mode == mode
    with Image.open(path) as image:
        pixels = export_rgb(image)
    assert pixels.dtype == np.uint8 and pixels.shape == (8, 8, 3)
    if expected is not None:  # grey modes: the grey on all three channels
        for channel in range(3):
            np.testing.assert_array_equal(pixels[..., channel], expected)
        return
    shown = np.asarray(Image.fromarray(COLOURS).convert(mode).convert("RGB"), dtype=int)
    tolerance = 40 if mode in ("P", "PA", "CMYK", "YCbCr") else 0  # palettes, colour spaces
    assert np.abs(pixels.astype(int)[1:, 1:] - shown[1:, 1:]).max() <= tolerance
    if mode in ("LA", "PA", "RGBA"):
        assert pixels[0, 0].tolist() == [0, 0, 0]  # transparent: the black background


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (in_mode("I"), "32-bit integer pixels: their display scale is not known"),
        (
            Image.fromarray(GREY.astype(np.float32)),  # 0..255 in floating point
            "floating-point pixels outside 0..1",
        ),
    ],
)
def test_pixels_without_a_known_scale_are_refused_with_the_reason(tmp_path, image, reason):
    path = saved(image, tmp_path)
    with pytest.raises(ImageProblem, match=reason):
        inspect_image(path)
