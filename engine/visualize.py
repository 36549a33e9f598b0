"""Heatmap pictures: colour overlays on the original image and compact PNG encoding."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image


def colorize_heatmap(heatmap: np.ndarray, colormap: str = "jet") -> Image.Image:
    """An RGB picture of a [0, 1] heatmap."""
    rgba = colormaps[colormap](np.clip(heatmap, 0.0, 1.0))
    return Image.fromarray((rgba[..., :3] * 255).astype(np.uint8), mode="RGB")


def overlay_heatmap(
    image: Image.Image, heatmap: np.ndarray, alpha: float = 0.5, colormap: str = "jet"
) -> Image.Image:
    """Blend a coloured heatmap over ``image`` (``alpha`` = heatmap opacity in [0, 1])."""
    base = image.convert("RGB")
    colored = colorize_heatmap(heatmap, colormap)
    if colored.size != base.size:
        colored = colored.resize(base.size, Image.Resampling.BILINEAR)
    return Image.blend(base, colored, float(np.clip(alpha, 0.0, 1.0)))


def heatmap_to_png(heatmap: np.ndarray) -> bytes:
    """8-bit grayscale PNG of a [0, 1] heatmap (small enough to keep in SQL)."""
    buffer = io.BytesIO()
    pixels = np.round(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def heatmap_from_png(data: bytes) -> np.ndarray:
    """Inverse of :func:`heatmap_to_png` (float32 in [0, 1])."""
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
