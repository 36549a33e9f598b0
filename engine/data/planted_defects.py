"""Defects with a known pixel mask, planted into normal images: cracks, branching cracks, dark
spots and broken fingers, as electroluminescence images of solar cells show them.

They serve where real defects are not at hand: choosing a training epoch without test labels,
and measuring how well a heatmap points at a defect. A defect darkens the image multiplicatively
(``image · (1 - strength · mask)``), so texture under it stays visible as in real cracks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

DefectKind = Literal["crack", "branching_crack", "dark_spot", "broken_finger"]
DEFECT_KINDS: tuple[DefectKind, ...] = get_args(DefectKind)

# A mask pixel counts as defective from this much darkening weight on (of 1).
MASK_LEVEL = 0.25


@dataclass(frozen=True)
class DefectStyle:
    """How strong and how large planted defects are, as fractions of the image side."""

    strength: tuple[float, float] = (0.3, 0.75)  # share of the intensity removed at the centre
    crack_width: tuple[float, float] = (0.004, 0.012)
    crack_length: tuple[float, float] = (0.25, 0.6)
    spot_radius: tuple[float, float] = (0.03, 0.1)
    finger_length: tuple[float, float] = (0.1, 0.3)

    def __post_init__(self) -> None:
        for name in ("strength", "crack_width", "crack_length", "spot_radius", "finger_length"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise ValueError(f"DefectStyle.{name} must satisfy 0 < low <= high <= 1")


@dataclass(frozen=True)
class PlantedDefect:
    """An image with a defect planted in it, the boolean pixel mask and the defect's kind."""

    image: np.ndarray  # uint8, same shape as the input
    mask: np.ndarray  # bool, H×W
    kind: DefectKind


