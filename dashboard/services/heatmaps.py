"""Pictures for review: originals of any mode as 8-bit RGB, and Grad-CAM heatmap overlays.

Heatmaps are stored as 8-bit grayscale PNGs (0..255 = heat 0..1) at the image's resolution;
they are coloured with a jet-like lookup table and blended over the original with PIL.
Originals are read as the model read them: EXIF orientation applied, 16-bit scaled from full
range, transparency composited on black.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

DISPLAY_MAX_SIDE = 768
_HIGH_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_DARK_LIMIT = 16  # after scaling, an image this dark is stretched to its own range


class PictureError(ValueError):
    """An image or heatmap cannot be shown; the message says why and what to do."""


def jet_lut() -> np.ndarray:
    """A 256 x 3 uint8 lookup table from dark blue (cold) through green and yellow to dark red."""
    x = np.linspace(0.0, 1.0, 256)
    channels = [np.clip(1.5 - np.abs(4.0 * x - c), 0.0, 1.0) for c in (3.0, 2.0, 1.0)]
    return np.rint(np.stack(channels, axis=1) * 255).astype(np.uint8)


_LUT = jet_lut()


def colourise(heat: np.ndarray) -> Image.Image:
    """An RGB picture of an 8-bit heatmap array (0 = cold, 255 = hot)."""
    values = np.asarray(heat)
    if values.dtype != np.uint8:
        values = np.clip(np.rint(values.astype(np.float64)), 0, 255).astype(np.uint8)
    return Image.fromarray(_LUT[values], mode="RGB")


def decode_heatmap(png: bytes) -> np.ndarray:
    """The 8-bit heat values of a stored heatmap PNG (H x W, uint8)."""
    try:
        with Image.open(io.BytesIO(png)) as picture:
            return np.asarray(picture.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise PictureError(
            f"the stored heatmap is not a readable PNG ({exc}); score the image again"
        ) from None


def _high_bit_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=65535.0, neginf=0.0) / 257.0
    if values.size and values.max() < _DARK_LIMIT:
        low, high = float(values.min()), float(values.max())
        values = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def _on_black(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_display_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for display from any Pillow mode (16-bit, float, CMYK, palette, alpha, ...)."""
    try:
        upright = ImageOps.exif_transpose(image)
    except (SyntaxError, ValueError, TypeError, LookupError) as exc:
        logger.warning("ignoring unreadable EXIF orientation (%s)", exc)
        upright = image
    mode = upright.mode
    try:
        if mode == "RGB":
            return upright.copy() if upright is image else upright
        if mode in _HIGH_BIT_MODES:
            return _high_bit_to_rgb(upright)
        if mode in _ALPHA_MODES or "transparency" in upright.info:
            return _on_black(upright)
        return upright.convert("RGB")
    except ValueError as exc:
        raise PictureError(
            f"pixel mode {mode} cannot be shown ({exc}); convert the image to RGB and upload it "
            "again"
        ) from None


def load_display_image(path: Path, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """The stored image at ``path`` as RGB, shrunk so its longer side is at most ``max_side``."""
    if not path.is_file():
        raise PictureError(
            f"the image file {path.name} is missing from the data directory; check that the "
            "data volume is mounted, or upload the image again"
        )
    try:
        with Image.open(path) as picture:
            picture.draft("RGB", (max_side, max_side))  # cheap JPEG downscale on decode
            picture.load()
            rgb = to_display_rgb(picture)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise PictureError(f"the image file {path.name} cannot be read ({exc})") from None
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


def overlay(original: Image.Image, heatmap_png: bytes, opacity: float) -> Image.Image:
    """The coloured heatmap blended over ``original`` (opacity 0 = original, 1 = heatmap only).

    The heatmap is resized to the picture's size (bilinear) when they differ, for example when
    the original was shrunk for display.
    """
    base = to_display_rgb(original) if original.mode != "RGB" else original
    coloured = colourise(decode_heatmap(heatmap_png))
    if coloured.size != base.size:
        coloured = coloured.resize(base.size, Image.Resampling.BILINEAR)
    return Image.blend(base, coloured, float(np.clip(opacity, 0.0, 1.0)))


def heatmap_picture(heatmap_png: bytes, size: tuple[int, int] | None = None) -> Image.Image:
    """The coloured heatmap alone, optionally resized to ``size`` (width, height)."""
    coloured = colourise(decode_heatmap(heatmap_png))
    if size is not None and coloured.size != size:
        coloured = coloured.resize(size, Image.Resampling.BILINEAR)
    return coloured
