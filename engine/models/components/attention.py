"""Channel and spatial attention blocks (SE and CBAM) with timm-style signatures.

Both blocks keep the input shape and use only out-of-place operations, so forward hooks (Grad-CAM)
see the tensors they expect.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def hidden_width(channels: int, reduction: int) -> int:
    """Width of the bottleneck layer of a gate MLP: ``max(1, channels // reduction)``."""
    if channels < 1 or reduction < 1:
        raise ValueError(
            f"channels and reduction must be positive, got channels={channels}, "
            f"reduction={reduction}"
        )
    return max(1, channels // reduction)


class SEBlock(nn.Module):
    """Squeeze-and-Excitation: global average squeeze, FC C→C/r, ReLU, FC C/r→C, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction)
        self.channels = channels
        self.reduction = reduction
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels)

    def gate(self, x: Tensor) -> Tensor:
        """The per-channel gate in (0, 1), shape (B, C, 1, 1)."""
        squeezed = x.mean(dim=(2, 3))
        weights = torch.sigmoid(self.fc2(self.act(self.fc1(squeezed))))
        return weights[:, :, None, None]

    def forward(self, x: Tensor) -> Tensor:
        """Scale each channel of ``x`` (B, C, H, W) by its gate."""
        return x * self.gate(x)


class CBAMBlock(nn.Module):
    """Convolutional Block Attention Module: a channel gate, then a spatial gate.

    The channel gate runs one shared MLP (C→C/r→C) over the average- and max-pooled maps, sums
    the two results and applies a sigmoid. The spatial gate convolves the stacked channel-max and
    channel-mean maps (kernel ``kernel_size``, padding ``kernel_size // 2``) and applies a sigmoid.
    With ``residual`` the output is ``x + gated(x)``, otherwise ``gated(x)``.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        kernel_size: int = 7,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        hidden = hidden_width(channels, reduction)
        self.channels = channels
        self.reduction = reduction
        self.kernel_size = kernel_size
        self.residual = residual
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def channel_gate(self, x: Tensor) -> Tensor:
        """Per-channel gate in (0, 1), shape (B, C, 1, 1)."""
        avg = self.mlp(x.mean(dim=(2, 3)))
        peak = self.mlp(x.amax(dim=(2, 3)))
        return torch.sigmoid(avg + peak)[:, :, None, None]

    def spatial_gate(self, x: Tensor) -> Tensor:
        """Per-position gate in (0, 1), shape (B, 1, H, W)."""
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial(pooled))

    def gated(self, x: Tensor) -> Tensor:
        """``x`` after the channel gate and then the spatial gate (no residual)."""
        after_channels = x * self.channel_gate(x)
        return after_channels * self.spatial_gate(after_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over ``x`` (B, C, H, W); the shape is kept."""
        out = self.gated(x)
        return x + out if self.residual else out
