"""A new production lot, simulated: one acquisition change applied to every cell of the lot
(a gamma curve, then contrast and brightness, then optical blur), as a new camera setting,
lighting or material would do. Unlike ``bench/drift.py`` (a random change per cell), the whole
lot moves together."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LotChange:
    """``blur(clip(gain · x**gamma + offset))`` for intensities x in [0, 1]."""

    gamma: float = 1.0
    gain: float = 1.0
    offset: float = 0.0
    blur_sigma: float = 0.0

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"x -> blur_sigma={self.blur_sigma:g} px (clip({self.gain:g} * x^{self.gamma:g} "
            f"{self.offset:+g}))"
        )

    def apply(self, images_u8: torch.Tensor) -> torch.Tensor:
        """The lot's version of N×C×H×W uint8 images (uint8)."""
        x = images_u8.float() / 255.0
        x = (x.pow(self.gamma) * self.gain + self.offset).clamp(0.0, 1.0)
        if self.blur_sigma > 0:
            x = _gaussian_blur(x, self.blur_sigma)
        return x.mul(255.0).round().to(torch.uint8)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    steps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(steps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    x = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, horizontal, groups=channels)
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, vertical, groups=channels)
