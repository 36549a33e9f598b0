"""Tensor transforms: model-size tensors, batched rotation, angles and colour jitter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from engine.data import transforms
from engine.data.transforms import (
    color_jitter,
    image_to_tensor,
    random_angles,
    rotate_batch,
    to_unit,
)
from tests.fixtures.synthetic import textured_image


def torchvision_rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [
            TF.rotate(image, float(angle), interpolation=InterpolationMode.BILINEAR)
            for image, angle in zip(x, degrees, strict=True)
        ]
    )


# --- image_to_tensor / to_unit -------------------------------------------------------------------


def test_image_to_tensor_shape_dtype_and_pixels() -> None:
    image = textured_image(16)
    tensor = image_to_tensor(image, 16)
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.uint8
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), np.asarray(image))


def test_image_to_tensor_ignores_aspect() -> None:
    image = Image.new("RGB", (40, 10), (10, 20, 30))
    tensor = image_to_tensor(image, 24)
    assert tensor.shape == (3, 24, 24)
    assert tensor[:, 12, 12].tolist() == [10, 20, 30]


def test_image_to_tensor_antialiases() -> None:
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = Image.fromarray(checker).convert("RGB")
    small = image_to_tensor(image, 16).float()
    assert (small - 127.5).abs().max() < 10  # averaged, not aliased to 0 / 255


def test_image_to_tensor_needs_rgb() -> None:
    with pytest.raises(ValueError, match="load_image"):
        image_to_tensor(Image.new("L", (4, 4)), 4)
    with pytest.raises(ValueError, match="positive"):
        image_to_tensor(Image.new("RGB", (4, 4)), 0)


def test_to_unit() -> None:
    batch = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8)
    unit = to_unit(batch)
    assert unit.dtype == torch.float32
    assert unit.flatten().tolist() == pytest.approx([0.0, 0.2, 1.0])
    floats = torch.rand(1, 3, 2, 2)
    assert to_unit(floats) is floats
    with pytest.raises(ValueError, match="uint8"):
        to_unit(torch.zeros(2, dtype=torch.int32))


# --- rotation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(32, 32), (24, 40)])
def test_rotation_matches_torchvision_per_sample(height: int, width: int) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, height, width, generator=generator)
    degrees = torch.tensor([0.0, 30.0, -75.5, 90.0, 179.0, -180.0])
    result = rotate_batch(x, degrees)
    assert result.shape == x.shape and result.dtype == x.dtype
    assert torch.allclose(result, torchvision_rotate(x, degrees), atol=1e-4)


def test_rotation_direction_is_counter_clockwise() -> None:
    x = torch.zeros(1, 3, 9, 9)
    x[..., 4, 8] = 1.0  # a dot on the right of the centre
    rotated = rotate_batch(x, torch.tensor([90.0]))
    assert rotated[0, 0, 0, 4] == pytest.approx(1.0, abs=1e-5)  # now at the top


def test_rotation_fills_with_zeros() -> None:
    rotated = rotate_batch(torch.ones(1, 3, 16, 16), torch.tensor([45.0]))
    assert rotated[0, :, 0, 0].abs().max() < 1e-6
    assert rotated[0, :, 8, 8].tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_rotation_keeps_float64_and_half_dtypes() -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert rotate_batch(x, torch.tensor([10.0, 20.0])).dtype == torch.float64
    half = rotate_batch(x.half(), torch.tensor([10.0, 20.0]))
    assert half.dtype == torch.float16
    assert torch.allclose(half.double(), rotate_batch(x, torch.tensor([10.0, 20.0])), atol=2e-3)


def test_rotation_needs_one_angle_per_image() -> None:
    with pytest.raises(ValueError, match="one angle per image"):
        rotate_batch(torch.rand(3, 3, 8, 8), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="float"):
        rotate_batch(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.tensor([1.0]))


# --- angles --------------------------------------------------------------------------------------


def test_random_angles_are_uniform_and_seeded() -> None:
    angles = random_angles(20_000, torch.Generator().manual_seed(1))
    assert angles.shape == (20_000,)
    assert angles.min() >= -180.0 and angles.max() < 180.0
    assert angles.min() < -175.0 and angles.max() > 175.0
    assert abs(float(angles.mean())) < 5.0
    assert abs(float((angles > 0).float().mean()) - 0.5) < 0.02
    again = random_angles(20_000, torch.Generator().manual_seed(1))
    assert torch.equal(angles, again)


def test_test_view_angles() -> None:
    assert transforms.test_view_angles(4).tolist() == [0.0, 90.0, 180.0, 270.0]
    angles = transforms.test_view_angles(64)
    assert angles.shape == (64,) and angles[1] == pytest.approx(5.625)
    assert angles[-1] == pytest.approx(354.375)
    with pytest.raises(ValueError, match="at least 1"):
        transforms.test_view_angles(0)


# --- colour jitter -------------------------------------------------------------------------------


def test_zero_strength_returns_the_input() -> None:
    x = torch.rand(2, 3, 4, 4)
    assert color_jitter(x, 0.0, torch.Generator()) is x


def test_jitter_factors_are_per_sample_and_bounded() -> None:
    strength = 0.3
    gray = torch.full((200, 3, 4, 4), 0.5)  # contrast and saturation leave flat gray unchanged
    out = color_jitter(gray, strength, torch.Generator().manual_seed(0))
    factors = out[:, 0, 0, 0] / 0.5
    assert factors.min() >= 1 - strength - 1e-6 and factors.max() <= 1 + strength + 1e-6
    assert factors.std() > 0.1  # each sample draws its own factor
    assert torch.allclose(out, out[:, :1].expand_as(out))  # still gray


def test_jitter_is_seeded_and_stays_in_range() -> None:
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    first = color_jitter(x, 0.5, torch.Generator().manual_seed(3))
    second = color_jitter(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert not torch.allclose(first, x)


def test_saturation_changes_colour_not_gray_level() -> None:
    x = torch.zeros(64, 3, 2, 2)
    x[:, 0] = 0.6  # reddish
    x[:, 1] = 0.3
    out = color_jitter(x, 0.5, torch.Generator().manual_seed(4))
    spread = (out.amax(dim=1) - out.amin(dim=1))[:, 0, 0]
    assert spread.std() > 0.01


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_jitter_strength_must_be_in_unit_range(strength: float) -> None:
    with pytest.raises(ValueError, match="strength"):
        color_jitter(torch.rand(1, 3, 2, 2), strength)
