"""Robust decoding of one image, from any common source and pixel mode, into 8-bit RGB.

Every failure becomes an :class:`~engine.errors.ImageLoadError` whose reason says what was wrong
and how to fix it, so a caller can skip a bad file and go on with the rest.

Intensity rules (the same for every image, so scores stay comparable; never per-image stretching):

- 8-bit modes are converted by Pillow (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``).
- Transparent images (``RGBA``, ``LA``, ``PA``, ``P`` or ``L``/``RGB`` with a transparency key)
  are composited onto black.
- 16-bit modes (``I;16``, ``I;16B``, ``I;16L``) map full scale to full scale: ``round(v / 257)``.
- 32-bit ``I`` and ``F`` use that same 16-bit full-scale rule (``value / 257``) and are then clipped
  to 0..255: values outside 0..65535 saturate, and a float image holding 0..1 comes out black, so
  scale such data to 0..65535 (or pass it as a numpy array in [0, 1]) first.
- numpy arrays: ``uint8`` as is, ``uint16`` by ``value / 257``, floats are taken to be in [0, 1].
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFile, ImageOps

from engine.errors import ImageLoadError

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000

ImageSource = str | Path | bytes | Image.Image | np.ndarray

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_FLOAT_MODES = frozenset({"F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Exceptions Pillow's decoders raise on damaged or unsupported data.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    LookupError,
    ArithmeticError,
    struct.error,
    zlib.error,
    MemoryError,
)
_TRUNCATION_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says, without decoding any pixel."""

    width: int
    height: int
    mode: str
    format: str | None

    @property
    def pixels(self) -> int:
        """Number of pixels (width × height)."""
        return self.width * self.height


def source_label(source: ImageSource, name: str | None = None) -> str:
    """The name used in error messages: ``name``, else the file's name, else a placeholder."""
    if name is not None:
        return name
    if isinstance(source, str | Path):
        return Path(source).name or str(source)
    if isinstance(source, bytes):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return "<image>"


def probe_image(source: ImageSource, *, name: str | None = None) -> ImageInfo:
    """Read only the header of ``source``: its size, mode and format. Nothing is decoded."""
    label = source_label(source, name)
    if isinstance(source, np.ndarray):
        height, width = _array_shape(source, label)[:2]
        return ImageInfo(width=width, height=height, mode=f"array[{source.dtype}]", format=None)
    if isinstance(source, Image.Image):
        return ImageInfo(source.width, source.height, source.mode, source.format)
    with _open_stream(source, label) as (stream, filename):
        header = _read_header(stream, filename, label)
        return ImageInfo(header.width, header.height, header.mode, header.format)


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> Image.Image:
    """Decode ``source`` fully into an 8-bit ``RGB`` image (EXIF orientation applied).

    ``source`` is a path, encoded bytes, a PIL image or a numpy array (H×W, H×W×1, H×W×3, H×W×4).
    Images above ``max_pixels`` are refused from their header, before any pixel is decoded;
    Pillow's own decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, where it would warn)
    is enforced the same way, and truncated data is always an error.
    Raises :class:`ImageLoadError` naming ``name`` (default: the file name) for anything unreadable.
    """
    label = source_label(source, name)
    if isinstance(source, np.ndarray):
        return _from_array(source, label, max_pixels)
    if isinstance(source, Image.Image):
        _check_size(source.width, source.height, max_pixels, label)
        with _no_truncated_loading():
            return _decode(source, label)
    if not isinstance(source, str | Path | bytes):
        raise ImageLoadError(
            label,
            f"unsupported input type {type(source).__name__}; pass a file path, encoded bytes, "
            "a PIL image or a numpy array",
        )
    with _open_stream(source, label) as (stream, filename):
        header = _read_header(stream, filename, label)
        _check_size(header.width, header.height, max_pixels, label)
        with _no_truncated_loading():
            return _decode(header, label)


# --- opening -------------------------------------------------------------------------------------


@contextmanager
def _open_stream(source: str | Path | bytes, label: str) -> Iterator[tuple[IO[bytes], str]]:
    """A readable binary stream over a path or bytes, with the file name Pillow may use."""
    if isinstance(source, bytes):
        if not source:
            raise ImageLoadError(label, "the data is empty (0 bytes); send the image file's bytes")
        yield io.BytesIO(source), ""
        return
    path = Path(source)
    if not path.exists():
        raise ImageLoadError(label, f"file not found at {path}; check the path and try again")
    if not path.is_file():
        raise ImageLoadError(label, f"{path} is not a regular file; give the path of an image file")
    if path.stat().st_size == 0:
        raise ImageLoadError(
            label, "the file is empty (0 bytes); it was cut off while copying, copy it again"
        )
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImageLoadError(
            label, f"cannot open the file ({exc.strerror}); check its permissions"
        ) from exc
    with handle:
        yield handle, os.fspath(path)


