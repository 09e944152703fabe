"""Reading one image file and saying exactly what is wrong with it, if anything.

Every image is decoded in full once during the check: PIL opens files lazily, so only a
full decode finds a truncated file. The same read gives the bytes' SHA-256, which the
data fingerprint is built from.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["ACCEPTED_FORMATS", "IMAGE_SUFFIXES", "ImageInfo", "ImageProblem", "inspect_image"]

# PIL format names; MPO is the multi-picture JPEG that some cameras and viewers write.
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageInfo:
    """What the check learned about a readable image."""

    path: Path
    format: str
    width: int
    height: int
    mode: str
    sha256: str


class ImageProblem(Exception):
    """An image file that cannot be used; the message says why and what was expected."""


def inspect_image(path: Path, min_size: int = 1) -> ImageInfo:
    """Decode `path` fully and return its facts.

    Raises:
        ImageProblem: the file is missing, empty, not a PNG/JPEG/TIFF image, truncated,
            or smaller than `min_size` pixels on a side.
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

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            kind = ACCEPTED_FORMATS.get(image.format or "")
            if kind is None:
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

    width, height = image.size
    if min(width, height) < min_size:
        raise ImageProblem(
            f"image is {width} x {height} pixels, expected at least {min_size} on each side"
        )
    return ImageInfo(
        path=path,
        format=kind,
        width=width,
        height=height,
        mode=image.mode,
        sha256=hashlib.sha256(data).hexdigest(),
    )
