"""Operations shared by the heatmap methods: resize to the input, smooth, scale to [0, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of maps (B×h×w) to ``size`` (height, width)."""
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each map (B×H×W) scaled to [0, 1] by its own minimum and maximum; a flat map becomes 0."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1) - low).clamp_min(1e-12)
    scaled = (maps - low) / span
    flat_maps = (flat.max(dim=1).values - flat.min(dim=1).values) <= 1e-12
    return torch.where(flat_maps.view(-1, 1, 1), torch.zeros_like(scaled), scaled)


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Maps (B×H×W) blurred by a separable Gaussian of ``sigma`` pixels (edges replicated)."""
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(maps[:, None], (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x[:, 0]