def plant_defect(
    image: np.ndarray,
    kind: DefectKind,
    rng: np.random.Generator,
    style: DefectStyle | None = None,
) -> PlantedDefect:
    """Plant one defect of ``kind`` into a uint8 image (H×W or H×W×C)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            f"plant_defect needs a uint8 H×W or H×W×C image, got {image.dtype} {image.shape}"
        )
    if kind not in DEFECT_KINDS:
        raise ValueError(f"unknown defect kind {kind!r}; choose one of: {', '.join(DEFECT_KINDS)}")
    style = style or DefectStyle()
    height, width = image.shape[:2]
    weight = _DRAWERS[kind](height, width, rng, style)
    strength = rng.uniform(*style.strength)
    darkening = 1.0 - strength * weight
    if image.ndim == 3:
        darkening = darkening[..., None]
    planted = np.clip(np.rint(image.astype(np.float32) * darkening), 0, 255).astype(np.uint8)
    return PlantedDefect(image=planted, mask=weight >= MASK_LEVEL, kind=kind)


def plant_defects(
    images_u8: torch.Tensor,
    copies: int,
    seed: int,
    style: DefectStyle | None = None,
) -> torch.Tensor:
    """``copies`` defective versions of every image of a uint8 N×C×H×W batch (kinds in turn)."""
    if images_u8.dtype != torch.uint8 or images_u8.dim() != 4:
        raise ValueError(f"plant_defects needs a uint8 N×C×H×W tensor, got {images_u8.dtype}")
    rng = np.random.default_rng(seed)
    planted = []
    for index in range(images_u8.shape[0]):
        picture = images_u8[index].permute(1, 2, 0).numpy()
        for copy in range(copies):
            kind = DEFECT_KINDS[(index * copies + copy) % len(DEFECT_KINDS)]
            planted.append(torch.from_numpy(plant_defect(picture, kind, rng, style).image))
    if not planted:
        return images_u8.new_empty((0, *images_u8.shape[1:]))
    return torch.stack(planted).permute(0, 3, 1, 2).contiguous()


def _crack(height: int, width: int, rng: np.random.Generator, style: DefectStyle) -> np.ndarray:
    side = min(height, width)
    canvas = Image.new("L", (width, height), 0)
    _draw_crack(ImageDraw.Draw(canvas), _crack_path(height, width, rng, style), rng, style, side)
    return _soften(canvas, side)


def _branching_crack(
    height: int, width: int, rng: np.random.Generator, style: DefectStyle
) -> np.ndarray:
    side = min(height, width)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    trunk = _crack_path(height, width, rng, style)
    _draw_crack(draw, trunk, rng, style, side)
    for _ in range(int(rng.integers(1, 4))):
        start = trunk[int(rng.integers(1, len(trunk)))]
        branch = _crack_path(height, width, rng, style, start=start, length_scale=0.4)
        _draw_crack(draw, branch, rng, style, side, width_scale=0.7)
    return _soften(canvas, side)


def _dark_spot(height: int, width: int, rng: np.random.Generator, style: DefectStyle) -> np.ndarray:
    side = min(height, width)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    centre_row, centre_col = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
    radius_a = rng.uniform(*style.spot_radius) * side
    radius_b = radius_a * rng.uniform(0.5, 1.0)
    angle = rng.uniform(0, math.pi)
    d_row, d_col = rows - centre_row, cols - centre_col
    along = d_col * math.cos(angle) + d_row * math.sin(angle)
    across = -d_col * math.sin(angle) + d_row * math.cos(angle)
    distance = np.sqrt((along / radius_a) ** 2 + (across / radius_b) ** 2)
    return np.clip(1.5 - distance, 0.0, 1.0)  # flat core, soft rim out to 1.5 radii


def _broken_finger(
    height: int, width: int, rng: np.random.Generator, style: DefectStyle
) -> np.ndarray:
    side = min(height, width)
    length = max(2, round(rng.uniform(*style.finger_length) * side))
    thickness = max(2, round(rng.uniform(0.015, 0.04) * side))
    horizontal = bool(rng.integers(2))
    span_h, span_w = (thickness, length) if horizontal else (length, thickness)
    top = int(rng.integers(0, max(1, height - span_h)))
    left = int(rng.integers(0, max(1, width - span_w)))
    fade = np.linspace(1.0, 0.35, length, dtype=np.float32)  # darkest at the break
    if rng.integers(2):
        fade = fade[::-1]
    band = (
        np.broadcast_to(fade, (thickness, length))
        if horizontal
        else np.broadcast_to(fade[:, None], (length, thickness))
    )
    weight = np.zeros((height, width), dtype=np.float32)
    block = weight[top : top + span_h, left : left + span_w]
    block[...] = band[: block.shape[0], : block.shape[1]]
    return weight


def _crack_path(
    height: int,
    width: int,
    rng: np.random.Generator,
    style: DefectStyle,
    start: tuple[float, float] | None = None,
    length_scale: float = 1.0,
) -> list[tuple[float, float]]:
    """A jagged polyline: a random walk whose heading turns a little at each vertex."""
    side = min(height, width)
    x, y = start or (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height)
    heading = rng.uniform(0, 2 * math.pi)
    remaining = rng.uniform(*style.crack_length) * side * length_scale
    path = [(x, y)]
    while remaining > 0:
        step = min(remaining, rng.uniform(0.03, 0.07) * side)
        heading += rng.normal(0.0, 0.35)
        x = float(np.clip(x + step * math.cos(heading), 0, width - 1))
        y = float(np.clip(y + step * math.sin(heading), 0, height - 1))
        path.append((x, y))
        remaining -= step
    return path


def _draw_crack(
    draw: ImageDraw.ImageDraw,
    path: list[tuple[float, float]],
    rng: np.random.Generator,
    style: DefectStyle,
    side: int,
    width_scale: float = 1.0,
) -> None:
    line_width = max(1, round(rng.uniform(*style.crack_width) * side * width_scale))
    draw.line(path, fill=255, width=line_width, joint="curve")


def _soften(canvas: Image.Image, side: int) -> np.ndarray:
    """The drawn mask with edges blurred by about a pixel at 224 px, as weights in [0, 1]."""
    blurred = canvas.filter(ImageFilter.GaussianBlur(radius=max(0.5, side / 320)))
    return np.asarray(blurred, dtype=np.float32) / 255.0


_DRAWERS = {
    "crack": _crack,
    "branching_crack": _branching_crack,
    "dark_spot": _dark_spot,
    "broken_finger": _broken_finger,
}
