"""Pictures for benchmark stores: PNG bytes of an array, and blob-shaped heatmaps."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """PNG bytes of a uint8 array (``mode`` as PIL names it, e.g. "L")."""
    buffer = io.BytesIO()
    PILImage.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def blob_heatmaps(size: int, count: int, rng: np.random.Generator) -> list[bytes]:
    """``count`` grey PNG heatmaps of ``size``², each one Gaussian blob at a random place."""
    y, x = np.mgrid[0:size, 0:size] / size
    pictures = []
    for _ in range(count):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.02)
        pictures.append(png_bytes((blob * 255).astype(np.uint8), mode="L"))
    return pictures
