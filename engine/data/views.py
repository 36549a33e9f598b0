"""The views of an image that training augments with and scoring averages over.

A view is named by one float per sample: the angle in degrees for :class:`Rotations` (the paper's
augmentation), the element index 0–7 for :class:`Dihedral` (the four quarter turns, each with and
without a mirror flip). Dihedral views are lossless: no interpolation and no black corners, which
suits parts photographed square to the camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from engine.config import ViewGroup
from engine.data.transforms import random_angles, rotate_batch, test_view_angles
from engine.errors import ConfigError

# Dihedral elements in the order test views take them, so that any prefix spreads over the group:
# (quarter turns, mirrored first).
DIHEDRAL_ELEMENTS: tuple[tuple[int, bool], ...] = (
    (0, False),
    (2, False),
    (0, True),
    (2, True),
    (1, False),
    (3, False),
    (1, True),
    (3, True),
)


class ViewSpace(Protocol):
    """How views are drawn for training, chosen for testing, and applied to a batch."""

    def training(
        self, count: int, per_image: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """View ids for ``per_image`` views of each of ``count`` images (image-major order)."""
        ...

    def test(self, views: int, offset: bool = False) -> torch.Tensor:
        """The ``views`` deterministic test view ids."""
        ...

    def apply(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Each image of the float batch ``x`` (B, C, H, W) seen as its view ``ids[i]``."""
        ...


@dataclass(frozen=True)
class Rotations:
    """Rotations by any angle about the centre (bilinear, zero fill), as in DifferNet."""

    def training(
        self, count: int, per_image: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Angles uniform in [-180, 180)."""
        return random_angles(count * per_image, generator)

    def test(self, views: int, offset: bool = False) -> torch.Tensor:
        """``i·360/n`` degrees, or ``(i + 1/2)·360/n`` with ``offset``."""
        angles = test_view_angles(views)
        return angles + 180.0 / views if offset else angles

    def apply(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Rotate each image by its angle."""
        return rotate_batch(x, ids)


@dataclass(frozen=True)
class Dihedral:
    """The 8 flips and quarter turns of a square image."""

    def training(
        self, count: int, per_image: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Every image gets distinct elements while it has fewer than 8, in a random order."""
        device = generator.device if generator is not None else None
        size = len(DIHEDRAL_ELEMENTS)
        rounds = -(-per_image // size)
        keys = torch.rand(count, rounds, size, generator=generator, device=device)
        order = keys.argsort(dim=2).flatten(1)[:, :per_image]
        return order.flatten().float()

    def test(self, views: int, offset: bool = False) -> torch.Tensor:
        """The first ``views`` elements of :data:`DIHEDRAL_ELEMENTS` (``offset`` has no meaning)."""
        if not 1 <= views <= len(DIHEDRAL_ELEMENTS):
            raise ConfigError(
                f"dihedral views: score.test_views must be 1 to {len(DIHEDRAL_ELEMENTS)}, "
                f"got {views}"
            )
        return torch.arange(views, dtype=torch.float32)

    def apply(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Flip and turn each image as its element says (square images only)."""
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"dihedral views need square images, got {tuple(x.shape[-2:])}")
        if ids.numel() != x.shape[0]:
            raise ValueError(f"one view id per image: {x.shape[0]} images, {ids.numel()} ids")
        elements = ids.reshape(-1).round().long().cpu()
        out = torch.empty_like(x)
        for element in elements.unique().tolist():
            turns, mirrored = DIHEDRAL_ELEMENTS[element]
            rows = (elements == element).nonzero().flatten().to(x.device)
            chosen = x.index_select(0, rows)
            if mirrored:
                chosen = chosen.flip(-1)
            out.index_copy_(0, rows, torch.rot90(chosen, turns, dims=(-2, -1)))
        return out


def view_space(group: ViewGroup) -> ViewSpace:
    """The view space of ``model.view_group``."""
    if group == "rotations":
        return Rotations()
    if group == "dihedral":
        return Dihedral()
    raise ConfigError(f"model.view_group={group!r} is not one of: rotations, dihedral")