def _read_header(stream: IO[bytes], filename: str, label: str) -> ImageFile.ImageFile:
    """Identify the format and parse the header only.

    Pillow's plugins are tried the way ``Image.open`` tries them, minus its decompression-bomb
    check, so that the size of a huge image can be reported and checked against our own limit.
    """
    prefix = stream.read(16)
    damaged: list[str] = []  # formats whose signature matched but whose header did not parse
    for loader in (Image.preinit, Image.init):
        loader()
        for format_id in list(Image.ID):
            factory, accept = Image.OPEN[format_id]
            verdict = accept(prefix) if accept is not None else True
            if not verdict or isinstance(verdict, str):
                continue
            stream.seek(0)
            try:
                return factory(stream, filename)
            except (SyntaxError, IndexError, TypeError, struct.error) as exc:
                if accept is not None:
                    damaged.append(f"{format_id} ({exc})")
                continue
            except Image.DecompressionBombError as exc:
                raise ImageLoadError(
                    label, f"refused as a possible decompression bomb ({exc}); downscale the image"
                ) from exc
            except _DECODE_ERRORS as exc:
                raise ImageLoadError(
                    label, f"the header is damaged ({exc}); re-export the image"
                ) from exc
    if damaged:
        raise ImageLoadError(
            label, f"looks like {damaged[0]} but its header is damaged; re-export the image"
        )
    raise ImageLoadError(
        label,
        "not a recognised image format; save it as PNG, JPEG, BMP, TIFF or WebP and try again",
    )


def _check_size(width: int, height: int, max_pixels: int, label: str) -> None:
    """Refuse images whose header declares more pixels than allowed."""
    pixels = width * height
    if pixels > max_pixels:
        raise ImageLoadError(
            label,
            f"the image is {width}×{height} = {pixels:,} pixels, above the limit of "
            f"{max_pixels:,} pixels; downscale it before uploading, or raise max_pixels if the "
            "file is trusted",
        )
    pil_limit = Image.MAX_IMAGE_PIXELS
    if pil_limit is not None and pixels > pil_limit:
        raise ImageLoadError(
            label,
            f"the image is {width}×{height} = {pixels:,} pixels, above Pillow's "
            f"decompression-bomb limit of {int(pil_limit):,} pixels; downscale it, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS as well as max_pixels if the file is trusted",
        )


@contextmanager
def _no_truncated_loading() -> Iterator[None]:
    """Make sure Pillow refuses truncated data, even if someone enabled truncated loading.

    Only when the global ``LOAD_TRUNCATED_IMAGES`` flag is on is it switched off, under a lock,
    for the duration of one decode, and then restored.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        yield
        return
    with _TRUNCATION_LOCK:
        logger.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on; ignoring it while decoding")
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = True


# --- decoding ------------------------------------------------------------------------------------


def _decode(image: Image.Image, label: str) -> Image.Image:
    """Decode every pixel, apply EXIF orientation and convert to 8-bit RGB."""
    try:
        image.load()
        return _to_rgb(_upright(image, label))
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(
            label, f"refused as a possible decompression bomb ({exc}); downscale the image"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(label, _decode_reason(exc)) from exc


def _upright(image: Image.Image, label: str) -> Image.Image:
    """A copy of ``image`` turned by its EXIF orientation; a broken EXIF block is ignored."""
    try:
        return ImageOps.exif_transpose(image)
    except (SyntaxError, ValueError, TypeError, LookupError, struct.error) as exc:
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", label, exc)
        return image.copy()


def _decode_reason(exc: BaseException) -> str:
    """A user-facing reason for a decoder failure."""
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"the file is truncated ({text}); it was cut off, copy or export it again"
    if isinstance(exc, ValueError) and "conversion" in text:
        return f"unsupported pixel format ({text}); save the image as 8-bit RGB or grayscale"
    return f"the image data is corrupt ({text}); re-export the image or remove it"


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB by the module's intensity rules."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode in _FLOAT_MODES:
        gray = _full_scale_to_uint8(np.asarray(image))
        return Image.fromarray(gray).convert("RGB")
    if mode == "La":
        image = image.convert("RGBa")
        mode = image.mode
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _composite_on_black(image.convert("RGBA"))
    return image.convert("RGB")


def _full_scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map 16-bit full scale to 8-bit full scale (``value / 257``), clipping outside 0..65535."""
    if values.dtype.kind == "u" and values.dtype.itemsize == 1:
        return np.ascontiguousarray(values)
    scaled = np.asarray(values, dtype=np.float64) / 257.0
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite_on_black(rgba: Image.Image) -> Image.Image:
    """Alpha-composite an RGBA image onto an opaque black background."""
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


# --- numpy input ---------------------------------------------------------------------------------


def _array_shape(array: np.ndarray, label: str) -> tuple[int, int, int]:
    """(height, width, channels) of an image array, or an ImageLoadError for other shapes."""
    if array.ndim == 2:
        height, width = array.shape
        channels = 1
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        height, width, channels = array.shape
    else:
        raise ImageLoadError(
            label,
            f"array shape {array.shape} is not an image; use H×W, H×W×1, H×W×3 or H×W×4 "
            "(channels last)",
        )
    if height == 0 or width == 0:
        raise ImageLoadError(label, f"array shape {array.shape} has no pixels")
    return int(height), int(width), int(channels)


def _array_to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    """uint8 stays, uint16 maps full scale (``/ 257``), floats in [0, 1] scale by 255."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return _full_scale_to_uint8(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageLoadError(label, "the array holds NaN or infinite values; clean it first")
        return np.clip(np.rint(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    raise ImageLoadError(
        label,
        f"array dtype {array.dtype} is not supported; use uint8, uint16 or float in [0, 1]",
    )


def _from_array(array: np.ndarray, label: str, max_pixels: int) -> Image.Image:
    """Build an RGB image from an H×W[×C] array."""
    height, width, channels = _array_shape(array, label)
    _check_size(width, height, max_pixels, label)
    values = np.ascontiguousarray(_array_to_uint8(array, label))
    if channels == 1:
        return Image.fromarray(values.reshape(height, width)).convert("RGB")
    if channels == 3:
        return Image.fromarray(values)
    return _composite_on_black(Image.fromarray(values))
