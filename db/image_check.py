"""Validate uploaded image bytes with PIL: size limits first, then a full decode."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

# Format (as PIL names it) -> stored file extension.
ACCEPTED_FORMATS: dict[str, str] = {
    "PNG": "png",
    "JPEG": "jpg",
    "BMP": "bmp",
    "TIFF": "tif",
    "WEBP": "webp",
}


@dataclass(frozen=True)
class ImageInfo:
    """What the validation learnt about an accepted image."""

    format: str
    extension: str
    width: int
    height: int
    mode: str


class ImageRejected(Exception):
    """The bytes are not an acceptable image; `reason` says why in words for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int, min_side: int = 1) -> ImageInfo:
    """Check an image file and return its facts, or raise `ImageRejected` with the reason.

    The header is read first and width x height checked against `max_pixels` before anything
    is decoded; then the whole image is decoded so truncated or corrupt files are caught.
    """
    if not data:
        raise ImageRejected("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageRejected(
            f"the file is {_mb(len(data))}; the limit is {_mb(max_bytes)} per file "
            "(ADN_MAX_FILE_MB)"
        )
    try:
        with PILImage.open(io.BytesIO(data)) as header:
            fmt = header.format or ""
            width, height = header.size
            mode = header.mode
    except PILImage.DecompressionBombError as exc:
        # PIL's own header check fired first (far above any sensible limit).
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "far too many pixels"
        raise ImageRejected(
            f"the image has {size}; the limit is {max_pixels:,} (ADN_MAX_PIXELS); resize it"
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(
            "not an image file that can be read (use PNG, JPEG, BMP, TIFF or WEBP)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"the image header is damaged ({exc})") from None
    if fmt not in ACCEPTED_FORMATS:
        raise ImageRejected(
            f"{fmt or 'this'} images are not accepted; convert it to PNG, JPEG, BMP, TIFF or WEBP"
        )
    if width <= 0 or height <= 0:
        raise ImageRejected(f"the image has no pixels ({width}x{height})")
    if min(width, height) < min_side:
        raise ImageRejected(
            f"the image is {width}x{height} pixels; each side must be at least {min_side} "
            "(ADN_MIN_IMAGE_SIDE), smaller images hold too little to inspect"
        )
    if width * height > max_pixels:
        raise ImageRejected(
            f"the image is {width}x{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,} (ADN_MAX_PIXELS); resize it"
        )
    _decode_fully(data)
    return ImageInfo(fmt, ACCEPTED_FORMATS[fmt], width, height, mode)


def _decode_fully(data: bytes) -> None:
    """Verify the file's structure, then decode every pixel."""
    try:
        with PILImage.open(io.BytesIO(data)) as checked:
            checked.verify()
        with PILImage.open(io.BytesIO(data)) as decoded:
            decoded.load()
    except (OSError, ValueError, SyntaxError, EOFError, PILImage.DecompressionBombError) as exc:
        detail = str(exc) or type(exc).__name__
        if "truncated" in detail.lower():
            raise ImageRejected(
                "the image is truncated (the file ends early; upload it again)"
            ) from None
        raise ImageRejected(f"the image is corrupt and cannot be decoded ({detail})") from None
