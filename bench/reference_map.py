"""A map that knows nothing of the detector: how much darker each pixel is than its surround.

Planted defects darken the cell, so this is the bar a detector's map has to clear to show that
it explains the model rather than merely finding dark marks (busbars and cell edges are dark
too). The image's grey level is subtracted from a wide Gaussian blur of itself, the positive
part kept, lightly smoothed and scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from engine.models.attentdiffernet.map_ops import gaussian_smooth, normalise

REFERENCE_NAME = "reference: darker than surround"
SURROUND_SHARE = 0.04  # σ of the surround, share of the side
SMOOTH_SHARE = 0.01


def darker_than_surround(image_u8: np.ndarray) -> np.ndarray:
    """The map (float32 in [0, 1], H×W) of a uint8 H×W×3 or H×W image."""
    gray = image_u8.astype(np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    side = min(gray.shape)
    values = torch.from_numpy(gray)[None]
    darker = torch.relu(gaussian_smooth(values, SURROUND_SHARE * side) - values)
    smoothed = gaussian_smooth(darker, SMOOTH_SHARE * side)
    return normalise(smoothed)[0].numpy().astype(np.float32)
