"""Tensor transforms: PIL → uint8 tensor at model size, batched rotation, colour jitter, angles.

Rotations and jitter work on float tensors in [0, 1] of shape (B, 3, H, W), one parameter per
sample, on whatever device the batch lives on. Random draws use the given ``torch.Generator``
(on its own device) so that runs are reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


def image_to_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """An RGB PIL image as a uint8 (3, size, size) tensor, resized with antialiasing.

    The aspect ratio is not kept (as in DifferNet). Decode with ``load_image`` first.
    """
    if img.mode != "RGB":
        raise ValueError(
            f"image_to_tensor needs an RGB image, got mode {img.mode!r}; decode it with load_image"
        )
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    array = np.array(img, dtype=np.uint8, copy=True)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def to_unit(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [0, 1]; floating tensors are taken as already in [0, 1]."""
    if batch.dtype == torch.uint8:
        return batch.float().div_(255.0)
    if batch.is_floating_point():
        return batch
    raise ValueError(f"to_unit expects uint8 or floating images, got {batch.dtype}")


def rotate_batch(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of (B, C, H, W) by its own angle: counter-clockwise, bilinear, zero fill.

    Matches ``torchvision.transforms.functional.rotate(img, angle, InterpolationMode.BILINEAR)``
    (rotation about the image centre, output the same size) for every sample at once.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            f"rotate_batch needs a float (B, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}"
        )
    batch, _, height, width = x.shape
    angles = degrees.reshape(-1)
    if angles.numel() != batch:
        raise ValueError(
            f"rotate_batch needs one angle per image: {batch} images, {angles.numel()} angles"
        )
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    theta = _rotation_theta(angles.to(device=x.device, dtype=work.dtype), height, width)
    grid = F.affine_grid(theta, [batch, x.shape[1], height, width], align_corners=False)
    sampled = F.grid_sample(work, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.to(x.dtype)


def _rotation_theta(degrees: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Affine matrices (B, 2, 3) mapping output to input in normalised coordinates.

    In pixel units (y down) the output pixel p samples the input at R(θ)·p about the centre,
    with R = [[cos, -sin], [sin, cos]]; normalising x by W/2 and y by H/2 scales the off-diagonal
    terms by the aspect ratio.
    """
    radians = degrees * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    row_x = torch.stack([cos, -sin * (height / width), zero], dim=1)
    row_y = torch.stack([sin * (width / height), cos, zero], dim=1)
    return torch.stack([row_x, row_y], dim=1)


def random_angles(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` angles in degrees, uniform in [-180, 180), on the generator's device."""
    device = generator.device if generator is not None else None
    return torch.rand(n, generator=generator, device=device) * 360.0 - 180.0


def test_view_angles(n: int) -> torch.Tensor:
    """The ``n`` deterministic test-time angles ``i · 360 / n`` degrees (float32)."""
    if n < 1:
        raise ValueError(f"the number of test views must be at least 1, got {n}")
    return torch.arange(n, dtype=torch.float64).mul(360.0 / n).float()


# The name starts with "test_": keep pytest from collecting it where tests import it directly.
test_view_angles.__test__ = False  # type: ignore[attr-defined]


def color_jitter(
    x: torch.Tensor, strength: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random brightness, contrast and saturation per sample, each factor in [1-s, 1+s].

    Applied in that order to a float (B, 3, H, W) batch in [0, 1], clamping after each step.
    ``strength`` 0 returns ``x`` itself.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"colour jitter strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return x
    if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(
            f"color_jitter needs a float (B, 3, H, W) tensor, got {x.dtype} {tuple(x.shape)}"
        )
    device = generator.device if generator is not None else x.device
    factors = torch.rand(3, x.shape[0], generator=generator, device=device)
    factors = (1.0 - strength + 2.0 * strength * factors).to(device=x.device, dtype=x.dtype)
    brightness, contrast, saturation = (f.view(-1, 1, 1, 1) for f in factors)
    out = (x * brightness).clamp_(0.0, 1.0)
    mean = _grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
    out = _blend(out, mean, contrast)
    return _blend(out, _grayscale(out), saturation)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma of an RGB batch, (B, 1, H, W)."""
    weights = torch.tensor(_GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor·x + (1-factor)·other``, clamped to [0, 1]."""
    return (factor * x + (1.0 - factor) * other).clamp_(0.0, 1.0)


# Mean and spread that "standardize" gives every image: ImageNet's average intensity statistics,
# so the backbone's own normalisation still sees values on the scale it was trained on.
STANDARD_MEAN = 0.449
STANDARD_STD = 0.226


def normalize_intensity(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-image intensity normalisation of a float (B, C, H, W) batch in [0, 1].

    ``standardize`` gives each image the same mean and spread over all its pixels, which undoes a
    gain and offset of the camera; ``equalize`` replaces every value by its mid-rank among the
    image's values of its channel (256 levels), which undoes any increasing intensity curve;
    ``none`` returns ``x``.
    """
    if mode == "none":
        return x
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            f"normalize_intensity needs a float (B, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}"
        )
    if mode == "standardize":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        spread = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        return (x - mean) / spread * STANDARD_STD + STANDARD_MEAN
    if mode == "equalize":
        return _equalize(x)
    raise ValueError(f"intensity normalisation {mode!r} is not one of: none, standardize, equalize")


def _equalize(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Mid-rank of each value among its (image, channel)'s values, quantised to ``levels``."""
    batch, channels = x.shape[:2]
    flat = x.reshape(batch * channels, -1)
    bins = flat.clamp(0.0, 1.0).mul(levels - 1).round().long()
    counts = torch.zeros(flat.shape[0], levels, device=x.device, dtype=x.dtype)
    counts.scatter_add_(1, bins, torch.ones_like(flat))
    below = counts.cumsum(dim=1) - counts / 2
    ranks = below.gather(1, bins) / flat.shape[1]
    return ranks.view_as(x)
