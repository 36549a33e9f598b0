"""A simulated lot change: every cell's intensities scaled and offset, as a new camera setting
or a new lot of material would do, clipped to the sensor's range."""

from __future__ import annotations

import torch

GAIN_RANGE = (0.75, 1.25)
OFFSET_RANGE = (-0.1, 0.1)  # in units of the full intensity range


def drift_images(images_u8: torch.Tensor, seed: int) -> torch.Tensor:
    """``clip(gain · x + offset)`` per image, gain and offset uniform in their ranges (uint8)."""
    generator = torch.Generator().manual_seed(seed)
    count = images_u8.shape[0]
    gain = torch.empty(count).uniform_(*GAIN_RANGE, generator=generator)
    offset = torch.empty(count).uniform_(*OFFSET_RANGE, generator=generator)
    x = images_u8.float() / 255.0
    drifted = x * gain.view(-1, 1, 1, 1) + offset.view(-1, 1, 1, 1)
    return drifted.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def describe() -> str:
    """One line for the report."""
    return (
        f"each test cell's intensities x in [0, 1] become clip(a·x + b) with a uniform in "
        f"[{GAIN_RANGE[0]}, {GAIN_RANGE[1]}] and b uniform in [{OFFSET_RANGE[0]}, "
        f"{OFFSET_RANGE[1]}], one draw per cell (seeded)"
    )
