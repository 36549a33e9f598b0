"""How well a heatmap points at a defect whose pixel mask is known.

- pixel AUROC: the map's values as scores of "this pixel is defective", over every pixel of the
  planted images pooled;
- pointing game: a hit when the map's maximum lies in the mask or within ``tolerance`` pixels of
  it (a flat map's maximum is its first pixel, so a zero or uniform map only hits by chance);
- chance: the share of the image within ``tolerance`` of the mask, what a peak placed at random
  would hit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score


def pixel_auroc(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """AUROC of all pixels of ``maps`` against their boolean ``masks`` (pooled)."""
    scores = np.concatenate([m.ravel() for m in maps]).astype(np.float32)
    labels = np.concatenate([m.ravel() for m in masks]).astype(bool)
    return float(roc_auc_score(labels, scores))


def distance_to_mask(point: tuple[int, int], mask: np.ndarray) -> float:
    """Euclidean distance in pixels from ``point`` (row, col) to the nearest mask pixel."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return float("inf")
    return float(np.sqrt(((rows - point[0]) ** 2 + (cols - point[1]) ** 2).min()))


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray, tolerance: float) -> bool:
    """Whether the map's maximum lies within ``tolerance`` pixels of the mask."""
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return distance_to_mask((int(row), int(col)), mask) <= tolerance


def chance_hit_rate(mask: np.ndarray, tolerance: float) -> float:
    """Share of the image's pixels within ``tolerance`` of the mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0
    grid_r, grid_c = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    near = np.zeros(mask.shape, dtype=bool)
    reach = int(np.ceil(tolerance))
    for r, c in zip(rows, cols, strict=True):
        r0, r1 = max(0, r - reach), min(mask.shape[0], r + reach + 1)
        c0, c1 = max(0, c - reach), min(mask.shape[1], c + reach + 1)
        window = (grid_r[r0:r1, c0:c1] - r) ** 2 + (grid_c[r0:r1, c0:c1] - c) ** 2
        near[r0:r1, c0:c1] |= window <= tolerance**2
    return float(near.mean())
