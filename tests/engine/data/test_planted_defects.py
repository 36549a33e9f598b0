"""Planted defects: a mask for every kind, darkening inside it only, seeded and checked inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from engine.data.planted_defects import DEFECT_KINDS, DefectStyle, plant_defect, plant_defects


def _cell(size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(120, 200, (size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_every_kind_darkens_inside_its_mask_and_nowhere_far_from_it(kind: str) -> None:
    image = _cell()
    planted = plant_defect(image, kind, np.random.default_rng(0))  # type: ignore[arg-type]
    assert planted.image.shape == image.shape and planted.image.dtype == np.uint8
    assert planted.kind == kind
    mask = planted.mask
    assert 0 < mask.sum() < 0.25 * mask.size
    inside = planted.image[mask].astype(float).mean()
    assert inside < 0.8 * image[mask].astype(float).mean()
    far = ~ndimage.binary_dilation(mask, iterations=4)
    np.testing.assert_array_equal(planted.image[far], image[far])


def test_grayscale_images_and_stronger_style_darken_more() -> None:
    gray = _cell()[..., 0]
    weak = plant_defect(
        gray, "dark_spot", np.random.default_rng(1), DefectStyle(strength=(0.2, 0.2))
    )
    strong = plant_defect(
        gray, "dark_spot", np.random.default_rng(1), DefectStyle(strength=(0.9, 0.9))
    )
    np.testing.assert_array_equal(weak.mask, strong.mask)
    assert strong.image[strong.mask].mean() < weak.image[weak.mask].mean() - 40


def test_batch_is_seeded_cycles_kinds_and_keeps_layout() -> None:
    batch = torch.from_numpy(np.stack([_cell(64), _cell(64)])).permute(0, 3, 1, 2).contiguous()
    first = plant_defects(batch, 3, seed=7)
    assert first.shape == (6, 3, 64, 64) and first.dtype == torch.uint8
    torch.testing.assert_close(first, plant_defects(batch, 3, seed=7))
    assert not torch.equal(first, plant_defects(batch, 3, seed=8))
    for index in range(6):
        assert not torch.equal(first[index], batch[index // 3])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        plant_defect(_cell().astype(np.float32), "crack", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown defect kind"):
        plant_defect(_cell(), "scratch", np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strength"):
        DefectStyle(strength=(0.8, 0.2))
    with pytest.raises(ValueError, match="N×C×H×W"):
        plant_defects(torch.zeros(3, 8, 8, dtype=torch.uint8), 1, seed=0)
